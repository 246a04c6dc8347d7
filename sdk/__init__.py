"""deblur-sdk runtime: run a deblurring network (.engine, .onnx or .pt) on frames and streams.

Imports only NumPy, OpenCV and ONNX Runtime: a robot needs no PyTorch to run an engine.

Example::

    >>> import sdk
    >>> deblur = sdk.Deblurrer("rdafnet-nano.engine")    # or "model.onnx", "model.pt", or no argument
    >>> sharp = deblur.process(frame)                     # HxWx3 uint8 BGR in, the same out
    >>> sdk.run("clip.mp4", deblur, sinks=[sdk.VideoFileSink("sharp.mp4")])
"""

from .backends import Backend, EngineCompatibilityError, ModelLoadError, NonFiniteOutputError
from .blur import blur_score, is_sharp
from .deblurrer import Deblurrer, DeblurrerInfo, PreparedFrame, default_model_path
from .manifest import Manifest, ManifestError
from .serving import RemoteDeblurrer
from .stream import (
    CallbackSink,
    Frame,
    ImageFileSink,
    ImageFolderSink,
    NullSink,
    StatsSnapshot,
    StreamRunner,
    StreamSink,
    VideoFileSink,
    VideoSource,
    WindowSink,
    open_sink,
    run,
)

__version__ = "0.1.0"

__all__ = [
    "Backend", "CallbackSink", "Deblurrer", "DeblurrerInfo", "EngineCompatibilityError", "Frame", "ImageFileSink",
    "ImageFolderSink", "Manifest", "ManifestError", "ModelLoadError", "NonFiniteOutputError", "NullSink",
    "PreparedFrame", "RemoteDeblurrer", "StatsSnapshot", "StreamRunner", "StreamSink", "VideoFileSink", "VideoSource",
    "WindowSink", "__version__",
    "blur_score", "default_model_path", "is_sharp", "open_sink", "run",
]

"""deblur-sdk runtime: run a deblurring network (.engine, .onnx, .xml or .pt) on frames and streams.

Imports only NumPy, OpenCV and ONNX Runtime: a robot needs no PyTorch to run an engine. The names
below load on first use, so that ``import sdk.manifest`` (from training and export) loads the manifest
alone, not OpenCV and the stream machinery.

Example::

    >>> import sdk
    >>> deblur = sdk.Deblurrer("rdafnet-nano.engine")    # or "model.onnx", "model.pt", or no argument
    >>> sharp = deblur.process(frame)                     # HxWx3 uint8 BGR in, the same out
    >>> sdk.run("clip.mp4", deblur, sinks=[sdk.VideoFileSink("sharp.mp4")])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends import Backend, EngineCompatibilityError, ModelLoadError, NonFiniteOutputError
    from .blur import blur_score, is_sharp
    from .bundled import bundled_model_path, bundled_models, default_model_path
    from .deblurrer import Deblurrer, DeblurrerInfo, PreparedFrame
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

# Public name -> the submodule that defines it.
_LAZY = {
    **dict.fromkeys(("Backend", "EngineCompatibilityError", "ModelLoadError", "NonFiniteOutputError"), "backends"),
    **dict.fromkeys(("blur_score", "is_sharp"), "blur"),
    **dict.fromkeys(("bundled_model_path", "bundled_models", "default_model_path"), "bundled"),
    **dict.fromkeys(("Deblurrer", "DeblurrerInfo", "PreparedFrame"), "deblurrer"),
    **dict.fromkeys(("Manifest", "ManifestError"), "manifest"),
    "RemoteDeblurrer": "serving",
    **dict.fromkeys(("CallbackSink", "Frame", "ImageFileSink", "ImageFolderSink", "NullSink", "StatsSnapshot",
                     "StreamRunner", "StreamSink", "VideoFileSink", "VideoSource", "WindowSink", "open_sink", "run"), "stream"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value   # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Backend", "CallbackSink", "Deblurrer", "DeblurrerInfo", "EngineCompatibilityError", "Frame", "ImageFileSink",
    "ImageFolderSink", "Manifest", "ManifestError", "ModelLoadError", "NonFiniteOutputError", "NullSink",
    "PreparedFrame", "RemoteDeblurrer", "StatsSnapshot", "StreamRunner", "StreamSink", "VideoFileSink", "VideoSource",
    "WindowSink", "__version__",
    "blur_score", "bundled_model_path", "bundled_models", "default_model_path", "is_sharp", "open_sink", "run",
]

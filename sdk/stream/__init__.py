"""Video streams: sources, sinks, and :func:`run`, which joins them to a Deblurrer in three threads.

Example::

    >>> import sdk
    >>> deblur = sdk.Deblurrer("model.onnx")
    >>> runner = sdk.run("rtsp://camera/stream", deblur, sinks=[sdk.VideoFileSink("out.mp4")])
    >>> print(runner.snapshot().table())
"""

from .queues import DropQueue, QueueClosed
from .runner import StreamRunner, run
from .sinks import (
    CallbackSink,
    ImageFileSink,
    ImageFolderSink,
    NullSink,
    Sink,
    StreamSink,
    VideoFileSink,
    WindowSink,
    open_sink,
)
from .sources import Frame, VideoSource, csi_pipeline
from .stats import StatsSnapshot, StreamStats

__all__ = ["CallbackSink", "DropQueue", "Frame", "ImageFileSink", "ImageFolderSink", "NullSink", "QueueClosed",
           "Sink", "StatsSnapshot", "StreamSink", "StreamRunner", "StreamStats", "VideoFileSink", "VideoSource", "WindowSink",
           "csi_pipeline", "open_sink", "run"]

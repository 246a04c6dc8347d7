"""Where processed frames go: a video file, a live stream (RTSP/UDP), an image folder, a window,
a callback, or nowhere.

Every sink has ``write(image, frame)`` and ``close()``; ``close`` flushes (a video file is playable
only after its encoder is drained and its container finalised), and :func:`sdk.run` always calls it,
also on Ctrl-C and on errors. Images are BGR like the sources (grayscale and BGRA work; float32 in
[0, 1] is converted to 8 bits).

Example::

    >>> sink = VideoFileSink("out.mp4", fps=30)    # H.264 through PyAV when installed, else OpenCV
    >>> sink.write(image, frame); sink.close()
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ..files import IMAGE_SUFFIXES
from .sources import Frame

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")


class Sink(Protocol):
    def write(self, image: np.ndarray, frame: Frame) -> None: ...
    def close(self) -> None: ...


def to_bgr8(image: np.ndarray, *, keep_alpha: bool = False) -> np.ndarray:
    """``image`` as uint8 BGR (or BGRA with ``keep_alpha``), whatever gray/alpha/float form it has."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(np.clip(image, 0.0, 1.0), alpha=255.0)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4 and not keep_alpha:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class VideoFileSink:
    """A video file: H.264 (libx264, yuv420p) via PyAV when available, else OpenCV's VideoWriter.

    The size is fixed by the first frame; odd sizes are padded by one edge row/column, since yuv420p
    needs even sides. ``codec`` forces a PyAV codec name.
    """

    def __init__(self, path: str | os.PathLike[str], *, fps: float = 25.0, codec: str | None = None,
                 crf: int = 18, backend: str = "auto") -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"video output must end in one of {VIDEO_SUFFIXES}, got {self.path}")
        if backend not in ("auto", "pyav", "opencv"):
            raise ValueError(f"backend must be 'auto', 'pyav' or 'opencv', got {backend!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps, self.codec, self.crf = float(fps), codec, crf
        self._use_av = backend == "pyav" or (backend == "auto" and _has_pyav())
        if backend == "pyav" and not _has_pyav():
            raise ImportError("backend='pyav' needs PyAV: pip install av")
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._container: Any = None
        self._stream: Any = None
        self._writer: Any = None

    @property
    def backend(self) -> str:
        return "pyav" if self._use_av else "opencv"

    def _open(self, height: int, width: int) -> None:
        self._size = (height + height % 2, width + width % 2)
        h, w = self._size
        if self._use_av:
            import av

            codec = self.codec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
            self._container = av.open(str(self.path), mode="w")
            self._stream = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height, self._stream.pix_fmt = w, h, "yuv420p"
            if codec == "libx264":
                self._stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        else:
            fourcc = cv2.VideoWriter.fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write {self.path}; install PyAV (pip install av) for H.264")

    def write(self, image: np.ndarray, frame: Frame | None = None) -> None:
        bgr = to_bgr8(image)
        if self._size is None:
            self._open(*bgr.shape[:2])
        assert self._size is not None
        bgr = _fit_to(bgr, self._size, str(self.path))
        if self._use_av:
            import av

            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
            video_frame.pts = self.frames
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        else:
            self._writer.write(bgr)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file; the file is closed even when flushing fails (then re-raised)."""
        if self._container is not None:
            container, self._container = self._container, None
            try:
                for packet in self._stream.encode():      # drain the encoder's delayed frames
                    container.mux(packet)
            finally:
                container.close()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.release()


class StreamSink:
    """Publish frames as a live H.264 stream (PyAV/FFmpeg), like jetson-utils' ``videoOutput``.

    - ``rtsp://host:port/path``: RTSP ANNOUNCE/RECORD to a server that accepts published streams
      (MediaMTX, or ``ffmpeg -rtsp_flags listen -i rtsp://...``), over TCP.
    - ``udp://host:port``: MPEG-TS over UDP; any player receives it (``ffplay udp://@:port``), no
      server needed.

    Encoding is libx264 ``ultrafast``/``zerolatency`` with a keyframe every second, so a receiver that
    joins late starts within a second. The size is fixed by the first frame (odd sides padded by one).

    Example::

        >>> sink = StreamSink("udp://192.168.1.50:5000", fps=30)
        >>> sdk.run(0, sdk.Deblurrer(), sinks=[sink])
    """

    FORMATS = {"rtsp": "rtsp", "udp": "mpegts"}

    def __init__(self, url: str, *, fps: float = 25.0, bitrate: int = 2_000_000, codec: str = "libx264") -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in self.FORMATS:
            raise ValueError(f"stream output must be rtsp:// or udp://, got {url!r}")
        if not _has_pyav():
            raise ImportError("stream output needs PyAV: pip install av")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.url, self.scheme, self.fps, self.bitrate, self.codec = url, scheme, float(fps), int(bitrate), codec
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._container: Any = None
        self._stream: Any = None

    def _open(self, height: int, width: int) -> None:
        import av

        self._size = (height + height % 2, width + width % 2)
        options = {"rtsp_transport": "tcp"} if self.scheme == "rtsp" else {}
        try:
            self._container = av.open(self.url, mode="w", format=self.FORMATS[self.scheme], options=options)
        except OSError as exc:   # PyAV's FFmpeg errors (connection refused, ...) are OSError subclasses
            raise ConnectionError(f"could not publish to {self.url}: {exc}") from None
        stream = self._container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = self._size[1], self._size[0], "yuv420p"
        stream.bit_rate = self.bitrate
        if self.codec == "libx264":
            stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(max(1, round(self.fps)))}
        self._stream = stream

    def write(self, image: np.ndarray, frame: Frame | None = None) -> None:
        import av

        bgr = to_bgr8(image)
        if self._size is None:
            self._open(*bgr.shape[:2])
        assert self._size is not None
        bgr = _fit_to(bgr, self._size, str(self.url))
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        video_frame.pts = self.frames
        try:
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)    # the first one connects (RTSP ANNOUNCE) and writes the header
        except OSError as exc:
            raise ConnectionError(f"publishing to {self.url} failed: {exc}") from None
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and end the stream (an RTSP receiver sees TEARDOWN and closes its file)."""
        if self._container is not None:
            container, self._container = self._container, None
            try:
                for packet in self._stream.encode():
                    container.mux(packet)
            finally:
                container.close()


def _fit_to(bgr: np.ndarray, size: tuple[int, int], name: str) -> np.ndarray:
    """``bgr`` padded by its edge to ``size`` (the first frame's size made even); other sizes are refused."""
    h, w = size
    if bgr.shape[:2] == (h, w):
        return bgr
    if bgr.shape[0] > h or bgr.shape[1] > w or h - bgr.shape[0] > 1 or w - bgr.shape[1] > 1:
        raise ValueError(f"{name}: frames must all be {w - w % 2}x{h - h % 2} (the first frame's size), "
                         f"got {bgr.shape[1]}x{bgr.shape[0]}")
    return cv2.copyMakeBorder(bgr, 0, h - bgr.shape[0], 0, w - bgr.shape[1], cv2.BORDER_REPLICATE)


class ImageFolderSink:
    """One image per frame, named by ``pattern`` (``{index}`` is the source frame index)."""

    def __init__(self, directory: str | os.PathLike[str], *, pattern: str = "frame_{index:06d}.png") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if Path(pattern).suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"pattern must end in an image suffix {IMAGE_SUFFIXES}, got {pattern!r}")
        self.pattern = pattern
        self.frames = 0

    def write(self, image: np.ndarray, frame: Frame) -> None:
        path = self.directory / self.pattern.format(index=frame.index)
        keep_alpha = path.suffix.lower() in (".png", ".tif", ".tiff", ".webp")
        if not cv2.imwrite(str(path), to_bgr8(image, keep_alpha=keep_alpha)):
            raise OSError(f"could not write {path}")
        self.frames += 1

    def close(self) -> None:
        pass


class ImageFileSink:
    """A single output image (for a single-image input)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"image output must end in one of {IMAGE_SUFFIXES}, got {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0

    def write(self, image: np.ndarray, frame: Frame) -> None:
        if self.frames:
            raise ValueError(f"{self.path} is a single image but the input has several frames; "
                             "give a folder or a video file as output")
        if not cv2.imwrite(str(self.path), to_bgr8(image, keep_alpha=self.path.suffix.lower() == ".png")):
            raise OSError(f"could not write {self.path}")
        self.frames += 1

    def close(self) -> None:
        pass


class WindowSink:
    """An OpenCV window; pressing q or Esc (or closing it) asks the stream to stop."""

    def __init__(self, title: str = "deblur") -> None:
        if not opencv_has_gui():
            raise RuntimeError("this OpenCV has no GUI (opencv-python-headless): pip install opencv-python "
                               "to show a window, or write to a file instead")
        self.title = title
        self.stop_requested = False
        self._opened = False

    def write(self, image: np.ndarray, frame: Frame) -> None:
        if not self._opened:
            # Created in the writer thread: OpenCV's GUI must be driven from the thread that made the window.
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self._opened = True
        cv2.imshow(self.title, to_bgr8(image))
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        if key in (ord("q"), 27) or closed:
            self.stop_requested = True

    def close(self) -> None:
        if self._opened:
            cv2.destroyWindow(self.title)
            self._opened = False


class CallbackSink:
    """Calls ``fn(image, frame)`` for every frame."""

    def __init__(self, fn: Callable[[np.ndarray, Frame], None]) -> None:
        self.fn = fn

    def write(self, image: np.ndarray, frame: Frame) -> None:
        self.fn(image, frame)

    def close(self) -> None:
        pass


class NullSink:
    """Discards frames, counting them (benchmarks, or when ``on_frame`` does the work)."""

    def __init__(self) -> None:
        self.frames = 0
        self._lock = threading.Lock()

    def write(self, image: np.ndarray, frame: Frame) -> None:
        with self._lock:
            self.frames += 1

    def close(self) -> None:
        pass


def open_sink(target: str | os.PathLike[str], *, fps: float = 25.0, single_image: bool = False) -> Sink:
    """A sink from a path: a video file by suffix, one image for a single-image input, a live stream for
    ``rtsp://`` or ``udp://``, else a folder."""
    if isinstance(target, str) and target.split("://", 1)[0].lower() in StreamSink.FORMATS and "://" in target:
        return StreamSink(target, fps=fps)
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return VideoFileSink(path, fps=fps)
    if suffix in IMAGE_SUFFIXES:
        if not single_image:
            raise ValueError(f"{path} is one image but the input is a stream; give a folder or a video file")
        return ImageFileSink(path)
    if suffix:
        raise ValueError(f"unknown output type {suffix!r}: use a video ({', '.join(VIDEO_SUFFIXES)}), "
                         f"an image ({', '.join(IMAGE_SUFFIXES)}) or a folder")
    return ImageFolderSink(path)


def opencv_has_gui() -> bool:
    return not re.search(r"GUI:\s+NONE", cv2.getBuildInformation())


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True

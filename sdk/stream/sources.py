"""``sdk.VideoSource``: frames from a camera, a Jetson CSI sensor, RTSP, HTTP MJPEG, a video file, an
image folder or glob, or a GStreamer pipeline, each with its index and timestamp.

Files and folders are read on demand and end; nothing is dropped. Live sources (cameras, network
streams, pipelines) are read by a background thread into a small buffer that keeps only the newest
frames (OpenCV and FFmpeg otherwise queue stale frames behind a slow consumer), and reconnect with
exponential backoff when the stream drops.

Example::

    >>> with VideoSource("rtsp://192.168.1.20:8554/cam") as cam:
    ...     frame = cam.read(timeout=1.0)           # a Frame, or None on timeout
    ...     frame.image.shape, frame.index, frame.timestamp
    >>> for frame in VideoSource("clip.mp4"):       # files end
    ...     ...
"""

from __future__ import annotations

import collections
import glob
import os
import re
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ..files import IMAGE_SUFFIXES

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DEFAULT_IMAGE_FPS = 25.0
# FFmpeg waits this long to open or read a network stream before giving up (then we reconnect).
NETWORK_TIMEOUT_MS = 5000
# A robot often boots before its camera: live sources keep trying the first connection this long.
DEFAULT_CONNECT_TIMEOUT = 30.0
# Sources that may simply not be there yet (a camera still booting, a server starting), unlike files.
CONNECTING_KINDS = ("camera", "csi", "rtsp", "http", "network", "gstreamer")


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    ``index`` counts frames the source produced (gaps mean frames were dropped); ``timestamp`` is
    seconds of media time for files and folders, seconds since opening for live sources;
    ``captured_at`` is ``time.perf_counter()`` at capture, for latency; ``capture_time`` the seconds
    the read/decode took.
    """

    image: np.ndarray
    index: int
    timestamp: float
    captured_at: float
    capture_time: float = 0.0


def natural_key(path: str) -> list[Any]:
    """Sort ``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path)]


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: float = 30) -> str:
    """The Jetson CSI camera pipeline (nvarguscamerasrc, NVMM -> BGR), newest frame only."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},"
            f"framerate={int(round(fps))}/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
            "video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false")


def _opencv_has_gstreamer() -> bool:
    info = cv2.getBuildInformation()
    return bool(re.search(r"GStreamer:\s+YES", info))


# ---------------------------------------------------------------------------------------------- readers
class _CaptureReader:
    """cv2.VideoCapture on a camera index, device, URL, file or GStreamer pipeline."""

    def __init__(self, target: int | str, api: int, *, params: list[int] | None = None,
                 props: dict[int, float] | None = None, is_file: bool = False) -> None:
        self.target, self.api, self.params, self.props = target, api, params or [], props or {}
        self.is_file = is_file
        self.cap: Any = None
        self.fps = 0.0
        self.frame_count = 0

    def open(self) -> None:
        cap = cv2.VideoCapture(self.target, self.api, self.params)
        if not cap.isOpened():
            cap.release()
            raise ConnectionError(f"could not open {self.target!r}")
        for prop, value in self.props.items():
            cap.set(prop, value)
        self.cap = cap
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.frame_count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))

    def read(self) -> tuple[np.ndarray | None, float | None]:
        ok, image = self.cap.read()
        if not ok or image is None:
            return None, None
        pos = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self.is_file else None
        return image, pos

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class _ImageReader:
    """Still images, one frame each, in natural order; unreadable files are skipped with a warning."""

    def __init__(self, paths: list[str], fps: float) -> None:
        self.paths, self.fps, self.frame_count = paths, fps, len(paths)
        self._next = 0
        self.skipped = 0

    def open(self) -> None:
        self._next = 0

    def read(self) -> tuple[np.ndarray | None, float | None]:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is not None:
                return image, None
            self.skipped += 1
            warnings.warn(f"skipping {path}: not a readable image", stacklevel=2)
        return None, None

    def close(self) -> None:
        pass


class _IterReader:
    """Frames from any iterable of HxWx3 arrays (a ROS callback queue, a generator, a test)."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float) -> None:
        self._iterator: Iterator[np.ndarray] | None = None
        self._frames, self.fps, self.frame_count = frames, fps, len(frames) if isinstance(frames, Sized) else 0

    def open(self) -> None:
        if self._iterator is not None:
            raise ConnectionError("an iterable source cannot be reopened")
        self._iterator = iter(self._frames)

    def read(self) -> tuple[np.ndarray | None, float | None]:
        assert self._iterator is not None
        return next(self._iterator, None), None

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------- source
class VideoSource:
    """Frames from ``uri``; see the module docstring for what ``uri`` may be.

    Args:
        uri: camera index (``0``) or ``/dev/videoN``; ``csi://N``; ``rtsp://...``; ``http(s)://...`` (MJPEG);
            a video file; an image folder; a glob such as ``"frames/*.png"``; a single image; or a
            GStreamer pipeline string (contains ``!``).
        width, height, fps: requested capture size and rate (cameras, CSI); ``fps`` also sets the
            timestamps of image folders.
        live: override whether the source is live (a file read as a simulated camera, say).
        reconnect: live sources reopen after a drop, waiting ``backoff[0]`` s doubling to ``backoff[1]``.
        max_reconnects: give up after this many failed reopen attempts in a row (``None``: never).
        buffer: frames a live source keeps for a slow reader (newest win).
        connect_timeout: seconds a live source keeps retrying its *first* connection (same backoff as a
            reconnect) before raising ``ConnectionError``; ``0`` fails at once. Files never wait.
    """

    def __init__(self, uri: int | str | os.PathLike[str], *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, live: bool | None = None, reconnect: bool = True,
                 max_reconnects: int | None = None, backoff: tuple[float, float] = (0.25, 8.0),
                 buffer: int = 1, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        if not connect_timeout >= 0:
            raise ValueError(f"connect_timeout must be >= 0 seconds, got {connect_timeout!r}")
        self.uri = uri
        self.kind, self._reader, natural_live = self._make_reader(uri, width, height, fps)
        self.is_live = natural_live if live is None else live
        self.connect_timeout = float(connect_timeout)
        self._setup(fps, reconnect, max_reconnects, backoff, buffer)

    @classmethod
    def from_iterable(cls, frames: Iterable[np.ndarray], *, fps: float = DEFAULT_IMAGE_FPS,
                      live: bool = False, buffer: int = 1) -> VideoSource:
        """A source over in-memory frames; ``live=True`` pulls them in a thread, like a camera."""
        source = cls.__new__(cls)
        source.uri, source.kind, source._reader, source.is_live = "<frames>", "frames", _IterReader(frames, fps), live
        source.connect_timeout = 0.0
        source._setup(fps, False, 0, (0.0, 0.0), buffer)
        return source

    def _setup(self, fps: float | None, reconnect: bool, max_reconnects: int | None,
               backoff: tuple[float, float], buffer: int) -> None:
        if buffer < 1:
            raise ValueError(f"buffer must be >= 1, got {buffer}")
        self.reconnect, self.max_reconnects, self.backoff = reconnect, max_reconnects, backoff
        self.reconnects = 0           # successful reopenings after a drop
        self.dropped = 0              # frames a live source overwrote before anyone read them
        self.error: Exception | None = None
        self._index = 0
        self._ended = False
        self._closed = threading.Event()
        self._buffer: collections.deque[Frame] = collections.deque(maxlen=buffer)
        self._cond = threading.Condition()
        try:
            self._connect()           # fail now, with the reason, rather than on the first read
        except ConnectionError:
            if self.kind != "file":
                raise
            raise ValueError(f"{self.uri} is not a video OpenCV can decode (corrupt, or an unknown format)") from None
        self.fps = float(fps or self._reader.fps or DEFAULT_IMAGE_FPS)
        self.frame_count = int(self._reader.frame_count)
        self._t0 = time.perf_counter()
        self._thread: threading.Thread | None = None
        if self.is_live:
            self._thread = threading.Thread(target=self._pump, name=f"VideoSource({self.uri})", daemon=True)
            self._thread.start()

    def _connect(self) -> None:
        """Open the reader; a live source retries with the reconnect backoff for ``connect_timeout`` s."""
        deadline = time.monotonic() + (self.connect_timeout if self.kind in CONNECTING_KINDS else 0.0)
        delay, attempts = self.backoff[0], 0
        while True:
            attempts += 1
            try:
                self._reader.open()
                return
            except ConnectionError as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    if attempts == 1:
                        raise
                    raise ConnectionError(f"could not open {self.uri!r}: no connection after {attempts} attempts "
                                          f"in {self.connect_timeout:g} s (connect_timeout); last error: {exc}") from None
                time.sleep(min(delay, left))
                delay = min(max(delay * 2, 1e-3), self.backoff[1])

    # ------------------------------------------------------------------ uri -> reader
    @staticmethod
    def _make_reader(uri: int | str | os.PathLike[str], width: int | None, height: int | None,
                     fps: float | None) -> tuple[str, Any, bool]:
        props: dict[int, float] = {cv2.CAP_PROP_BUFFERSIZE: 1}
        if width:
            props[cv2.CAP_PROP_FRAME_WIDTH] = width
        if height:
            props[cv2.CAP_PROP_FRAME_HEIGHT] = height
        if fps:
            props[cv2.CAP_PROP_FPS] = fps
        camera_api = cv2.CAP_V4L2 if os.name == "posix" else cv2.CAP_ANY
        if isinstance(uri, int) or (isinstance(uri, str) and uri.isdigit()):
            return "camera", _CaptureReader(int(uri), camera_api, props=props), True
        text = os.fspath(uri)
        if text.startswith("v4l2://"):
            text = text[len("v4l2://"):]
        if text.startswith("/dev/video"):
            return "camera", _CaptureReader(text, camera_api, props=props), True
        if text.startswith("csi://"):
            sensor = text[len("csi://"):]
            if not sensor.isdigit():
                raise ValueError(f"expected csi://N with N the sensor id, got {text!r}")
            return "csi", _gstreamer(csi_pipeline(int(sensor), width or 1280, height or 720, fps or 30)), True
        if text.startswith(NETWORK_SCHEMES):
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                      NETWORK_TIMEOUT_MS]
            kind = "http" if text.startswith(("http://", "https://")) else "rtsp" if "rtsp" in text[:6] else "network"
            return kind, _CaptureReader(text, cv2.CAP_FFMPEG, params=params), True
        if " ! " in text:
            return "gstreamer", _gstreamer(text), True
        if text.startswith("file://"):
            text = text[len("file://"):]
        path = Path(text)
        if path.is_dir():
            paths = sorted((str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
            if not paths:
                raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
            return "images", _ImageReader(paths, fps or DEFAULT_IMAGE_FPS), False
        if any(ch in text for ch in "*?["):
            paths = sorted((p for p in glob.glob(text) if Path(p).suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
            if not paths:
                raise FileNotFoundError(f"no images match {text!r}")
            return "images", _ImageReader(paths, fps or DEFAULT_IMAGE_FPS), False
        if not path.exists():
            raise FileNotFoundError(f"video source not found: {text} (expected a camera index, /dev/videoN, "
                                    "csi://N, rtsp://, http(s)://, a video file, an image folder or glob, "
                                    "or a GStreamer pipeline)")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return "image", _ImageReader([str(path)], fps or DEFAULT_IMAGE_FPS), False
        return "file", _CaptureReader(str(path), cv2.CAP_ANY, is_file=True), False

    # ------------------------------------------------------------------ reading
    def _frame(self, image: np.ndarray, media_time: float | None, took: float) -> Frame:
        now = time.perf_counter()
        if media_time is None:
            media_time = (now - self._t0) if self.is_live else self._index / self.fps
        frame = Frame(image, self._index, media_time, now, took)
        self._index += 1
        return frame

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame, or ``None`` on timeout or at the end (then :attr:`ended` is True).

        Files and folders ignore ``timeout``: the next frame is decoded on the spot.
        """
        if self._closed.is_set():
            return None
        if not self.is_live:
            if self._ended:
                return None
            t0 = time.perf_counter()
            image, media_time = self._reader.read()
            if image is None:
                self._ended = True
                return None
            return self._frame(image, media_time, time.perf_counter() - t0)
        with self._cond:
            if not self._cond.wait_for(lambda: self._buffer or self._ended or self._closed.is_set(), timeout):
                return None
            return self._buffer.popleft() if self._buffer else None

    @property
    def ended(self) -> bool:
        """True when no frame will come any more (end of file, or a live source that gave up)."""
        if self._closed.is_set():
            return True
        if self.is_live:
            with self._cond:
                return self._ended and not self._buffer
        return self._ended

    def __iter__(self) -> Iterator[Frame]:
        while not self.ended:
            frame = self.read(timeout=0.5)
            if frame is not None:
                yield frame

    # ------------------------------------------------------------------ live capture thread
    def _pump(self) -> None:
        delay = self.backoff[0]
        failures = 0
        try:
            while not self._closed.is_set():
                t0 = time.perf_counter()
                try:
                    image, media_time = self._reader.read()
                except Exception as exc:  # a decoder error mid-stream is a drop, not a crash
                    image, media_time = None, None
                    self.error = exc
                if image is not None:
                    frame = self._frame(image, media_time, time.perf_counter() - t0)
                    with self._cond:
                        if len(self._buffer) == self._buffer.maxlen:
                            self.dropped += 1
                        self._buffer.append(frame)
                        self._cond.notify_all()
                    continue
                if not self.reconnect:
                    break
                # The stream dropped: reopen with exponential backoff until it comes back or we give up.
                self._reader.close()
                while not self._closed.is_set():
                    if self.max_reconnects is not None and failures >= self.max_reconnects:
                        self.error = ConnectionError(f"{self.uri}: gave up after {failures} reconnect attempts")
                        return
                    if self._closed.wait(delay):
                        return
                    try:
                        self._reader.open()
                    except Exception as exc:
                        failures += 1
                        self.error = exc
                        delay = min(delay * 2, self.backoff[1])
                        continue
                    self.reconnects += 1
                    failures, delay = 0, self.backoff[0]
                    break
        finally:
            self._reader.close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def close(self) -> None:
        """Stop capturing and release the device; safe to call twice."""
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            # A blocked network read returns within NETWORK_TIMEOUT_MS; the thread then releases the capture.
            self._thread.join(timeout=NETWORK_TIMEOUT_MS / 1000 + 1)
        else:
            self._reader.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoSource({self.uri!r}, kind={self.kind!r}, live={self.is_live})"


def _gstreamer(pipeline: str) -> _CaptureReader:
    if not _opencv_has_gstreamer():
        raise RuntimeError("this OpenCV build has no GStreamer support, which GStreamer pipelines and csi:// "
                           "need; on Jetson use JetPack's python3-opencv (built with GStreamer)")
    if "appsink" not in pipeline:
        pipeline += " ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"
    return _CaptureReader(pipeline, cv2.CAP_GSTREAMER)


class FrameSource(Protocol):
    """What :func:`sdk.run` needs from a source; :class:`VideoSource` is one, and so can your own be."""

    is_live: bool
    dropped: int
    reconnects: int
    error: Exception | None

    def read(self, timeout: float | None = None) -> Frame | None: ...
    @property
    def ended(self) -> bool: ...
    def close(self) -> None: ...


SourceLike = int | str | os.PathLike[str] | FrameSource


def as_source(source: SourceLike) -> tuple[FrameSource, bool]:
    """``source`` as a frame source, and whether the caller opened it (and so must close it)."""
    if hasattr(source, "read") and hasattr(source, "is_live"):
        return source, False  # type: ignore[return-value]
    return VideoSource(source), True  # type: ignore[arg-type]


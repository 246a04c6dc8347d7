"""Test doubles for the stream tests: a local MJPEG server, paced sources, a slow backend, video counting."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.soak_rtsp import decoded_frames
from sdk.backends.base import Backend, ShapeLimits
from sdk.manifest import Manifest
from sdk.stream import Frame, VideoFileSink


def level_frame(i: int, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A frame whose gray level encodes ``i`` (survives JPEG/H.264 to within a few levels)."""
    return np.full((*shape, 3), (16 + 8 * i) % 256, np.uint8)


def level_of(image: np.ndarray) -> int:
    return int(round((float(image.mean()) - 16) / 8))


def write_video(path: Path, frames: int, shape: tuple[int, int] = (48, 64), fps: float = 25.0) -> Path:
    sink = VideoFileSink(path, fps=fps)
    for i in range(frames):
        sink.write(level_frame(i, shape))
    sink.close()
    return path


def count_video_frames(path: Path) -> tuple[int, int]:
    """Frames decoded by PyAV and by OpenCV: a playable file gives the same count in both."""
    return decoded_frames(path)


def finish_process(proc: subprocess.Popen, timeout: float = 60.0) -> tuple[Any, Any]:
    """(stdout, stderr) of ``proc`` once it exits; killed if it outlives ``timeout`` (then the wait raises)."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


class SlowIdentity(Backend):
    """An identity network that takes ``delay`` seconds per call, like an overloaded accelerator."""

    name, device, precision = "slow", "cpu", "fp32"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.manifest = Manifest(architecture="slow", variant="slow", value_range=(0.0, 1.0), pad_multiple=1,
                                 residual="none")
        self.limits = ShapeLimits()

    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        time.sleep(self.delay)
        out[...] = batch


class PacedLiveSource:
    """A camera stand-in: each read waits ``interval`` and returns the next frame; ``count`` frames, then ends."""

    is_live = True

    def __init__(self, count: int, interval: float, shape: tuple[int, int] = (16, 16)) -> None:
        self.count, self.interval, self.shape = count, interval, shape
        self.index = 0
        self.dropped = self.reconnects = 0
        self.error = None
        self.closed = False

    @property
    def ended(self) -> bool:
        return self.index >= self.count

    def read(self, timeout: float | None = None) -> Frame | None:
        if self.ended or self.closed:
            return None
        time.sleep(self.interval)
        frame = Frame(np.full((*self.shape, 3), self.index % 256, np.uint8), self.index, self.index * self.interval,
                      time.perf_counter())
        self.index += 1
        return frame

    def close(self) -> None:
        self.closed = True


class MjpegServer:
    """multipart/x-mixed-replace JPEG frames on 127.0.0.1; each connection is cut after ``per_connection``
    frames (``None``: never), which is how a flaky camera drops."""

    def __init__(self, per_connection: int | None = None, interval: float = 0.02) -> None:
        self.per_connection, self.interval = per_connection, interval
        self.counter = 0
        self.connections = 0
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — http.server's naming
                with server._lock:
                    server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                sent = 0
                try:
                    while server.per_connection is None or sent < server.per_connection:
                        with server._lock:
                            i = server.counter
                            server.counter += 1
                        jpeg = cv2.imencode(".jpg", level_frame(i % 30))[1].tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         b"Content-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n")
                        self.wfile.flush()
                        sent += 1
                        time.sleep(server.interval)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

"""Real network streams on 127.0.0.1: RTSP input from GStreamer's RTSP server (killed and restarted
mid-stream), and the stream output sink recorded by a receiving FFmpeg. Every process a test starts is
stopped by it; each streams a few seconds."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from stream_helpers import SlowIdentity, count_video_frames, finish_process, level_frame, level_of

import sdk
from benchmarks.rtsp_server import RtspServer, free_port, unavailable_reason, wait_listening
from sdk.stream import CallbackSink, StreamSink, VideoSource


@pytest.fixture(scope="module")
def rtsp_ready() -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_rtsp_source_survives_a_server_crash_and_counts_reconnects_and_drops(rtsp_ready):
    indices: list[int] = []
    server = RtspServer(fps=20, size=(48, 64)).start()
    runner = None
    try:
        source = VideoSource(server.url, connect_timeout=10, backoff=(0.1, 0.5))
        # 0.1 s per frame against 20 fps: the newest-frame policy must drop about half of them.
        runner = sdk.run(source, sdk.Deblurrer(SlowIdentity(0.1)), block=False,
                         sinks=[CallbackSink(lambda image, frame: indices.append(frame.index))])
        _wait(lambda: len(indices) >= 5, 30, "frames before the crash")
        server.kill()
        before = len(indices)
        time.sleep(1.0)
        assert runner.running                             # a dead server is a drop, not a crash
        server.start()
        _wait(lambda: source.reconnects >= 1 and len(indices) >= before + 5, 40, "frames after the restart")
        runner.stop()
        runner.join(timeout=30)
        snap = runner.snapshot()
    finally:
        if runner is not None and runner.running:
            runner.stop()
            runner.join(timeout=30)
        server.stop()
        if runner is not None:
            runner.source.close()
    assert runner.error is None
    assert snap.reconnects == source.reconnects == 1
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    # Every frame the source produced up to the last one written was written or counted as dropped.
    assert snap.written == len(indices) and snap.dropped > 0
    assert indices[-1] + 1 - snap.written <= snap.dropped


def test_a_live_source_waits_for_a_server_that_starts_late(rtsp_ready):
    server = RtspServer(fps=20, size=(48, 64))
    starter = threading.Timer(1.0, server.start)
    starter.start()
    try:
        t0 = time.monotonic()
        with VideoSource(server.url, connect_timeout=20, backoff=(0.1, 0.5)) as source:
            waited = time.monotonic() - t0
            frame = source.read(timeout=10)
    finally:
        starter.join()
        server.stop()
    assert waited >= 0.9 and frame is not None and frame.image.shape == (48, 64, 3)


def test_connect_timeout_bounds_the_wait_for_an_absent_stream():
    url = f"rtsp://127.0.0.1:{free_port()}/nothing"
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match=r"after \d+ attempts in 1 s"):
        VideoSource(url, connect_timeout=1.0, backoff=(0.1, 0.2))
    assert 1.0 <= time.monotonic() - t0 < 15
    with pytest.raises(ValueError, match="connect_timeout"):
        VideoSource(url, connect_timeout=-1)


# ---------------------------------------------------------------------------------------------- output
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (apt-get install ffmpeg)")


def _receive(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[bytes]) -> str:
    return finish_process(proc, timeout=20)[1].decode(errors="replace")


def _publish(url: str, frames: int, *, paced: bool = False) -> None:
    sink = StreamSink(url, fps=15)
    try:
        for i in range(frames):
            sink.write(level_frame(i, (96, 128)))
            if paced:
                time.sleep(1 / 15)                     # at the stream's rate, as sdk.run writes a live stream
    finally:
        sink.close()


def _levels(path: Path) -> list[int]:
    return [level_of(f.image) for f in VideoSource(path)]


@needs_ffmpeg
def test_rtsp_output_is_recorded_by_a_listening_ffmpeg(tmp_path):
    port, out = free_port(), tmp_path / "received.mkv"
    receiver = _receive(["-rtsp_flags", "listen", "-timeout", "30", "-i", f"rtsp://127.0.0.1:{port}/deblurred",
                         "-c", "copy", str(out)])
    try:
        wait_listening(port)
        _publish(f"rtsp://127.0.0.1:{port}/deblurred", 30)
    finally:
        err = _finish(receiver)     # TEARDOWN ends the receiver by itself
    assert receiver.returncode == 0, err
    assert count_video_frames(out) == (30, 30)
    assert _levels(out) == list(range(30))


@needs_ffmpeg
def test_udp_output_is_recorded_by_a_receiving_ffmpeg(tmp_path):
    port, out = free_port(), tmp_path / "received.ts"
    # The receiver ends by itself 2 s after the last packet (timeout is in microseconds).
    receiver = _receive(["-analyzeduration", "1000000", "-i", f"udp://127.0.0.1:{port}?timeout=2000000",
                         "-c", "copy", str(out)])
    try:
        time.sleep(1.0)                                # UDP has no handshake: the receiver must be up first
        _publish(f"udp://127.0.0.1:{port}", 30, paced=True)
    finally:
        err = _finish(receiver)
    assert receiver.returncode == 0 and out.exists() and out.stat().st_size > 0, err
    pyav, opencv = count_video_frames(out)
    levels = _levels(out)
    # Loopback UDP loses nothing in practice; a receiver that joined a little late starts at a keyframe.
    assert pyav == opencv and 15 <= pyav <= 30
    assert levels == list(range(30 - len(levels), 30))


def test_stream_output_refuses_other_schemes_and_names_an_absent_receiver():
    with pytest.raises(ValueError, match="rtsp:// or udp://"):
        StreamSink("http://127.0.0.1:1/x")
    sink = StreamSink(f"rtsp://127.0.0.1:{free_port()}/nobody", fps=10)
    with pytest.raises(ConnectionError, match="nobody"):
        sink.write(np.zeros((16, 16, 3), np.uint8))
    sink.close()
    assert isinstance(sdk.open_sink("udp://127.0.0.1:5000"), StreamSink)

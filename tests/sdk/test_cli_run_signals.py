"""`deblur run` under SIGTERM/SIGHUP (docker stop, systemd, Kubernetes) stops as Ctrl-C does: the output
video is flushed and plays, the statistics are printed, the exit status is 128 + the signal (issue 13,
finding 1); and a stream that is not there yet is retried, then reported in one line (finding 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from stream_helpers import MjpegServer, count_video_frames, finish_process
from tests_paths import REPO

from benchmarks.rtsp_server import free_port


def _deblur(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "sdk.cli", "run", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_termination_signal_leaves_a_playable_video_and_the_stats(onnx_models, tmp_path, sig):
    server = MjpegServer(interval=0.02)           # a live camera: the run only ends when told to
    out = tmp_path / "out.mp4"
    proc = _deblur(server.url, "-o", str(out), "--model", str(onnx_models["affine"]), "--device", "cpu")
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 0) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)                            # some frames into the file
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
    finally:
        stdout, stderr = finish_process(proc)
        server.close()
    assert proc.returncode == 128 + sig, stderr
    assert f"stopped by {sig.name}" in stderr and "Traceback" not in stderr
    assert "written" in stderr and "p50" in stderr             # the statistics table
    pyav, opencv = count_video_frames(out)
    assert pyav == opencv > 0
    assert f"wrote {pyav} frame(s) to {out}" in stdout


def test_an_absent_stream_is_retried_then_reported_in_one_line():
    url = f"rtsp://127.0.0.1:{free_port()}/nothing"
    t0 = time.monotonic()
    proc = _deblur(url, "-o", "unused.mp4", "--connect-timeout", "1.5")
    _, stderr = finish_process(proc)
    took = time.monotonic() - t0
    assert proc.returncode == 2 and "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("deblur run:")]
    assert len(lines) == 1 and "connect_timeout" in lines[0] and "attempts" in lines[0], stderr
    assert took >= 1.5


def test_connect_timeout_zero_fails_at_once():
    proc = _deblur("/dev/video77", "-o", "unused.mp4", "--connect-timeout", "0")
    _, stderr = finish_process(proc)
    assert proc.returncode == 2 and "Traceback" not in stderr
    assert "deblur run: error: could not open '/dev/video77'" in stderr

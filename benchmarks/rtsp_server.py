"""A real RTSP server on 127.0.0.1 for tests and the soak run: GStreamer's RTSP server (gst-rtsp-server).

Run as a script by the system Python, which has PyGObject (``apt-get install python3-gi
gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good``); :class:`RtspServer` starts and stops that
process from any Python. The stream is MJPEG over RTP (plugins-good only): a moving test pattern, or a
folder of numbered PNG frames (``00000.png``, ...) played in a loop at ``fps``.

Example::

    >>> with RtspServer(port=8554, fps=10) as server:      # started; stopped (killed) on exit
    ...     frames = sdk.VideoSource(server.url)
    ...     server.kill(); server.start()                   # a crash and a restart, mid-stream
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = os.environ.get("DEBLUR_GI_PYTHON", "/usr/bin/python3")
MOUNT = "/stream"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on TCP ``port`` without connecting to it (a listen-mode ffmpeg takes
    exactly one connection, so a probe connection would use it up)."""
    wanted = f":{port:04X} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            # Columns: sl local_address rem_address st ...; state 0A is LISTEN.
            if any(wanted in f"{cols[1]} " and cols[3] == "0A" for cols in (line.split() for line in lines)):
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


def unavailable_reason() -> str | None:
    """Why no RTSP server can run here (for ``pytest.skip``), or None when it can."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} not found (set DEBLUR_GI_PYTHON to a Python with PyGObject)"
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "assert all(Gst.ElementFactory.find(e) for e in ('jpegenc', 'rtpjpegpay', 'videotestsrc', 'pngdec'))")
    done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    if done.returncode:
        return ("GStreamer RTSP server unavailable (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                f"gstreamer1.0-plugins-good): {done.stderr.strip().splitlines()[-1:]}")
    return None


class RtspServer:
    """The server process: :meth:`start`, :meth:`kill` (a crash: SIGKILL), :meth:`stop`; a context manager."""

    def __init__(self, *, port: int | None = None, fps: float = 10.0, size: tuple[int, int] = (96, 128),
                 frames: str | os.PathLike[str] | None = None) -> None:
        self.port = port or free_port()
        self.fps, self.size = fps, size
        self.frames = Path(frames) if frames is not None else None
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{MOUNT}"

    def start(self, timeout: float = 20.0) -> RtspServer:
        """Start the server and wait until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the RTSP server is already running")
        cmd = [SYSTEM_PYTHON, str(Path(__file__).resolve()), "--port", str(self.port), "--fps", str(self.fps),
               "--size", f"{self.size[0]}x{self.size[1]}"]
        if self.frames is not None:
            cmd += ["--frames", str(self.frames)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"the RTSP server exited with {self.process.returncode}: {err[-2000:]}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the RTSP server did not listen on port {self.port} within {timeout} s")

    def kill(self) -> None:
        """Kill the server as a crash or a power cut would (SIGKILL, no goodbye to clients)."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pipeline(fps: float, size: tuple[int, int], frames: Path | None) -> str:
    h, w = size
    rate = f"{int(round(fps * 1000))}/1000"
    if frames is None:
        src = f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate={rate}"
    else:
        # multifilesrc loops the numbered PNGs forever; the caps give each frame its timestamp.
        src = (f"multifilesrc location={frames}/%05d.png index=0 loop=true caps=image/png,framerate={rate} "
               f"! pngdec ! videoconvert ! videoscale ! video/x-raw,width={w},height={h}")
    return f"( {src} ! videoconvert ! video/x-raw,format=I420 ! jpegenc quality=90 ! rtpjpegpay name=pay0 pt=26 )"


def _serve(port: int, fps: float, size: tuple[int, int], frames: Path | None) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(_pipeline(fps, size, frames))
    factory.set_shared(True)
    server.get_mount_points().add_factory(MOUNT, factory)
    if server.attach(None) == 0:
        sys.exit(f"could not listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--size", default="96x128", help="HxW")
    parser.add_argument("--frames", type=Path, help="folder of 00000.png, 00001.png, ... (default: a test pattern)")
    args = parser.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    _serve(args.port, args.fps, (h, w), args.frames)


if __name__ == "__main__":
    main()

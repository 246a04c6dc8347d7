"""``deblur run INPUT``: deblur an image, a video, a folder, a camera or a network stream.

Files show a progress bar; live streams a statistics line (fps, drops, latency) once a second.
Ctrl-C stops cleanly: queued frames are finished and the output file is closed playable. SIGTERM and
SIGHUP (``docker stop``, systemd, Kubernetes) do the same, then exit with 128 + the signal number.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HELP = "deblur an image, video, image folder, camera or stream (-o OUT to save, --show to watch)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sdk.backends import BACKENDS

    parser.add_argument("input", help="image, video file, image folder or glob, camera index, /dev/videoN, csi://N, "
                                      "rtsp://..., http(s)://... MJPEG, or a GStreamer pipeline")
    parser.add_argument("-o", "--output", help="output video (.mp4/.mkv/.avi), image, folder, or a live stream "
                                               "(rtsp://, udp://); "
                                               "default for files: <input>_deblurred in the current folder")
    parser.add_argument("--model", help="a .engine, .onnx or .pt model, a bundled model's name (default, small), or a "
                                        "`deblur serve` server: grpc://host:8001/deblur or http://host:8000/deblur")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or tensorrt (ONNX Runtime's "
                                                          "TensorRT provider)")
    parser.add_argument("--tile", type=int, help="force tiles of this size (default: only when a frame is too large)")
    parser.add_argument("--show", action="store_true", help="show the result in a window (q or Esc stops)")
    parser.add_argument("--side-by-side", action="store_true", help="output input | deblurred next to each other")
    parser.add_argument("--skip-sharp", action="store_true", help="pass frames that are already sharp through untouched")
    parser.add_argument("--sharp-threshold", type=float, help="blur score above which a frame counts as sharp (default: sdk.blur.DEFAULT_SHARP_THRESHOLD, 0.205; the run summary prints the scores seen)")
    parser.add_argument("--drop", choices=("oldest", "newest", "block"),
                        help="what a live stream does when inference falls behind (default: oldest)")
    parser.add_argument("--queue-size", type=int, default=2)
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--fps", type=float, help="frame rate for image folders and the output video")
    parser.add_argument("--connect-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="keep retrying a camera or stream that is not there yet this long (default 30; 0: fail "
                             "at once)")


def default_output(source: Any) -> Path | None:
    """``clip.mp4`` -> ``clip_deblurred.mp4``, ``frames/`` -> ``frames_deblurred/``; None for live sources."""
    if source.is_live:
        return None
    if source.kind in ("file", "image"):
        path = Path(str(source.uri))
        return Path(f"{path.stem}_deblurred{path.suffix if source.kind == 'image' else '.mp4'}")
    name = Path(str(source.uri).split("*")[0].rstrip("/")).name or "frames"
    return Path(f"{name}_deblurred")


def side_by_side_hook(frame: Any, result: Any) -> Any:
    import numpy as np

    return np.hstack([frame.image, result])


class _Progress:
    """tqdm when installed (it is not in the runtime-only install), else a plain status line."""

    def __init__(self, total: int | None, live: bool) -> None:
        self.total, self.live = total, live
        self._bar: Any = None
        self._last = 0.0
        if total and not live:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr)
            except ImportError:
                pass

    def update(self, snapshot: Any, *, final: bool = False) -> None:
        if self._bar is not None:
            self._bar.update(snapshot.counts["written"] - self._bar.n)
            self._bar.set_postfix_str(f"{snapshot.recent_fps_out:.1f} fps, dropped {snapshot.counts['dropped']}")
            return
        now = time.monotonic()
        if not final and now - self._last < 1.0:
            return
        self._last = now
        done = f"{snapshot.counts['written']}/{self.total} | " if self.total and not self.live else ""
        print(f"\r{done}{snapshot.line()}\033[K", end="" if not final else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run(args: argparse.Namespace) -> int:
    if args.connect_timeout < 0:
        raise ValueError(f"--connect-timeout must be >= 0 seconds, got {args.connect_timeout}")
    with _stop_on_signals() as stop:
        return _run(args, stop)


def _run(args: argparse.Namespace, stop: _SignalStop) -> int:
    import sdk
    from sdk.blur import DEFAULT_SHARP_THRESHOLD
    from sdk.stream import VideoSource, WindowSink, open_sink

    try:
        source = VideoSource(args.input, fps=args.fps, connect_timeout=args.connect_timeout)
    except ConnectionError as exc:
        raise RuntimeError(str(exc)) from None     # the CLI prints one line; a missing camera is not a bug
    deblur: Any = None
    sinks: list[Any] = []
    runner: Any = None
    try:   # the runner never closes a source it was handed: a live source's thread would keep the camera open
        output: Any = args.output if args.output and "://" in args.output else (   # a URL stays a URL
            Path(args.output) if args.output else (None if args.show else default_output(source)))
        if output is None and not args.show:
            raise ValueError("a live stream needs somewhere to go: -o OUT (video or folder) or --show")
        deblur = _open_model(args)
        sinks += [WindowSink()] if args.show else []
        if output is not None:
            sinks.append(open_sink(output, fps=args.fps or source.fps, single_image=source.kind == "image"))
        print(f"deblur run: {args.input} -> {output or 'window'} with {deblur.info.model} "
              f"({deblur.info.backend}, {deblur.info.device}, {deblur.info.precision})", file=sys.stderr)
        threshold = DEFAULT_SHARP_THRESHOLD if args.sharp_threshold is None else args.sharp_threshold
        runner = sdk.run(source, deblur, sinks=sinks, on_frame=side_by_side_hook if args.side_by_side else None,
                         queue_size=args.queue_size, drop=args.drop, skip_sharp=args.skip_sharp,
                         sharp_threshold=threshold, max_frames=args.max_frames, block=False)
        stop.runner = runner
        interrupted = _follow(runner, source, args.max_frames)
    finally:
        source.close()
        if runner is None:          # a runner closes its sinks itself; one that never started cannot
            for sink in sinks:
                sink.close()
        if deblur is not None and not (runner is not None and runner.running):
            deblur.close()          # never under a stage still running after a Ctrl-C that timed out
    if output is not None:
        print(f"wrote {runner.snapshot().counts['written']} frame(s) to {output}")
    if stop.signum is not None:
        print(f"stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum
    return 130 if interrupted else 0


class _SignalStop:
    """What a termination signal asks for: stop the running stream (its sinks then close playable)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.runner: Any = None

    def __call__(self, signum: int, _frame: Any) -> None:
        first = self.signum is None
        self.signum = signum
        if self.runner is None:
            # Still connecting or loading the model: nothing to flush, so unwind like Ctrl-C.
            raise KeyboardInterrupt
        if first:
            self.runner.stop()


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_SignalStop]:
    """SIGTERM/SIGHUP stop the stream as Ctrl-C does, instead of killing the process mid-file."""
    stop = _SignalStop()
    if threading.current_thread() is not threading.main_thread():   # handlers can only be set there
        yield stop
        return
    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {signum: signal.signal(signum, stop) for signum in wanted}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _open_model(args: argparse.Namespace) -> Any:
    """A Deblurrer in this process, or a RemoteDeblurrer for a grpc:// or http:// model."""
    import sdk
    from sdk.serving.protocol import is_remote_model

    if not is_remote_model(args.model):
        return sdk.Deblurrer(args.model, backend=args.backend, device=args.device, tile=args.tile)
    if args.backend != "auto" or args.device != "auto" or args.tile is not None:
        raise ValueError("--backend, --device and --tile are chosen on the server (`deblur serve`), "
                         f"not with a remote model such as {args.model}")
    return sdk.RemoteDeblurrer(args.model)


def _follow(runner: Any, source: Any, max_frames: int | None) -> bool:
    """Show progress until the stream ends; True when Ctrl-C stopped it."""
    progress = _Progress(min(source.frame_count, max_frames or source.frame_count) or None, source.is_live)
    interrupted = False
    try:
        while not runner.join(timeout=0.25):
            progress.update(runner.snapshot())
    except KeyboardInterrupt:
        interrupted = True
        runner.stop()
        runner.join(timeout=30.0)
    finally:
        snapshot = runner.snapshot()
        progress.update(snapshot, final=True)
        progress.close()
    print(snapshot.table(), file=sys.stderr)
    return interrupted

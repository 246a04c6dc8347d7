"""``sdk.run``: capture, inference and output in their own threads, joined by bounded queues.

::

    source ──capture thread: read, pre-process──► [queue_size, drop policy] ──inference thread──►
           [queue_size, blocks] ──writer thread: post-process, on_frame hook, every sink──►

With a :class:`sdk.Deblurrer` the three threads overlap pre-processing of the next frame and
post-processing of the previous one with inference, so the stream runs at the inference rate.

- Live sources drop stale frames by default (``drop="oldest"``: the newest frame wins); files and
  folders never drop (the capture thread waits for room).
- ``on_frame(frame, result)`` runs in the writer thread; it may return a replacement image, or
  ``None`` to drop the frame.
- ``skip_sharp=True`` passes frames whose blur score (:func:`sdk.blur_score`, edge steepness) is
  above ``sharp_threshold`` through untouched, and counts them; the summary shows the scores seen.
- :meth:`StreamRunner.stop` (or Ctrl-C while :func:`run` blocks) stops capturing; frames already
  queued are finished and written, then every sink is flushed and closed.

Example::

    >>> runner = sdk.run("clip.mp4", sdk.Deblurrer("model.onnx"), sinks=[sdk.VideoFileSink("out.mp4")])
    >>> print(runner.stats.table())
    >>> runner = sdk.run(0, deblur, sinks=[sdk.WindowSink()], block=False)   # a camera, in the background
    >>> ...; runner.stop(); runner.join()
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..blur import DEFAULT_SHARP_THRESHOLD, blur_score
from .queues import POLICIES, DropQueue
from .sinks import NullSink, Sink
from .sources import Frame, SourceLike, as_source
from .stats import StatsSnapshot, StreamStats

FrameHook = Callable[[Frame, np.ndarray], "np.ndarray | None"]
_POLL = 0.05   # seconds between stop checks while the capture thread waits for a frame (queues wake on close/abort)


@dataclass
class _Work:
    """One frame on its way through the threads: a prepared job (Deblurrer) or a finished result."""

    frame: Frame
    job: Any = None
    result: np.ndarray | None = None


class StreamRunner:
    """One running stream; see :func:`run`."""

    def __init__(self, source: SourceLike, deblurrer: Any, *, sinks: Sequence[Sink] = (),
                 on_frame: FrameHook | None = None, queue_size: int = 2, drop: str | None = None,
                 skip_sharp: bool = False, sharp_threshold: float = DEFAULT_SHARP_THRESHOLD,
                 max_frames: int | None = None) -> None:
        if deblurrer is None or not callable(deblurrer):
            raise TypeError("sdk.run needs a Deblurrer (or any callable frame -> frame) to process frames")
        if getattr(deblurrer, "color", "bgr") != "bgr":
            raise ValueError("sources yield BGR frames (OpenCV order): use a Deblurrer with color='bgr' in sdk.run")
        if drop is not None and drop not in POLICIES:
            raise ValueError(f"drop must be one of {POLICIES}, got {drop!r}")
        # Every argument is checked before the source opens: a refused call must not leave a camera open.
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an int >= 1, got {queue_size!r}")
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                       or max_frames < 1):
            raise ValueError(f"max_frames must be None or an int >= 1, got {max_frames!r}")
        if on_frame is not None and not callable(on_frame):
            raise TypeError(f"on_frame must be callable (frame, result) -> image or None, got {on_frame!r}")
        sinks = list(sinks)
        for sink in sinks:
            if not (callable(getattr(sink, "write", None)) and callable(getattr(sink, "close", None))):
                raise TypeError(f"every sink needs write(image, frame) and close(), got {sink!r}")
        try:
            sharp_threshold = float(sharp_threshold)
        except (TypeError, ValueError):
            raise ValueError(f"sharp_threshold must be a number, got {sharp_threshold!r}") from None
        self.deblurrer = deblurrer
        self.sinks: list[Sink] = sinks or [NullSink()]
        self.on_frame = on_frame
        self.skip_sharp, self.sharp_threshold = skip_sharp, sharp_threshold
        self.max_frames = max_frames
        self.stats = StreamStats()
        self.interrupted = False
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._error_lock = threading.Lock()
        # A Deblurrer splits into prepare/infer/finish, run in the capture/inference/writer threads.
        self._staged = all(hasattr(deblurrer, name) for name in ("prepare", "infer", "finish"))
        self._threads = [threading.Thread(target=self._guard(f), name=f"sdk.run-{n}", daemon=True)
                         for n, f in (("capture", self._capture), ("infer", self._infer), ("write", self._write))]
        self._alive = len(self._threads)
        self._started = False
        self.source, self._owns_source = as_source(source)
        try:
            if self.source.is_live:
                self.drop = drop or "oldest"
            else:
                if drop not in (None, "block"):
                    warnings.warn(f"{self.source!r} is not live: its frames are never dropped "
                                  f"(drop={drop!r} ignored)", stacklevel=3)
                self.drop = "block"
            self._in: DropQueue[_Work] = DropQueue(queue_size, self.drop, on_drop=self._release)
            self._out: DropQueue[_Work] = DropQueue(queue_size, "block")
        except BaseException:
            if self._owns_source:    # only the capture thread closes it later, and that never starts now
                self.source.close()
            raise

    # ------------------------------------------------------------------ control
    def start(self) -> StreamRunner:
        if not self._started:
            self._started = True
            for t in self._threads:
                t.start()
        return self

    def stop(self) -> None:
        """Stop capturing; queued frames are finished, sinks flushed. Returns at once; :meth:`join` waits."""
        self._stop.set()

    @property
    def queue_peaks(self) -> tuple[int, int]:
        """The most frames the capture->inference and inference->writer queues ever held (<= queue_size)."""
        return self._in.high_water, self._out.high_water

    @property
    def running(self) -> bool:
        return self._started and not self._done.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for the stream to finish; True when it has. Re-raises a stage's error."""
        finished = self._done.wait(timeout)
        if finished:
            for t in self._threads:
                t.join(timeout=1.0)
            self._raise_error()
        return finished

    def wait(self) -> StreamRunner:
        """Block until the stream ends; Ctrl-C stops it cleanly (``interrupted`` is then True)."""
        try:
            while not self._done.wait(0.1):   # short waits: the main thread must see KeyboardInterrupt
                pass
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop()
            self._done.wait(30.0)
        self.join(timeout=5.0)
        return self

    def snapshot(self) -> StatsSnapshot:
        self._sync_counters()
        return self.stats.snapshot()

    # ------------------------------------------------------------------ threads
    def _guard(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:   # noqa: BLE001 — recorded and re-raised by join() in the caller's thread
                with self._error_lock:
                    if self.error is None:
                        self.error = exc
                self._stop.set()
                self._in.abort()
                self._out.abort()
            finally:
                with self._error_lock:
                    self._alive -= 1
                    last = self._alive == 0
                if last:   # done only once every stage has exited, so join() sees any error
                    self._done.set()
        return run

    def _release(self, work: _Work) -> None:
        # A dropped frame's buffers go back to the Deblurrer's pool instead of to the garbage collector.
        if work.job is not None and hasattr(self.deblurrer, "release"):
            self.deblurrer.release(work.job)

    def _sync_counters(self) -> None:
        self.stats.set("dropped", self._in.dropped + self.source.dropped)
        self.stats.set("reconnects", self.source.reconnects)

    def _capture(self) -> None:
        captured = 0
        try:
            while not self._stop.is_set() and (self.max_frames is None or captured < self.max_frames):
                frame = self.source.read(timeout=_POLL)
                if frame is None:
                    if self.source.ended:
                        break
                    continue
                captured += 1
                self.stats.record("capture", frame.capture_time)
                self.stats.count("captured")
                work = _Work(frame)
                score = blur_score(frame.image) if self.skip_sharp else None
                if score is not None:
                    self.stats.record_blur(score)
                if score is not None and score > self.sharp_threshold:
                    work.result = frame.image
                    self.stats.count("skipped_sharp")
                elif self._staged:
                    # Pre-processing here overlaps it with inference of the previous frame.
                    work.job = self.deblurrer.prepare(frame.image)
                    self.stats.record("pre", work.job.timings["pre"])
                self._in.put(work)
        finally:
            self._in.close()
            if self._owns_source:
                self.source.close()
            if self.source.error is not None and not self._stop.is_set():
                warnings.warn(f"{self.source!r} ended: {self.source.error}", stacklevel=1)

    def _infer(self) -> None:
        try:
            for work in self._in:
                if work.job is not None:
                    self.deblurrer.infer(work.job)
                    self.stats.record("infer", work.job.timings["infer"])
                elif work.result is None:
                    t0 = time.perf_counter()
                    work.result = self.deblurrer(work.frame.image)
                    self.stats.record("infer", time.perf_counter() - t0)
                self.stats.count("processed")
                self._out.put(work)
        finally:
            self._out.close()

    def _write(self) -> None:
        try:
            for work in self._out:
                frame = work.frame
                if work.job is not None:
                    result = self.deblurrer.finish(work.job)    # post-processing overlaps the next inference
                    self.stats.record("post", work.job.timings["post"])
                else:
                    assert work.result is not None, "the inference thread hands on a result or a job"
                    result = work.result
                if self.on_frame is not None:
                    replaced = self.on_frame(frame, result)
                    if replaced is None:
                        self.stats.count("dropped_by_hook")
                        continue
                    result = replaced
                t0 = time.perf_counter()
                for sink in self.sinks:
                    sink.write(result, frame)
                now = time.perf_counter()
                self.stats.record("write", now - t0)
                self.stats.record("latency", now - frame.captured_at)
                self.stats.count("written")
                if any(getattr(s, "stop_requested", False) for s in self.sinks):
                    self.stop()
        finally:
            try:
                self._close_sinks()
            finally:
                self._sync_counters()
                self.stats.finish()

    def _close_sinks(self) -> None:
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except BaseException as exc:   # noqa: BLE001 — every sink gets its close(); the first error wins
                first = first or exc
        if first is not None:
            raise first

    def _raise_error(self) -> None:
        with self._error_lock:
            error, self.error = self.error, None
        if error is not None:
            raise error


def run(source: SourceLike, deblurrer: Any, *, sinks: Sequence[Sink] = (), on_frame: FrameHook | None = None,
        queue_size: int = 2, drop: str | None = None, skip_sharp: bool = False,
        sharp_threshold: float = DEFAULT_SHARP_THRESHOLD, max_frames: int | None = None,
        block: bool = True) -> StreamRunner:
    """Run ``deblurrer`` over ``source`` into ``sinks``; see the module docstring.

    Args:
        source: a :class:`VideoSource` or anything it accepts (camera index, URI, path, glob).
        deblurrer: a :class:`sdk.Deblurrer` (its pre/infer/post timings feed the statistics) or any
            callable ``image -> image``.
        sinks: where results go (default: nowhere).
        on_frame: ``on_frame(frame, result)`` -> replacement image, or ``None`` to drop the frame.
        queue_size: frames each queue holds; ``drop``: "oldest" | "newest" | "block" (default
            "oldest" for live sources; files always "block").
        skip_sharp, sharp_threshold: pass already-sharp frames through untouched.
        max_frames: stop after this many captured frames.
        block: wait for the end (Ctrl-C stops cleanly) and re-raise any stage's error; with
            ``block=False`` the runner is returned running: call ``stop()`` and ``join()``.

    Returns:
        The :class:`StreamRunner`; ``runner.snapshot()`` has the statistics.
    """
    runner = StreamRunner(source, deblurrer, sinks=sinks, on_frame=on_frame, queue_size=queue_size, drop=drop,
                          skip_sharp=skip_sharp, sharp_threshold=sharp_threshold, max_frames=max_frames)
    runner.start()
    if block:
        runner.wait()
    return runner

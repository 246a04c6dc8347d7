"""Timing statistics: clocks that read only finished work, and percentile summaries of the samples.

A GPU launch returns before the work is done, so a wall clock read right after it measures the
launch, not the kernel. :class:`CudaEventClock` records CUDA events on the stream and waits for the
end event; :class:`HostClock` synchronises (when given a ``sync`` callable) before both readings.

Example::

    >>> clock = HostClock()
    >>> samples = time_calls(lambda: sum(range(10_000)), warmup=2, iters=20, clock=clock)
    >>> stats = summarize(samples, batch=1)
    >>> stats.p50_ms <= stats.p99_ms
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

PERCENTILES = (50, 90, 99)


class Clock(Protocol):
    """Measures one call: ``start()`` before it, ``stop()`` after it returns the elapsed milliseconds."""

    kind: str

    def start(self) -> None: ...

    def stop(self) -> float: ...


class HostClock:
    """``time.perf_counter`` around the call; ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each reading.

    Without ``sync`` this is only right for work that is finished when the call returns (CPU code,
    ONNX Runtime's ``run``, which synchronises its execution providers before returning).
    """

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.sync = sync
        self.kind = "perf_counter" + (" after device synchronise" if sync is not None else "")
        self._t0 = 0.0

    def start(self) -> None:
        if self.sync is not None:
            self.sync()
        self._t0 = time.perf_counter()

    def stop(self) -> float:
        if self.sync is not None:
            self.sync()
        return (time.perf_counter() - self._t0) * 1e3


class CudaEventClock:
    """CUDA events recorded on the current stream: device time of the work enqueued between them."""

    kind = "cuda events"

    def __init__(self, torch_module: Any = None) -> None:
        if torch_module is None:
            import torch as torch_module
        self._torch = torch_module
        self._begin = torch_module.cuda.Event(enable_timing=True)
        self._end = torch_module.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._begin.record()

    def stop(self) -> float:
        self._end.record()
        self._end.synchronize()
        return float(self._begin.elapsed_time(self._end))


def time_calls(fn: Callable[[], object], *, warmup: int, iters: int, clock: Clock,
               max_seconds: float | None = None) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``iters`` times timed; the samples in milliseconds.

    ``max_seconds`` bounds each phase's wall time (like trtexec's ``--duration``): warm-up and timing
    each stop early once it is spent, after at least one timed call, so a slow backend at a large
    size returns fewer samples instead of running for hours. ``len(result)`` says how many.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    deadline = math.inf if max_seconds is None else time.perf_counter() + max_seconds
    for _ in range(warmup):
        fn()
        if time.perf_counter() > deadline:
            break
    deadline = math.inf if max_seconds is None else time.perf_counter() + max_seconds
    samples = []
    for _ in range(iters):
        clock.start()
        fn()
        samples.append(clock.stop())
        if time.perf_counter() > deadline:
            break
    return samples


def time_interleaved(calls: Mapping[str, Callable[[], object]], *, rounds: int, warmup: int = 1,
                     clock: Clock | None = None) -> dict[str, list[float]]:
    """Each of ``calls`` once per round, in turn, ``rounds`` times after ``warmup`` untimed rounds: the
    samples in milliseconds per name. Load on a shared machine then hits every call alike, so their
    ratios mean something even where the absolute times do not."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds must be >= 1 and warmup >= 0, got {rounds}, {warmup}")
    clock = clock or HostClock()
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            clock.start()
            fn()
            samples[name].append(clock.stop())
    return samples


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one series of per-call latencies (milliseconds); ``fps`` counts frames (batch x calls)."""

    n: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    fps: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(samples_ms: Sequence[float], *, batch: int = 1) -> LatencyStats:
    """Mean, spread and percentiles (linear interpolation, numpy's default) of ``samples_ms``.

    ``fps`` is ``batch`` frames per mean call time.

    Example::

        >>> summarize([1.0, 2.0, 3.0, 4.0], batch=2).p50_ms
        2.5
    """
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty 1-D sequence of latencies, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("latencies must be finite and non-negative")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    p50, p90, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
    mean = float(values.mean())
    return LatencyStats(n=int(values.size), mean_ms=mean, std_ms=float(values.std()), min_ms=float(values.min()),
                        p50_ms=p50, p90_ms=p90, p99_ms=p99, max_ms=float(values.max()),
                        fps=batch * 1e3 / mean if mean > 0 else math.inf)

"""Stream statistics: frame rates, counters and per-stage latency percentiles, safe to read while running.

Stages: ``capture`` (the source's read/decode), ``pre``, ``infer``, ``post`` (inside the Deblurrer),
``write`` (every sink), and ``latency`` (capture to written, end to end). Each keeps its last
``window`` samples, so memory stays bounded however long the stream runs.

Example::

    >>> stats = StreamStats()
    >>> stats.record("infer", 0.021); stats.count("written")
    >>> stats.snapshot().latency_ms["infer"]
    (21.0, 21.0)
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import numpy as np

STAGES = ("capture", "pre", "infer", "post", "write", "latency")
COUNTERS = ("captured", "processed", "written", "dropped", "skipped_sharp", "dropped_by_hook", "reconnects")


@dataclass(frozen=True)
class StatsSnapshot:
    """The statistics at one instant; ``latency_ms[stage] = (p50, p95)`` in milliseconds."""

    elapsed: float
    fps_in: float
    fps_out: float
    recent_fps_out: float
    counts: dict[str, int]
    latency_ms: dict[str, tuple[float, float]] = field(default_factory=dict)
    # (min, median, max) of the blur scores seen (``skip_sharp``), None when none were measured.
    blur_scores: tuple[float, float, float] | None = None

    def __getattr__(self, name: str) -> int:
        # snapshot.written, snapshot.dropped, ... read the counters.
        counts = self.__dict__.get("counts", {})
        if name in counts:
            return counts[name]
        raise AttributeError(name)

    def line(self) -> str:
        """One status line for a terminal."""
        c = self.counts
        parts = [f"in {self.fps_in:.1f} fps", f"out {self.recent_fps_out:.1f} fps", f"frames {c['written']}",
                 f"dropped {c['dropped']}"]
        if c["skipped_sharp"]:
            parts.append(f"sharp {c['skipped_sharp']}")
        if c["reconnects"]:
            parts.append(f"reconnects {c['reconnects']}")
        for stage in ("infer", "latency"):
            if stage in self.latency_ms:
                p50, p95 = self.latency_ms[stage]
                parts.append(f"{stage} p50 {p50:.1f} p95 {p95:.1f} ms")
        return " | ".join(parts)

    def table(self) -> str:
        """A multi-line report: counters, rates and every stage's p50/p95."""
        lines = [f"elapsed {self.elapsed:.1f} s, input {self.fps_in:.2f} fps, output {self.fps_out:.2f} fps",
                 "  ".join(f"{k} {v}" for k, v in self.counts.items())]
        for stage, (p50, p95) in self.latency_ms.items():
            lines.append(f"  {stage:<8} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms")
        if self.blur_scores is not None:
            lo, mid, hi = self.blur_scores
            lines.append(f"  blur scores seen: min {lo:.3f}  median {mid:.3f}  max {hi:.3f} (higher is sharper)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {"elapsed_s": self.elapsed, "fps_in": self.fps_in, "fps_out": self.fps_out, **self.counts,
                "latency_ms": {k: {"p50": a, "p95": b} for k, (a, b) in self.latency_ms.items()},
                "blur_scores": list(self.blur_scores) if self.blur_scores is not None else None}


class StreamStats:
    """Thread-safe counters and bounded latency windows."""

    def __init__(self, window: int = 1000) -> None:
        self._lock = threading.Lock()
        self._samples: dict[str, collections.deque[float]] = {s: collections.deque(maxlen=window) for s in STAGES}
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._recent_out: collections.deque[float] = collections.deque(maxlen=120)
        self._blur: collections.deque[float] = collections.deque(maxlen=window)
        self._start = time.perf_counter()
        self._end: float | None = None

    def record(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._samples[stage].append(seconds)

    def record_blur(self, score: float) -> None:
        """A frame's blur score (the last ``window`` are kept for the summary's min/median/max)."""
        with self._lock:
            self._blur.append(score)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n
            if name == "written":
                self._recent_out.append(time.perf_counter())

    def set(self, name: str, value: int) -> None:
        with self._lock:
            self._counts[name] = value

    def finish(self) -> None:
        with self._lock:
            self._end = self._end or time.perf_counter()

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            now = self._end or time.perf_counter()
            elapsed = max(now - self._start, 1e-9)
            counts = dict(self._counts)
            latency = {s: (float(np.percentile(v, 50)) * 1e3, float(np.percentile(v, 95)) * 1e3)
                       for s, v in self._samples.items() if v}
            blur = (float(min(self._blur)), float(np.median(self._blur)), float(max(self._blur))) if self._blur \
                else None
            recent = [t for t in self._recent_out if t > now - 2.0]
            recent_fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] \
                else counts["written"] / elapsed
        return StatsSnapshot(elapsed, counts["captured"] / elapsed, counts["written"] / elapsed, recent_fps,
                             counts, latency, blur)

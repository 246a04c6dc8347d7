"""Timing statistics: exact percentiles on given samples, and one timed check on a fake backend that sleeps."""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.stats import CudaEventClock, HostClock, summarize, time_calls, time_interleaved


def test_summarize_exact_on_known_samples():
    stats = summarize([float(v) for v in range(1, 101)], batch=4)
    assert stats.n == 100
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.min_ms == 1.0 and stats.max_ms == 100.0
    assert stats.std_ms == pytest.approx(np.std(np.arange(1, 101)))
    assert stats.fps == pytest.approx(4 * 1000 / 50.5)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1.0, 2.0]])
def test_summarize_rejects_bad_samples(bad):
    with pytest.raises(ValueError, match="latenc"):
        summarize(bad)


class SleepingBackend:
    """A fake backend whose calls take known times: 18 calls of 3 ms, then 2 of 15 ms, repeating."""

    def __init__(self, warmup: int) -> None:
        self.calls = 0
        self.warmup = warmup

    def __call__(self) -> None:
        timed_index = self.calls - self.warmup
        self.calls += 1
        time.sleep(0.015 if timed_index % 20 >= 18 else 0.003)


def test_percentiles_of_a_fake_backend_with_known_sleep_times():
    backend = SleepingBackend(warmup=2)
    samples = time_calls(backend, warmup=2, iters=20, clock=HostClock())
    assert backend.calls == 22 and len(samples) == 20
    stats = summarize(samples)
    # sleep() never returns early; on a busy CI machine it may return a few ms late.
    assert 3.0 <= stats.p50_ms <= 3.0 + 4.0
    assert 15.0 <= stats.p99_ms <= 15.0 + 6.0
    assert stats.min_ms >= 3.0


def test_host_clock_synchronises_before_each_reading():
    synced = []
    clock = HostClock(sync=lambda: synced.append(1))
    samples = time_calls(lambda: None, warmup=1, iters=5, clock=clock)
    assert len(samples) == 5 and len(synced) == 10
    assert "synchronise" in clock.kind


def test_max_seconds_stops_a_slow_series_early():
    # Each call sleeps 50 ms, so a 0.12 s budget is spent after at most 3 calls.
    samples = time_calls(lambda: time.sleep(0.05), warmup=0, iters=100, clock=HostClock(), max_seconds=0.12)
    assert 1 <= len(samples) <= 3


@pytest.mark.parametrize("kwargs", [dict(warmup=-1, iters=1), dict(warmup=0, iters=0),
                                    dict(warmup=0, iters=1, max_seconds=0)])
def test_time_calls_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        time_calls(lambda: None, clock=HostClock(), **kwargs)


@pytest.mark.gpu
def test_cuda_event_clock_times_device_work():
    import torch

    a = torch.randn(4096, 4096, device="cuda")
    clock = CudaEventClock()
    samples = time_calls(lambda: a @ a, warmup=2, iters=5, clock=clock)
    # 2*4096^3 FLOP at well under 1 PFLOP/s takes more than 0.1 ms on any GPU.
    assert all(s > 0.1 for s in samples)


def test_time_interleaved_alternates_the_calls_and_times_each_one():
    order: list[str] = []

    def call(name: str, seconds: float):
        def run() -> None:
            order.append(name)
            time.sleep(seconds)
        return run

    samples = time_interleaved({"slow": call("slow", 0.02), "fast": call("fast", 0.0)}, rounds=3, warmup=1)
    assert order == ["slow", "fast"] * 4                       # 1 warm-up round, then 3 timed rounds
    assert [len(s) for s in samples.values()] == [3, 3]
    assert min(samples["slow"]) >= 19.0 and max(samples["fast"]) < 19.0   # milliseconds
    with pytest.raises(ValueError, match="rounds"):
        time_interleaved({"x": call("x", 0)}, rounds=0)

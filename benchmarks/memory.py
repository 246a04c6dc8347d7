"""Peak memory of one benchmark run: host resident set and GPU memory.

Host: Linux keeps a resident-set high-water mark per process (``VmHWM``); writing ``5`` to
``/proc/self/clear_refs`` resets it, so each run gets its own peak instead of the process lifetime's.
GPU: NVML's used memory (any allocator: PyTorch, ONNX Runtime, TensorRT) through ``pynvml`` or
cuda-python's ``cuda.bindings.nvml``; without NVML, PyTorch's own ``max_memory_allocated``.

Example::

    >>> host = HostPeak()
    >>> host.reset()
    >>> _ = bytearray(50_000_000)
    >>> host.peak_mb() >= 50
    True
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class HostPeak:
    """Resident-set peak since :meth:`reset` (``VmHWM``), or the process lifetime's where it cannot reset."""

    def __init__(self) -> None:
        self.resettable = True
        self.source = "VmHWM since reset"

    def reset(self) -> None:
        try:
            CLEAR_REFS.write_text("5")
        except OSError:
            self.resettable = False
            self.source = "process lifetime peak (ru_maxrss; /proc/self/clear_refs not writable)"

    def peak_mb(self) -> float:
        kb = _status_kb("VmHWM") if self.resettable else None
        if kb is None:
            # ru_maxrss is kB on Linux, bytes on macOS.
            raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            kb = raw // 1024 if sys.platform == "darwin" else raw
            self.source = "process lifetime peak (ru_maxrss)"
        return kb / 1024.0


class NvmlDevice:
    """The two NVML calls a benchmark needs, over either Python binding."""

    def __init__(self, index: int) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._used = lambda: int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
            self._clock = lambda kind, peak: int((pynvml.nvmlDeviceGetMaxClockInfo if peak else
                                                  pynvml.nvmlDeviceGetClockInfo)(handle, kind))
            self._kinds = {"sm": pynvml.NVML_CLOCK_SM, "mem": pynvml.NVML_CLOCK_MEM}
            self.binding = "pynvml"
        except ImportError:
            from cuda.bindings import nvml

            nvml.init_v2()
            handle = nvml.device_get_handle_by_index_v2(index)
            self._used = lambda: int(nvml.device_get_memory_info_v2(handle).used)
            self._clock = lambda kind, peak: int((nvml.device_get_max_clock_info if peak else
                                                  nvml.device_get_clock_info)(handle, kind))
            self._kinds = {"sm": int(nvml.ClockType.CLOCK_SM), "mem": int(nvml.ClockType.CLOCK_MEM)}
            self.binding = "cuda.bindings.nvml"

    def used_mb(self) -> float:
        return self._used() / 2**20

    def clocks(self) -> dict[str, int]:
        out = {}
        for label, kind in self._kinds.items():
            out[f"gpu_{label}_mhz_now"] = self._clock(kind, False)
            out[f"gpu_{label}_mhz_max"] = self._clock(kind, True)
        return out


def open_nvml(index: int = 0) -> NvmlDevice | None:
    """NVML for GPU ``index``, or None where no binding or no driver library is present."""
    try:
        return NvmlDevice(index)
    except Exception:  # noqa: BLE001 - each binding raises its own types for "no driver"
        return None


class GpuPeak:
    """GPU memory of one backend: NVML's used memory after a run minus before the backend was created
    (allocators keep their pools, so that is its footprint), and PyTorch's ``max_memory_allocated``."""

    def __init__(self, index: int = 0, torch_module: Any = None) -> None:
        self.index = index
        self._torch = torch_module
        self._nvml = open_nvml(index)
        self._baseline = 0.0

    def mark_baseline(self) -> None:
        """Call before the backend allocates anything."""
        if self._nvml is not None:
            self._baseline = self._nvml.used_mb()

    def reset_peak(self) -> None:
        """Call before each timed run."""
        if self._torch is not None:
            self._torch.cuda.synchronize(self.index)
            self._torch.cuda.reset_peak_memory_stats(self.index)

    def read(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {}
        if self._nvml is not None:
            out["gpu_nvml_used_delta_mb"] = round(self._nvml.used_mb() - self._baseline, 1)
            out["gpu_memory_source"] = f"NVML ({self._nvml.binding}) used minus before the backend started"
        if self._torch is not None:
            out["gpu_torch_max_allocated_mb"] = round(self._torch.cuda.max_memory_allocated(self.index) / 2**20, 1)
            out.setdefault("gpu_memory_source", "torch.cuda.max_memory_allocated (NVML unavailable)")
        return out

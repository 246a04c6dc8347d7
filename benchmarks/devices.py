"""The machine a benchmark runs on: which device it is, its peak rates, its clocks.

Peaks of GPUs and Jetson modules are data, copied from ``shared/research/perf-anchors.md`` §1.1
(FP16 *dense* tensor-core TFLOP/s, no 2:4 sparsity; the first, fp32-accumulate figure on GeForce).
A CPU's peak is derived, never looked up: cores x clock x FLOP per cycle from its SIMD flags
(:func:`cpu_peak`), and the result says it is derived.

Example::

    >>> info = detect_device()
    >>> info.slug, info.peak_tflops                       # e.g. ('cpu-amd-epyc-2c', 0.156)
    >>> PEAKS["orin-nx-16gb"].fp16_tflops
    15.0
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
CPUINFO = Path("/proc/cpuinfo")
CPUFREQ_MAX = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
CPUFREQ_GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
# Jetson GPU clocks (devfreq); the folder moved between JetPack 5 and 6.
JETSON_GPU_DEVFREQ = ("/sys/devices/platform/17000000.gpu/devfreq/*", "/sys/devices/platform/bus@0/17000000.gpu/devfreq/*",
                      "/sys/devices/gpu.0/devfreq/*", "/sys/devices/platform/gpu.0/devfreq/*")


@dataclass(frozen=True)
class DevicePeak:
    """Peak rates of one accelerator: FP16 dense tensor TFLOP/s and DRAM bandwidth."""

    key: str
    name: str
    fp16_tflops: float
    bandwidth_gbs: float
    basis: str
    gpu_ghz: float | None = None         # the GPU clock the peak is quoted at (Jetson: scaled to the real one)


# perf-anchors.md §1.1. "basis" keeps the table's own label ([source] / [derived] / [unverified]).
PEAKS: dict[str, DevicePeak] = {p.key: p for p in (
    DevicePeak("orin-nano-8gb", "Jetson Orin Nano 8GB (625 MHz)", 10.2, 68.0, "datasheet, FP16 derived", 0.625),
    DevicePeak("orin-nano-8gb-super", "Jetson Orin Nano 8GB Super (1.02 GHz)", 16.7, 102.0, "datasheet summary", 1.02),
    DevicePeak("orin-nx-16gb", "Jetson Orin NX 16GB (918 MHz)", 15.0, 102.4, "datasheet, FP16 derived", 0.918),
    DevicePeak("orin-nx-16gb-super", "Jetson Orin NX 16GB Super (~1.17 GHz)", 19.2, 102.4, "unverified", 1.173),
    DevicePeak("agx-orin-64gb", "Jetson AGX Orin 64GB (1.3 GHz)", 42.6, 204.8, "tech brief, FP16 derived", 1.3),
    DevicePeak("xavier-nx", "Jetson Xavier NX (1.1 GHz)", 6.8, 51.2, "datasheet, FP16 derived", 1.1),
    DevicePeak("rtx-3090", "NVIDIA RTX 3090 (fp32 accumulate)", 71.0, 936.0, "unverified"),
    DevicePeak("rtx-4090", "NVIDIA RTX 4090 (fp32 accumulate)", 165.2, 1008.0, "Ada whitepaper"),
    DevicePeak("a100-sxm-80gb", "NVIDIA A100 SXM4 80GB", 312.0, 2039.0, "unverified, standard figure"),
    DevicePeak("a100-40gb", "NVIDIA A100 40GB", 312.0, 1555.0, "unverified, standard figure"),
    DevicePeak("h100-sxm", "NVIDIA H100 SXM5 80GB", 989.4, 3350.0, "spec pages"),
    DevicePeak("h100-pcie", "NVIDIA H100 PCIe 80GB", 756.0, 2000.0, "unverified"),
    DevicePeak("h200-sxm", "NVIDIA H200 SXM 141GB", 989.4, 4800.0, "spec summaries"),
)}

# (pattern in the GPU's name, peak key): first match wins, so the specific names come first.
_GPU_NAMES: tuple[tuple[str, str], ...] = (
    ("H200", "h200-sxm"), ("H100 PCIe", "h100-pcie"), ("H100", "h100-sxm"),
    ("A100-SXM4-80GB", "a100-sxm-80gb"), ("A100 80GB", "a100-sxm-80gb"), ("A100", "a100-40gb"),
    ("RTX 4090", "rtx-4090"), ("RTX 3090", "rtx-3090"),
)
# (pattern in /proc/device-tree/model, peak key). The Super clocks are a power mode, not a model name:
# the table's base clocks apply unless the clocks recorded beside the result say otherwise.
_JETSON_MODELS: tuple[tuple[str, str], ...] = (
    ("Orin Nano", "orin-nano-8gb"), ("Orin NX", "orin-nx-16gb"), ("AGX Orin", "agx-orin-64gb"),
    ("Xavier NX", "xavier-nx"),
)

# FP32 FLOP per cycle per core: lanes x 2 (an FMA is two FLOPs) x FMA pipes. Two pipes is what
# Zen 2+, Skylake-SP Gold/Platinum and later big cores have; single-pipe AVX-512 parts are half this.
_SIMD_FP32_FLOP_PER_CYCLE = (
    ("avx512f", 16 * 2 * 2, "AVX-512: 16 fp32 lanes x FMA (2 FLOP) x 2 FMA pipes"),
    ("fma", 8 * 2 * 2, "AVX2+FMA: 8 fp32 lanes x FMA (2 FLOP) x 2 FMA pipes"),
    ("avx", 8 * 2, "AVX without FMA: 8 fp32 lanes x (1 add + 1 mul pipe)"),
    ("sse2", 4 * 2, "SSE2: 4 fp32 lanes x (1 add + 1 mul pipe)"),
    ("asimd", 4 * 2 * 2, "NEON: 4 fp32 lanes x FMA (2 FLOP) x 2 pipes"),
)


@dataclass(frozen=True)
class CpuPeak:
    """A CPU's derived FP32 peak: ``cores x ghz x flop_per_cycle``."""

    model: str
    cores: int
    ghz: float
    clock_source: str
    flop_per_cycle: int
    simd: str

    @property
    def tflops(self) -> float:
        return self.cores * self.ghz * self.flop_per_cycle / 1e3

    def describe(self) -> str:
        return (f"derived, not measured: {self.cores} cores x {self.ghz:.3f} GHz ({self.clock_source}) x "
                f"{self.flop_per_cycle} FP32 FLOP/cycle ({self.simd}) = {self.tflops * 1e3:.1f} GFLOP/s")


@dataclass(frozen=True)
class DeviceInfo:
    """What a results file records about the machine."""

    kind: str                          # "cpu", "gpu" or "jetson"
    name: str
    slug: str                          # results folder name
    peak_tflops: float | None          # FP16 dense tensor peak (GPU/Jetson) or derived FP32 peak (CPU)
    peak_basis: str
    bandwidth_gbs: float | None = None
    peak_key: str | None = None
    clocks: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slugify(text: str) -> str:
    """``"AMD EPYC 7B13"`` -> ``"amd-epyc-7b13"``: lower case, runs of other characters become one dash."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, flags, current MHz and the physical-core count from ``/proc/cpuinfo`` text.

    Cores are distinct (physical id, core id) pairs; where the kernel does not report them (some VMs,
    ARM), every processor entry counts as a core.
    """
    processors: list[dict[str, str]] = []
    for block in text.strip().split("\n\n"):
        entry = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                entry[key.strip()] = value.strip()
        if entry:
            processors.append(entry)
    if not processors:
        raise ValueError("no processor entries in /proc/cpuinfo text")
    first = processors[0]
    cores = {(p.get("physical id"), p.get("core id")) for p in processors if "core id" in p}
    flags = set((first.get("flags") or first.get("Features") or "").split())
    mhz = [float(p["cpu MHz"]) for p in processors if "cpu MHz" in p]
    return {"model": first.get("model name") or first.get("Processor") or first.get("CPU part") or "unknown CPU",
            "flags": flags, "mhz": max(mhz) if mhz else None,
            "cores": len(cores) if cores else len(processors), "logical": len(processors)}


# The CPU flags that decide which kernels run (vector width, bf16/fp16/int8 dot products): every
# results file records them, since the machines we measure on differ.
NOTABLE_CPU_FLAGS = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "avx_vnni",
                               "amx_bf16", "amx_int8", "amx_fp16", "asimd", "asimdhp", "asimddp", "bf16", "i8mm"})


def notable_cpu_flags(cpuinfo_text: str | None = None) -> list[str]:
    """The :data:`NOTABLE_CPU_FLAGS` this CPU has (from ``/proc/cpuinfo``), sorted."""
    text = cpuinfo_text if cpuinfo_text is not None else (_read(CPUINFO) or "")
    try:
        flags = parse_cpuinfo(text)["flags"]
    except ValueError:
        return []
    return sorted(flags & NOTABLE_CPU_FLAGS)


# CPU flags of instructions that compute each reduced precision natively (x86 AVX-512/AMX, Arm
# FEAT_FP16 "asimdhp" and FEAT_BF16 "bf16"); without them oneDNN converts and computes in fp32.
NATIVE_PRECISION_FLAGS = {"bf16": frozenset({"avx512_bf16", "amx_bf16", "bf16"}),
                          "fp16": frozenset({"avx512_fp16", "amx_fp16", "asimdhp"})}


def cpu_emulates(precision: str, cpuinfo_text: str | None = None) -> str | None:
    """Why this CPU only emulates ``precision`` (``"bf16"``/``"fp16"``), or None where it runs it natively."""
    native = NATIVE_PRECISION_FLAGS[precision]
    text = cpuinfo_text if cpuinfo_text is not None else (_read(CPUINFO) or "processor: 0")
    if parse_cpuinfo(text)["flags"] & native:
        return None
    name = {"bf16": "bfloat16", "fp16": "float16"}[precision]
    return (f"this CPU has no {name} instructions ({'/'.join(sorted(native))}): oneDNN emulates {precision} "
            "convolutions, many times slower than fp32")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_peak(cpuinfo_text: str | None = None, max_khz: int | None = None,
             usable_cpus: int | None = None) -> CpuPeak:
    """Derive this CPU's FP32 peak from /proc/cpuinfo (cores, SIMD flags) and its clock.

    The clock is cpufreq's ``cpuinfo_max_freq`` where readable, else the highest ``cpu MHz`` in
    /proc/cpuinfo (the current clock, which a VM reports as its nominal one). Cores are the physical
    cores, capped at the CPUs this process may run on.
    """
    info = parse_cpuinfo(cpuinfo_text if cpuinfo_text is not None else (_read(CPUINFO) or ""))
    if max_khz is None:
        text = _read(CPUFREQ_MAX)
        max_khz = int(text) if text and text.isdigit() else None
    if max_khz:
        ghz, source = max_khz / 1e6, "cpufreq cpuinfo_max_freq"
    elif info["mhz"]:
        ghz, source = info["mhz"] / 1e3, "/proc/cpuinfo cpu MHz"
    else:
        raise ValueError("cannot read a CPU clock from cpufreq or /proc/cpuinfo")
    usable = usable_cpus if usable_cpus is not None else len(os.sched_getaffinity(0))
    cores = max(1, min(info["cores"], usable))
    per_cycle, simd = next(((n, label) for flag, n, label in _SIMD_FP32_FLOP_PER_CYCLE if flag in info["flags"]),
                           (2, "scalar: 1 add + 1 mul per cycle (no SIMD flags recognised)"))
    return CpuPeak(model=info["model"], cores=cores, ghz=ghz, clock_source=source, flop_per_cycle=per_cycle, simd=simd)


def match_gpu(name: str) -> DevicePeak | None:
    """The peak-table entry for a CUDA device name (``"NVIDIA H100 80GB HBM3"`` -> H100 SXM), or None."""
    for pattern, key in _GPU_NAMES:
        if pattern.lower() in name.lower():
            return PEAKS[key]
    return None


def match_jetson(model: str) -> DevicePeak | None:
    """The peak-table entry for a ``/proc/device-tree/model`` string, or None when it is no known Jetson."""
    if "jetson" not in model.lower():
        return None
    for pattern, key in _JETSON_MODELS:
        if pattern.lower() in model.lower():
            return PEAKS[key]
    return None


def jetson_peak(peak: DevicePeak, clocks: Mapping[str, Any]) -> tuple[float, str]:
    """The module's FP16 peak at its real maximum GPU clock (devfreq ``max_freq``) where that is readable.

    Tensor throughput is SMs x FLOP/clock x clock, so the table's figure scales with the clock: a
    "Super" power mode or a capped nvpmodel mode changes the peak, not the silicon.
    """
    base = f"{peak.name}: FP16 dense tensor peak ({peak.basis})"
    max_mhz = clocks.get("gpu_max_freq_mhz")
    if not max_mhz or not peak.gpu_ghz:
        return peak.fp16_tflops, base
    scaled = peak.fp16_tflops * (max_mhz / 1e3) / peak.gpu_ghz
    return scaled, f"{base}, scaled from {peak.gpu_ghz:g} GHz to this module's max GPU clock {max_mhz / 1e3:g} GHz"


def cpu_clocks() -> dict[str, Any]:
    info = parse_cpuinfo(_read(CPUINFO) or "processor: 0")
    clocks: dict[str, Any] = {"cpu_mhz_now": info["mhz"]}
    max_khz = _read(CPUFREQ_MAX)
    if max_khz and max_khz.isdigit():
        clocks["cpu_mhz_max"] = int(max_khz) / 1e3
    governor = _read(CPUFREQ_GOVERNOR)
    if governor:
        clocks["cpu_governor"] = governor
    try:
        clocks["load_average_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return clocks


def jetson_clocks() -> dict[str, Any]:
    """GPU devfreq clocks and the nvpmodel power mode, where readable."""
    import glob

    clocks: dict[str, Any] = {}
    for pattern in JETSON_GPU_DEVFREQ:
        for folder in glob.glob(pattern):
            for name in ("cur_freq", "max_freq", "min_freq"):
                text = _read(Path(folder) / name)
                if text and text.isdigit():
                    clocks[f"gpu_{name}_mhz"] = int(text) / 1e6
            if clocks:
                break
        if clocks:
            break
    try:
        mode = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=5, check=False)
        if mode.returncode == 0 and mode.stdout.strip():
            clocks["nvpmodel"] = " ".join(mode.stdout.split())
    except (OSError, subprocess.SubprocessError):
        pass
    return clocks


def detect_device(device: str = "cpu") -> DeviceInfo:
    """Describe the device the benchmark runs on: "cpu", or "cuda"/"cuda:N" (a Jetson or a discrete GPU)."""
    cpu = cpu_peak()
    cpu_facts = {"model": cpu.model, "cores": cpu.cores, "peak": cpu.describe()}
    if device == "cpu":
        return DeviceInfo(kind="cpu", name=f"{cpu.model} ({cpu.cores} cores)",
                          slug=f"cpu-{slugify(cpu.model)}-{cpu.cores}c", peak_tflops=cpu.tflops,
                          peak_basis=cpu.describe(), clocks=cpu_clocks(), cpu=cpu_facts)
    jetson_model = _read(DEVICE_TREE_MODEL)
    peak = match_jetson(jetson_model) if jetson_model else None
    if peak is not None:
        module_clocks = {**jetson_clocks(), **cpu_clocks()}
        tflops, basis = jetson_peak(peak, module_clocks)
        return DeviceInfo(kind="jetson", name=jetson_model or peak.name, slug=f"jetson-{peak.key}",
                          peak_tflops=tflops, peak_basis=basis, bandwidth_gbs=peak.bandwidth_gbs, peak_key=peak.key,
                          clocks=module_clocks, cpu=cpu_facts)
    import torch

    from .memory import open_nvml

    index = torch.device(device).index or 0
    name = torch.cuda.get_device_name(index)
    peak = match_gpu(name)
    clocks: dict[str, Any] = dict(cpu_clocks())
    nvml = open_nvml(index)
    if nvml is not None:
        clocks.update(nvml.clocks())
    basis = (f"{peak.name}: FP16 dense tensor peak ({peak.basis})" if peak is not None
             else f"{name} is not in the peak table (benchmarks/devices.py PEAKS)")
    return DeviceInfo(kind="gpu", name=name, slug=slugify(name), peak_tflops=peak.fp16_tflops if peak else None,
                      peak_basis=basis, bandwidth_gbs=peak.bandwidth_gbs if peak else None,
                      peak_key=peak.key if peak else None, clocks=clocks, cpu=cpu_facts)


def library_versions(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Versions of the libraries a benchmark depends on (those importable here) and the git commit."""
    import importlib.metadata as metadata
    import platform

    versions = {"python": platform.python_version()}
    for dist in ("torch", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "triton", "tensorrt", "opencv-python-headless"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    try:
        import torch

        if torch.version.cuda:
            versions["cuda (torch)"] = str(torch.version.cuda)
            versions["cudnn"] = str(torch.backends.cudnn.version())
    except ImportError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent, check=False)
        if commit.returncode == 0:
            versions["deblur-sdk commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    versions.update(extra or {})
    return versions

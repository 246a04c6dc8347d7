"""Device detection, the peak table, the derived CPU peak and memory probes."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.devices import (
    PEAKS,
    cpu_emulates,
    cpu_peak,
    detect_device,
    jetson_peak,
    match_gpu,
    match_jetson,
    parse_cpuinfo,
    slugify,
)
from benchmarks.memory import HostPeak


def _processor(index: int, core: int, flags: str, mhz: float = 2000.0, physical: int = 0) -> str:
    return (f"processor\t: {index}\nmodel name\t: Test CPU 9000\ncpu MHz\t\t: {mhz}\n"
            f"physical id\t: {physical}\ncore id\t\t: {core}\nflags\t\t: fpu sse2 {flags}\n")


# Two physical cores with two hyper-threads each: four processor entries.
SMT_AVX512 = "\n".join(_processor(i, i // 2, "avx avx2 fma avx512f") for i in range(4))
AVX2_ONLY = "\n".join(_processor(i, i, "avx avx2 fma", mhz=2445.4) for i in range(2))


def test_cpuinfo_counts_physical_cores_not_hyperthreads():
    info = parse_cpuinfo(SMT_AVX512)
    assert info["cores"] == 2 and info["logical"] == 4
    assert "avx512f" in info["flags"] and info["model"] == "Test CPU 9000"


def test_cpu_peak_is_cores_times_clock_times_fma_width():
    peak = cpu_peak(SMT_AVX512, max_khz=3_000_000, usable_cpus=4)
    assert peak.flop_per_cycle == 64                 # 16 lanes x FMA x 2 pipes
    assert peak.tflops == pytest.approx(2 * 3.0 * 64 / 1e3)
    assert peak.clock_source == "cpufreq cpuinfo_max_freq"
    assert peak.describe().startswith("derived, not measured")
    avx2 = cpu_peak(AVX2_ONLY, max_khz=None, usable_cpus=1)
    assert avx2.flop_per_cycle == 32 and avx2.cores == 1  # capped at the CPUs this process may use
    assert avx2.ghz == pytest.approx(2.4454) and avx2.clock_source == "/proc/cpuinfo cpu MHz"


@pytest.mark.parametrize("flags,bf16_native,fp16_native", [
    ("avx2 fma", False, False),                               # our CI machine (AMD EPYC, Zen 3)
    ("avx2 fma avx512f avx512_bf16", True, False),            # Cooper Lake, Zen 4
    ("avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_fp16", True, True),   # Granite Rapids
    ("fp asimd fphp asimdhp bf16", True, True),               # Armv8.6 Features line
    ("fp asimd fphp asimdhp", False, True),                   # Jetson Orin's Cortex-A78AE
])
def test_reduced_precision_is_native_only_with_its_instructions(flags, bf16_native, fp16_native):
    text = f"processor\t: 0\nflags\t\t: {flags}\n"
    assert (cpu_emulates("bf16", text) is None) == bf16_native
    assert (cpu_emulates("fp16", text) is None) == fp16_native
    if not fp16_native:
        assert "no float16 instructions" in cpu_emulates("fp16", text)


def test_cpuinfo_without_entries_is_an_error():
    with pytest.raises(ValueError, match="no processor entries"):
        parse_cpuinfo("")


@pytest.mark.parametrize("name,key", [
    ("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200-sxm"),
    ("NVIDIA A100-SXM4-40GB", "a100-40gb"), ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"),
    ("NVIDIA GeForce RTX 4090", "rtx-4090"), ("NVIDIA GeForce RTX 3090", "rtx-3090"),
])
def test_gpu_names_map_to_the_peak_table(name, key):
    assert match_gpu(name) is PEAKS[key]


@pytest.mark.parametrize("model,key", [
    ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "orin-nx-16gb"),
    ("NVIDIA Jetson AGX Orin Developer Kit", "agx-orin-64gb"),
    ("NVIDIA Jetson Orin Nano Developer Kit", "orin-nano-8gb"),
])
def test_jetson_device_tree_models_map_to_the_peak_table(model, key):
    assert match_jetson(model) is PEAKS[key]


def test_jetson_peak_scales_with_the_real_gpu_clock():
    nx = PEAKS["orin-nx-16gb"]
    assert jetson_peak(nx, {})[0] == 15.0            # no readable clock: the table figure
    # MAXN SUPER raises the Orin NX GPU to ~1173 MHz: the peak follows the clock.
    tflops, basis = jetson_peak(nx, {"gpu_max_freq_mhz": 1173.0})
    assert tflops == pytest.approx(15.0 * 1.173 / 0.918)
    assert "scaled from 0.918 GHz" in basis


def test_unknown_devices_have_no_peak():
    assert match_gpu("Tesla T4") is None
    assert match_jetson("Raspberry Pi 5 Model B Rev 1.0") is None


def test_peak_table_matches_perf_anchors():
    # perf-anchors.md §1.1: FP16 dense tensor TFLOP/s and DRAM GB/s.
    assert (PEAKS["orin-nx-16gb"].fp16_tflops, PEAKS["orin-nx-16gb"].bandwidth_gbs) == (15.0, 102.4)
    assert (PEAKS["h100-sxm"].fp16_tflops, PEAKS["h100-sxm"].bandwidth_gbs) == (989.4, 3350.0)
    assert (PEAKS["rtx-4090"].fp16_tflops, PEAKS["agx-orin-64gb"].fp16_tflops) == (165.2, 42.6)


def test_this_cpu_is_detected_with_a_derived_peak():
    info = detect_device("cpu")
    assert info.kind == "cpu" and info.slug.startswith("cpu-") and info.slug.endswith("c")
    assert info.peak_tflops is not None and info.peak_tflops > 0
    assert "derived" in info.peak_basis
    assert slugify("AMD EPYC 7B13 64-Core") == "amd-epyc-7b13-64-core"


def test_host_peak_sees_a_fresh_allocation():
    host = HostPeak()
    host.reset()
    before = host.peak_mb()
    block = np.ones(64 * 2**20 // 8)          # 64 MiB, touched
    assert host.peak_mb() >= before + 60
    del block


def test_notable_cpu_flags_are_read_from_cpuinfo_text():
    from benchmarks.devices import notable_cpu_flags

    text = "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 amx_bf16 ht\n"
    assert notable_cpu_flags(text) == ["amx_bf16", "avx2", "avx512_bf16", "avx512f", "fma"]
    assert notable_cpu_flags("processor\t: 0\nFeatures\t: fp asimd asimdhp bf16\n") == ["asimd", "asimdhp", "bf16"]
    assert notable_cpu_flags("") == []


def test_results_pairs_are_not_overwritten_unless_asked(tmp_path):
    import json

    import pytest

    from benchmarks.report import write_json_and_markdown

    json_path, md_path = write_json_and_markdown(tmp_path / "m", "goals", {"gain_db": 0.9}, "# first\n")
    with pytest.raises(FileExistsError, match="not overwritten"):
        write_json_and_markdown(tmp_path / "m", "goals", {"gain_db": 1.0}, "# second\n")
    assert json.loads(json_path.read_text()) == {"gain_db": 0.9} and md_path.read_text() == "# first\n"
    write_json_and_markdown(tmp_path / "m", "goals", {"gain_db": 1.0}, "# second\n", overwrite=True)
    assert json.loads(json_path.read_text()) == {"gain_db": 1.0} and md_path.read_text() == "# second\n"

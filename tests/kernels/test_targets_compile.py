"""Every Triton kernel compiles for Jetson Orin (sm_87) and H100 (sm_90) without a GPU, spill-free.

``triton.compile`` with an explicit ``GPUTarget`` runs the NVIDIA pipeline down to a cubin with the
ptxas bundled in the triton wheel; ``cuobjdump`` reads registers and stack (spills) from it. The
numbers quoted in the kernels' docstrings come from ``python -m kernels.resource_usage``.

Also checked here: the inference kernels at the 720p configurations (no spills, 128-bit global loads
where the NCHW layout gives 16-byte aligned rows), and the PTX the TensorRT AOT plugins embed, whose
``.version`` must be one the target's driver loads (the driver JIT-compiles it and refuses a newer ISA).
"""

from __future__ import annotations

import re

import pytest
from kernel_testing import HAS_TRITON

pytestmark = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")

# A CUDA SM has 65,536 32-bit registers and a thread may use at most 255.
MAX_REGISTERS = 255


def _specs() -> list:
    if not HAS_TRITON:
        return []
    from kernels.resource_usage import all_specs

    return all_specs()


@pytest.mark.slow
@pytest.mark.parametrize("capability", [87, 90])
@pytest.mark.parametrize("spec", _specs(), ids=lambda s: s.name.replace(" ", "-"))
def test_compiles_without_spills(spec, capability: int) -> None:  # type: ignore[no-untyped-def]
    from kernels.resource_usage import measure

    usage = measure(spec, capability)
    assert 0 < usage.registers <= MAX_REGISTERS
    assert not usage.spills, (f"{spec.name} spills at sm_{capability}: {usage.stack_bytes} B stack, "
                              f"{usage.local_bytes} B local with {usage.registers} registers")
    # Shared memory must fit a single program on Orin (163 KB per block at most on sm_87).
    assert usage.shared_bytes <= 163 * 1024


def test_every_kernel_has_a_spec() -> None:
    # A kernel added to a triton_* module without a compile spec would escape the check above.
    import inspect

    from kernels import triton_attention_fusion, triton_pixel_attention, triton_self_attention
    from kernels.resource_usage import all_specs

    checked = {spec.kernel for spec in all_specs()}
    for module in (triton_pixel_attention, triton_attention_fusion, triton_self_attention):
        for name, obj in inspect.getmembers(module):
            if name.endswith("_kernel"):
                assert obj in checked, f"{module.__name__}.{name} is not compiled by the target test"


# The newest PTX ISA each target's driver loads, (major, minor). sm_87: JetPack 6.1/6.2 ship the CUDA 12.6
# driver (ISA 8.5; JetPack 6.0's CUDA 12.2 takes 8.2). sm_90 desktops: the pin is 8.0, the ISA of the
# CUDA 12.0 driver (R525), the oldest a TensorRT 10.x for CUDA 12 runs on, and the minimum sm_90a accepts.
DRIVER_PTX_ISA = {87: (8, 5), 90: (8, 0)}
_V4_LOAD = re.compile(r"ld\.global(?:\.\w+)*\.v4\.b32")


def _inference_specs_720p() -> list:
    """The forward kernels as a 1280x720 frame launches them (RDAFNet's maps at full size, MSAN's 14,400 tokens)."""
    if not HAS_TRITON:
        return []
    from kernels import triton_attention_fusion, triton_pixel_attention, triton_self_attention

    return [*triton_pixel_attention.compile_specs(channels=128, height=720, width=1280),
            *triton_pixel_attention.compile_specs(channels=256, height=720, width=1280),
            *triton_attention_fusion.compile_specs(channels=128, height=720, width=1280),
            *[s for s in triton_self_attention.compile_specs(channels=128, tokens=14_400) if "fwd" in s.name]]


@pytest.mark.slow
@pytest.mark.parametrize("capability", [87, 90])
@pytest.mark.parametrize("spec", _inference_specs_720p(), ids=lambda s: s.name.replace(" ", "-"))
def test_720p_configurations_do_not_spill_and_load_128_bits(spec, capability: int) -> None:  # type: ignore[no-untyped-def]
    from kernels.resource_usage import measure

    usage = measure(spec, capability)
    assert not usage.spills, f"{spec.name} spills at sm_{capability}: {usage.stack_bytes + usage.local_bytes} B"
    # Pixel (token) rows are contiguous and their strides multiples of 16 elements: Triton must vectorise
    # the global loads to 128 bits (ld.global.v4.b32 = 8 fp16 values), not fall back to scalar loads.
    ptx = spec.compile(capability).asm["ptx"]
    assert len(_V4_LOAD.findall(ptx)) >= 2, f"{spec.name}: no 128-bit global loads at sm_{capability}"


def _aot_kernels() -> list:
    if not HAS_TRITON:
        return []
    from kernels import trt_plugins

    return [("pixel_attention_map fp16 C=128", lambda: trt_plugins.pixel_attention_aot("fp16", 128, write_map=True)),
            ("pixel_attention fp16 C=256", lambda: trt_plugins.pixel_attention_aot("fp16", 256, write_map=False)),
            ("self_attention fp16 C=128", lambda: trt_plugins.self_attention_aot("fp16", 128, 128, scale=0.1))]


@pytest.mark.slow
@pytest.mark.parametrize("capability", [87, 90])
@pytest.mark.parametrize(("name", "build"), _aot_kernels(), ids=lambda v: v if isinstance(v, str) else "")
def test_aot_plugin_ptx_is_one_the_target_driver_loads_and_does_not_spill(name: str, build, capability: int,  # type: ignore[no-untyped-def]
                                                                          tmp_path) -> None:
    import subprocess

    from triton.backends.compiler import GPUTarget

    from kernels.resource_usage import _USAGE, cuobjdump_path

    compiled = build().compile(GPUTarget("cuda", capability, 32))
    ptx = compiled.asm["ptx"]
    major, minor = (int(v) for v in re.search(r"^\.version (\d+)\.(\d+)", ptx, re.MULTILINE).groups())
    assert (major, minor) <= DRIVER_PTX_ISA[capability], f"{name}: PTX ISA {major}.{minor} at sm_{capability}"
    assert re.search(rf"^\.target sm_{capability}a?\b", ptx, re.MULTILINE)
    cubin = tmp_path / "aot.cubin"
    cubin.write_bytes(compiled.asm["cubin"])         # ptxas accepted the pinned ISA for this target
    usage = _USAGE.search(subprocess.run([cuobjdump_path(), "--dump-resource-usage", str(cubin)], check=True,
                                         capture_output=True, text=True).stdout)
    assert usage is not None
    registers, stack, _, local = (int(g) for g in usage.groups())
    assert 0 < registers <= MAX_REGISTERS and stack == 0 and local == 0, f"{name} spills at sm_{capability}"

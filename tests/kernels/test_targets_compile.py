"""Every Triton kernel compiles for Jetson Orin (sm_87) and H100 (sm_90) without a GPU, spill-free.

``triton.compile`` with an explicit ``GPUTarget`` runs the NVIDIA pipeline down to a cubin with the
ptxas bundled in the triton wheel; ``cuobjdump`` reads registers and stack (spills) from it. The
numbers quoted in the kernels' docstrings come from ``python -m kernels.resource_usage``.
"""

from __future__ import annotations

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

"""Registers, spills and shared memory of every Triton kernel, compiled for real GPUs without one.

``triton.compile`` with ``GPUTarget("cuda", cc, 32)`` runs the whole NVIDIA pipeline (TTIR -> PTX ->
cubin through the ptxas that ships in the triton wheel); ``cuobjdump --dump-resource-usage`` then
reads the cubin. Triton kernels allocate shared memory dynamically, so that figure comes from the
compile metadata. A non-zero STACK or LOCAL means ptxas spilled registers to local memory.

Run ``python -m kernels.resource_usage`` to print the table quoted in the kernels' docstrings;
``tests/kernels/test_compile_targets.py`` fails the build when a kernel spills.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .triton_common import KernelSpec

# Jetson Orin (sm_87) is the edge target; H100 (sm_90) the datacenter one.
TARGETS = (87, 90)
_USAGE = re.compile(r"REG:(\d+)\s+STACK:(\d+)\s+SHARED:(\d+)\s+LOCAL:(\d+)")


@dataclass(frozen=True)
class ResourceUsage:
    kernel: str
    capability: int
    registers: int
    stack_bytes: int
    local_bytes: int
    shared_bytes: int
    num_warps: int

    @property
    def spills(self) -> bool:
        return self.stack_bytes > 0 or self.local_bytes > 0


def cuobjdump_path() -> str:
    import triton

    bundled = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("cuobjdump")
    if found is None:
        raise FileNotFoundError("cuobjdump not found: neither bundled with triton nor on PATH")
    return found


def all_specs() -> list[KernelSpec]:
    """Every kernel at the configuration the zoo runs (128 channels), plus the wide (C > 128) paths."""
    from . import triton_attention_fusion, triton_pixel_attention, triton_self_attention

    return [
        *triton_pixel_attention.compile_specs(channels=128),
        *triton_pixel_attention.compile_specs(channels=256),
        *triton_attention_fusion.compile_specs(channels=128),
        *triton_self_attention.compile_specs(channels=128),
    ]


def measure(spec: KernelSpec, capability: int) -> ResourceUsage:
    compiled = spec.compile(capability)
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        text = subprocess.run([cuobjdump_path(), "--dump-resource-usage", str(cubin)], check=True,
                              capture_output=True, text=True).stdout
    match = _USAGE.search(text)
    if match is None:
        raise RuntimeError(f"cannot parse cuobjdump output for {spec.name}:\n{text}")
    reg, stack, _static_shared, local = (int(g) for g in match.groups())
    return ResourceUsage(spec.name, capability, reg, stack, local, int(compiled.metadata.shared), spec.num_warps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=list(TARGETS), help="compute capabilities")
    args = parser.parse_args(argv)
    print(f"{'kernel':48s} {'sm':>3s} {'warps':>5s} {'regs':>5s} {'spill B':>8s} {'smem B':>7s}")
    for spec in all_specs():
        for cc in args.targets:
            u = measure(spec, cc)
            print(f"{u.kernel:48s} {cc:3d} {u.num_warps:5d} {u.registers:5d} "
                  f"{u.stack_bytes + u.local_bytes:8d} {u.shared_bytes:7d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

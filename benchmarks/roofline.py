"""Projected latency on devices we do not have: a per-operator roofline from a meta-device pass.

One forward pass on the ``meta`` device (shapes only, no arithmetic) records every ATen operator the
network runs, with its FLOPs (PyTorch's own ``torch.utils.flop_counter`` formulas: convolutions and
matmuls) and the bytes it moves: every tensor it reads (weights included) and writes, at 2 bytes
per element as in an FP16 engine. Each operator then costs

    max(FLOPs / (compute_efficiency x peak), bytes / (bandwidth_efficiency x DRAM bandwidth))

and operators run one after another, as in perf-anchors.md §3.2 (60% of the FP16 tensor peak, 80%
of DRAM bandwidth). Two schedules bound what an engine does:

- ``unfused``: every operator is its own kernel (an upper bound; eager PyTorch is close to it);
- ``fused``: elementwise, normalisation, padding and concatenation cost nothing, as if folded into
  the neighbouring convolution's prologue/epilogue; each conv/matmul still reads its inputs and
  weights and writes its output (a lower bound; what TensorRT plus our fused kernels aim at).

Views (reshape, transpose, slicing) move no data and cost nothing in either schedule.

These numbers are *projections*, never measurements; results files label them so.

Example::

    >>> ops = trace_ops(build("rdafnet-nano"), (1, 3, 720, 1280))
    >>> project_ms(ops, PEAKS["orin-nx-16gb"], "fused")
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

from .devices import DevicePeak

COMPUTE_EFFICIENCY = 0.60
BANDWIDTH_EFFICIENCY = 0.80
FP16_BYTES = 2
SCHEDULES = ("fused", "unfused")


@dataclass(frozen=True)
class OpCost:
    """One ATen operator of the traced pass."""

    op: str
    flops: int
    bytes: int


def _is_view(func: Any) -> bool:
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)


def _tensors(values: Any) -> list[torch.Tensor]:
    return [v for v in tree_flatten(values)[0] if isinstance(v, torch.Tensor)]


class _OpRecorder(TorchDispatchMode):
    def __init__(self, bytes_per_element: int) -> None:
        super().__init__()
        self.bytes_per_element = bytes_per_element
        self.ops: list[OpCost] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = _tensors((args, kwargs))
        # Views move nothing; factory ops (empty, zeros) with no tensor inputs only allocate.
        if _is_view(func) or not inputs:
            return out
        packet = func._overloadpacket
        flops = int(flop_registry[packet](*args, **kwargs, out_val=out)) if packet in flop_registry else 0
        elements = sum(t.numel() for t in inputs) + sum(t.numel() for t in _tensors(out))
        self.ops.append(OpCost(str(packet), flops, elements * self.bytes_per_element))
        return out


@torch.no_grad()
def trace_ops(model: nn.Module, shape: Sequence[int], bytes_per_element: int = FP16_BYTES) -> list[OpCost]:
    """Every operator of one forward pass of ``model`` at ``shape`` (NCHW), run on the meta device."""
    meta = model if _on_meta(model) else copy.deepcopy(model).to("meta")
    meta = meta.eval()
    x = torch.zeros(tuple(shape), device="meta")
    recorder = _OpRecorder(bytes_per_element)
    with recorder:
        meta(x)
    return recorder.ops


def _on_meta(model: nn.Module) -> bool:
    tensors = [*model.parameters(), *model.buffers()]
    return bool(tensors) and all(t.is_meta for t in tensors)


def op_ms(op: OpCost, peak: DevicePeak, compute_efficiency: float = COMPUTE_EFFICIENCY,
          bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY) -> float:
    compute = op.flops / (compute_efficiency * peak.fp16_tflops * 1e12)
    memory = op.bytes / (bandwidth_efficiency * peak.bandwidth_gbs * 1e9)
    return max(compute, memory) * 1e3


def project_ms(ops: Sequence[OpCost], peak: DevicePeak, schedule: str = "fused",
               compute_efficiency: float = COMPUTE_EFFICIENCY, bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY) -> float:
    """Projected milliseconds of the traced pass on ``peak``'s device under ``schedule`` (see module docs)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 0 < compute_efficiency <= 1 or not 0 < bandwidth_efficiency <= 1:
        raise ValueError("efficiencies must be in (0, 1]")
    return sum(op_ms(op, peak, compute_efficiency, bandwidth_efficiency) for op in ops
               if schedule == "unfused" or op.flops > 0)


def total_macs(ops: Sequence[OpCost]) -> int:
    return sum(op.flops for op in ops) // 2

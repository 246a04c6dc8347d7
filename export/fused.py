"""Fused-op ONNX: the fused attention ops as TensorRT plugin nodes (``deblur export --fused``).

The standard export (:func:`export.onnx.export_onnx`) writes Conv/Sigmoid/Mul/... ops that every runtime
runs and TensorRT fuses itself. This one records :mod:`kernels.onnx_ops`'s ``deblur`` nodes instead
(through ``torch.onnx.export(dynamo=True)`` and its custom translation table), which only TensorRT >=
10.6 with :func:`kernels.trt_plugins.register_plugins` can run. ONNX Runtime rejects such a graph, so
parity against PyTorch runs the file in onnx's ``ReferenceEvaluator`` with each ``deblur`` node computed
by the PyTorch reference of its kernel.

Example::

    >>> report = export_fused_onnx("runs/nano/best.pt", "nano-fused.onnx")          # doctest: +SKIP
    >>> build_engine("nano-fused.onnx", "nano-fused.engine")                         # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from sdk.manifest import Manifest

from .onnx import (
    INPUT_NAME,
    OUTPUT_NAME,
    PARITY_TOLERANCE,
    ExportError,
    ExportReport,
    _check_interface,
    _name_dynamic_axes,
    _save,
    example_input,
    resolve_model,
    set_metadata,
    verify_parity,
)
from .opcheck import check_tensorrt_compatibility, deblur_plugin_ops

FUSED_OPSET = 18                     # the dynamo exporter's minimum
FUSED_TARGETS = ("10.16", "11.1")     # the plugins need tensorrt.plugin (10.6+); 8.6 and JetPack's 10.3 have none


def reference_session(onnx_path: str | os.PathLike[str]) -> Any:
    """A CPU session for a fused-op ONNX: onnx's reference evaluator with our PyTorch references."""
    from onnx.reference import ReferenceEvaluator

    from kernels.onnx_ops import reference_ops

    return ReferenceEvaluator(os.fspath(onnx_path), new_ops=reference_ops())


def _export(net: nn.Module, example: torch.Tensor, path: Path, *, aot: bool, opset: int) -> None:
    from kernels.onnx_ops import fused_op_export

    dims = {axis: torch.export.Dim(name) for axis, name in ((0, "batch"), (2, "height"), (3, "width"))}
    with fused_op_export(aot=aot) as table, torch.no_grad():
        torch.onnx.export(net, (example,), os.fspath(path), dynamo=True, custom_translation_table=table,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
                          dynamic_shapes=(dims,), verbose=False)


def export_fused_onnx(model: nn.Module | str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                      manifest: Manifest | None = None, model_kwargs: Mapping[str, Any] | None = None,
                      aot: bool = True, opset: int = FUSED_OPSET, tolerance: float = PARITY_TOLERANCE,
                      targets: Sequence[str] = FUSED_TARGETS, strict: bool = True) -> ExportReport:
    """Export ``model`` with the fused ops as ``deblur`` plugin nodes; verify against PyTorch's references.

    ``aot``: mark the nodes whose plugin has an ahead-of-time kernel (TensorRT >= 10.9 then embeds it in
    the engine); ``False`` for the JIT plugins (TensorRT 10.6-10.8). With ``strict`` a failed parity or
    operator check raises :class:`~export.onnx.ExportError` after the file is written.
    """
    if opset < FUSED_OPSET:
        raise ValueError(f"the fused export needs opset >= {FUSED_OPSET} (torch.onnx dynamo exporter), got {opset}")
    start = time.perf_counter()
    out_path = Path(out_path)
    net, manifest, notes = resolve_model(model, manifest=manifest, model_kwargs=model_kwargs)
    net = net.eval()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "fused.onnx"
        _export(net, example_input(manifest), raw, aot=aot, opset=opset)
        proto = onnx.load(os.fspath(raw))
    _name_dynamic_axes(proto)
    _check_interface(proto)
    plugin_nodes = [n for n in proto.graph.node if n.domain == "deblur"]
    if not plugin_nodes:
        notes.append("no fused op in this model: the graph holds standard ops only (export without --fused)")
    opset_used = next(int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    toolchain = dict(manifest.toolchain)
    toolchain.update(torch=torch.__version__.split("+")[0], onnx=onnx.__version__, opset=str(opset_used),
                     fused_ops="aot" if aot else "jit")
    manifest = manifest.replace(input_name=INPUT_NAME, output_name=OUTPUT_NAME, final_output=OUTPUT_NAME,
                                precision="fp32", fp32_layers=(), toolchain=toolchain)
    set_metadata(proto, manifest)
    onnx.checker.check_model(proto, full_check=True)
    _save(proto, out_path)

    parity = verify_parity(net, out_path, pad_multiple=manifest.pad_multiple, value_range=manifest.value_range, tolerance=tolerance,
                           session=reference_session(out_path))
    compatibility = check_tensorrt_compatibility(proto, targets, plugins=deblur_plugin_ops()) if targets else None
    notes.append("fp16 pins are not computed for a fused export (their node names are the standard export's); "
                 "TensorRT runs the plugins in the precision it picks from FP16|FP32")
    report = ExportReport(path=out_path, manifest=manifest, exporter="dynamo (fused ops)", opset=opset_used,
                          simplifier="none", node_count=len(proto.graph.node),
                          op_counts=dict(Counter(n.op_type for n in proto.graph.node)), parity=parity,
                          tolerance=tolerance, seconds=time.perf_counter() - start, compatibility=compatibility,
                          notes=notes, verifier="onnx ReferenceEvaluator (deblur nodes: PyTorch references)")
    if strict and not report.ok:
        raise ExportError(report.format())
    return report


__all__ = ["FUSED_OPSET", "FUSED_TARGETS", "export_fused_onnx", "reference_session"]

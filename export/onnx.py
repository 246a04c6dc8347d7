"""PyTorch -> ONNX: export, simplify, check, verify against ONNX Runtime, embed the manifest.

One call does the whole path and returns a report::

    >>> from export.onnx import export_onnx
    >>> report = export_onnx("runs/nano/best.pt", "sdk/models/rdafnet-nano.onnx", fp16=True)
    >>> print(report.format())

The graph has one input ``input`` (B, 3, H, W) and one output ``output`` (the final image only),
dynamic in batch, height and width; H and W must be multiples of the manifest's ``pad_multiple``
(the runtime pads). The manifest is stored in ``metadata_props`` under
:data:`sdk.manifest.ONNX_METADATA_KEY`.

Exporter choice: the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) at opset 17.
Tried first, the dynamo exporter of torch 2.13 (``dynamo=True`` with ``dynamic_shapes``) gives a clean
graph with dynamic H/W but cannot emit opset 17 (its version converter has no Pad adapter below 18,
so it silently keeps 18), and opset 17 is the newest TensorRT 8.6 parses (8.x is what older Jetson
and DRIVE releases ship); it also took 6.8 s for a toy network where TorchScript took 0.14 s. After onnxsim the TorchScript graph
is as clean: reflect padding's index arithmetic folds into constants, InstanceNorm(affine=False)
becomes InstanceNormalization with unit scale and zero bias.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import torch
from torch import nn

from kernels.dispatch import kernel_mode
from sdk.files import atomic_write
from sdk.manifest import ONNX_METADATA_KEY, Manifest

from .opcheck import DEFAULT_TARGETS, CompatibilityReport, check_tensorrt_compatibility

if TYPE_CHECKING:
    from .fp16 import FP16Report

DEFAULT_OPSET = 17
MIN_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}
PARITY_TOLERANCE = 1e-4
# The parity sizes: one batch-2 square and one odd size the runtime pads (both rounded to the multiple).
PARITY_SQUARE, PARITY_ODD = (64, 64), (37, 53)


class ExportError(RuntimeError):
    """Export produced a graph that fails a check (ONNX checker, dynamic shapes or ORT parity)."""


@dataclass(frozen=True)
class ParityCheck:
    """ONNX Runtime against PyTorch on one input shape."""

    shape: tuple[int, int, int, int]
    padded_from: tuple[int, int] | None
    max_abs_error: float
    # Only measured when the check fails: how far PyTorch float32 and ORT each are from PyTorch float64.
    torch_vs_float64: float | None = None
    ort_vs_float64: float | None = None

    def format(self, tolerance: float) -> str:
        b, c, h, w = self.shape
        origin = f" (reflect-padded from {self.padded_from[0]}x{self.padded_from[1]})" if self.padded_from else ""
        verdict = "ok" if self.max_abs_error <= tolerance else "FAIL"
        line = f"  {b}x{c}x{h}x{w}{origin}: max |ORT - PyTorch| = {self.max_abs_error:.3g} ({verdict}, tol {tolerance:g})"
        if self.torch_vs_float64 is not None and self.ort_vs_float64 is not None:
            line += (f"\n    against PyTorch float64: PyTorch float32 {self.torch_vs_float64:.3g}, ORT {self.ort_vs_float64:.3g}"
                     + (" -> the network itself amplifies float32 rounding; the graph matches"
                        if self.ort_vs_float64 <= 2 * self.torch_vs_float64 else " -> the exported graph differs"))
        return line


@dataclass
class ExportReport:
    path: Path
    manifest: Manifest
    exporter: str
    opset: int
    simplifier: str
    node_count: int
    op_counts: dict[str, int]
    parity: list[ParityCheck]
    tolerance: float
    seconds: float
    compatibility: CompatibilityReport | None = None
    fp16: FP16Report | None = None       # when export_onnx(..., fp16=True)
    notes: list[str] = field(default_factory=list)
    verifier: str = "ONNX Runtime"       # what ran the ONNX in the parity check

    @property
    def parity_ok(self) -> bool:
        return bool(self.parity) and all(p.max_abs_error <= self.tolerance for p in self.parity)

    @property
    def ok(self) -> bool:
        return self.parity_ok and (self.compatibility is None or self.compatibility.ok)

    def format(self) -> str:
        size_mb = self.path.stat().st_size / 1e6 if self.path.exists() else 0.0
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.op_counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lines = [f"ONNX export: {self.path} ({size_mb:.1f} MB) in {self.seconds:.1f} s",
                 f"  {self.manifest.summary()}",
                 f"  exporter {self.exporter}, opset {self.opset}, simplified by {self.simplifier}, "
                 f"{self.node_count} nodes: {ops}",
                 f"Verification, {self.verifier} vs PyTorch (float32): {'OK' if self.parity_ok else 'FAILED'}"]
        lines += [p.format(self.tolerance) for p in self.parity]
        if self.compatibility is not None:
            lines.append(self.compatibility.format())
        if self.fp16 is not None:
            lines.append(self.fp16.format())
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------- inputs
def resolve_model(model: nn.Module | str | os.PathLike[str], *, manifest: Manifest | None = None,
                  model_kwargs: Mapping[str, Any] | None = None) -> tuple[nn.Module, Manifest, list[str]]:
    """A module and its manifest from an ``nn.Module``, a checkpoint path or a registry name.

    A registry name builds freshly initialised weights (useful to check the toolchain, not to ship).
    """
    notes: list[str] = []
    if isinstance(model, nn.Module):
        if manifest is None:
            manifest = _manifest_of_module(model)
        return model, manifest, notes
    text = os.fspath(model)
    if Path(text).is_file():
        from training.checkpoint import load_model

        net, ckpt_manifest = load_model(text, measure_radius=True)
        if ckpt_manifest.tile_exact and ckpt_manifest.receptive_field is not None:
            notes.append(f"{Path(text).name}: effective radius {ckpt_manifest.receptive_field} px (sets the "
                         "runtime's tile overlap)")
        return net, manifest or ckpt_manifest, notes
    from training.models import build, list_models

    if text not in list_models():
        raise FileNotFoundError(f"{text!r} is neither a checkpoint file nor a registered model "
                                f"({', '.join(list_models())})")
    net = build(text, **dict(model_kwargs or {}))
    notes.append(f"{text}: freshly initialised weights (no checkpoint given)")
    return net, manifest or _manifest_of_module(net), notes


def example_input(manifest: Manifest) -> torch.Tensor:
    """The tracing input: one ~64x64 frame in the model's value range, padded to its multiple."""
    m = manifest.pad_multiple
    lo, hi = manifest.value_range
    return lo + (hi - lo) * torch.rand(1, manifest.in_channels, -(-64 // m) * m, -(-64 // m) * m,
                                       generator=torch.Generator().manual_seed(1))


def _manifest_of_module(model: nn.Module) -> Manifest:
    if not getattr(model, "model_name", ""):
        raise ValueError("pass manifest=... for a module not built by training.models.build "
                         "(it has no registry name, value range or pad multiple on record)")
    from training.checkpoint import model_manifest

    return model_manifest(model)  # type: ignore[arg-type]


def parity_shapes(pad_multiple: int) -> list[tuple[tuple[int, int, int, int], tuple[int, int] | None]]:
    """The two verification shapes: a batch-2 square and a batch-1 odd size padded to the multiple."""
    def up(v: int) -> int:
        return -(-v // pad_multiple) * pad_multiple

    odd_h, odd_w = PARITY_ODD
    return [((2, 3, up(PARITY_SQUARE[0]), up(PARITY_SQUARE[1])), None),
            ((1, 3, up(odd_h), up(odd_w)), (odd_h, odd_w))]


def reference_kernels() -> contextlib.AbstractContextManager[None]:
    """Trace the PyTorch references of our kernels (``DEBLUR_KERNELS=reference``): standard ONNX ops."""
    return kernel_mode("reference")


# --------------------------------------------------------------------------- export steps
def _trace(model: nn.Module, example: torch.Tensor, path: Path, *, opset: int) -> list[str]:
    """TorchScript export with dynamic batch/H/W; returns the tracer's warnings (deduplicated first lines)."""
    caught: list[str] = []
    with reference_kernels(), torch.no_grad(), warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        axes = {INPUT_NAME: DYNAMIC_AXES, OUTPUT_NAME: DYNAMIC_AXES}
        torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=opset, dynamo=False, dynamic_axes=axes, do_constant_folding=True)
    for w in record:
        # F.instance_norm's own spatial-size check warns on every trace; it guards nothing in the graph.
        if issubclass(w.category, torch.jit.TracerWarning) and not w.filename.endswith("torch/nn/functional.py"):
            caught.append(str(w.message).splitlines()[0])
    return sorted(set(caught))


def simplify(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """onnxsim, falling back to onnxslim where onnxsim fails; returns the model and which one ran."""
    errors = []
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(model)
        if ok:
            # onnxsim records its own bookkeeping (every removed node's name) in metadata_props; drop it.
            for i in reversed(range(len(simplified.metadata_props))):
                if simplified.metadata_props[i].key.startswith("onnxsim."):
                    del simplified.metadata_props[i]
            return simplified, f"onnxsim {onnxsim.__version__.lstrip('v')}"
        errors.append("onnxsim: its own check of the simplified graph failed")
    except Exception as exc:  # onnxsim raises RuntimeError/ValueError/protobuf errors from C++
        errors.append(f"onnxsim: {exc}")
    try:
        import onnxslim

        # Its symbolic shape inference takes minutes on deep graphs with dynamic H/W (856 s for
        # rdafnet-single, against 0.4 s without it); nothing downstream needs the inferred shapes.
        return onnxslim.slim(model, no_shape_infer=True), f"onnxslim {onnxslim.__version__}"
    except Exception as exc:  # noqa: BLE001 - report both failures together
        errors.append(f"onnxslim: {exc}")
    raise ExportError("could not simplify the graph: " + "; ".join(errors))


def _lift_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant nodes -> initializers: TensorRT 8.x wants e.g. InstanceNormalization's scale/bias as initializers."""
    import onnx_ir as ir
    from onnx_ir.passes.common import LiftConstantsToInitializersPass

    graph = ir.from_proto(model)
    LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(graph)
    return ir.to_proto(graph)


def _name_dynamic_axes(model: onnx.ModelProto) -> None:
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis, label in DYNAMIC_AXES.items():
            if axis < len(dims) and not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = label


def _check_interface(model: onnx.ModelProto) -> None:
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    outputs = [o.name for o in model.graph.output]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        raise ExportError(f"exported graph has inputs {inputs} and outputs {outputs}; expected [{INPUT_NAME!r}] "
                          f"and [{OUTPUT_NAME!r}] (forward must return the final image only)")
    for value in (model.graph.input[0], model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        static = [DYNAMIC_AXES[a] for a in DYNAMIC_AXES if a < len(dims) and dims[a].HasField("dim_value")]
        if len(dims) != 4 or static:
            raise ExportError(f"{value.name} must be 4-D with dynamic batch/height/width; static: {static or 'rank'}")


def set_metadata(model: onnx.ModelProto, manifest: Manifest) -> None:
    """Store ``manifest`` in ``metadata_props`` (replacing any earlier one)."""
    for key, value in manifest.onnx_metadata().items():
        for i in reversed(range(len(model.metadata_props))):
            if model.metadata_props[i].key == key:
                del model.metadata_props[i]
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _save(model: onnx.ModelProto, path: Path) -> None:
    with atomic_write(path) as tmp:
        onnx.save(model, tmp)


# --------------------------------------------------------------------------- verification
def ort_session(path: str | os.PathLike[str], threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def verify_parity(model: nn.Module, onnx_path: str | os.PathLike[str], *, pad_multiple: int,
                  value_range: tuple[float, float], tolerance: float = PARITY_TOLERANCE,
                  shapes: Sequence[tuple[tuple[int, int, int, int], tuple[int, int] | None]] | None = None,
                  seed: int = 0, session: Any = None) -> list[ParityCheck]:
    """Run ONNX Runtime and PyTorch on the same inputs; odd sizes are reflect-padded like the runtime pads.
    ``session``: anything with ONNX Runtime's ``run(names, feeds)`` in its place (a fused-op graph runs in
    :class:`onnx.reference.ReferenceEvaluator`).

    A check beyond ``tolerance`` also runs PyTorch in float64, to tell an export error (ORT far from
    float64) from a network that amplifies float32 rounding by itself (PyTorch float32 as far).
    """
    from training.models.padding import pad_to_multiple

    session = session if session is not None else ort_session(onnx_path)
    generator = torch.Generator().manual_seed(seed)
    lo, hi = value_range
    checks = []
    for shape, padded_from in shapes or parity_shapes(pad_multiple):
        b, c, h, w = shape
        if padded_from is not None:
            x = lo + (hi - lo) * torch.rand(b, c, *padded_from, generator=generator)
            x, _ = pad_to_multiple(x, pad_multiple)
            if tuple(x.shape) != tuple(shape):
                raise ValueError(f"padding {padded_from} to a multiple of {pad_multiple} gives {tuple(x.shape)}, not {shape}")
        else:
            x = lo + (hi - lo) * torch.rand(*shape, generator=generator)
        with reference_kernels(), torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        if got.shape != expected.shape:
            raise ExportError(f"ONNX Runtime output shape {got.shape} != PyTorch {expected.shape} for input {shape}")
        error = float(np.abs(got - expected).max())
        if error <= tolerance:
            checks.append(ParityCheck(tuple(shape), padded_from, error))
            continue
        with reference_kernels(), torch.no_grad():
            exact = copy.deepcopy(model).double()(x.double()).numpy()
        checks.append(ParityCheck(tuple(shape), padded_from, error, float(np.abs(expected - exact).max()),
                                  float(np.abs(got - exact).max())))
    return checks


# --------------------------------------------------------------------------- module names <-> ONNX nodes
def node_scope(node: onnx.NodeProto) -> str:
    """The module path (``trunk.blocks.0.convs.1``; ``""`` for the top level) an exported node came from.

    The TorchScript exporter names a node after the modules whose forward ran it, each by its
    *unqualified* name (from its last non-numeric atom: ``trunk.seq.1.0`` appears as ``seq.1.0``), so
    ``/trunk/seq/seq.1/seq.1.0/Conv`` is rebuilt by joining each part onto the path at their overlap.
    """
    atoms: list[str] = []
    parts = node.name.split("/")[1:-1] if node.name.startswith("/") else []
    for part in parts:
        unqualified = part.split(".")
        overlap = next((k for k in range(min(len(atoms), len(unqualified)), 0, -1)
                        if atoms[-k:] == unqualified[:k]), 0)
        atoms += unqualified[overlap:]
    return ".".join(atoms)


def nodes_of_modules(model: onnx.ModelProto, module_names: Iterable[str]) -> dict[str, list[str]]:
    """ONNX node names per module name, for the nodes whose innermost module is exactly that module."""
    wanted = {name: [] for name in module_names}   # type: dict[str, list[str]]
    for node in model.graph.node:
        scope = node_scope(node)
        # Shape arithmetic is integer work TensorRT keeps out of precision control anyway.
        if scope in wanted and node.op_type not in ("Constant", "Shape"):
            wanted[scope].append(node.name)
    return wanted


# --------------------------------------------------------------------------- the one call
def export_onnx(model: nn.Module | str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                manifest: Manifest | None = None, model_kwargs: Mapping[str, Any] | None = None,
                opset: int = DEFAULT_OPSET, tolerance: float = PARITY_TOLERANCE,
                fp16: bool = False, calibration_size: tuple[int, int] = (128, 128),
                targets: Sequence[str] = DEFAULT_TARGETS, strict: bool = True) -> ExportReport:
    """Export ``model`` (an ``nn.Module``, a checkpoint path or a registry name) to ``out_path``.

    Steps: trace at ``opset`` with dynamic batch/H/W (reference kernels), simplify (onnxsim, else
    onnxslim), lift constants, ``onnx.checker`` with ``full_check``, ONNX Runtime parity against
    PyTorch on two sizes (see :func:`parity_shapes`), TensorRT operator check against ``targets``,
    and, with ``fp16``, the float16 analysis of :mod:`export.fp16` whose pinned layers go into the
    manifest's ``fp32_layers`` as ONNX node names. The manifest is written into ``metadata_props``.

    With ``strict`` (the default) a failed parity or compatibility check raises :class:`ExportError`
    after the file is written (so it can be inspected); otherwise the report says so.

    Example::

        >>> report = export_onnx("rdafnet-nano", "/tmp/nano.onnx")
        >>> report.parity[1].padded_from
        (37, 53)
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} (LayerNormalization, TensorRT FP16 norms), got {opset}")
    start = time.perf_counter()
    out_path = Path(out_path)
    net, manifest, notes = resolve_model(model, manifest=manifest, model_kwargs=model_kwargs)
    net = net.eval()
    m = manifest.pad_multiple
    example = example_input(manifest)

    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "raw.onnx"
        tracer_warnings = _trace(net, example, raw_path, opset=opset)
        proto = onnx.load(str(raw_path))
    notes += [f"tracer: {w}" for w in tracer_warnings]
    proto, simplifier = simplify(proto)
    proto = _lift_constants(proto)
    _name_dynamic_axes(proto)
    _check_interface(proto)
    opset_used = next(int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx"))

    import onnxruntime

    toolchain = dict(manifest.toolchain)
    toolchain.update(torch=torch.__version__.split("+")[0], onnx=onnx.__version__, opset=str(opset_used),
                     onnxruntime=onnxruntime.__version__)
    manifest = manifest.replace(input_name=INPUT_NAME, output_name=OUTPUT_NAME, final_output=OUTPUT_NAME,
                                precision="fp32", toolchain=toolchain)
    set_metadata(proto, manifest)
    onnx.checker.check_model(proto, full_check=True)
    _save(proto, out_path)

    parity = verify_parity(net, out_path, pad_multiple=m, value_range=manifest.value_range, tolerance=tolerance)
    compatibility = check_tensorrt_compatibility(proto, targets) if targets else None
    report = ExportReport(path=out_path, manifest=manifest, exporter="torchscript",
                          opset=opset_used, simplifier=simplifier, node_count=len(proto.graph.node),
                          op_counts=dict(Counter(n.op_type for n in proto.graph.node)), parity=parity, tolerance=tolerance,
                          seconds=0.0, compatibility=compatibility, notes=notes)

    if fp16:
        from .fp16 import analyse_fp16, calibration_frames

        frame_size = (calibration_size[0] // m * m, calibration_size[1] // m * m)
        with reference_kernels():
            fp16_report = analyse_fp16(net, calibration_frames(frame_size), value_range=manifest.value_range)
        by_module = nodes_of_modules(proto, fp16_report.fp32_layers)
        fp16_report.onnx_nodes = sorted(n for nodes in by_module.values() for n in nodes)
        unmapped = [k or "<model>" for k, v in by_module.items() if not v]
        if unmapped:
            notes.append(f"fp16: no ONNX nodes found for pinned module(s) {unmapped}")
        manifest = manifest.replace(fp32_layers=tuple(fp16_report.onnx_nodes))
        set_metadata(proto, manifest)
        _save(proto, out_path)
        report.manifest, report.fp16 = manifest, fp16_report

    report.seconds = time.perf_counter() - start
    if strict and not report.ok:
        raise ExportError(report.format())
    return report


__all__ = ["ExportError", "ExportReport", "ONNX_METADATA_KEY", "ParityCheck", "export_onnx", "nodes_of_modules",
           "node_scope", "resolve_model", "simplify", "verify_parity"]

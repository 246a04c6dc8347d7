"""FP16 safety: find the layers a float16 engine would break, and measure what float16 costs.

Four steps, all on CPU:

1. **Record** every op's largest input and output magnitude while the float32 model runs on
   calibration frames (photos from scikit-image, motion-blurred like real input). Each op is
   attributed to the innermost module running it, so a "layer" is a module name such as
   ``body.3.conv1``, and it maps onto the ONNX nodes the exporter names ``/body/body.3/conv1/...``.
2. **Flag** layers whose values float16 cannot hold: outputs (or inputs) beyond 65504 or within the
   ``headroom`` factor of it, softmax/exp logits so large that float16's spacing distorts the
   probabilities, and normalisation inputs whose variance would overflow.
3. **Emulate** float16 inference: every op outside the pinned layers reads its inputs rounded to
   float16 (weights included, as a float16 engine stores them) and its output is rounded to float16;
   ops inside pinned layers run in float32, as TensorRT runs a layer with ``precision = float32``.
   Emulation also catches overflow the float32 run could not show (a float32 layer handing a float16
   neighbour a value it cannot hold); those layers are pinned too.
4. **Escalate** where no single value overflows but rounding adds up (deep residual stacks,
   normalisation of nearly constant channels): if the pinned PSNR is below target, the network is cut
   into module groups, each group's own cost is measured by running only it in float16, and the
   costliest groups are pinned until the target is met.

The PSNR of the emulated output against float32 is reported with and without the pins.

Example::

    >>> report = analyse_fp16(model, calibration_frames((128, 128)), value_range=(-1.0, 1.0))
    >>> print(report.format())
    >>> report.fp32_layers            # module names to keep in float32
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

FP16_MAX = 65504.0
ROOT = ""  # scope of ops run by the top-level module's own forward
# Softmax/exp inputs this large are quantised by float16 in steps >= 1/32, which shifts probabilities by ~3 %.
LOGIT_LIMIT = 64.0
# (x - mean)^2 overflows float16 once |x - mean| > 256.
NORM_INPUT_LIMIT = 256.0
CALIBRATION_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
# How finely step 4 cuts the network: enough groups to pin selectively, few enough to measure each.
PRECISION_GROUPS = 24

_SOFTMAX_LIKE = {"softmax", "log_softmax", "exp"}
_NORMS = {"instance_norm", "group_norm", "layer_norm", "batch_norm"}
# Calls that only read metadata or return views/copies of one tensor: nothing to round or record.
_PASSTHROUGH = {"get", "size", "dim", "numel", "len", "data_ptr", "stride", "is_contiguous", "element_size",
                "view", "reshape", "flatten", "unflatten", "permute", "transpose", "contiguous", "getitem",
                "chunk", "split", "unbind", "squeeze", "unsqueeze", "expand", "narrow", "detach", "clone"}
_INPLACE_DUNDERS = {"__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__"}


# --------------------------------------------------------------------------- calibration data
def calibration_frames(size: tuple[int, int] = (128, 128), *, photos: Sequence[str] = CALIBRATION_PHOTOS,
                       blur_length: int = 9) -> torch.Tensor:
    """Real photos from ``skimage.data``, motion-blurred and centre-cropped: (N, 3, H, W) in [0, 1].

    Each photo is resized so its short side covers the crop, then blurred along a line of
    ``blur_length`` pixels at a different angle per photo (the kind of input a deblurring net sees).
    """
    import cv2
    import skimage.data

    h, w = size
    frames = []
    for i, name in enumerate(photos):
        image = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
        scale = max(h / image.shape[0], w / image.shape[1])
        resized = cv2.resize(image, (max(w, round(image.shape[1] * scale)), max(h, round(image.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        top, left = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
        crop = resized[top:top + h, left:left + w].astype(np.float32) / 255.0
        if blur_length > 1:
            kernel = np.zeros((blur_length, blur_length), np.float32)
            kernel[blur_length // 2, :] = 1.0
            rotation = cv2.getRotationMatrix2D((blur_length / 2 - 0.5, blur_length / 2 - 0.5), 45.0 * i, 1.0)
            kernel = cv2.warpAffine(kernel, rotation, (blur_length, blur_length))
            crop = cv2.filter2D(crop, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)
        frames.append(torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))))
    return torch.stack(frames).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------- recording
@dataclass
class LayerStat:
    """Largest magnitudes seen in one layer (module) over the calibration frames."""

    name: str
    module_type: str
    max_output: float = 0.0
    max_input: float = 0.0
    max_logit: float = 0.0        # largest softmax/exp input
    max_norm_input: float = 0.0   # largest input to an instance/group/layer/batch norm
    overflowed_in_fp16: bool = False  # while emulating, finite inputs gave a value float16 cannot hold
    ops: set[str] = field(default_factory=set)
    flags: list[str] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return self.name or "<model>"


def _max_abs(t: torch.Tensor) -> float:
    """Largest magnitude of a floating tensor; ``inf`` if it holds NaN or infinity."""
    if not t.numel():
        return 0.0
    m = float(t.detach().abs().max())
    return math.inf if math.isnan(m) else m


def _leaves(tree: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    tree_map(lambda v: out.append(v) if isinstance(v, torch.Tensor) and v.is_floating_point() else None, tree)
    return out


class _Recorder(TorchFunctionMode):
    """Sees every torch call; records magnitudes per innermost module and optionally emulates float16.

    A per-run memo, keyed by tensor identity, remembers each tensor's magnitude and whether it already
    lies on the float16 grid, so an activation is measured and rounded once, where it is produced,
    and weights are rounded once per run.
    """

    def __init__(self, scopes: list[str], stats: dict[str, LayerStat], *, emulate: bool, keep_fp32: frozenset[str]):
        super().__init__()
        self.scopes, self.stats, self.emulate, self.keep_fp32 = scopes, stats, emulate, keep_fp32
        self._memo: dict[int, tuple[weakref.ref[torch.Tensor], float | None, bool]] = {}
        self._rounded_params: dict[int, torch.Tensor] = {}

    def _remember(self, t: torch.Tensor, max_abs: float | None, on_grid: bool) -> None:
        self._memo[id(t)] = (weakref.ref(t), max_abs, on_grid)

    def _lookup(self, t: torch.Tensor) -> tuple[float | None, bool]:
        entry = self._memo.get(id(t))
        return (entry[1], entry[2]) if entry is not None and entry[0]() is t else (None, False)

    def _magnitude(self, t: torch.Tensor) -> float:
        known, on_grid = self._lookup(t)
        if known is None:
            known = _max_abs(t)
            self._remember(t, known, on_grid)
        return known

    def _to_grid(self, t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or self._lookup(t)[1]:
            return t
        if isinstance(t, nn.Parameter):
            if id(t) not in self._rounded_params:
                self._rounded_params[id(t)] = t.detach().half().float()
            return self._rounded_params[id(t)]
        rounded = t.detach().half().float()
        self._remember(rounded, None, True)
        return rounded

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        kwargs = kwargs or {}
        raw = str(getattr(func, "__name__", ""))
        name = raw.strip("_")
        if name in _PASSTHROUGH:
            out = func(*args, **kwargs)
            # A view of a float16-exact tensor is float16-exact (its magnitude may be smaller: not copied).
            if self.emulate and isinstance(out, torch.Tensor) and args and isinstance(args[0], torch.Tensor) \
                    and self._lookup(args[0])[1]:
                self._remember(out, None, True)
            return out
        scope = self.scopes[-1]
        stat = self.stats[scope]
        emulate = self.emulate and scope not in self.keep_fp32
        inplace = raw in _INPLACE_DUNDERS or (raw.endswith("_") and not raw.startswith("_"))
        inputs = max((self._magnitude(t) for t in _leaves((args, kwargs))), default=0.0)
        if emulate:
            # The mutated tensor of an in-place op must stay the same object; other operands are read in float16.
            head, rest = (tuple(args[:1]), tuple(args[1:])) if inplace else ((), tuple(args))
            args = head + tree_map(self._to_grid, rest)
            kwargs = tree_map(self._to_grid, kwargs)
        out = func(*args, **kwargs)
        produced = _leaves(out)
        outputs = max((_max_abs(t) for t in produced), default=0.0)
        stat.ops.add(name)
        stat.max_input = max(stat.max_input, inputs)
        stat.max_output = max(stat.max_output, outputs)
        if name in _SOFTMAX_LIKE and args and isinstance(args[0], torch.Tensor):
            stat.max_logit = max(stat.max_logit, self._magnitude(args[0]))
        if name in _NORMS and args and isinstance(args[0], torch.Tensor):
            stat.max_norm_input = max(stat.max_norm_input, self._magnitude(args[0]))
        if not emulate:
            for t in produced:
                self._remember(t, None, False)
            return out
        # Only where the trouble starts: finite operands that float16 cannot hold, or a result it cannot.
        if math.isfinite(inputs) and (inputs > FP16_MAX or outputs > FP16_MAX):
            stat.overflowed_in_fp16 = True
        if inplace and isinstance(out, torch.Tensor) and out.dtype == torch.float32:
            out.copy_(out.half())
            self._remember(out, None, True)
            return out
        return tree_map(lambda t: self._to_grid(t) if isinstance(t, torch.Tensor) else t, out)


@contextmanager
def _scoped(model: nn.Module, stats: dict[str, LayerStat]) -> Iterator[list[str]]:
    """Hooks keeping ``scopes[-1]`` = the name of the innermost module currently running."""
    scopes = [ROOT]
    handles = []
    for name, module in model.named_modules():
        stats.setdefault(name, LayerStat(name, type(module).__name__))
        if name == ROOT:
            continue

        def push(_module: nn.Module, _args: Any, name: str = name) -> None:
            scopes.append(name)

        def pop(_module: nn.Module, _args: Any, _out: Any) -> None:
            scopes.pop()

        handles.append(module.register_forward_pre_hook(push))
        handles.append(module.register_forward_hook(pop, always_call=True))
    try:
        yield scopes
    finally:
        for h in handles:
            h.remove()


def run_recorded(model: nn.Module, x: torch.Tensor, *, forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 emulate_fp16: bool = False, keep_fp32: Iterable[str] = (),
                 stats: dict[str, LayerStat] | None = None) -> tuple[torch.Tensor, dict[str, LayerStat]]:
    """``model(x)`` (or ``forward(x)``) recording per-layer magnitudes into ``stats``; with ``emulate_fp16``
    every op outside the ``keep_fp32`` layers (module names) computes on float16 values, as a float16 engine does."""
    stats = {} if stats is None else stats
    with torch.no_grad(), _scoped(model, stats) as scopes, _Recorder(scopes, stats, emulate=emulate_fp16,
                                                                      keep_fp32=frozenset(keep_fp32)):
        out = (forward or model)(x)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model must return the final image as one tensor, got {type(out).__name__}")
    return out, stats


# --------------------------------------------------------------------------- flagging
def flag_layers(stats: dict[str, LayerStat], *, headroom: float = 2.0) -> list[str]:
    """Set ``flags`` on each stat and return the names of the flagged layers.

    ``headroom``: values above ``65504 / headroom`` count as overflow risks (real frames can be
    brighter or sharper than the calibration frames).
    """
    if headroom < 1.0:
        raise ValueError(f"headroom must be >= 1, got {headroom}")
    limit = FP16_MAX / headroom
    flagged = []
    for stat in stats.values():
        stat.flags = []
        if not math.isfinite(stat.max_output) or stat.max_output > FP16_MAX:
            stat.flags.append(f"output {stat.max_output:.4g} overflows float16 (max 65504)")
        elif stat.max_output > limit:
            stat.flags.append(f"output {stat.max_output:.4g} within {headroom:g}x of float16's 65504")
        if not math.isfinite(stat.max_input) or stat.max_input > limit:
            stat.flags.append(f"operand (input or weight) {stat.max_input:.4g} too large for float16 (limit {limit:.4g})")
        if stat.max_logit > LOGIT_LIMIT:
            stat.flags.append(f"softmax/exp logits up to {stat.max_logit:.4g}: float16 spacing distorts them "
                              f"(limit {LOGIT_LIMIT:g})")
        if stat.max_norm_input > NORM_INPUT_LIMIT:
            stat.flags.append(f"normalisation input {stat.max_norm_input:.4g}: variance overflows float16 "
                              f"(limit {NORM_INPUT_LIMIT:g})")
        if stat.flags:
            flagged.append(stat.name)
    return flagged


# --------------------------------------------------------------------------- quality
def psnr(reference: torch.Tensor, test: torch.Tensor, value_range: tuple[float, float]) -> float:
    """PSNR in dB of ``test`` against ``reference`` as [0, 1] images (clipped, as the runtime outputs them).

    Non-finite values in ``test`` (float16 overflow) give ``-inf``.
    """
    from skimage.metrics import peak_signal_noise_ratio

    if not torch.isfinite(test).all():
        return float("-inf")
    lo, hi = value_range
    ref = ((reference.double() - lo) / (hi - lo)).clamp(0, 1).numpy()
    tst = ((test.double() - lo) / (hi - lo)).clamp(0, 1).numpy()
    if np.array_equal(ref, tst):
        return float("inf")
    return float(peak_signal_noise_ratio(ref, tst, data_range=1.0))


def _worst_psnr(reference: Sequence[torch.Tensor], test: Sequence[torch.Tensor], value_range: tuple[float, float]) -> float:
    return min(psnr(r, t, value_range) for r, t in zip(reference, test))


# --------------------------------------------------------------------------- precision groups (step 4)
@dataclass(frozen=True)
class ModuleGroup:
    """A unit of step 4: a module with everything under it, or (``own_ops_only``) just the ops its
    own ``forward`` runs outside its children."""

    name: str
    layers: frozenset[str]
    own_ops_only: bool = False

    @property
    def label(self) -> str:
        return (self.name or "<model>") + (" (own ops)" if self.own_ops_only else "")


def module_groups(model: nn.Module, count: int = PRECISION_GROUPS) -> list[ModuleGroup]:
    """Cut ``model`` into about ``count`` groups: the largest (by parameters) is split into its children
    (keeping its own ops as a group) until there are enough, so each group is a recognisable sub-network."""
    modules = dict(model.named_modules())
    children = {n: [f"{n}.{c}" if n else c for c, _ in m.named_children()] for n, m in modules.items()}
    sizes = {n: sum(p.numel() for p in m.parameters()) + 1 for n, m in modules.items()}

    def subtree(name: str) -> frozenset[str]:
        return frozenset(n for n in modules if n == name or n.startswith(name + ".") or name == ROOT)

    groups = [ModuleGroup(ROOT, subtree(ROOT))]
    while len(groups) < count:
        splittable = [g for g in groups if not g.own_ops_only and children[g.name]]
        if not splittable:
            break
        largest = max(splittable, key=lambda g: sizes[g.name])
        groups.remove(largest)
        groups.append(ModuleGroup(largest.name, frozenset({largest.name}), own_ops_only=True))
        groups += [ModuleGroup(c, subtree(c)) for c in children[largest.name]]
    return groups


# --------------------------------------------------------------------------- the analysis
@dataclass
class FP16Report:
    """What float16 does to a model on the calibration frames."""

    layers: dict[str, LayerStat]
    fp32_layers: list[str]                 # module names to keep in float32
    psnr_fp16: float                       # worst frame, every layer in float16
    psnr_pinned: float                     # worst frame, ``fp32_layers`` kept in float32
    target_db: float
    frames: int
    frame_size: tuple[int, int]
    overflow_layers: list[str] = field(default_factory=list)           # steps 2-3
    precision_groups: list[tuple[str, float]] = field(default_factory=list)  # step 4: (group, PSNR alone in fp16)
    onnx_nodes: list[str] = field(default_factory=list)   # fp32_layers mapped onto ONNX node names, when known

    @property
    def ok(self) -> bool:
        return self.psnr_pinned >= self.target_db

    def format(self, *, top: int = 5) -> str:
        lines = [f"FP16 safety ({self.frames} calibration frames {self.frame_size[0]}x{self.frame_size[1]}): "
                 f"PSNR fp16 vs fp32 {self.psnr_fp16:.2f} dB unpinned, {self.psnr_pinned:.2f} dB with "
                 f"{len(self.fp32_layers)} layer(s) in fp32 -> {'OK' if self.ok else 'BELOW'} target {self.target_db:g} dB"]
        for name in self.overflow_layers:
            stat = self.layers[name]
            reasons = "; ".join(stat.flags) or "overflowed while emulating float16"
            lines.append(f"  keep fp32: {stat.display_name} ({stat.module_type}): {reasons}")
        for label, alone in self.precision_groups:
            lines.append(f"  keep fp32: {label}: float16 rounding costs too much here "
                         f"(this group alone in fp16: {alone:.2f} dB)")
        if self.onnx_nodes:
            lines.append(f"  ONNX nodes pinned to fp32: {len(self.onnx_nodes)}")
        largest = sorted(self.layers.values(), key=lambda s: s.max_output, reverse=True)[:top]
        lines.append("  largest activations: " + ", ".join(f"{s.display_name} {s.max_output:.4g}" for s in largest))
        return "\n".join(lines)


def analyse_fp16(model: nn.Module, frames: torch.Tensor, *, value_range: tuple[float, float],
                 headroom: float = 2.0, target_db: float = 40.0, max_rounds: int = 4,
                 precision_groups: int = PRECISION_GROUPS,
                 forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> FP16Report:
    """Record, flag, emulate and escalate (see the module docstring) on ``frames`` ((N, 3, H, W) in [0, 1]).

    ``value_range`` is the model's input range; frames are mapped into it. ``forward`` replaces
    ``model`` as the callable (e.g. to pad to the model's multiple); hooks still go on ``model``.
    Step 3 repeats at most ``max_rounds`` times; ``precision_groups=0`` skips step 4.
    """
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (N, 3, H, W) in [0, 1], got shape {tuple(frames.shape)}")
    model = model.eval()
    lo, hi = value_range
    inputs = [lo + (hi - lo) * f.unsqueeze(0) for f in frames]

    def emulate(keep: Iterable[str], stats: dict[str, LayerStat] | None = None) -> list[torch.Tensor]:
        return [run_recorded(model, x, forward=forward, emulate_fp16=True, keep_fp32=keep, stats=stats)[0]
                for x in inputs]

    stats: dict[str, LayerStat] = {}
    reference = [run_recorded(model, x, forward=forward, stats=stats)[0] for x in inputs]
    keep = flag_layers(stats, headroom=headroom)
    psnr_fp16 = _worst_psnr(reference, emulate(()), value_range)

    for _ in range(max_rounds):
        emulated_stats: dict[str, LayerStat] = {}
        pinned_out = emulate(keep, emulated_stats)
        newly = [n for n, s in emulated_stats.items() if s.overflowed_in_fp16 and n not in keep]
        if not newly:
            break
        keep += newly
    overflow_layers = list(keep)
    psnr_pinned = _worst_psnr(reference, pinned_out, value_range)

    chosen: list[tuple[str, float]] = []
    if psnr_pinned < target_db and precision_groups > 0:
        everything = frozenset(stats)
        costs = []
        for group in module_groups(model, precision_groups):
            if not any(stats[n].ops for n in group.layers - set(keep)):
                continue   # already pinned, or runs no ops of its own (a ModuleList)
            # Only this group in float16 (overflow pins stay float32): the rounding it adds by itself.
            alone = _worst_psnr(reference, emulate((everything - group.layers) | set(keep)), value_range)
            costs.append((alone, group))
        for alone, group in sorted(costs, key=lambda c: c[0]):
            keep += sorted(group.layers - set(keep))
            chosen.append((group.label, alone))
            psnr_pinned = _worst_psnr(reference, emulate(keep), value_range)
            if psnr_pinned >= target_db:
                break

    return FP16Report(layers=stats, fp32_layers=keep, psnr_fp16=psnr_fp16, psnr_pinned=psnr_pinned,
                      target_db=target_db, frames=len(inputs),
                      frame_size=(int(frames.shape[-2]), int(frames.shape[-1])),
                      overflow_layers=overflow_layers, precision_groups=chosen)

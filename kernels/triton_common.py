"""Plumbing shared by the Triton kernels: launch flavour, tensor views, block sizes, compile specs.

Imported only by the ``kernels/triton_*`` modules, so it may import triton at the top.

Two things here exist because of how triton 3.x works rather than because of our maths:

- ``@triton.jit`` decides *at decoration* whether a function is compiled or run by the interpreter
  (it reads ``TRITON_INTERPRET`` then), and that includes triton's own library functions
  (``tl.max``, ``tl.sum``, ``tl.zeros``, ``tl.sigmoid`` live in ``triton.language.standard`` as
  ``@jit`` functions, fixed when triton is first imported). A process often imports triton long
  before a test sets ``TRITON_INTERPRET=1`` (``torch.utils.flop_counter`` imports it). So
  :func:`launchable` runs a kernel in the flavour the environment asks for *now*: it re-wraps the
  kernel, and for the duration of the launch swaps those library functions to the same flavour
  (:func:`stdlib_flavour`). :meth:`KernelSpec.compile` does the same in the other direction, so
  the sm_87/sm_90 compile check works in an interpreting process. Kernels therefore call our own
  ``@triton.jit`` helpers only through the :mod:`kernels.triton_tiles` module, whose functions are
  swapped with triton's.
- Triton 3.9 warns that FMA contraction flips from on to off in 3.10; :data:`LAUNCH_OPTIONS` pins it
  on, so numerics do not change when triton is upgraded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import triton
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

# Passed to every launch and every ahead-of-time compile.
LAUNCH_OPTIONS: dict[str, Any] = {"enable_fp_fusion": True}

# Dtypes the kernels are written for. float64 is for gradcheck under the interpreter (``auto`` never
# sends it to Triton); bfloat16 is checked on GPUs only (the interpreter's bf16 tl.dot is wrong).
KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

TRITON_TYPE = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", torch.float64: "fp64"}

_flavours: dict[tuple[int, bool], Any] = {}


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _is_jit_object(obj: Any) -> bool:
    return isinstance(obj, (JITFunction, InterpretedFunction))


def _in_flavour(obj: Any, interpret: bool) -> Any:
    """``obj`` (a @triton.jit function of either flavour) as an interpreted or a compiled function."""
    if interpret == isinstance(obj, InterpretedFunction):
        return obj
    key = (id(obj), interpret)
    if key not in _flavours:
        fn = getattr(obj, "fn", None)
        if fn is None:
            raise TypeError(f"expected a @triton.jit function, got {type(obj).__name__}")
        _flavours[key] = InterpretedFunction(fn) if interpret else JITFunction(fn)
    return _flavours[key]


@contextmanager
def stdlib_flavour(interpret: bool) -> Iterator[None]:
    """Within the block, the @jit library functions kernels call have this flavour: triton's own
    (tl.max, tl.sum, ...) and ours in :mod:`kernels.triton_tiles`."""
    import triton.language as tl
    from triton.language import standard

    from . import triton_tiles

    swapped: list[tuple[Any, str, Any]] = []
    for module in (standard, tl, triton_tiles):
        for name, obj in list(vars(module).items()):
            if _is_jit_object(obj) and isinstance(obj, InterpretedFunction) != interpret:
                swapped.append((module, name, obj))
                setattr(module, name, _in_flavour(obj, interpret))
    try:
        yield
    finally:
        for module, name, obj in reversed(swapped):
            setattr(module, name, obj)


@contextmanager
def _undo_language_patches() -> Iterator[None]:
    """Put back whatever the interpreter patched into ``triton.language`` during the block.

    The interpreter patches the language while a kernel runs and restores it afterwards, except for
    nested calls of interpreted library functions (``InterpretedFunction.__call__`` drops its patch
    scope): without this, a later compile in the same process would trace with interpreter semantics.
    """
    import triton.language as tl
    from triton.language import core, math, standard

    modules: list[Any] = [tl, core, math, standard]
    classes: list[Any] = [core.tensor, core.dtype, core.condition, core.tensor_descriptor_base]
    saved = [(owner, dict(vars(owner))) for owner in modules + classes]
    try:
        yield
    finally:
        for owner, before in saved:
            now = vars(owner)
            # Names the interpreter *adds* to a module's globals (its helpers, which its cached
            # rewritten functions look up there) stay; patched class members go.
            if owner in classes:
                for name in [n for n in now if n not in before]:
                    delattr(owner, name)
            for name, value in before.items():
                if now.get(name, _MISSING) is not value:
                    setattr(owner, name, value)


_MISSING = object()


class _Launcher:
    """``kernel[grid](...)`` in a fixed flavour, with triton's library functions in the same one."""

    def __init__(self, kernel: Any, interpret: bool) -> None:
        self.kernel = _in_flavour(kernel, interpret)
        self.interpret = interpret

    def __getitem__(self, grid: tuple[int, ...]) -> Callable[..., Any]:
        def launch(*args: Any, **kwargs: Any) -> Any:
            if not self.interpret:
                with stdlib_flavour(False):
                    return self.kernel[grid](*args, **kwargs)
            with _undo_language_patches(), stdlib_flavour(True):
                return self.kernel[grid](*args, **kwargs)

        return launch


def launchable(kernel: Any) -> _Launcher:
    """The kernel, launchable in the flavour ``TRITON_INTERPRET`` asks for at this moment."""
    return _Launcher(kernel, _interpreting())


def compilable(kernel: Any) -> JITFunction:
    """A ``JITFunction`` for ``triton.compile``, whatever flavour the kernel was decorated in.

    Compile inside ``stdlib_flavour(False)`` (as :meth:`KernelSpec.compile` does).
    """
    compiled = _in_flavour(kernel, False)
    assert isinstance(compiled, JITFunction)
    return compiled


def block_size(n: int, minimum: int = 16) -> int:
    """Power-of-two block covering ``n``; at least 16 because ``tl.dot`` needs M, N, K >= 16 on GPUs."""
    return max(minimum, triton.next_power_of_2(max(int(n), 1)))


def accumulator(dtype: torch.dtype) -> Any:
    """Triton accumulator type: fp32, or fp64 for float64 inputs (gradcheck needs real fp64 sums)."""
    import triton.language as tl

    return tl.float64 if dtype == torch.float64 else tl.float32


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Precision of the PyTorch-side backward maths: fp32 for 16/32-bit tensors, fp64 for fp64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def dot_precision(dtype: torch.dtype) -> str:
    # fp32 inputs would silently get TF32 (10-bit mantissa) on GPUs; the reference is exact fp32.
    return "ieee" if dtype in (torch.float32, torch.float64) else "tf32"


def persistent_programs(device: torch.device, tiles: int, per_sm: int = 3) -> int:
    """Grid size for a persistent kernel: enough programs to fill the GPU, each looping over tiles.

    Three per SM: the 128-channel pixel-attention kernel (76 registers x 256 threads, 40 KB shared
    memory) fits three times in an sm_87 or sm_90 SM. On CPU (interpreter) two programs, so CI runs
    the multi-tile loop that GPUs rely on.
    """
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        return max(1, min(tiles, sms * per_sm))
    return max(1, min(tiles, 2))


@dataclass(frozen=True)
class PixelView:
    """A (B, C, H, W) tensor addressed as ``base + b*stride_b + c*stride_c + p*stride_p``, p = h*W + w.

    Both NCHW-contiguous (stride_p = 1) and channels-last (stride_c = 1) tensors have this form, so one
    kernel serves both layouts without a copy.
    """

    tensor: torch.Tensor
    stride_b: int
    stride_c: int
    stride_p: int

    @property
    def batch(self) -> int:
        return self.tensor.shape[0]

    @property
    def channels(self) -> int:
        return self.tensor.shape[1]

    @property
    def pixels(self) -> int:
        return self.tensor.shape[2] * self.tensor.shape[3]

    @property
    def strides(self) -> tuple[int, int, int]:
        return self.stride_b, self.stride_c, self.stride_p


def _pixel_strides(t: torch.Tensor) -> tuple[int, int, int] | None:
    _, _, h, w = t.shape
    sb, sc, sh, sw = t.stride()
    # Strides of size-1 dimensions carry no information, so only the dimensions that move count.
    sp = sw if w > 1 else (sh if h > 1 else 1)
    if h > 1 and sh != w * sp:
        return None
    return sb, sc, sp


def pixel_view(t: torch.Tensor, name: str = "tensor") -> PixelView:
    """View ``t`` (B, C, H, W) for the kernels; copies only layouts that are neither NCHW nor NHWC."""
    if t.dim() != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(t.shape)}")
    strides = _pixel_strides(t)
    if strides is None:
        t = t.contiguous()
        strides = _pixel_strides(t)
        assert strides is not None
    return PixelView(t, *strides)


def empty_like_view(view: PixelView, channels: int | None = None,
                    dtype: torch.dtype | None = None) -> PixelView:
    """A new tensor in the same layout (NCHW or channels-last) as ``view``."""
    b, c, h, w = view.tensor.shape
    c = c if channels is None else channels
    channels_last = view.stride_c == 1 and c > 1 and h * w > 1
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((b, c, h, w), device=view.tensor.device, dtype=dtype or view.tensor.dtype,
                      memory_format=fmt)
    return pixel_view(out)


@dataclass(frozen=True)
class Pointer:
    """A pointer argument of a compile spec: the element type, as triton spells it ("fp16")."""

    dtype: str


@dataclass
class KernelSpec:
    """One kernel configuration as it launches on a GPU, for compile-only checks and AOT export.

    ``args`` maps every runtime parameter to an example value (a :class:`Pointer`, a tuple of them,
    an int or a float); :meth:`source` specialises them the way the JIT launcher does (ints equal
    to 1 become constants, pointers and multiples of 16 are marked 16-divisible).
    """

    name: str
    kernel: Any
    args: Mapping[str, Any]
    constexprs: Mapping[str, Any]
    num_warps: int
    num_stages: int
    notes: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def source(self) -> Any:
        from triton.compiler import ASTSource

        fn = compilable(self.kernel)
        signature: dict[str, Any] = {}
        constexprs: dict[Any, Any] = {}
        attrs: dict[tuple[int, ...], list[list[Any]]] = {}
        for index, name in enumerate(fn.arg_names):
            if name in self.constexprs:
                signature[name] = "constexpr"
                constexprs[(index,)] = self.constexprs[name]
                continue
            if name not in self.args:
                raise KeyError(f"{self.name}: no example value for parameter {name!r}")
            value = self.args[name]
            if isinstance(value, tuple):
                signature[name] = tuple(f"*{p.dtype}" for p in value)
                for j in range(len(value)):
                    attrs[(index, j)] = [["tt.divisibility", 16]]
            elif isinstance(value, Pointer):
                signature[name] = f"*{value.dtype}"
                attrs[(index,)] = [["tt.divisibility", 16]]
            elif isinstance(value, bool) or value is None:
                signature[name] = "constexpr"
                constexprs[(index,)] = value
            elif isinstance(value, int):
                if value == 1:
                    signature[name] = "constexpr"
                    constexprs[(index,)] = 1
                else:
                    signature[name] = "i32" if -2**31 <= value < 2**31 else "i64"
                    if value % 16 == 0:
                        attrs[(index,)] = [["tt.divisibility", 16]]
            elif isinstance(value, float):
                signature[name] = "fp32"
            else:
                raise TypeError(f"{self.name}: unsupported example value for {name!r}: {value!r}")
        return ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)

    def compile(self, capability: int) -> Any:
        """``triton.compile`` for ``sm_<capability>``; needs no GPU (the wheel bundles ptxas)."""
        from triton.backends.compiler import GPUTarget

        options = {"num_warps": self.num_warps, "num_stages": self.num_stages, **LAUNCH_OPTIONS, **self.options}
        with stdlib_flavour(False):
            return triton.compile(self.source(), target=GPUTarget("cuda", capability, 32), options=options)

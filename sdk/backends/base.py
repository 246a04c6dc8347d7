"""The one interface every inference backend implements, and the errors they raise.

A backend runs a network on a batch that is already pre-processed: ``(N, C, H, W)`` float32 in the
model's value range and colour order, H and W already multiples of ``manifest.pad_multiple``.
Everything about frames (colour, dtype, padding, tiling) lives in :mod:`sdk.processing` and
:mod:`sdk.tiling`, written once for all backends.

Example (a backend of your own plugs into :class:`sdk.Deblurrer` directly)::

    >>> class Identity(Backend):
    ...     name, device, precision = "identity", "cpu", "fp32"
    ...     def __init__(self):
    ...         self.manifest = Manifest(architecture="identity", variant="identity",
    ...                                  value_range=(0.0, 1.0), pad_multiple=1, residual="none")
    ...     def infer(self, batch, out):
    ...         out[...] = batch
    >>> sdk.Deblurrer(Identity()).process(frame)  # doctest: +SKIP
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..manifest import Manifest, ShapeProfile


class ModelLoadError(ValueError):
    """A model file exists but cannot be used: corrupt, truncated, or not the kind its name says."""


class EngineCompatibilityError(RuntimeError):
    """A TensorRT engine was built by another TensorRT version or for another GPU; the message says how to rebuild."""


class NonFiniteOutputError(FloatingPointError):
    """The network produced NaN or Inf (typically FP16 overflow); returning it would give a black frame."""


@dataclass(frozen=True)
class ShapeLimits:
    """The batch/height/width range a backend accepts (an engine's optimisation profile)."""

    min_batch: int = 1
    max_batch: int | None = None        # None: no limit
    min_hw: tuple[int, int] = (1, 1)
    max_hw: tuple[int, int] | None = None

    @classmethod
    def from_profile(cls, profile: ShapeProfile | None) -> ShapeLimits:
        if profile is None:
            return cls()
        return cls(min_batch=profile.min[0], max_batch=profile.max[0],
                   min_hw=(profile.min[1], profile.min[2]), max_hw=(profile.max[1], profile.max[2]))

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` naming the accepted range when ``(N, C, H, W)`` falls outside it."""
        n, _, h, w = shape
        too_small = n < self.min_batch or h < self.min_hw[0] or w < self.min_hw[1]
        too_big = (self.max_batch is not None and n > self.max_batch) or (
            self.max_hw is not None and (h > self.max_hw[0] or w > self.max_hw[1]))
        if too_small or too_big:
            hi = f"{self.max_batch}x{self.max_hw[0]}x{self.max_hw[1]}" if self.max_hw else "unbounded"
            raise ValueError(
                f"input batch x height x width {n}x{h}x{w} is outside the model's profile "
                f"[{self.min_batch}x{self.min_hw[0]}x{self.min_hw[1]} .. {hi}]; "
                "sdk.Deblurrer pads and tiles frames to fit it"
            )


class Backend(abc.ABC):
    """Runs a network on pre-processed NCHW float32 batches.

    Subclasses set ``manifest``, ``name`` ("tensorrt", "onnxruntime", "torch", ...), ``device`` and
    ``precision``, and implement :meth:`infer`. Backends need not be thread-safe:
    :class:`sdk.Deblurrer` serialises calls to one backend with a lock.
    """

    manifest: Manifest
    name: str = "backend"
    device: str = "cpu"
    precision: str = "fp32"
    limits: ShapeLimits = ShapeLimits()
    # Where the manifest came from ("metadata_props", "sidecar", "checkpoint", "defaults"): shown by `deblur info`.
    manifest_source: str = "given"

    @abc.abstractmethod
    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        """Run the network on ``batch`` (N, C, H, W) float32 and write the final image into ``out``.

        ``out`` is float32 of the same N, H, W with ``manifest``'s output channels; the caller owns it
        and reuses it across calls, so backends never allocate per frame for their result.
        """

    def warmup(self, height: int = 256, width: int = 256, batch: int = 1) -> None:
        """Run the network once on a mid-grey batch of this size, so that the first real frame does not
        pay for lazy initialisation (kernel selection, per-size compilation, allocation)."""
        shape = (batch, self.manifest.in_channels, height, width)
        self.limits.check(shape)
        mid = sum(self.manifest.value_range) / 2
        self.infer(np.full(shape, mid, np.float32), np.empty(shape, np.float32))

    def device_call(self, batch: np.ndarray) -> Callable[[], None]:
        """A call that runs the network on ``batch`` already resident on the backend's device, leaving the
        output there: what the accelerator alone costs (``deblur bench``'s "device" column).

        The input is moved to the device once, here. Backends whose device is host memory (CPU) run
        :meth:`infer` on fixed buffers, which is the same work; GPU backends override this.
        """
        self.limits.check(batch.shape)
        source = np.ascontiguousarray(batch, dtype=np.float32)
        out = np.empty(source.shape, np.float32)
        return lambda: self.infer(source, out)

    def fp32_fallback(self) -> Backend:
        """A float32 twin of this backend, used when reduced precision overflows; raise when there is none."""
        raise NonFiniteOutputError(
            f"the {self.name} backend ({self.precision}) has no float32 fallback; rebuild the model in fp32"
        )

    def describe(self) -> dict[str, str]:
        """Extra facts for ``Deblurrer.info`` (execution providers, engine version, ...)."""
        return {}

    def close(self) -> None:  # noqa: B027 — optional hook: backends without resources keep the default
        """Release device memory and sessions; the backend is unusable afterwards."""


def default_manifest(variant: str, *, input_name: str = "input", output_name: str = "output") -> Manifest:
    """What the runtime assumes for a model that carries no manifest (said in a warning every time)."""
    return Manifest(architecture="unknown", variant=variant or "unknown", value_range=(0.0, 1.0), pad_multiple=8,
                    input_name=input_name, output_name=output_name, final_output=output_name, residual="none")


def missing_manifest_warning(path: str, manifest: Manifest) -> str:
    return (
        f"{path} carries no deblur manifest; assuming value_range={manifest.value_range}, "
        f"pad_multiple={manifest.pad_multiple}, colour {manifest.color_order}, the output is the image. "
        "Export with `deblur export` (or write a manifest beside it with sdk.Manifest.write_sidecar) to be sure"
    )


# A model tensor as the image-to-image check sees it: its name and (N, C, H, W) dims, None where dynamic.
TensorInfo = tuple[str, tuple[int | None, ...]]


def check_image_to_image(path: object, manifest: Manifest, manifest_source: str, inputs: Sequence[TensorInfo],
                         outputs: Sequence[TensorInfo], chosen_input: TensorInfo, chosen_output: TensorInfo) -> None:
    """Refuse at load what would fail (or do nothing) at the first frame, whatever the backend: the model
    must take one NCHW image and give one back with the same channels and, where the graph says, size."""
    where = f"{path} is not an image-to-image model the manifest describes"
    if len(inputs) != 1:
        raise ModelLoadError(f"{where}: it has {len(inputs)} inputs {[n for n, _ in inputs]}; expected one "
                             f"(N, {manifest.in_channels}, H, W) image")
    if manifest_source == "defaults" and len(outputs) != 1:
        raise ModelLoadError(f"{where}: without a manifest naming its final output it must have one output, "
                             f"this one has {[n for n, _ in outputs]}")
    for (name, shape), kind in ((chosen_input, "input"), (chosen_output, "output")):
        if len(shape) != 4:
            raise ModelLoadError(f"{where}: {kind} {name!r} has shape {list(shape)}; expected (N, C, H, W)")
        if shape[1] is not None and shape[1] != manifest.in_channels:
            raise ModelLoadError(f"{where}: {kind} {name!r} has {shape[1]} channels; expected "
                                 f"{manifest.in_channels} (manifest in_channels; the output is an image like the input)")
    for axis, label in ((2, "height"), (3, "width")):
        a, b = chosen_input[1][axis], chosen_output[1][axis]
        if b is not None and b > 0 and a != b:
            raise ModelLoadError(f"{where}: output {chosen_output[0]!r} has a fixed {label} of {b} but the input's "
                                 f"{label} is {a if a is not None else 'dynamic'}; expected the output the size of the input")

"""``sdk.Deblurrer``: one object per model, one call per frame.

Example::

    >>> import sdk
    >>> deblur = sdk.Deblurrer("rdafnet-nano.engine")     # or "model.onnx", "model.pt", "small", or nothing
    >>> sharp = deblur.process(frame)                      # HxWx3 uint8 BGR in, the same out
    >>> sharp_batch = deblur.process_batch([frame1, frame2])
    >>> print(deblur.info)

Threads: :meth:`Deblurrer.process` may be called from several threads at once. Buffers come from a
thread-safe pool (each call borrows its own and gives them back), and a lock serialises calls into the
backend (one TensorRT execution context / ONNX Runtime binding), so pre- and post-processing of one
frame overlap with inference of another. ``prepare`` / ``infer`` / ``finish`` split one call into its
three stages for pipelines such as :func:`sdk.run`.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import Backend, ModelLoadError, NonFiniteOutputError, open_backend
from .bundled import resolve_model
from .manifest import Manifest
from .processing import COLORS, ArrayPool, FrameConverter, FrameSpec, inspect_frame, padded_size
from .tiling import (
    TilePlan,
    blend_tiles,
    choose_tile,
    exact_overlap,
    fit_overlap,
    overlap_for_model,
    plan_tiles,
)

# Without a profile, frames above this many pixels are tiled: a 1080p frame runs whole, 4K in tiles,
# which bounds the activations a full-resolution deblurring network allocates.
DEFAULT_MAX_PIXELS = 1920 * 1088
NONFINITE_POLICIES = ("raise", "fp32")
MIN_COARSE_PIXELS = 2   # reflect padding of a 3x3 convolution needs two pixels on every feature map


@dataclass
class PreparedFrame:
    """A frame between :meth:`Deblurrer.prepare` and :meth:`Deblurrer.finish`: its model tensors and timings."""

    frame: np.ndarray
    spec: FrameSpec
    planes: np.ndarray                  # the model input (P, Hp, Wp), borrowed from the Deblurrer's pool
    output: np.ndarray | None = None    # the network's answer, same shape; borrowed by infer()
    timings: dict[str, float] = field(default_factory=dict)

    def buffers(self) -> list[np.ndarray]:
        return [a for a in (self.planes, self.output) if a is not None]


@dataclass(frozen=True)
class DeblurrerInfo:
    """What runs: the manifest, and the backend, device and precision it runs on."""

    model: str
    manifest: Manifest
    manifest_source: str
    backend: str
    device: str
    precision: str
    details: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        m = self.manifest
        lines = [
            f"model         {self.model}",
            f"backend       {self.backend} on {self.device}, {self.precision}",
            f"network       {m.architecture} / {m.variant}",
            f"tensors       {m.input_name} -> {m.final_output} ({m.layout}, {m.in_channels} channels, {m.color_order})",
            f"value range   {m.value_range[0]:g} .. {m.value_range[1]:g}, residual={m.residual}",
            f"pad multiple  {m.pad_multiple}",
            f"manifest      from {self.manifest_source}",
        ]
        if m.shape_profile is not None:
            p = m.shape_profile
            lines.append("profile       " + "  ".join(f"{k} {v[0]}x{v[1]}x{v[2]}" for k, v in
                                                     (("min", p.min), ("opt", p.opt), ("max", p.max))))
        if m.toolchain:
            lines.append("built with    " + ", ".join(f"{k} {v}" for k, v in sorted(m.toolchain.items())))
        lines += [f"{k:<13} {v}" for k, v in self.details.items()]
        return "\n".join(lines)


class Deblurrer:
    """Deblur frames with a TensorRT engine, an ONNX model, a PyTorch checkpoint or a bundled model.

    Args:
        model: ``.engine``/``.plan`` (TensorRT), ``.onnx`` (ONNX Runtime or OpenVINO), ``.xml`` (OpenVINO
            IR), ``.pt`` (PyTorch), a :class:`sdk.backends.Backend` instance, a bundled model's name
            (``"small"``: see :func:`sdk.bundled_models`), or ``None`` for the bundled default.
        backend: "auto" (the first installed backend in :data:`sdk.backends.REGISTRY` that opens the file
            on the device: an ``.onnx`` runs on OpenVINO on a CPU-only machine where it is installed, else
            ONNX Runtime), "tensorrt", "openvino", "onnxruntime" or "torch".
        device: "auto", "cpu", "cuda", "cuda:N", or "tensorrt" (ONNX Runtime's TensorRT provider).
        tile: ``None`` tiles only frames larger than the model's profile or ``max_pixels``; an int or
            ``(h, w)`` forces tiles of that size (kept inside the model's profile).
        tile_overlap: pixels shared by neighbouring tiles (blended with cosine ramps); raised to four
            times the manifest's ``receptive_field`` for a local network, so that its tiles equal the
            whole frame; reduced, with a warning, when the model's largest input cannot hold it twice.
            Models with per-image statistics (manifest ``tile_exact=False``) warn when they are tiled.
        color: channel order of the frames you pass and get back, "bgr" (OpenCV) or "rgb".
        precision: ``None`` runs the artefact's own precision; "fp16" asks ONNX Runtime's TensorRT
            provider or the PyTorch backend for half precision; "bf16" asks OpenVINO (CPUs with AVX-512
            BF16 or AMX) or PyTorch for bfloat16; "int8" runs an OpenVINO IR quantised by ``deblur export``.
        on_nonfinite: "raise" (NaN/Inf in an output raise :class:`NonFiniteOutputError`) or "fp32"
            (switch once to a float32 twin of the backend and recompute).
        max_pixels: the memory budget, in pixels, above which frames are tiled.
        backend_options: passed to the backend (e.g. ``threads=2`` for ONNX Runtime, ``cuda_graph=True``
            for TensorRT; ``manifest=sdk.Manifest(...)`` for a TensorRT plan that carries none).
    """

    def __init__(self, model: str | os.PathLike[str] | Backend | None = None, *, backend: str = "auto",
                 device: str = "auto", tile: int | tuple[int, int] | None = None, tile_overlap: int = 32,
                 color: str = "bgr", precision: str | None = None, on_nonfinite: str = "raise",
                 max_pixels: int | None = None, **backend_options: Any) -> None:
        if color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {color!r}")
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"on_nonfinite must be one of {NONFINITE_POLICIES}, got {on_nonfinite!r}")
        if tile_overlap < 0:
            raise ValueError(f"tile_overlap must be >= 0, got {tile_overlap}")
        self.color = color
        self.on_nonfinite = on_nonfinite
        self._requested_overlap = int(tile_overlap)
        self._tile = self._check_tile(tile)
        if isinstance(model, Backend):
            self._backend, self.model_path = model, f"<{type(model).__name__}>"
        else:
            path = resolve_model(model)
            self._backend = open_backend(path, backend=backend, device=device, precision=precision,
                                         **backend_options)
            self.model_path = str(path)
        self.manifest: Manifest = self._backend.manifest
        limits = self._backend.limits
        if limits.min_batch > 1:
            if not isinstance(model, Backend):   # a backend the caller passed in stays the caller's to close
                self._backend.close()
            raise ModelLoadError(
                f"{self.model_path} takes a fixed batch of {limits.min_batch} frames, but sdk.Deblurrer runs one "
                "frame per call (and batches of any size up to the maximum): export it with batch 1 or a dynamic "
                "batch axis (`deblur export`)")
        self.max_pixels = max_pixels if max_pixels is not None else (
            None if limits.max_hw is not None else DEFAULT_MAX_PIXELS)
        self._lock = threading.Lock()
        self._converter = FrameConverter(self.manifest, color=color)
        self._pool = ArrayPool()
        # Tile plans per padded size, shared by every thread that calls process(); guarded by _plans_lock.
        self._plans: dict[tuple[int, int], TilePlan | None] = {}
        self._plans_lock = threading.Lock()
        self._warned_inexact_tiles = False
        self.tile_overlap = self._fit_overlap(limits)
        if self._backend.manifest_source == "defaults":
            self._refuse_pass_through(close=not isinstance(model, Backend))

    def _fit_overlap(self, limits: Any) -> int:
        """The requested overlap, raised to what makes tiles exact for a local network of known receptive
        field (manifest), then fitted into the largest tile: the model's, or the caller's forced ``tile``
        when smaller (with a warning when reduced)."""
        m = self.manifest
        wanted = overlap_for_model(self._requested_overlap, m.receptive_field, m.tile_exact, m.pad_multiple)
        largest, whose = limits.max_hw, "the model's largest tile"
        if self._tile is not None and wanted >= min(self._tile) // m.pad_multiple * m.pad_multiple:
            # plan_tiles takes any overlap below the tile; one at or above it would make every tiled frame
            # raise, so fit it as into a model's largest tile (twice the overlap plus one multiple).
            cap = limits.max_hw or self._tile
            largest = (min(self._tile[0], cap[0]), min(self._tile[1], cap[1]))
            whose = f"tile={largest[0]}x{largest[1]}"
        radius = m.receptive_field if m.tile_exact is not False else None
        # For a network of known reach the warning below says more than fit_overlap's would.
        fitted = fit_overlap(wanted, largest, m.pad_multiple, warn=radius is None)
        if radius is not None and fitted < exact_overlap(radius, m.pad_multiple):
            warnings.warn(f"{m.variant}: its receptive field ({radius} px) needs tile_overlap >= "
                          f"{exact_overlap(radius, m.pad_multiple)} for tiles to equal the whole frame; "
                          f"{whose} allows {fitted}, so tiled frames may show seams",
                          UserWarning, stacklevel=4)
        return fitted

    def _warn_inexact_tiles(self, plan: TilePlan) -> None:
        if self.manifest.tile_exact is not False or self._warned_inexact_tiles:
            return
        self._warned_inexact_tiles = True
        warnings.warn(f"{self.manifest.variant} normalises with per-image statistics (manifest tile_exact=false: "
                      f"InstanceNorm or global pooling), so the {plan.count} tiles of a {plan.height}x{plan.width} "
                      "frame each see other statistics than the whole frame and the result can show seams; "
                      "avoid tiling (tile=None, a larger max_pixels or engine profile) where that matters",
                      UserWarning, stacklevel=5)

    def _refuse_pass_through(self, *, close: bool) -> None:
        """A model without a manifest that returns its input unchanged (an Identity graph, an export of the
        wrong module) would look like it works: probe it once and refuse it."""
        m = self.manifest
        h, w = padded_size(*self._min_hw(), m.pad_multiple, self._min_hw())
        h, w = padded_size(max(h, 16), max(w, 16), m.pad_multiple)
        if self._backend.limits.max_hw is not None:
            h, w = min(h, self._backend.limits.max_hw[0]), min(w, self._backend.limits.max_hw[1])
        lo, hi = m.value_range
        probe = np.random.default_rng(0).uniform(lo, hi, (1, m.in_channels, h, w)).astype(np.float32)
        out = np.zeros_like(probe)
        try:
            self._backend.infer(probe, out)
        except Exception as exc:  # noqa: BLE001 - the model cannot run at all: same verdict, with its reason
            reason = f"it fails on a {tuple(probe.shape)} probe input: {exc}"
        else:
            if not np.array_equal(out, probe):
                return
            reason = "it returns its input unchanged (an Identity graph?)"
        if close:
            self._backend.close()
        raise ModelLoadError(f"{self.model_path} carries no manifest and {reason}; this is not a deblurring model. "
                             "Export it with `deblur export`, or write a manifest beside it (sdk.Manifest.write_sidecar)")

    @staticmethod
    def _check_tile(tile: int | tuple[int, int] | None) -> tuple[int, int] | None:
        if tile is None:
            return None
        size = (tile, tile) if isinstance(tile, int) else tuple(tile)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"tile must be None, a positive int or (height, width), got {tile!r}")
        return size[0], size[1]

    # ------------------------------------------------------------------ public API
    @property
    def info(self) -> DeblurrerInfo:
        b = self._backend
        return DeblurrerInfo(self.model_path, b.manifest, b.manifest_source, b.name, b.device, b.precision,
                             b.describe())

    @property
    def backend(self) -> Backend:
        return self._backend

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Deblur one frame; the result has the frame's shape, dtype and channel order."""
        return self.finish(self.infer(self.prepare(frame)))

    __call__ = process

    def process_timed(self, frame: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """:meth:`process` plus the seconds spent in "pre", "infer" and "post"."""
        job = self.infer(self.prepare(frame))
        return self.finish(job), job.timings

    # A frame in three stages, so that a pipeline (sdk.run) can pre-process the next frame and
    # post-process the previous one while the accelerator works on this one.
    def prepare(self, frame: np.ndarray) -> PreparedFrame:
        """Stage 1: check the frame and convert it to the model's tensor (buffers from a pool)."""
        t0 = time.perf_counter()
        spec = inspect_frame(frame, color=self.color)
        hw = self._padded(spec)
        shape = self._converter.planes_shape(spec, hw)
        # Only the input is borrowed here: frames waiting in a pipeline's queue hold one buffer, not two.
        job = PreparedFrame(frame, spec, self._converter.to_model(frame, spec, self._pool.take(shape)))
        job.timings["pre"] = time.perf_counter() - t0
        return job

    def infer(self, job: PreparedFrame) -> PreparedFrame:
        """Stage 2: run the network on a prepared frame (tiled when it is too large); returns ``job``."""
        t0 = time.perf_counter()
        conv = self._converter
        if job.output is None:
            job.output = self._pool.take(job.planes.shape)
        plan = self._plan(job.planes.shape[1:])
        if plan is None:
            self._run_backend(conv.batch_view(job.planes), conv.batch_view(job.output))
        else:
            tile_shape = (job.planes.shape[0], plan.tile_h, plan.tile_w)
            tile_in, tile_out = self._pool.take(tile_shape), self._pool.take(tile_shape)
            try:
                blend_tiles(job.planes, job.output, plan,
                            lambda tin, tout: self._run_backend(conv.batch_view(tin), conv.batch_view(tout)),
                            tile_in, tile_out)
            finally:
                self._pool.give(tile_in, tile_out)
        job.timings["infer"] = time.perf_counter() - t0
        return job

    def finish(self, job: PreparedFrame) -> np.ndarray:
        """Stage 3: the network's answer in the frame's own format; the job's buffers go back to the pool."""
        t0 = time.perf_counter()
        if job.output is None:
            raise ValueError("finish() needs a job that infer() has run")
        try:
            result = self._converter.from_model(job.output, job.frame, job.spec, model_input=job.planes)
        finally:
            self._pool.give(*job.buffers())
        job.timings["post"] = time.perf_counter() - t0
        return result

    def release(self, job: PreparedFrame) -> None:
        """Give a prepared frame's buffers back without finishing it (a pipeline dropped the frame)."""
        self._pool.give(*job.buffers())

    def process_batch(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Deblur several frames; same-size frames share one backend call where the model allows a batch."""
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            frames = list(frames)
        if not isinstance(frames, Sequence):
            raise TypeError(f"process_batch expects a list of frames, got {type(frames).__name__}")
        specs = [inspect_frame(f, color=self.color) for f in frames]
        results: list[np.ndarray | None] = [None] * len(frames)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, spec in enumerate(specs):
            groups.setdefault((spec.height, spec.width, spec.channels, spec.dtype.str), []).append(i)
        max_batch = self._backend.limits.max_batch or len(frames)
        for indices in groups.values():
            spec = specs[indices[0]]
            hw = self._padded(spec)
            if self.manifest.in_channels != 3 or self._plan(hw) is not None or len(indices) == 1:
                for i in indices:
                    results[i] = self.process(frames[i])
                continue
            for start in range(0, len(indices), max_batch):
                chunk = indices[start:start + max_batch]
                for i, r in zip(chunk, self._run_batch([frames[i] for i in chunk], spec, hw)):
                    results[i] = r
        return [r for r in results if r is not None]

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Deblurrer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        b = self._backend
        return (f"Deblurrer({self.model_path!r}, backend={b.name!r}, device={b.device!r}, "
                f"precision={b.precision!r}, model={self.manifest.variant!r})")

    # ------------------------------------------------------------------ internals
    def _min_hw(self) -> tuple[int, int]:
        """The smallest input the network runs on: its profile's minimum, and at least two pixels on its
        coarsest feature map (a network that downsamples by ``pad_multiple`` reflect-pads there, which
        needs two), so 1x1 or 1x500 frames are padded up instead of failing inside the backend."""
        limits = self._backend.limits
        floor = MIN_COARSE_PIXELS * self.manifest.pad_multiple
        hi = limits.max_hw or (floor, floor)
        return min(max(limits.min_hw[0], floor), hi[0]), min(max(limits.min_hw[1], floor), hi[1])

    def _padded(self, spec: FrameSpec) -> tuple[int, int]:
        return padded_size(spec.height, spec.width, self.manifest.pad_multiple, self._min_hw())

    def _plan(self, size: tuple[int, ...]) -> TilePlan | None:
        """The tiling for a padded size, or None when the frame runs whole (cached per size)."""
        hw = (int(size[0]), int(size[1]))
        with self._plans_lock:
            if hw in self._plans:
                return self._plans[hw]
            plan = self._new_plan(hw)
            if len(self._plans) > 16:   # a stream of ever-changing sizes must not grow this without bound
                self._plans.clear()
            self._plans[hw] = plan
            return plan

    def _new_plan(self, hw: tuple[int, int]) -> TilePlan | None:
        limits = self._backend.limits
        multiple = self.manifest.pad_multiple
        tile: tuple[int, int] | None
        if self._tile is not None:
            lo = self._min_hw()
            hi = limits.max_hw or hw
            # A forced tile still has to be a size the model accepts.
            forced = tuple(min(hw[i], hi[i], max(lo[i], multiple, self._tile[i] // multiple * multiple))
                           for i in range(2))
            tile = (forced[0], forced[1]) if forced != hw else None
        else:
            tile = choose_tile(*hw, max_hw=limits.max_hw, max_pixels=self.max_pixels, overlap=self.tile_overlap,
                               multiple=multiple, min_hw=self._min_hw())
        if tile is None:
            return None
        plan = plan_tiles(*hw, tile=tile, overlap=self.tile_overlap, multiple=multiple)
        self._warn_inexact_tiles(plan)
        return plan

    def _run_backend(self, batch: np.ndarray, out: np.ndarray) -> None:
        with self._lock:
            backend = self._backend
            backend.infer(batch, out)
            if _finite(out):
                return
            if self.on_nonfinite != "fp32" or backend.precision == "fp32":
                raise NonFiniteOutputError(
                    f"the {backend.name} backend ({backend.precision}) produced NaN/Inf for a {tuple(batch.shape)} "
                    "input; returning it would give a black frame. "
                    + ("Pass on_nonfinite='fp32' to fall back to float32." if backend.precision != "fp32"
                       else "The model itself overflows in float32: check the model and its input range."))
            warnings.warn(f"{backend.name} ({backend.precision}) produced NaN/Inf; switching to float32",
                          RuntimeWarning, stacklevel=4)
            fallback = backend.fp32_fallback()
            fallback.infer(batch, out)
            if not _finite(out):
                raise NonFiniteOutputError("the float32 fallback also produced NaN/Inf: the model itself is broken")
            self._backend = fallback
            backend.close()
            # The fallback has its own profile: plans and overlap made for the old one may not fit it.
            with self._plans_lock:
                self._plans.clear()
                self.tile_overlap = self._fit_overlap(fallback.limits)

    def _run_batch(self, frames: list[np.ndarray], spec: FrameSpec, hw: tuple[int, int]) -> list[np.ndarray]:
        n = len(frames)
        batch, out = self._pool.take((n, 3, *hw)), self._pool.take((n, 3, *hw))
        try:
            for i, f in enumerate(frames):
                self._converter.to_model(f, spec, batch[i])
            self._run_backend(batch, out)
            return [self._converter.from_model(out[i], f, spec, model_input=batch[i]) for i, f in enumerate(frames)]
        finally:
            self._pool.give(batch, out)


def _finite(array: np.ndarray) -> bool:
    # One float32 reduction instead of an isfinite() mask: NaN and Inf propagate into the sum.
    return bool(np.isfinite(array.sum()))

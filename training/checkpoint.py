"""Model checkpoints: weights plus the manifest, written atomically, loaded with clear errors.

A checkpoint is a ``torch.save``'d dict::

    {"format": 1, "model_name": "rdafnet-nano", "model_kwargs": {...}, "state_dict": {...},
     "manifest": {...}, ...}                     # the trainer adds optimiser, scheduler, step, RNG, config

Everything in it loads with ``torch.load(weights_only=True)``, so opening a checkpoint never runs code.

Example::

    >>> model, manifest = load_model("runs/nano/best.pt")
    >>> manifest.value_range
    (-1.0, 1.0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sdk.files import atomic_write
from sdk.manifest import Manifest, ManifestError, file_sha256

from .models import DeblurNet, build

CHECKPOINT_FORMAT = 1


# Single-stage RDAFNet checkpoints from before the ``norm`` option record no norm: all were InstanceNorm.
LEGACY_INSTANCE_NORM = ("rdafnet-single", "rdafnet-small", "rdafnet-nano")


def toolchain() -> dict[str, str]:
    return {"torch": torch.__version__.split("+")[0]}


# Layers that normalise or pool over the whole image: tiles of a network with any of them are each
# normalised by their own content and never equal the whole frame (the runtime warns when it tiles).
GLOBAL_STATISTICS = (torch.nn.InstanceNorm1d, torch.nn.InstanceNorm2d, torch.nn.InstanceNorm3d, torch.nn.GroupNorm,
                     torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool1d,
                     torch.nn.AdaptiveMaxPool2d)


def tile_exactness(model: torch.nn.Module) -> bool | None:
    """False when ``model`` has a layer with per-image statistics (:data:`GLOBAL_STATISTICS`); else its
    own ``tile_exact`` when it declares one; True when it declares a ``receptive_field``; else None
    (unknown: statistics computed in ``forward`` itself, such as ``x.mean((2, 3))``, are not visible here)."""
    if any(isinstance(m, GLOBAL_STATISTICS) for m in model.modules()):
        return False
    declared = getattr(model, "tile_exact", None)
    if declared is not None:
        return bool(declared)
    return True if getattr(model, "receptive_field", None) is not None else None


def model_manifest(model: DeblurNet, **fields: Any) -> Manifest:
    """The manifest describing ``model`` (built through ``training.models.build``)."""
    if not model.model_name:
        raise ValueError("model has no registry name: build it with training.models.build(name)")
    exact = tile_exactness(model)
    base = dict(
        architecture=model.architecture,
        variant=model.model_name,
        value_range=tuple(model.input_range),
        pad_multiple=int(model.pad_multiple),
        toolchain=toolchain(),
        # Per-image statistics reach the whole frame: no radius describes such a network.
        receptive_field=None if exact is False else getattr(model, "receptive_field", None),
        tile_exact=exact,
    )
    base.update(fields)
    return Manifest(**base)


def save_checkpoint(path: str | os.PathLike[str], model: DeblurNet, **extra: Any) -> Path:
    """Write ``model`` (and any ``extra`` entries) to ``path`` atomically: a temporary file, then a rename.

    A crash mid-write leaves the previous checkpoint intact, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_name": model.model_name,
        "model_kwargs": dict(model.model_kwargs),
        "state_dict": model.state_dict(),
        "manifest": model_manifest(model).to_dict(),
    }
    payload.update(extra)
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with errors that say what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupt/foreign files
        raise ValueError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {exc}") from None
    if not isinstance(ckpt, Mapping) or ckpt.get("format") != CHECKPOINT_FORMAT or "state_dict" not in ckpt:
        raise ValueError(
            f"{path} is not a deblur-sdk checkpoint (format {CHECKPOINT_FORMAT}); "
            "for the authors' own releases use training.models.from_official"
        )
    return dict(ckpt)


# What a model shipped to users keeps of a training checkpoint: enough to run, export and fine-tune it.
RELEASE_KEYS = ("format", "model_name", "model_kwargs", "manifest", "config", "step", "total_steps", "best_psnr",
                "val_psnr", "val_ssim")


def release_checkpoint(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the weights-only twin of a training checkpoint: its EMA weights (or its weights when it has
    none) as ``state_dict``, the manifest, config and validation scores, and the effective radius measured
    on those weights (:func:`weights_radius`); no optimiser, scheduler or RNG state (a quarter of the size:
    not resumable, but ``load_model``, export and ``--init-from`` take it).
    """
    ckpt = load_checkpoint(source)
    ema = ckpt.get("ema_state_dict")
    payload = {k: ckpt[k] for k in RELEASE_KEYS if k in ckpt}
    payload["state_dict"] = ema if ema is not None else ckpt["state_dict"]
    payload["released_from"] = {"file": Path(source).name, "sha256": file_sha256(source),
                                "weights": "ema" if ema is not None else "raw"}
    model, _ = load_model(source)
    if tile_exactness(model):   # unknown exactness (statistics in forward?): no radius describes it
        payload["effective_radius"] = weights_radius(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        torch.save(payload, tmp)
    return out


def weights_radius(model: DeblurNet) -> int | None:
    """The effective radius of ``model``'s weights (``training.receptive_field``), or None when its
    influence reaches past the probe: the runtime then keeps the overlap it is asked for."""
    from .receptive_field import measure_effective_radius

    try:
        return measure_effective_radius(model)
    except ValueError:
        return None


def load_model(path: str | os.PathLike[str], *, use_ema: bool = True,
               measure_radius: bool = False) -> tuple[DeblurNet, Manifest]:
    """Rebuild the network stored in a checkpoint, in eval mode, with its manifest.

    ``use_ema`` picks the exponential-moving-average weights when the checkpoint has them. The manifest's
    ``receptive_field`` is the radius measured on these weights when the checkpoint carries one (released
    checkpoints do); otherwise, with ``measure_radius`` (what export does: seconds on a CPU), it is measured
    now; otherwise it is the architecture's entry in the models' table of bundled checkpoints, if any.
    """
    ckpt = load_checkpoint(path)
    kwargs = dict(ckpt.get("model_kwargs", {}))
    if ckpt["model_name"] in LEGACY_INSTANCE_NORM and "norm" not in kwargs:
        kwargs["norm"] = "instance"   # written before single-stage RDAFNet had a norm option
    model = build(ckpt["model_name"], **kwargs)
    key = "ema_state_dict" if use_ema and ckpt.get("ema_state_dict") is not None else "state_dict"
    try:
        model.load_state_dict(ckpt[key])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit {ckpt['model_name']!r}: {exc}") from None
    try:
        manifest = Manifest.from_dict(ckpt["manifest"], source=str(path))
    except (KeyError, ManifestError) as exc:
        raise ValueError(f"{path}: checkpoint manifest is missing or invalid: {exc}") from None
    # Whether the runtime may tile at all is a fact of the architecture as this code knows it, not of the
    # moment the checkpoint was saved: older checkpoints get it too. How far tiles must overlap is a fact
    # of the weights: measured when the checkpoint was released, or now when asked.
    tiling = model_manifest(model)
    radius = tiling.receptive_field
    if tiling.tile_exact:
        if "effective_radius" in ckpt:
            radius = ckpt["effective_radius"]
        elif measure_radius:
            radius = weights_radius(model)
    manifest = manifest.replace(checkpoint_sha256=file_sha256(path), receptive_field=radius,
                                tile_exact=tiling.tile_exact)
    return model.eval(), manifest

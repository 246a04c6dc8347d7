"""The one registry of models by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .base import DeblurNet

Converter = Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., DeblurNet]
    paper: str
    summary: str
    # Maps a state_dict in the authors' own key layout onto ours; None where no official code exists.
    official_converter: Converter | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, paper: str, summary: str,
             official_converter: Converter | None = None) -> Callable[[Callable[..., DeblurNet]], Callable[..., DeblurNet]]:
    """Decorator registering ``factory(**overrides) -> DeblurNet`` under ``name``."""

    def wrap(factory: Callable[..., DeblurNet]) -> Callable[..., DeblurNet]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, factory, paper, summary, official_converter)
        return factory

    return wrap


def spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(list_models())}") from None


def list_models() -> list[str]:
    """Names of every registered model, in registration order."""
    return list(_REGISTRY)


def build(name: str, **overrides: object) -> DeblurNet:
    """Build a freshly initialised model by name; ``overrides`` go to its constructor.

    Example::

        >>> from training.models import build
        >>> net = build("rdafnet-small", num_blocks=4)
    """
    model = spec(name).factory(**overrides)
    # Recorded so that checkpoints and manifests can rebuild exactly this network.
    model.model_name = name
    model.model_kwargs = {**getattr(model, "recorded_kwargs", {}), **overrides}
    return model


def strip_module_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix DataParallel/DDP checkpoints carry."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()}


def unwrap_checkpoint(obj: object) -> Mapping[str, torch.Tensor]:
    """The authors' checkpoints are either a plain state_dict (MSAN) or hold it under ``state_dict`` (RDAFNet)."""
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("expected a state_dict (a mapping of names to tensors), or a dict holding one under 'state_dict'")
    return strip_module_prefix(obj)


def from_official(name: str, state_dict: Mapping[str, object], **overrides: object) -> nn.Module:
    """Build ``name`` and load a checkpoint in the authors' own key layout into it.

    Example::

        >>> ckpt = torch.load("GoPro.pth", map_location="cpu")       # RDAFNet's release
        >>> net = from_official("rdafnet-multi", ckpt).eval()
    """
    s = spec(name)
    if s.official_converter is None:
        raise ValueError(f"{name!r} has no official code release, so there is no official checkpoint layout to load")
    model = build(name, **overrides)
    ours = s.official_converter(unwrap_checkpoint(state_dict))
    missing, unexpected = model.load_state_dict(ours, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"official checkpoint does not fit {name!r}: missing {sorted(missing)[:5]}{'…' if len(missing) > 5 else ''}, "
            f"unexpected {sorted(unexpected)[:5]}{'…' if len(unexpected) > 5 else ''}"
        )
    return model

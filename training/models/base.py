"""What every network in the zoo promises the rest of the SDK."""

from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import nn


class DeblurNet(nn.Module, abc.ABC):
    """Base class of the model zoo.

    A subclass sets ``input_range`` (the range its input and output images live in), ``pad_multiple``
    (H and W must be multiples of it) and ``architecture``, and implements :meth:`forward_supervised`.

    - ``forward(x)`` returns the final restored image, in the input's range, same shape as ``x``.
    - ``forward_supervised(x)`` returns every supervised output, coarsest/earliest first and the
      final image last; multi-scale outputs may be smaller than ``x`` (losses resize the target).

    Example::

        >>> from training.models import build
        >>> net = build("rdafnet-nano").eval()
        >>> y = net(torch.zeros(1, 3, 64, 64))
        >>> tuple(y.shape)
        (1, 3, 64, 64)
    """

    architecture: ClassVar[str] = ""
    input_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    pad_multiple: ClassVar[int] = 1
    # Image-to-image networks are not critics; the GAN critic (bag-critic) sets this True.
    is_critic: ClassVar[bool] = False
    # Set by training.models.build: the registry name and constructor overrides that made this network.
    model_name: str = ""
    model_kwargs: dict = {}

    @abc.abstractmethod
    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every supervised output, the final restored image last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_supervised(x)[-1]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error if ``x`` is not a (B, 3, H, W) batch with H, W multiples of ``pad_multiple``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__} expects a (B, 3, H, W) tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.pad_multiple
        if h % m or w % m:
            raise ValueError(
                f"{type(self).__name__} needs H and W to be multiples of {m}, got {h}x{w}; "
                "use training.models.padding.forward_padded for any size"
            )

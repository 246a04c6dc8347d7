"""Fused kernels for the two attention patterns of the zoo, each beside its PyTorch reference.

``DEBLUR_KERNELS=auto|triton|reference`` picks the implementation (see :mod:`kernels.dispatch`).
"""

from .attention_fusion import attention_fusion, attention_fusion_reference
from .pixel_attention import pixel_attention, pixel_attention_reference
from .self_attention import self_attention, self_attention_reference

__all__ = [
    "attention_fusion",
    "attention_fusion_reference",
    "pixel_attention",
    "pixel_attention_reference",
    "self_attention",
    "self_attention_reference",
]

"""Fused kernels for the two attention patterns of the zoo, each beside its PyTorch reference.

``DEBLUR_KERNELS=auto|triton|reference`` picks the implementation (see :mod:`kernels.dispatch`).
Without triton installed the package still imports and runs the references (it warns once).

- public ops and references: :mod:`~kernels.pixel_attention`, :mod:`~kernels.attention_fusion`
  (also ``attention_fusion_with_map``), :mod:`~kernels.self_attention`;
- Triton implementations with autograd: ``kernels.triton_pixel_attention``,
  ``kernels.triton_attention_fusion``, ``kernels.triton_self_attention`` (imported on first use);
- ``python -m kernels.resource_usage``: registers/shared memory at sm_87 and sm_90, no GPU needed;
- deployment: :mod:`kernels.onnx_ops` (opt-in ``deblur`` custom ONNX nodes) and
  :mod:`kernels.trt_plugins` (TensorRT >= 10.6 plugins for them).
"""

from .attention_fusion import (
    attention_fusion,
    attention_fusion_reference,
    attention_fusion_with_map,
    attention_fusion_with_map_reference,
)
from .dispatch import warn_if_triton_missing
from .pixel_attention import pixel_attention, pixel_attention_reference
from .self_attention import self_attention, self_attention_reference

warn_if_triton_missing()

__all__ = [
    "attention_fusion",
    "attention_fusion_reference",
    "attention_fusion_with_map",
    "attention_fusion_with_map_reference",
    "pixel_attention",
    "pixel_attention_reference",
    "self_attention",
    "self_attention_reference",
]

"""PyTorch -> ONNX -> TensorRT: export, verification, FP16 safety analysis and the engine builder.

Modules: :mod:`export.onnx` (export + simplify + ORT parity), :mod:`export.opcheck` (TensorRT
operator support), :mod:`export.fp16` (float16 overflow analysis and emulation),
:mod:`export.tensorrt` (engine builder and cache). Nothing is imported here, so that
``export.tensorrt`` and ``export.opcheck`` work on a machine without PyTorch.
"""

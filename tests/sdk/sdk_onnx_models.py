"""Tiny ONNX models built with onnx.helper, so runtime tests never depend on a trained network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sdk.manifest import ONNX_METADATA_KEY, Manifest, ShapeProfile

# onnx >= 1.19 writes IR version 12+; ONNX Runtime reads up to its own maximum, and 10 is enough here.
IR_VERSION = 10
OPSET = 17


def manifest(**changes: object) -> Manifest:
    base = dict(architecture="test", variant="test-model", value_range=(0.0, 1.0), pad_multiple=8,
                residual="none")
    base.update(changes)
    return Manifest(**base)  # type: ignore[arg-type]


def _save(path: Path, nodes: list, *, initializers: list | None = None, meta: Manifest | None = None,
          channels: int = 3, elem: int = TensorProto.FLOAT, shape: list | None = None,
          out_name: str = "output") -> Path:
    dims = shape or ["N", channels, "H", "W"]
    x = helper.make_tensor_value_info("input", elem, dims)
    y = helper.make_tensor_value_info(out_name, elem, dims)
    return save_graph(path, nodes, [x], [y], initializers=initializers, meta=meta)


def save_graph(path: Path, nodes: list, inputs: list, outputs: list, *, initializers: list | None = None,
               meta: Manifest | None = None) -> Path:
    """A checked ONNX model of ``nodes`` with these input/output value infos (and the manifest, if any)."""
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    if meta is not None:
        model.metadata_props.append(onnx.StringStringEntryProto(key=ONNX_METADATA_KEY, value=meta.to_json()))
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def identity(path: Path, meta: Manifest | None = None, **kw: object) -> Path:
    return _save(path, [helper.make_node("Identity", ["input"], ["output"])], meta=meta, **kw)  # type: ignore[arg-type]


def affine(path: Path, scale: float, shift: float, meta: Manifest | None = None, channels: int = 3) -> Path:
    """y = x * scale + shift, a pure per-pixel function."""
    inits = [numpy_helper.from_array(np.float32(scale), "scale"), numpy_helper.from_array(np.float32(shift), "shift")]
    nodes = [helper.make_node("Mul", ["input", "scale"], ["scaled"]), helper.make_node("Add", ["scaled", "shift"], ["output"])]
    return _save(path, nodes, initializers=inits, meta=meta, channels=channels)


def affine_gray(path: Path, scale: float, shift: float, meta: Manifest | None = None) -> Path:
    """The affine model for one-channel networks (in_channels=1)."""
    return affine(path, scale, shift, meta, channels=1)


def affine_uint8(frame: np.ndarray, scale: float, shift: float, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """What the affine model must return for a uint8 frame, computed independently in float64."""
    x = lo + (hi - lo) * frame.astype(np.float64) / 255.0
    y = x * scale + shift
    return np.clip(np.round((y - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)


def channel_gain(path: Path, gains: tuple[float, float, float], meta: Manifest | None = None) -> Path:
    """Multiplies channel c (in the model's order) by gains[c]: reveals any channel-order mistake."""
    g = numpy_helper.from_array(np.asarray(gains, np.float32).reshape(1, 3, 1, 1), "gains")
    return _save(path, [helper.make_node("Mul", ["input", "gains"], ["output"])], initializers=[g], meta=meta)


def conv3x3(path: Path, meta: Manifest | None = None, seed: int = 0) -> Path:
    """A depthwise 3x3 convolution with zero padding: a small receptive field for seam tests."""
    w = conv3x3_weights(seed)
    node = helper.make_node("Conv", ["input", "w"], ["output"], group=3, pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    return _save(path, [node], initializers=[numpy_helper.from_array(w, "w")], meta=meta)


def conv3x3_weights(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, 1.0, (3, 1, 3, 3)).astype(np.float32)
    return w / w.sum(axis=(1, 2, 3), keepdims=True)


def nan_model(path: Path, meta: Manifest | None = None) -> Path:
    """0 / 0 everywhere: NaN, the failure an FP16 overflow produces."""
    nodes = [helper.make_node("Sub", ["input", "input"], ["zero"]), helper.make_node("Div", ["zero", "zero"], ["output"])]
    return _save(path, nodes, meta=meta)


def zero_model(path: Path, meta: Manifest | None = None) -> Path:
    """Predicts zeros: with residual='add' the runtime must return the input itself."""
    zero = numpy_helper.from_array(np.float32(0.0), "zero")
    return _save(path, [helper.make_node("Mul", ["input", "zero"], ["output"])], initializers=[zero], meta=meta)


def fp16_identity(path: Path, meta: Manifest | None = None) -> Path:
    return _save(path, [helper.make_node("Identity", ["input"], ["output"])], meta=meta, elem=TensorProto.FLOAT16)


def static_identity(path: Path, size: int, meta: Manifest | None = None) -> Path:
    return _save(path, [helper.make_node("Identity", ["input"], ["output"])], meta=meta, shape=[1, 3, size, size])


def profile(min_hw: tuple[int, int], max_hw: tuple[int, int], batch: int = 1) -> ShapeProfile:
    return ShapeProfile(min=(1, *min_hw), opt=(1, *max_hw), max=(batch, *max_hw))

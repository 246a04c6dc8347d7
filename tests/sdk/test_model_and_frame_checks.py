"""Bad models are refused at load and bad frames before any backend runs (issue 13, findings 2, 5, 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sdk_onnx_models import affine_uint8, manifest, save_graph

import sdk
from sdk.backends import ModelLoadError


def _model(path: Path, nodes: list, inputs: list, outputs: list, inits: list | None = None,
           meta: sdk.Manifest | None = None) -> Path:
    return save_graph(path, nodes, inputs, outputs, initializers=inits, meta=meta)


def _image(name: str, channels: int | str = 3, h: int | str = "H", w: int | str = "W") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", channels, h, w])


def _open(path: Path) -> sdk.Deblurrer:
    return sdk.Deblurrer(path, device="cpu", threads=1)


# ---------------------------------------------------------------------------------------------- finding 5
def test_sixteen_output_channels_are_refused_at_load_not_at_the_first_frame(tmp_path):
    w = numpy_helper.from_array(np.full((16, 3, 1, 1), 0.1, np.float32), "w")
    path = _model(tmp_path / "c16.onnx", [helper.make_node("Conv", ["input", "w"], ["output"])],
                  [_image("input")], [_image("output", 16)], [w], manifest())
    with pytest.raises(ModelLoadError, match="16 channels; expected 3"):
        _open(path)


def test_a_second_input_is_refused_at_load(tmp_path):
    path = _model(tmp_path / "two.onnx", [helper.make_node("Add", ["input", "noise"], ["output"])],
                  [_image("input"), _image("noise")], [_image("output")], meta=manifest())
    with pytest.raises(ModelLoadError, match=r"2 inputs \['input', 'noise'\]"):
        _open(path)


def test_a_fixed_size_output_from_a_dynamic_input_is_refused(tmp_path):
    pool = helper.make_node("AveragePool", ["input"], ["output"], kernel_shape=[2, 2], strides=[2, 2])
    path = _model(tmp_path / "down.onnx", [pool], [_image("input", 3, 64, 64)], [_image("output", 3, 32, 32)],
                  meta=manifest())
    with pytest.raises(ModelLoadError, match="fixed height of 32 but the input's height is 64"):
        _open(path)


def test_an_identity_model_without_manifest_is_refused(onnx_models):
    with pytest.warns(UserWarning, match="no deblur manifest"), \
            pytest.raises(ModelLoadError, match="returns its input unchanged"):
        _open(onnx_models["bare"])


def test_a_manifestless_model_that_computes_something_still_loads(onnx_models, rng):
    with pytest.warns(UserWarning, match="no deblur manifest"):
        d = _open(onnx_models["bare_affine"])
    frame = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(frame), affine_uint8(frame, 0.5, 0.25))


# ---------------------------------------------------------------------------------------------- finding 2
@pytest.mark.parametrize(("low", "high", "found"), [(0.0, 255.0, r"\[0, 255\]"), (-0.25, 0.5, r"\[-0.25, 0.5\]"),
                                                     (0.0, 1.01, r"\[0, 1.01\]")])
def test_float_frames_outside_0_1_raise_naming_both_ranges(onnx_models, low, high, found):
    d = _open(onnx_models["affine"])
    frame = np.linspace(low, high, 8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
    with pytest.raises(ValueError, match=found + r"; expected \[0, 1\]"):
        d.process(frame)


def test_float_frames_within_rounding_of_0_1_are_accepted(onnx_models):
    d = _open(onnx_models["affine"])
    frame = np.full((4, 4, 3), 1.0 + 1e-4, np.float32)
    frame[0, 0] = -1e-4
    out = d.process(frame)
    # y = 0.5 x + 0.25 on the affine model: 0.75 for 1.0001, 0.25 for -0.0001 (to float32 rounding).
    assert out[1, 1, 0] == pytest.approx(0.75, abs=1e-4) and out[0, 0, 0] == pytest.approx(0.25, abs=1e-4)


def test_float64_hint_mentions_the_0_255_scale():
    from sdk.processing import inspect_frame

    with pytest.raises(TypeError, match="dividing by 255"):
        inspect_frame(np.zeros((4, 4, 3), np.float64))


# ---------------------------------------------------------------------------------------------- finding 6
def _downsampling_model(path: Path) -> Path:
    """Like the bundled model's trunk: pixel-unshuffle by 2, a reflect-padded 3x3 conv, pixel-shuffle back."""
    w = np.zeros((12, 12, 3, 3), np.float32)
    w[np.arange(12), np.arange(12), 1, 1] = 1.0      # identity kernel: the padding is the only hazard
    w[np.arange(12), np.arange(12), 0, 1] = 0.01                           # ... and a little of the row above, so it is not an Identity
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    nodes = [helper.make_node("SpaceToDepth", ["input"], ["s2d"], blocksize=2),
             helper.make_node("Pad", ["s2d", "pads"], ["padded"], mode="reflect"),
             helper.make_node("Conv", ["padded", "w"], ["conv"]),
             helper.make_node("DepthToSpace", ["conv"], ["output"], blocksize=2, mode="DCR")]
    return _model(path, nodes, [_image("input")], [_image("output")],
                  [numpy_helper.from_array(w, "w"), pads], manifest(pad_multiple=2))


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (1, 500), (500, 1), (3, 2)])
def test_frames_under_three_pixels_run_padded(tmp_path, shape):
    d = _open(_downsampling_model(tmp_path / "down2.onnx"))
    frame = np.full((*shape, 3), 100, np.uint8)
    out = d.process(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    # A flat frame stays flat under reflect padding: 1.01 x 100 = 101.
    assert np.all(out == 101)

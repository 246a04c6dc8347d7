"""Pre/post-processing and tiling in isolation, then seamless tiles through real ONNX models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import sdk_onnx_models as M
from sdk_onnx_models import conv3x3_weights

import sdk
from sdk.processing import ArrayPool, FrameConverter, inspect_frame, padded_size, reflect_pad_inplace
from sdk.tiling import axis_starts, choose_tile, fit_overlap, plan_tiles


@pytest.mark.parametrize("h, w, pad_h, pad_w", [(5, 7, 3, 9), (2, 3, 9, 11), (1, 4, 5, 0), (6, 6, 0, 0)])
def test_in_place_reflect_padding_matches_opencv_reflect_101(h, w, pad_h, pad_w):
    rng = np.random.default_rng(0)
    image = rng.random((h, w), dtype=np.float32)
    planes = np.zeros((1, h + pad_h, w + pad_w), np.float32)
    planes[0, :h, :w] = image
    reflect_pad_inplace(planes, h, w)
    if h == 1:   # OpenCV reflect-101 of one row is that row: the same as our replicate
        expected = np.repeat(np.pad(image, ((0, 0), (0, pad_w)), mode="reflect") if w > 1 else image, h + pad_h, 0)
    else:
        expected = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(planes[0], expected)


def test_padded_size_respects_multiple_and_profile_minimum():
    assert padded_size(37, 53, 8) == (40, 56)
    assert padded_size(720, 1280, 16) == (720, 1280)
    assert padded_size(5, 300, 8, minimum=(16, 16)) == (16, 304)


def test_converter_writes_planar_model_range_and_the_pool_reuses_buffers(rng):
    manifest = sdk.Manifest(architecture="t", variant="t", value_range=(-1.0, 1.0), pad_multiple=4)
    conv, pool = FrameConverter(manifest, color="bgr"), ArrayPool(keep=2)
    frame = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    spec = inspect_frame(frame)
    shape = conv.planes_shape(spec, (8, 12))
    planes = conv.to_model(frame, spec, pool.take(shape))
    assert planes.shape == (3, 8, 12) and planes.dtype == np.float32
    # Plane 0 is R (the model's order) from channel 2 (the frame's BGR order), scaled to [-1, 1].
    np.testing.assert_allclose(planes[0, :6, :10], frame[..., 2] / 127.5 - 1.0, atol=1e-6)
    assert conv.from_model(planes.copy(), frame, spec).tolist() == frame.tolist()
    pool.give(planes)
    assert pool.take(shape) is planes and pool.allocations == 1       # given back, handed out again
    extra = [pool.take(shape) for _ in range(3)]
    pool.give(*extra, extra[0])
    assert len(pool._free[shape]) == 2                                # keeps at most `keep` spares, no duplicates


def test_deblurrer_allocates_nothing_per_frame_in_steady_state(onnx_models, rng):
    d = sdk.Deblurrer(onnx_models["affine"], device="cpu", threads=1)
    frame = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    d.process(frame)
    before = d._pool.allocations
    for _ in range(5):
        d.process(frame)
    # A frame in flight borrows exactly two buffers: its model input planes and the network's output
    # (PreparedFrame.planes/.output), each (3, 32, 40) for a 30x40 frame padded to the model's multiple of 8.
    assert d._pool.allocations == before == 2
    assert [len(v) for k, v in d._pool._free.items() if k == (3, 32, 40)] == [2]


def test_axis_starts_cover_the_length_with_the_overlap():
    starts = axis_starts(100, 40, 8)
    assert starts == [0, 32, 60]
    for a, b in zip(starts, starts[1:]):
        assert a + 40 - b >= 8
    assert starts[-1] + 40 == 100
    assert axis_starts(30, 40, 8) == [0]


def test_tile_weights_are_positive_everywhere_and_zero_on_interior_tile_edges():
    plan = plan_tiles(96, 160, tile=(48, 64), overlap=16, multiple=8)
    assert plan.count == len(plan.ys) * len(plan.xs) == 3 * 3
    assert (plan.inv_norm_y > 0).all() and np.isfinite(plan.inv_norm_y).all()
    first, middle = plan.weights_x[0], plan.weights_x[1]
    assert first[0] == 1.0 and first[-1] == 0.0      # image edge keeps full weight; the interior edge is zeroed
    assert middle[0] == 0.0 and middle[-1] == 0.0 and middle[len(middle) // 2] == 1.0


def test_choose_tile_only_tiles_when_needed_and_evens_tiles_out():
    assert choose_tile(720, 1280, max_hw=(1088, 1920), max_pixels=None, overlap=32, multiple=8) is None
    tile = choose_tile(1104, 1920, max_hw=(1088, 1920), max_pixels=None, overlap=32, multiple=8)
    assert tile is not None and tile[1] == 1920 and tile[0] % 8 == 0
    assert 560 <= tile[0] <= 600     # two even tiles of ~570 rows, not 1088 + a sliver
    budget = choose_tile(2160, 3840, max_hw=None, max_pixels=1920 * 1088, overlap=32, multiple=16)
    assert budget is not None and budget[0] * budget[1] <= 1920 * 1088 and budget[0] % 16 == 0


@pytest.mark.parametrize("size, limit, overlap, tile", [
    (72, 64, 16, 64),       # evening out gave 48x48 tiles, below a static 64x64 model's minimum
    (304, 256, 32, 256),    # ... and 168x168 under a static 256x256 model
])
def test_tiles_stay_inside_a_static_models_size(size, limit, overlap, tile):
    assert choose_tile(size, size, max_hw=(limit, limit), min_hw=(limit, limit), max_pixels=None,
                       overlap=overlap, multiple=8) == (tile, tile)


def test_overlap_too_large_for_the_models_largest_tile_is_reduced_or_refused():
    with pytest.warns(UserWarning, match="tile_overlap=32 does not fit .* 64x64 .* using tile_overlap=24"):
        assert fit_overlap(32, (64, 64), multiple=8) == 24
    assert fit_overlap(24, (64, 64), multiple=8) == 24 and fit_overlap(32, None, multiple=8) == 32
    # The blending floor (2 * 32 + 8 = 72) must not push tiles past the model's 64.
    with pytest.raises(ValueError, match=r"at most 64 pixels, too small for tile_overlap=32.*tile_overlap <= 24"):
        choose_tile(100, 100, max_hw=(64, 64), min_hw=(16, 16), max_pixels=None, overlap=32, multiple=8)
    assert choose_tile(100, 100, max_hw=(64, 64), min_hw=(16, 16), max_pixels=None, overlap=24, multiple=8) == (64, 64)


@pytest.mark.parametrize("model_size, frame_size, overlap", [(64, 72, 16), (256, 304, 32)])
def test_static_shape_model_runs_frames_just_above_its_size(tmp_path, model_size, frame_size, overlap):
    path = M.static_identity(tmp_path / "static.onnx", model_size, M.manifest())
    d = sdk.Deblurrer(path, device="cpu", threads=1, tile_overlap=overlap)
    frame = gradient(frame_size, frame_size)
    out = d.process(frame)
    assert out.shape == (frame_size, frame_size, 3)
    np.testing.assert_array_equal(out, frame)
    plan = d._plan((frame_size, frame_size))
    assert (plan.tile_h, plan.tile_w, plan.count) == (model_size, model_size, 4)


def test_small_profile_with_the_default_overlap_runs_with_a_reduced_overlap(tmp_path):
    path = M.identity(tmp_path / "small.onnx", M.manifest(shape_profile=M.profile((16, 16), (64, 64))))
    with pytest.warns(UserWarning, match="using tile_overlap=24"):
        d = sdk.Deblurrer(path, device="cpu", threads=1)          # default tile_overlap=32 needs 72px tiles
    frame = gradient(100, 150)
    np.testing.assert_array_equal(d.process(frame), frame)
    plan = d._plan((104, 152))
    assert d.tile_overlap == 24 and plan.tile_h <= 64 and plan.tile_w <= 64


def test_forced_tile_is_kept_inside_the_profile(onnx_models):
    d = sdk.Deblurrer(onnx_models["profiled"], device="cpu", threads=1, tile=128, tile_overlap=8)   # max 64x96
    frame = gradient(150, 230)
    np.testing.assert_array_equal(d.process(frame), frame)
    plan = d._plan((152, 232))
    assert (plan.tile_h, plan.tile_w) == (64, 96)


def test_tile_smaller_than_its_overlap_is_refused():
    with pytest.raises(ValueError, match="larger than tile_overlap"):
        plan_tiles(128, 128, tile=(32, 32), overlap=32, multiple=8)


def gradient(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([x / (w - 1), y / (h - 1), (x + y) / (h + w - 2)], axis=2)
    return (image * 255 + 0.5).astype(np.uint8)


def test_gradient_image_tiled_equals_untiled_within_one_level(onnx_models):
    whole = sdk.Deblurrer(onnx_models["affine"], device="cpu", threads=1)
    tiled = sdk.Deblurrer(onnx_models["affine"], device="cpu", threads=1, tile=64, tile_overlap=16)
    frame = gradient(203, 317)
    assert tiled._plan((208, 320)).count > 4
    a, b = whole.process(frame), tiled.process(frame)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert np.abs(b.astype(int) - frame.astype(int) * 0.5 - 63.75).max() <= 1    # and it is the right function


def test_conv_model_tiles_without_seams(onnx_models, rng):
    whole = sdk.Deblurrer(onnx_models["conv"], device="cpu", threads=1)
    tiled = sdk.Deblurrer(onnx_models["conv"], device="cpu", threads=1, tile=(48, 64), tile_overlap=16)
    frame = rng.random((150, 220, 3), dtype=np.float32)       # noise: any seam would show
    a, b = whole.process(frame), tiled.process(frame)
    assert np.abs(a - b).max() < 1e-5
    # And the untiled answer is the convolution itself (zero padding at the padded frame's border).
    w = conv3x3_weights()
    rgb = frame[..., ::-1]
    ref = np.stack([cv2.filter2D(rgb[..., c], -1, w[c, 0], borderType=cv2.BORDER_CONSTANT) for c in range(3)], 2)
    np.testing.assert_allclose(a[1:-1, 1:-1], ref[..., ::-1][1:-1, 1:-1], atol=1e-5)

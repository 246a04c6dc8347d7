"""sdk.Deblurrer on tiny ONNX models: every frame kind in and out, colour order, batches, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sdk_onnx_models import affine_uint8

import sdk
from sdk.backends.base import Backend, ShapeLimits
from sdk.manifest import Manifest


def open_model(path, **kw):
    return sdk.Deblurrer(path, device="cpu", threads=1, **kw)


def test_uint8_bgr_frame_of_odd_size_comes_back_same_shape_and_values(onnx_models, rng):
    d = open_model(onnx_models["affine"])
    frame = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)      # not a multiple of pad_multiple=8
    out = d.process(frame)
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, affine_uint8(frame, 0.5, 0.25))
    np.testing.assert_array_equal(d(frame), out)                    # __call__ is process


def test_value_range_minus_one_to_one_round_trips(onnx_models, rng):
    d = open_model(onnx_models["affine_pm1"])
    frame = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(frame), affine_uint8(frame, 0.5, 0.0, -1.0, 1.0))


@pytest.mark.parametrize("color, model, zeroed", [
    ("bgr", "gain", 2),       # RGB model zeroes R, which is channel 2 of a BGR frame
    ("rgb", "gain", 0),       # ... and channel 0 of an RGB frame
    ("bgr", "gain_bgr", 0),   # a BGR model zeroes its own channel 0: B
    ("rgb", "gain_bgr", 2),
])
def test_channel_order_follows_color_argument_and_manifest(onnx_models, rng, color, model, zeroed):
    d = open_model(onnx_models[model], color=color)
    frame = rng.integers(1, 256, (16, 24, 3), dtype=np.uint8)
    out = d.process(frame)
    assert (out[..., zeroed] == 0).all()
    kept = [c for c in range(3) if c != zeroed]
    np.testing.assert_array_equal(out[..., kept], frame[..., kept])


def test_grayscale_frames_stay_grayscale(onnx_models, rng):
    d = open_model(onnx_models["affine"])
    gray = rng.integers(0, 256, (21, 33), dtype=np.uint8)
    out = d.process(gray)
    assert out.shape == (21, 33) and out.dtype == np.uint8
    # Three equal planes through a per-pixel model, back to gray: the same per-pixel function, +-1 rounding.
    assert np.abs(out.astype(int) - affine_uint8(gray, 0.5, 0.25)).max() <= 1
    single = d.process(gray[..., None])
    assert single.shape == (21, 33, 1)
    np.testing.assert_array_equal(single[..., 0], out)


def test_alpha_channel_is_kept_untouched(onnx_models, rng):
    d = open_model(onnx_models["affine"])
    bgra = rng.integers(0, 256, (19, 27, 4), dtype=np.uint8)
    out = d.process(bgra)
    assert out.shape == (19, 27, 4)
    np.testing.assert_array_equal(out[..., 3], bgra[..., 3])
    np.testing.assert_array_equal(out[..., :3], affine_uint8(bgra[..., :3], 0.5, 0.25))


def test_float32_frames_come_back_float32(onnx_models, rng):
    d = open_model(onnx_models["affine"])
    frame = rng.random((25, 31, 3), dtype=np.float32)
    out = d.process(frame)
    assert out.dtype == np.float32 and out.shape == frame.shape
    np.testing.assert_allclose(out, frame * 0.5 + 0.25, atol=1e-6)
    gray = d.process(frame[..., 0])
    assert gray.dtype == np.float32 and gray.shape == (25, 31)
    np.testing.assert_allclose(gray, frame[..., 0] * 0.5 + 0.25, atol=1e-5)


def test_one_channel_model_processes_each_colour_channel(onnx_models, rng):
    d = open_model(onnx_models["gray"])
    frame = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(frame), affine_uint8(frame, 0.5, 0.25))
    gray = frame[..., 1]
    np.testing.assert_array_equal(d.process(gray), affine_uint8(gray, 0.5, 0.25))


def test_residual_add_models_get_their_input_added_back(onnx_models, rng):
    d = open_model(onnx_models["residual"])         # predicts zeros; the runtime adds the input
    frame = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(frame), frame)


def test_float16_model_runs_and_reports_fp16(onnx_models, rng):
    d = open_model(onnx_models["fp16"], backend="onnxruntime")
    assert d.info.precision == "fp16"
    frame = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(frame), frame)    # 8-bit values survive float16 exactly


def test_static_shape_model_pads_small_frames_and_tiles_large_ones(onnx_models, rng):
    d = open_model(onnx_models["static"], tile_overlap=16)    # accepts exactly 1x3x64x64
    small = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(small), small)
    large = rng.integers(0, 256, (150, 100, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(large), large)


def test_frames_beyond_the_profile_are_tiled_to_fit(onnx_models, rng):
    d = open_model(onnx_models["profiled"], tile_overlap=8)   # profile max 64x96
    frame = rng.integers(0, 256, (150, 230, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(frame), frame)
    plan = d._plan((152, 232))
    assert plan is not None and plan.tile_h <= 64 and plan.tile_w <= 96 and plan.count == 9


def test_process_batch_matches_process_and_keeps_order(onnx_models, rng):
    d = open_model(onnx_models["affine"])
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(3)]
    frames.insert(1, rng.integers(0, 256, (10, 14), dtype=np.uint8))       # a different size and format
    results = d.process_batch(frames)
    assert [r.shape for r in results] == [f.shape for f in frames]
    for frame, result in zip(frames, results):
        np.testing.assert_array_equal(result, d.process(frame))
    stacked = d.process_batch(np.stack(frames[2:]))
    np.testing.assert_array_equal(stacked[1], results[3])


def test_results_are_new_arrays_not_reused_buffers(onnx_models, rng):
    d = open_model(onnx_models["affine"])
    a, b = (rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2))
    ra = d.process(a)
    snapshot = ra.copy()
    d.process(b)
    np.testing.assert_array_equal(ra, snapshot)


def test_concurrent_threads_get_their_own_correct_results(onnx_models, rng):
    d = open_model(onnx_models["affine"])
    frames = [rng.integers(0, 256, (40 + i, 56, 3), dtype=np.uint8) for i in range(4)]
    errors: list[str] = []

    def worker(frame: np.ndarray) -> None:
        expected = affine_uint8(frame, 0.5, 0.25)
        for _ in range(15):
            if not np.array_equal(d.process(frame), expected):
                errors.append("mismatch")

    threads = [threading.Thread(target=worker, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_info_reports_manifest_backend_device_precision(onnx_models):
    d = open_model(onnx_models["affine"], backend="onnxruntime")
    info = d.info
    assert (info.backend, info.device, info.precision, info.manifest_source) == ("onnxruntime", "cpu", "fp32",
                                                                                "metadata_props")
    assert info.manifest.pad_multiple == 8 and info.manifest.variant == "test-model"
    text = str(info)
    assert "onnxruntime on cpu, fp32" in text and "pad multiple  8" in text
    assert "precision='fp32'" in repr(d)


def test_model_without_manifest_runs_with_defaults_and_warns(onnx_models, rng):
    with pytest.warns(UserWarning, match="carries no deblur manifest"):
        d = open_model(onnx_models["bare_affine"])
    assert d.info.manifest_source == "defaults" and d.manifest.value_range == (0.0, 1.0)
    frame = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.process(frame), affine_uint8(frame, 0.5, 0.25))


def test_sidecar_manifest_is_used_for_an_onnx_without_one(onnx_models, tmp_path, rng):
    import shutil

    path = tmp_path / "bare.onnx"
    shutil.copy(onnx_models["bare"], path)
    Manifest(architecture="x", variant="from-sidecar", value_range=(-1.0, 1.0), pad_multiple=4,
             residual="none").write_sidecar(path)
    d = open_model(path)
    assert d.info.manifest_source == "sidecar" and d.manifest.variant == "from-sidecar"


class _Fp16Overflow(Backend):
    """Emits NaN in 'fp16' (as an overflowing half-precision engine would) and is exact in fp32."""

    name, device = "fake", "cpu"

    def __init__(self, precision: str = "fp16") -> None:
        self.precision = precision
        self.manifest = Manifest(architecture="fake", variant="fake", value_range=(0.0, 1.0), pad_multiple=1,
                                 residual="none")
        self.limits = ShapeLimits()
        self.closed = False

    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        out[...] = np.nan if self.precision == "fp16" else batch

    def fp32_fallback(self) -> Backend:
        return _Fp16Overflow("fp32")

    def close(self) -> None:
        self.closed = True


def test_nan_output_raises_by_default_and_never_returns_a_black_frame(onnx_models, rng):
    frame = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with pytest.raises(sdk.NonFiniteOutputError, match="NaN/Inf"):
        open_model(onnx_models["nan"]).process(frame)
    with pytest.raises(sdk.NonFiniteOutputError, match="on_nonfinite='fp32'"):
        sdk.Deblurrer(_Fp16Overflow()).process(frame)


def test_nan_output_falls_back_to_fp32_when_asked(rng):
    backend = _Fp16Overflow()
    d = sdk.Deblurrer(backend, on_nonfinite="fp32")
    frame = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with pytest.warns(RuntimeWarning, match="switching to float32"):
        out = d.process(frame)
    np.testing.assert_array_equal(out, frame)
    assert d.info.precision == "fp32" and backend.closed
    np.testing.assert_array_equal(d.process(frame), frame)      # stays on the fallback, no second warning


def test_nan_in_an_fp32_model_cannot_fall_back(onnx_models, rng):
    d = open_model(onnx_models["nan"], on_nonfinite="fp32")
    with pytest.raises(sdk.NonFiniteOutputError, match="overflows in float32"):
        d.process(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))


def test_missing_bundled_default_model_says_so(monkeypatch, tmp_path):
    import sdk.bundled

    monkeypatch.setattr(sdk.bundled, "_bundle_dir", lambda: tmp_path / "no-models")
    with pytest.raises(FileNotFoundError, match=r"sdk/models/default.onnx.*\(bundled: none\)"):
        sdk.Deblurrer()


def test_plan_cache_cleared_by_another_thread_mid_lookup_still_returns_the_plan(onnx_models):
    d = open_model(onnx_models["affine"], tile=16, tile_overlap=8)

    class ClearedAfterStore(dict):
        """Another thread's clear() landing between this thread's store and its read."""

        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            self.clear()

    d._plans = ClearedAfterStore()
    plan = d._plan((40, 48))
    assert plan is not None and (plan.ys, plan.xs) == ((0, 8, 16, 24), (0, 8, 16, 24, 32))


def test_many_threads_with_ever_changing_sizes_share_the_plan_cache(onnx_models, rng):
    d = open_model(onnx_models["affine"], tile=16, tile_overlap=8)
    frames = [rng.integers(0, 256, (24 + 8 * (i % 20), 32, 3), dtype=np.uint8) for i in range(40)]
    errors: list[BaseException] = []

    def worker(chunk: list[np.ndarray]) -> None:
        try:
            for frame in chunk:
                np.testing.assert_array_equal(d.process(frame), affine_uint8(frame, 0.5, 0.25))
        except BaseException as exc:   # noqa: BLE001 — reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(frames[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and len(d._plans) <= 17      # 20 sizes went through a cache that never grows past 17


class _SmallFp16Engine(_Fp16Overflow):
    """An fp16 engine limited to 16x16 inputs whose float32 twin takes any size; records what each runs."""

    def __init__(self, precision: str = "fp16") -> None:
        super().__init__(precision)
        self.limits = ShapeLimits(max_hw=(16, 16)) if precision == "fp16" else ShapeLimits()
        self.shapes: list[tuple[int, ...]] = []

    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        self.limits.check(batch.shape)
        self.shapes.append(batch.shape)
        super().infer(batch, out)

    def fp32_fallback(self) -> Backend:
        self.fallback = _SmallFp16Engine("fp32")
        return self.fallback


def test_fp32_fallback_drops_the_tile_plans_made_for_the_old_backend(rng):
    engine = _SmallFp16Engine()
    d = sdk.Deblurrer(engine, on_nonfinite="fp32", tile_overlap=4)
    frame = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    with pytest.warns(RuntimeWarning, match="switching to float32"):
        np.testing.assert_array_equal(d.process(frame), frame)
    assert engine.shapes == [(1, 3, 14, 16)]               # tiled for the fp16 engine until it overflowed
    engine.fallback.shapes.clear()
    np.testing.assert_array_equal(d.process(frame), frame)
    assert engine.fallback.shapes == [(1, 3, 24, 40)]      # the fp32 twin takes the frame whole


def test_model_with_a_fixed_batch_above_one_is_refused_at_load(tmp_path):
    import sdk_onnx_models as M

    path = M.identity(tmp_path / "batch4.onnx", M.manifest(), shape=[4, 3, "H", "W"])
    with pytest.raises(sdk.ModelLoadError, match="fixed batch of 4 frames.*batch 1 or a dynamic batch axis"):
        open_model(path)

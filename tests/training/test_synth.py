"""Blur synthesis: PSFs, camera model, temporal blur, and `deblur synth` end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sdk.cli import synth as synth_cli
from training.data import GoProDataset
from training.data.camera import (
    add_poisson_gaussian_noise,
    decode_srgb,
    linear_to_srgb,
    quantize,
    srgb_to_linear,
)
from training.data.imageio import to_unit_float
from training.data.psf import convolve, psf_from_trajectory, random_trajectory
from training.data.shake import random_shake_field, smooth_weight_maps
from training.data.synth import shake_pair
from training.data.synth_config import SynthConfig
from training.data.video import VideoClip, decode_video


def _sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher = sharper)."""
    grey = cv2.cvtColor(np.asarray(image, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def _texture(seed: int, h: int, w: int) -> np.ndarray:
    """A sharp random texture (uint8 RGB) with detail at every scale a blur can remove."""
    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).round().astype(np.uint8)


# --- PSFs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_psf_is_normalised_nonnegative_and_centred(seed: int) -> None:
    path = random_trajectory(length=25.0, rng=np.random.default_rng(seed))
    steps = np.abs(np.diff(path.points))
    assert steps.sum() == pytest.approx(25.0, rel=1e-9)          # constant speed, exact length
    psf = psf_from_trajectory(path.points)
    assert psf.dtype == np.float32 and psf.shape[0] == psf.shape[1] and psf.shape[0] % 2 == 1
    assert psf.min() >= 0 and psf.sum() == pytest.approx(1.0, abs=1e-5)
    ys, xs = np.mgrid[: psf.shape[0], : psf.shape[1]]
    centre = (psf.shape[0] - 1) / 2
    assert (psf * xs).sum() == pytest.approx(centre, abs=1e-4) and (psf * ys).sum() == pytest.approx(centre, abs=1e-4)


def test_trajectory_is_reproducible_for_a_seed() -> None:
    a = random_trajectory(30.0, np.random.default_rng(7))
    b = random_trajectory(30.0, np.random.default_rng(7))
    c = random_trajectory(30.0, np.random.default_rng(8))
    assert np.array_equal(a.points, b.points) and a.params == b.params
    assert not np.array_equal(a.points, c.points)


def test_straight_motion_gives_a_line_psf_of_the_trajectory_length() -> None:
    path = random_trajectory(12.0, np.random.default_rng(0), anxiety=0.0)
    psf = psf_from_trajectory(path.points)
    angle = path.params["start_angle"]
    ys, xs = np.nonzero(psf > 1e-6)
    centre = (psf.shape[0] - 1) / 2
    along = (xs - centre) * np.cos(angle) + (ys - centre) * np.sin(angle)
    across = -(xs - centre) * np.sin(angle) + (ys - centre) * np.cos(angle)
    assert along.max() - along.min() == pytest.approx(12.0, abs=2.0)   # +-1 px of bilinear footprint per end
    assert np.abs(across).max() <= 1.5


def test_convolve_is_a_true_convolution() -> None:
    impulse = np.zeros((15, 15, 3), np.float32)
    impulse[7, 7] = 1.0
    kernel = np.zeros((5, 5), np.float32)
    kernel[2, 2], kernel[2, 4], kernel[0, 2] = 0.5, 0.3, 0.2        # asymmetric: a flip would show
    out = convolve(impulse, kernel)
    np.testing.assert_allclose(out[5:10, 5:10, 1], kernel, atol=1e-7)


def test_shake_field_weights_partition_unity_and_blur_lowers_sharpness() -> None:
    weights = smooth_weight_maps(3, 40, 50, np.random.default_rng(0))
    assert weights.shape == (3, 40, 50) and weights.min() >= 0
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, atol=1e-5)
    assert np.abs(np.diff(weights, axis=2)).max() < 0.25               # smooth: no jumps between pixels
    field = random_shake_field(length=10.0, kernels=3, rng=np.random.default_rng(1))
    assert len(field.psfs) == 3 and all(abs(p.sum() - 1) < 1e-5 for p in field.psfs)
    assert len(field.params["psfs"]) == 3 and field.params["trajectory"]["length"] == 10.0


# --- camera model ---------------------------------------------------------------------------------


def test_srgb_curve_round_trips_and_lookup_matches() -> None:
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6)
    assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.21404, abs=1e-5)   # IEC 61966-2-1
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    np.testing.assert_array_equal(decode_srgb(img), srgb_to_linear(to_unit_float(img)))
    assert quantize(np.array([0.0, 0.5, 1.0, 1.2])).tolist() == [0, 128, 255, 255]


def test_noise_has_poisson_gaussian_variance() -> None:
    rng = np.random.default_rng(0)
    for level, shot, read in ((0.05, 2e-3, 3e-3), (0.4, 1e-3, 1e-3)):
        flat = np.full((256, 256, 3), level, np.float32)
        noisy = add_poisson_gaussian_noise(flat, shot, read, rng)
        assert noisy.mean() == pytest.approx(level, abs=1e-3)
        assert noisy.var() == pytest.approx(shot * level + read**2, rel=0.03)
    clean = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(add_poisson_gaussian_noise(clean, 0.0, 0.0, rng), clean)


def test_camera_shake_pair_is_blurred_and_reproducible() -> None:
    photo = decode_srgb(_texture(0, 160, 200))
    config = SynthConfig(size=64, noise=0.0)
    ratios = []
    for k in range(4):
        sharp, blur, params = shake_pair(photo, config, np.random.default_rng([0, k]))
        assert sharp.shape == blur.shape == (64, 64, 3) and sharp.dtype == np.uint8
        ratios.append(_sharpness(blur) / _sharpness(sharp))
        again = shake_pair(photo, config, np.random.default_rng([0, k]))
        assert np.array_equal(again[1], blur) and again[2] == params
    assert max(ratios) < 0.8, ratios


# --- temporal blur --------------------------------------------------------------------------------


def _pan(speed: int, count: int = 12) -> list[np.ndarray]:
    """Frames of a camera panning right by ``speed`` px per frame over a sharp texture."""
    texture = _texture(3, 90, 120 + speed * count)
    return [np.ascontiguousarray(texture[:, speed * i: speed * i + 120]) for i in range(count)]


def test_temporal_blur_of_a_pan_matches_the_exact_average() -> None:
    speed, box = 3, (20, 10, 64, 64)
    frames = _pan(speed)
    sample = VideoClip(frames).temporal_blur(centre=5, frames=17, factor=8, box=box)
    # Ground truth: the texture at the 17 sub-frame positions, averaged in linear light.
    texture = decode_srgb(_texture(3, 90, 120 + speed * 12))
    exact = np.zeros((64, 64, 3), np.float32)
    for k in range(-8, 9):
        shift = np.float32([[1, 0, speed * (5 + k / 8) + box[0]], [0, 1, box[1]]])
        exact += cv2.warpAffine(texture, shift, (64, 64), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    exact /= 17
    assert cv2.PSNR(exact * 255, sample.blur * 255) > 45
    assert sample.motion == pytest.approx(speed, abs=0.3)
    np.testing.assert_array_equal(sample.sharp, decode_srgb(frames[5])[10:74, 20:84])
    assert _sharpness(sample.blur) < 0.6 * _sharpness(sample.sharp)


def test_temporal_blur_of_a_still_scene_is_the_frame() -> None:
    still = VideoClip([_texture(4, 48, 64)] * 5)
    sample = still.temporal_blur(centre=2, frames=17, factor=8, box=(0, 0, 64, 48))
    np.testing.assert_allclose(sample.blur, sample.sharp, atol=1e-5)


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)  # lossless, so decoded frames equal the written ones
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_decode_video_is_lossless_for_a_lossless_file(tmp_path: Path) -> None:
    frames = _pan(2, count=5)
    decoded, fps, size = decode_video(_write_video(tmp_path / "pan.mkv", frames))
    assert fps == 25.0 and size == (90, 120) and len(decoded) == 5
    assert all(np.array_equal(a, b) for a, b in zip(decoded, frames))


def test_bad_sources_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(ValueError, match=str(broken)):
        decode_video(broken)
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        _run_cli("--out", str(tmp_path / "out"), "--images", str(missing))
    one = tmp_path / "one"
    one.mkdir()
    cv2.imwrite(str(one / "only.png"), _texture(0, 80, 80))
    with pytest.raises(ValueError, match="at least 2 source photos"):
        _run_cli("--out", str(tmp_path / "out"), "--images", str(one), "--count", "4", "--size", "32")
    with pytest.raises(ValueError, match="frames_per_blur must be odd"):
        _run_cli("--out", str(tmp_path / "out"), "--frames-per-blur", "8")


# --- deblur synth end to end ----------------------------------------------------------------------


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    synth_cli.add_arguments(parser)
    return synth_cli.run(parser.parse_args([*argv, "--quiet"]))


def test_synth_cli_is_deterministic_offline_and_readable(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _run_cli("--out", str(tmp_path / name), "--count", "4", "--size", "64") == 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 4 * 2 + 1
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel

    record = json.loads((tmp_path / "a" / "synth.json").read_text())
    images = record["sources"]["images"]
    train_photos = {s["name"] for s in images if s["split"] == "train"}
    test_photos = {s["name"] for s in images if s["split"] == "test"}
    assert train_photos and test_photos and not train_photos & test_photos
    for pair in record["pairs"]:
        if pair["mode"] == "shake":
            assert pair["source"] in (train_photos if pair["split"] == "train" else test_photos)
    for video in record["sources"]["videos"]:
        assert video["frame_ranges"]["train"][1] < video["frame_ranges"]["test"][0]
        for pair in record["pairs"]:
            if pair["mode"] == "video" and pair["source"] == video["name"]:
                reach = VideoClip.reach(pair["frames_averaged"], pair["interpolation"])
                lo, hi = video["frame_ranges"][pair["split"]]
                assert lo <= pair["frame"] - reach and pair["frame"] + reach <= hi

    train, test = GoProDataset(tmp_path / "a", "train"), GoProDataset(tmp_path / "a", "test")
    assert len(train) + len(test) == 4 and train[0]["blur"].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="not empty"):
        _run_cli("--out", str(tmp_path / "a"), "--count", "4", "--size", "64")


def test_synth_from_user_photos_and_video_is_blurred_in_both_modes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        cv2.imwrite(str(photos / f"p{i}.png"), _texture(10 + i, 120, 150))
    video = _write_video(tmp_path / "pan.mkv", _pan(4, count=16))
    out = tmp_path / "out"
    assert _run_cli("--out", str(out), "--images", str(photos), "--video", str(video), "--count", "8",
                    "--size", "48", "--noise", "0", "--frames-per-blur", "9-17", "--test-fraction", "0.25") == 0
    record = json.loads((out / "synth.json").read_text())
    assert record["counts"] == {"train/shake": 3, "test/shake": 1, "train/video": 3, "test/video": 1}
    assert {s["name"] for s in record["sources"]["images"]} == {"p0", "p1", "p2"}
    for pair in record["pairs"]:
        blur = cv2.imread(str(out / pair["blur"]))
        sharp = cv2.imread(str(out / pair["sharp"]))
        assert _sharpness(blur) < 0.8 * _sharpness(sharp), (pair["blur"], pair["mode"])
        if pair["mode"] == "video":
            # 4 px per frame in the 90-px-high video, resized to a shorter side of ceil(1.25 * 48) = 60.
            assert pair["motion_px_per_frame"] == pytest.approx(4.0 * 60 / 90, abs=0.3)

"""Paired datasets (GoPro, HIDE, RealBlur, folder pairs), their errors and their augmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from training.data import (
    DatasetError,
    GoProDataset,
    HIDEDataset,
    PairedFolderDataset,
    PairedImageDataset,
    RealBlurDataset,
    find_layout,
    open_dataset,
)
from training.data.augment import dihedral, pad_to_size
from training.data.layouts import ImagePair


def _write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _random_rgb(seed: int, h: int = 12, w: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture()
def gopro(tmp_path: Path) -> Path:
    root = tmp_path / "GOPRO_Large"
    for split, sequences in (("train", ("GOPR0001_00", "GOPR0002_00")), ("test", ("GOPR0384_11",))):
        for s, seq in enumerate(sequences):
            for f in range(2):
                sharp = _random_rgb(100 * s + f)
                _write(root / split / seq / "sharp" / f"{f:06d}.png", sharp)
                _write(root / split / seq / "blur" / f"{f:06d}.png", 255 - sharp)
                _write(root / split / seq / "blur_gamma" / f"{f:06d}.png", sharp // 2)
    return root


def test_gopro_items_are_rgb_float_tensors_named_by_sequence(gopro: Path) -> None:
    ds = GoProDataset(gopro, "train")
    assert len(ds) == 4
    assert [p.name for p in ds.pairs] == ["GOPR0001_00/000000.png", "GOPR0001_00/000001.png",
                                          "GOPR0002_00/000000.png", "GOPR0002_00/000001.png"]
    item = ds[1]
    sharp = _random_rgb(1)
    assert item["name"] == "GOPR0001_00/000001.png"
    assert item["sharp"].dtype == torch.float32 and item["sharp"].shape == (3, 12, 16)
    # Channel 0 is red: the file was written from RGB via BGR, so a BGR/RGB slip would fail here.
    torch.testing.assert_close(item["sharp"], torch.from_numpy(sharp.transpose(2, 0, 1) / 255.0).float())
    torch.testing.assert_close(item["blur"], 1.0 - item["sharp"], atol=1e-6, rtol=0)
    assert len(GoProDataset(gopro, "test")) == 2
    gamma = GoProDataset(gopro, "train", blur_kind="blur_gamma")[0]
    torch.testing.assert_close(gamma["blur"], torch.from_numpy((_random_rgb(0) // 2).transpose(2, 0, 1) / 255.0).float())


def test_sixteen_bit_png_is_scaled_by_65535(tmp_path: Path) -> None:
    img16 = np.random.default_rng(3).integers(0, 65536, size=(6, 7, 3), dtype=np.uint16)
    _write(tmp_path / "blur" / "a.png", img16)
    _write(tmp_path / "sharp" / "a.png", img16)
    item = PairedFolderDataset(tmp_path / "blur", tmp_path / "sharp")[0]
    expected = torch.from_numpy(img16.transpose(2, 0, 1).astype(np.float64) / 65535.0).float()
    torch.testing.assert_close(item["blur"], expected)


def test_missing_split_and_missing_sharp_folder_name_the_path(gopro: Path) -> None:
    with pytest.raises(FileNotFoundError, match="val"):
        GoProDataset(gopro, "val")
    sharp_dir = gopro / "train" / "GOPR0002_00" / "sharp"
    for f in sharp_dir.iterdir():
        f.unlink()
    sharp_dir.rmdir()
    with pytest.raises(FileNotFoundError, match=str(sharp_dir)):
        GoProDataset(gopro, "train")


def test_unmatched_names_are_reported_with_their_files(gopro: Path) -> None:
    extra = _write(gopro / "train" / "GOPR0001_00" / "blur" / "000009.png", _random_rgb(9))
    with pytest.raises(DatasetError, match=str(extra)):
        GoProDataset(gopro, "train")
    extra.unlink()
    lonely_sharp = _write(gopro / "test" / "GOPR0384_11" / "sharp" / "000007.png", _random_rgb(7))
    with pytest.raises(DatasetError, match=str(lonely_sharp)):
        GoProDataset(gopro, "test")


def test_size_mismatch_names_both_files(tmp_path: Path) -> None:
    blur = _write(tmp_path / "blur" / "x.png", _random_rgb(0, 12, 16))
    sharp = _write(tmp_path / "sharp" / "x.png", _random_rgb(0, 12, 18))
    ds = PairedFolderDataset(tmp_path / "blur", tmp_path / "sharp")
    with pytest.raises(DatasetError) as info:
        ds[0]
    assert str(blur) in str(info.value) and str(sharp) in str(info.value)
    with pytest.raises(DatasetError):
        ds.verify()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_unreadable_file_is_named(tmp_path: Path, damage: str) -> None:
    _write(tmp_path / "blur" / "x.png", _random_rgb(0))
    sharp = _write(tmp_path / "sharp" / "x.png", _random_rgb(1))
    data = sharp.read_bytes()
    sharp.write_bytes({"garbage": b"not a png at all" * 4, "truncated": data[: len(data) // 2], "empty": b""}[damage])
    ds = PairedFolderDataset(tmp_path / "blur", tmp_path / "sharp")
    with pytest.raises(DatasetError, match=str(sharp)):
        ds[0]


@pytest.fixture()
def hide(tmp_path: Path) -> Path:
    root = tmp_path / "HIDE_dataset"
    layout = {"train": ["1fromGOPR0950.png", "2fromGOPR0950.png"],
              "test/test-close-ups": ["10fromGOPR1089.png"],
              "test/test-long-shot": ["20fromGOPR1092.png", "21fromGOPR1092.png"]}
    for n, (folder, names) in enumerate(layout.items()):
        for k, name in enumerate(names):
            sharp = _random_rgb(10 * n + k)
            _write(root / "GT" / name, sharp)
            _write(root / folder / name, 255 - sharp)
    return root


def test_hide_splits_pair_blurred_images_with_gt(hide: Path) -> None:
    assert [p.name for p in HIDEDataset(hide, "train").pairs] == ["train/1fromGOPR0950.png", "train/2fromGOPR0950.png"]
    test = HIDEDataset(hide, "test")
    assert [p.name for p in test.pairs] == ["test-close-ups/10fromGOPR1089.png", "test-long-shot/20fromGOPR1092.png",
                                           "test-long-shot/21fromGOPR1092.png"]
    assert all(p.sharp.parent.name == "GT" and p.sharp.name == p.blur.name for p in test.pairs)
    assert len(HIDEDataset(hide, "test-long-shot")) == 2
    item = test[0]
    torch.testing.assert_close(item["blur"], 1.0 - item["sharp"], atol=1e-6, rtol=0)


def test_hide_list_file_defines_the_split_and_is_checked(hide: Path) -> None:
    (hide / "test.txt").write_text("21fromGOPR1092.png\n10fromGOPR1089.png\n")
    assert [p.name for p in HIDEDataset(hide, "test").pairs] == ["test-long-shot/21fromGOPR1092.png",
                                                                "test-close-ups/10fromGOPR1089.png"]
    assert [p.name for p in HIDEDataset(hide, "test-close-ups").pairs] == ["test-close-ups/10fromGOPR1089.png"]
    (hide / "test.txt").write_text("10fromGOPR1089.png\n99fromGOPR0000.png\n")
    with pytest.raises(DatasetError, match="99fromGOPR0000.png"):
        HIDEDataset(hide, "test")
    (hide / "GT" / "1fromGOPR0950.png").unlink()
    with pytest.raises(DatasetError, match=str(hide / "GT" / "1fromGOPR0950.png")):
        HIDEDataset(hide, "train")
    with pytest.raises(ValueError, match="test-close-ups"):
        HIDEDataset(hide, "val")


def test_realblur_list_pairs_gt_then_blur(tmp_path: Path) -> None:
    root = tmp_path / "RealBlur"
    lines = []
    for scene in ("scene001", "scene002"):
        sharp = _random_rgb(int(scene[-1]))
        _write(root / "RealBlur-J_ECC_IMCORR_centroid_itensity_ref" / scene / "gt" / "gt_1.png", sharp)
        _write(root / "RealBlur-J_ECC_IMCORR_centroid_itensity_ref" / scene / "blur" / "blur_1.png", 255 - sharp)
        base = f"RealBlur-J_ECC_IMCORR_centroid_itensity_ref/{scene}"
        lines.append(f"{base}/gt/gt_1.png {base}/blur/blur_1.png")
    listing = root / "RealBlur_J_test_list.txt"
    listing.write_text("\n".join(lines) + "\n")
    ds = RealBlurDataset(listing)
    assert len(ds) == 2 and ds.pairs[1].name.endswith("scene002/blur/blur_1.png")
    item = ds[0]
    torch.testing.assert_close(item["sharp"], torch.from_numpy(_random_rgb(1).transpose(2, 0, 1) / 255.0).float())
    torch.testing.assert_close(item["blur"], 1.0 - item["sharp"], atol=1e-6, rtol=0)

    listing.write_text(lines[0] + "\nonly_one_field.png\n")
    with pytest.raises(DatasetError, match="line 2"):
        RealBlurDataset(listing)
    listing.write_text(lines[0].replace("blur_1", "blur_9") + "\n")
    with pytest.raises(DatasetError, match="blur_9.png"):
        RealBlurDataset(listing)


def test_find_layout_recognises_each_layout(gopro: Path, hide: Path, tmp_path: Path) -> None:
    assert find_layout(gopro, "test")[0] == "gopro"
    assert find_layout(hide, "test")[0] == "hide"
    for blur_name, sharp_name in (("blur", "sharp"), ("input", "target")):
        root = tmp_path / f"restormer_{blur_name}"
        _write(root / "test" / blur_name / "a.png", _random_rgb(0))
        _write(root / "test" / sharp_name / "a.png", _random_rgb(0))
        layout, pairs = find_layout(root, "test")
        assert layout == "folders" and len(pairs) == 1
    ds = open_dataset(gopro, "train", crop=8, seed=3)
    assert ds.layout == "gopro" and ds[0]["blur"].shape == (3, 8, 8)
    with pytest.raises(DatasetError, match="no known dataset layout"):
        find_layout(tmp_path / "restormer_blur" / "test" / "blur", "train")


# --- augmentation -------------------------------------------------------------------------------


def _pair_dataset(tmp_path: Path, blur: np.ndarray, sharp: np.ndarray, **kwargs) -> PairedImageDataset:
    pairs = []
    for i in range(4):
        b = _write(tmp_path / "blur" / f"{i}.png", blur)
        s = _write(tmp_path / "sharp" / f"{i}.png", sharp)
        pairs.append(ImagePair(b, s, f"{i}.png"))
    return PairedImageDataset(pairs, **kwargs)


def test_augmentation_is_identical_for_both_images(tmp_path: Path) -> None:
    sharp = _random_rgb(5, 20, 24)
    ds = _pair_dataset(tmp_path, 255 - sharp, sharp, crop=8, seed=1)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["blur"].shape == item["sharp"].shape == (3, 8, 8)
            torch.testing.assert_close(item["blur"], 1.0 - item["sharp"], atol=1e-6, rtol=0)


def test_all_eight_flips_and_rotations_are_reached(tmp_path: Path) -> None:
    square = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    ds = _pair_dataset(tmp_path, square, square, crop=5, seed=0)
    expected = {dihedral(square, k).tobytes(): k for k in range(8)}
    assert len(expected) == 8
    seen = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            got = (item["sharp"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
            seen.add(expected[got.tobytes()])  # KeyError if an output is none of the 8 transforms
            assert torch.equal(item["blur"], item["sharp"])
    assert seen == set(range(8))


def test_reflect_padding_when_smaller_than_crop(tmp_path: Path) -> None:
    row = np.array([[[1], [2], [3]]], dtype=np.uint8)                  # 1x3x1
    assert pad_to_size(row, 1, 5)[0, :, 0].tolist() == [1, 2, 3, 2, 1]
    small = _random_rgb(2, 5, 6)
    ds = _pair_dataset(tmp_path, small, small, crop=9, seed=0)
    item = ds[0]
    assert item["sharp"].shape == (3, 9, 9)
    values = set((item["sharp"] * 255).round().to(torch.uint8).flatten().tolist())
    assert values <= set(small.flatten().tolist())


def test_augmentation_depends_only_on_seed_epoch_and_index(tmp_path: Path) -> None:
    ds = _pair_dataset(tmp_path, _random_rgb(7, 30, 30), _random_rgb(8, 30, 30), crop=10, seed=4)
    ds.set_epoch(2)
    first = [ds[i]["blur"] for i in range(4)]
    again = _pair_dataset(tmp_path, _random_rgb(7, 30, 30), _random_rgb(8, 30, 30), crop=10, seed=4)
    again.set_epoch(2)
    torch.manual_seed(123)  # torch's global RNG must not matter
    for i in reversed(range(4)):
        assert torch.equal(again[i]["blur"], first[i])
    loader = torch.utils.data.DataLoader(again, batch_size=4, num_workers=2)
    assert torch.equal(next(iter(loader))["blur"], torch.stack(first))
    ds.set_epoch(3)
    assert any(not torch.equal(ds[i]["blur"], first[i]) for i in range(4))


def test_eval_mode_full_images_and_centre_crop(tmp_path: Path) -> None:
    sharp = _random_rgb(11, 10, 14)
    full = _pair_dataset(tmp_path, sharp, sharp)
    assert not full.augment and full[0]["sharp"].shape == (3, 10, 14)
    centre = _pair_dataset(tmp_path, sharp, sharp, crop=(4, 6), augment=False)
    expected = torch.from_numpy(sharp[3:7, 4:10].transpose(2, 0, 1) / 255.0).float()
    torch.testing.assert_close(centre[2]["sharp"], expected)
    rect = _pair_dataset(tmp_path, sharp, sharp, crop=(4, 6), seed=9)
    assert all(rect[i]["blur"].shape == (3, 4, 6) for i in range(4))

"""PyTorch datasets of (blurred, sharp) image pairs.

Every dataset yields ``{"blur": FloatTensor(3, H, W), "sharp": FloatTensor(3, H, W), "name": str}``
with RGB values in [0, 1].

* ``crop=None`` (evaluation): full images, untouched.
* ``crop=256`` (training): a random 256x256 crop plus one of the 8 flips/rotations, identical for
  both images (``training.data.augment``). ``augment=False`` with a crop gives a centre crop.

**Reproducibility.** An item's augmentation is drawn from ``item_rng(seed, epoch, index)``: it
depends only on the dataset's ``seed``, the epoch set with ``set_epoch`` and the item's index, never
on the DataLoader worker or on torch's global RNG. Call ``dataset.set_epoch(epoch)`` before creating
each epoch's DataLoader iterator (workers get a copy of the dataset when the iterator starts, so with
``persistent_workers=True`` a later ``set_epoch`` would not reach them; keep it False). Shuffling is
the sampler's job: give it a ``torch.Generator`` seeded from (seed, epoch) to make the order resumable.

Example::

    train = GoProDataset("GOPRO_Large", "train", crop=256, seed=1234)
    for epoch in range(start_epoch, epochs):
        train.set_epoch(epoch)
        order = torch.Generator().manual_seed(1234 + epoch)
        for batch in DataLoader(train, batch_size=8, shuffle=True, generator=order, num_workers=2):
            ...   # batch["blur"]: (8, 3, 256, 256) float32 in [0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import augment_pair, center_crop_pair, item_rng
from .imageio import DatasetError, read_rgb, to_unit_float
from .layouts import ImagePair, find_layout, folder_pairs, gopro_pairs, hide_pairs, realblur_pairs


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8/uint16 -> contiguous (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(to_unit_float(image).transpose(2, 0, 1)))


class PairedImageDataset(Dataset):
    """Image pairs with optional crop/flip/rotation augmentation (see the module docstring).

    Args:
        pairs: the files, e.g. from ``training.data.layouts.gopro_pairs``.
        crop: ``None`` for full images, an int or (height, width) for crops.
        augment: random crop + the 8 flips/rotations; default: on when ``crop`` is given.
        seed: seeds the per-item augmentation generators.
    """

    layout = "pairs"

    def __init__(
        self,
        pairs: Sequence[ImagePair],
        crop: int | tuple[int, int] | None = None,
        augment: bool | None = None,
        seed: int = 0,
    ) -> None:
        if not pairs:
            raise DatasetError("a paired dataset needs at least one pair")
        if crop is not None and (min((crop, crop) if isinstance(crop, int) else crop) <= 0):
            raise ValueError(f"crop must be None, a positive int or (height, width), got {crop!r}")
        self.pairs = list(pairs)
        self.crop = crop
        self.augment = crop is not None if augment is None else bool(augment)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (call before building the epoch's iterator)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw (H, W, 3) RGB arrays of pair ``index``; raises ``DatasetError`` naming the files
        when either is unreadable or their sizes differ."""
        pair = self.pairs[index]
        blur, sharp = read_rgb(pair.blur), read_rgb(pair.sharp)
        if blur.shape != sharp.shape:
            raise DatasetError(
                f"blurred image {pair.blur} is {blur.shape[1]}x{blur.shape[0]} but its sharp image "
                f"{pair.sharp} is {sharp.shape[1]}x{sharp.shape[0]}; a pair must have one size"
            )
        return blur, sharp

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"index {index} out of range for a dataset of {len(self.pairs)} pairs")
        blur, sharp = self.load_pair(index)
        if self.augment:
            rng = item_rng(self.seed, self.epoch, index)
            crop = self.crop if self.crop is not None else blur.shape[:2]
            blur, sharp = augment_pair(blur, sharp, crop, rng)
        elif self.crop is not None:
            blur, sharp = center_crop_pair(blur, sharp, self.crop)
        return {"blur": _to_tensor(blur), "sharp": _to_tensor(sharp), "name": self.pairs[index].name}

    def verify(self) -> None:
        """Decode every pair once (a full read of the dataset) and raise on the first bad one."""
        for index in range(len(self.pairs)):
            self.load_pair(index)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self)} pairs, layout={self.layout}, crop={self.crop}, "
                f"augment={self.augment}, seed={self.seed})")


class GoProDataset(PairedImageDataset):
    """``<root>/<split>/<sequence>/{blur|blur_gamma,sharp}/*.png`` (also ``deblur synth`` output).

    Example::

        test = GoProDataset("GOPRO_Large", "test")                    # full 1280x720 images
        train = GoProDataset("GOPRO_Large", "train", crop=256, seed=1)
    """

    layout = "gopro"

    def __init__(self, root: str | Path, split: str = "train", blur_kind: str = "blur",
                 crop: int | tuple[int, int] | None = None, augment: bool | None = None, seed: int = 0) -> None:
        super().__init__(gopro_pairs(root, split, blur_kind), crop=crop, augment=augment, seed=seed)


class HIDEDataset(PairedImageDataset):
    """HIDE (``GT/``, ``train/``, ``test/test-close-ups``, ``test/test-long-shot``, optional
    ``train.txt``/``test.txt``); see ``training.data.layouts`` for the exact rules.

    Example::

        hide = HIDEDataset("HIDE_dataset", "test")
    """

    layout = "hide"

    def __init__(self, root: str | Path, split: str = "test", crop: int | tuple[int, int] | None = None,
                 augment: bool | None = None, seed: int = 0) -> None:
        super().__init__(hide_pairs(root, split), crop=crop, augment=augment, seed=seed)


class RealBlurDataset(PairedImageDataset):
    """A RealBlur list file of ``<gt_path> <blur_path>`` lines, relative to ``root`` (default: the
    list's folder).

    Example::

        realblur_j = RealBlurDataset("RealBlur/RealBlur_J_test_list.txt")
    """

    layout = "realblur"

    def __init__(self, list_file: str | Path, root: str | Path | None = None,
                 crop: int | tuple[int, int] | None = None, augment: bool | None = None, seed: int = 0) -> None:
        super().__init__(realblur_pairs(list_file, root), crop=crop, augment=augment, seed=seed)


class PairedFolderDataset(PairedImageDataset):
    """Two folders whose images pair up by identical file name.

    Example::

        pairs = PairedFolderDataset("my_set/blur", "my_set/sharp", crop=256)
    """

    layout = "folders"

    def __init__(self, blur_dir: str | Path, sharp_dir: str | Path, crop: int | tuple[int, int] | None = None,
                 augment: bool | None = None, seed: int = 0) -> None:
        super().__init__(folder_pairs(blur_dir, sharp_dir), crop=crop, augment=augment, seed=seed)


def open_dataset(path: str | Path, split: str = "train", crop: int | tuple[int, int] | None = None,
                 augment: bool | None = None, seed: int = 0) -> PairedImageDataset:
    """A dataset for whatever layout ``path`` holds (``training.data.layouts.find_layout``).

    Example::

        val = open_dataset("synth_out", "test")              # GoPro layout written by `deblur synth`
        real = open_dataset("RealBlur/RealBlur_R_test_list.txt")
    """
    layout, pairs = find_layout(path, split)
    dataset = PairedImageDataset(pairs, crop=crop, augment=augment, seed=seed)
    dataset.layout = layout
    return dataset

"""Paired deblurring datasets, their augmentation, and blur synthesis (``deblur synth``).

Datasets yield ``{"blur": FloatTensor(3, H, W), "sharp": FloatTensor(3, H, W), "name": str}``, RGB
in [0, 1]; see ``training.data.datasets`` for the reproducibility contract (``set_epoch``).
Names are imported on first use, so tools that only need file layouts or synthesis do not load torch.

Example::

    from training.data import GoProDataset, open_dataset
    train = GoProDataset("GOPRO_Large", "train", crop=256, seed=1234)
    test = open_dataset("GOPRO_Large", "test")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_EXPORTS = {
    "augment_pair": "augment", "center_crop_pair": "augment", "dihedral": "augment", "item_rng": "augment",
    "GoProDataset": "datasets", "HIDEDataset": "datasets", "PairedFolderDataset": "datasets",
    "PairedImageDataset": "datasets", "RealBlurDataset": "datasets", "open_dataset": "datasets",
    "DatasetError": "imageio", "read_rgb": "imageio", "to_unit_float": "imageio", "write_rgb": "imageio",
    "ImagePair": "layouts", "find_layout": "layouts", "folder_pairs": "layouts", "gopro_pairs": "layouts",
    "hide_pairs": "layouts", "realblur_pairs": "layouts",
    "synthesize": "synth", "SynthConfig": "synth_config",
}

__all__ = [
    "DatasetError",
    "GoProDataset",
    "HIDEDataset",
    "ImagePair",
    "PairedFolderDataset",
    "PairedImageDataset",
    "RealBlurDataset",
    "SynthConfig",
    "augment_pair",
    "center_crop_pair",
    "dihedral",
    "find_layout",
    "folder_pairs",
    "gopro_pairs",
    "hide_pairs",
    "item_rng",
    "open_dataset",
    "read_rgb",
    "realblur_pairs",
    "synthesize",
    "to_unit_float",
    "write_rgb",
]

if TYPE_CHECKING:
    from .augment import augment_pair, center_crop_pair, dihedral, item_rng
    from .datasets import (
        GoProDataset,
        HIDEDataset,
        PairedFolderDataset,
        PairedImageDataset,
        RealBlurDataset,
        open_dataset,
    )
    from .imageio import DatasetError, read_rgb, to_unit_float, write_rgb
    from .layouts import ImagePair, find_layout, folder_pairs, gopro_pairs, hide_pairs, realblur_pairs
    from .synth import synthesize
    from .synth_config import SynthConfig


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

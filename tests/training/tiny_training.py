"""A tiny network, an in-memory paired dataset and a config for fast trainer tests (not a test module)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training.config import TrainConfig
from training.data.augment import augment_pair, item_rng
from training.models import DeblurNet


class TinyNet(DeblurNet):
    """conv-ReLU-(dropout)-conv residual net with two full-size supervised outputs, like a 2-stage net."""

    architecture = "tiny"
    input_range = (-1.0, 1.0)
    pad_multiple = 2

    def __init__(self, width: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.drop = nn.Dropout2d(dropout)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)

    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        residual = self.tail(self.drop(torch.relu(self.head(x))))
        return [x + 0.5 * residual, x + residual]


def tiny_model(dropout: float = 0.0) -> TinyNet:
    torch.manual_seed(0)
    net = TinyNet(dropout=dropout)
    net.model_name = "tiny-test"   # not registered: the trainer only needs a name for the manifest
    net.model_kwargs = {}
    return net


class MemoryPairs(torch.utils.data.Dataset):
    """Random (blur, sharp) pairs held in memory, cropped/flipped with the data package's per-item RNG."""

    def __init__(self, count: int = 6, size: int = 20, crop: int | None = 16, seed: int = 0) -> None:
        rng = np.random.default_rng(1234)
        self.sharp = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]
        self.blur = [np.clip(s.astype(np.int16) + rng.integers(-40, 41, s.shape), 0, 255).astype(np.uint8)
                     for s in self.sharp]
        self.crop, self.seed, self.epoch = crop, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sharp)

    def __getitem__(self, index: int) -> dict:
        blur, sharp = self.blur[index], self.sharp[index]
        if self.crop is not None:
            blur, sharp = augment_pair(blur, sharp, self.crop, item_rng(self.seed, self.epoch, index))

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float() / 255

        return {"blur": tensor(blur), "sharp": tensor(sharp), "name": f"pair{index}.png"}


def tiny_config(**train: object) -> TrainConfig:
    return TrainConfig.from_dict({
        "model": {"name": "tiny-test"},
        "loss": {"name": "rdafnet", "fft_weight": 0.1},
        "data": {"crop": 16, "batch_size": 2, "val_max_images": 2},
        "optim": {"lr": 1e-2, "betas": [0.9, 0.99], "grad_clip": 1.0},
        "schedule": {"name": "cosine", "warmup": 1, "min_lr": 1e-4},
        "train": {"steps": 6, "seed": 3, "amp": "none", "val_every": 3, "ckpt_every": 1, "keep_last": 2,
                  "log_every": 1, **train},
    }, source="tiny test config")


def write_torchvision_vgg19(path, seed: int = 0) -> dict:
    """A randomly initialised vgg19 state_dict with torchvision's keys (features.N.*, plus a classifier)."""
    g = torch.Generator().manual_seed(seed)
    state, c_in = {}, 3
    for idx, c_out in ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256), (12, 256), (14, 256), (16, 256)):
        state[f"features.{idx}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * (2 / (9 * c_in)) ** 0.5
        state[f"features.{idx}.bias"] = torch.randn(c_out, generator=g) * 0.01
        c_in = c_out
    state["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(state, path)
    return state

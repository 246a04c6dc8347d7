"""The training loop: one process or many under ``torchrun``, supervised or adversarial (BAG).

What it guarantees:

- **Exact resume.** Batch ``s`` is a function of (seed, s) only: :class:`StepSampler` walks a
  per-epoch permutation seeded from (seed, epoch), and each item's crop/flip comes from the
  dataset's ``item_rng(seed, epoch, index)``. Checkpoints hold the weights, optimiser, scheduler,
  grad scaler, EMA, RNG states and step, so N steps straight and N/2 + resume + N/2 give the same
  weights (float32, deterministic kernels).
- **Nothing lost.** Checkpoints are written atomically (``training.checkpoint.save_checkpoint``);
  SIGINT/SIGTERM finish the current step, write a checkpoint and stop. The last ``keep_last``
  step checkpoints and ``best.pt`` (highest validation PSNR) are kept.
- **Measured like the papers.** Validation PSNR/SSIM on uint8-rounded full images
  (``training.evaluate``), logged to CSV, TensorBoard (when installed) and the progress bar.

Run layout::

    RUN_DIR/config.yaml                     the resolved config
    RUN_DIR/checkpoints/step-00001000.pt    the last keep_last of them
    RUN_DIR/best.pt                         best validation PSNR (load_model prefers its EMA weights)
    RUN_DIR/train_log.csv, val_log.csv, tensorboard/

Example::

    >>> cfg = load_config("rdafnet-nano-synthetic-cpu")
    >>> result = Trainer(cfg, "runs/nano", data_root="synth").fit()
    >>> result.best_psnr
"""

from __future__ import annotations

import csv
import math
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from . import distributed
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .config import TrainConfig
from .evaluate import evaluate, summarize, to_model_range
from .losses import loss_for
from .models import DeblurNet, build

CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best.pt"


# --------------------------------------------------------------------------- data order


def epoch_permutation(length: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of epoch ``epoch``: a function of (seed, epoch) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, 0x5EED])).permutation(length)


class StepSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, index)`` keys for steps ``start .. stop - 1`` on one rank.

    The data is an endless stream of per-epoch permutations; step ``s`` takes stream positions
    ``[s·B·W, (s+1)·B·W)`` and rank ``r`` its ``B`` of them, so what a step sees depends only on
    (seed, step) and the global batch, never on where a run was stopped or resumed.
    """

    def __init__(self, length: int, batch_size: int, seed: int, start: int, stop: int,
                 rank: int = 0, world_size: int = 1) -> None:
        if length < 1:
            raise ValueError("the training set is empty")
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.start, self.stop, self.rank, self.world_size = start, stop, rank, world_size
        self._cached: tuple[int, np.ndarray] | None = None

    def _order(self, epoch: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, epoch_permutation(self.length, self.seed, epoch))
        return self._cached[1]

    def keys(self, step: int) -> list[tuple[int, int]]:
        first = (step * self.world_size + self.rank) * self.batch_size
        out = []
        for position in range(first, first + self.batch_size):
            epoch, offset = divmod(position, self.length)
            out.append((epoch, int(self._order(epoch)[offset])))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            yield self.keys(step)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class EpochItems(Dataset):
    """``dataset[(epoch, index)]``: item ``index`` with the augmentation stream of ``epoch``.

    Works inside DataLoader workers: each holds its own copy of the dataset, whose epoch is set
    per item right before reading it.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        return self.dataset[index]


# --------------------------------------------------------------------------- schedule, precision, RNG


def lr_multiplier(step: int, total: int, *, kind: str, warmup: int, hold: int, min_ratio: float) -> float:
    """Factor on the base lr at ``step``: linear warm-up, constant hold, then cosine/linear decay
    reaching ``min_ratio`` at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    if kind == "constant" or step < warmup + hold:
        return 1.0
    span = max(1, total - warmup - hold)
    progress = min(1.0, (step - warmup - hold) / span)
    if kind == "cosine":
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return 1 - (1 - min_ratio) * progress


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device`` (None: float32)."""
    if mode == "none":
        return None
    if device.type == "cuda":
        if mode == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if mode == "bf16" else torch.float16
    if mode == "fp16":
        raise ValueError("train.amp: fp16 needs a CUDA device; use bf16 or none on CPU")
    return torch.bfloat16 if mode == "bf16" else None   # auto on CPU: float32, bf16 is slow on most CPUs


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG the loop touches, as tensors and plain Python values (loads with weights_only=True)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # the legacy 5-tuple
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(internal), gauss],
        "numpy": [kind, np.asarray(keys, dtype=np.uint32).tolist(), int(pos), int(has_gauss), float(cached)],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- logging


class CsvLog:
    """Rows appended to a CSV file whose columns are fixed by the first row written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as f:
                self.columns = next(csv.reader(f), None)

    def write(self, row: Mapping[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(self.columns)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore").writerow(
                {k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in row.items()})


def tensorboard_writer(log_dir: Path) -> Any:
    """A SummaryWriter, or None where tensorboard is not installed (logging then goes to CSV only)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir))


# --------------------------------------------------------------------------- the trainer


class SupervisedForward(nn.Module):
    """``forward`` = ``model.forward_supervised``, so DistributedDataParallel sees the call it must wrap."""

    def __init__(self, model: DeblurNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_supervised(x)


@dataclass(frozen=True)
class FitResult:
    step: int
    status: str                 # "finished", "stopped" (reached --max-steps) or "interrupted"
    best_psnr: float | None
    checkpoint: Path | None     # the last checkpoint written (main process only)
    signal: int | None = None   # the signal that interrupted the run


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINT_DIR / f"step-{step:08d}.pt"


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The step checkpoint with the highest step in ``run_dir``, or None."""
    found = sorted((Path(run_dir) / CHECKPOINT_DIR).glob("step-*.pt"))   # zero-padded: name order is step order
    return found[-1] if found else None


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def ema_with_warmup(decay: float):
    """EMA update whose decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after n updates.

    A fixed decay of 0.999 would still give the freshly initialised weights about a third of the
    average after 1,000 steps; the ramp lets short runs (and the first steps of long ones) average
    only weights that have trained.
    """

    def update(ema_params: list[torch.Tensor], params: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        floats = [(e, p) for e, p in zip(ema_params, params) if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [p for _, p in floats], 1.0 - d)
        for e, p in zip(ema_params, params):
            if not e.is_floating_point():     # counters and other integer buffers follow the model
                e.copy_(p)

    return update


def _leave_stop_signals_to_the_trainer(_worker_id: int) -> None:
    """Loader workers ignore SIGTERM: systemd (KillMode=control-group) and ``kill -- -PGID`` signal the
    whole process group, and a worker killed by it crashes the main process before it can save its
    checkpoint. The trainer stops its workers itself; PyTorch ends them if it dies. (Ctrl-C already
    ends PyTorch's workers quietly.)"""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Trainer:
    """Trains one model as ``config`` says and writes its run into ``run_dir``.

    Datasets come from ``data_root`` (any layout ``training.data.open_dataset`` knows) unless
    ``train_set`` / ``val_set`` are given (datasets yielding ``{"blur", "sharp", "name"}``; the
    training one should already crop). ``model`` / ``critic`` replace the networks the config names.
    ``resume``: True for the newest checkpoint in ``run_dir`` (fresh start if none), or a path.
    ``max_steps`` stops early without changing the schedule, so the run can be resumed exactly.
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike[str], *, data_root: str | None = None,
                 train_set: Dataset | None = None, val_set: Dataset | None = None,
                 model: DeblurNet | None = None, critic: nn.Module | None = None,
                 resume: bool | str | os.PathLike[str] = False, max_steps: int | None = None,
                 device: str | None = None, progress: bool = True) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.ctx = distributed.setup(device)
        self.device = self.ctx.device
        self.progress = progress and self.ctx.is_main
        cfg = config
        seed_everything(cfg.train.seed)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        self.model = (model if model is not None else build(cfg.model.name, **cfg.model.kwargs)).to(self.device)
        if not self.model.model_name:
            raise ValueError("the model has no registry name; build it with training.models.build")
        if cfg.data.crop % self.model.pad_multiple:
            raise ValueError(f"data.crop {cfg.data.crop} must be a multiple of {self.model.model_name}'s "
                             f"pad_multiple {self.model.pad_multiple}")
        self.loss = loss_for(self.model.architecture, **cfg.loss).to(self.device)
        self.adversarial = bool(getattr(self.loss, "adversarial", False))
        self.critic: nn.Module | None = None
        if self.adversarial:
            self.critic = (critic if critic is not None else build(cfg.gan.critic, **cfg.gan.critic_kwargs)).to(self.device)

        self.train_set, self.val_set = self._datasets(data_root, train_set, val_set)
        global_batch = cfg.data.batch_size * self.ctx.world_size
        self.steps_per_epoch = max(1, len(self.train_set) // global_batch)  # type: ignore[arg-type]
        if cfg.train.epochs is not None:   # schedule lengths are then in epochs too
            unit, self.total_steps = self.steps_per_epoch, cfg.train.epochs * self.steps_per_epoch
        else:
            unit, self.total_steps = 1, int(cfg.train.steps or 0)
        self.stop_step = self.total_steps if max_steps is None else min(self.total_steps, int(max_steps))
        warmup, hold = round(cfg.schedule.warmup * unit), round(cfg.schedule.hold * unit)

        def multiplier(step: int) -> float:
            return lr_multiplier(step, self.total_steps, kind=cfg.schedule.name, warmup=warmup, hold=hold,
                                 min_ratio=cfg.schedule.min_lr / cfg.optim.lr)

        resume_path = (latest_checkpoint(self.run_dir) if resume is True else Path(resume)) if resume else None
        if cfg.train.init_from and resume_path is None:    # a fresh start, even under --resume
            self._init_weights(Path(cfg.train.init_from))
        self.optimizer = self._optimizer(self.model)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, multiplier)
        self.critic_optimizer = self.critic_scheduler = None
        if self.critic is not None:
            self.critic_optimizer = self._optimizer(self.critic)
            self.critic_scheduler = torch.optim.lr_scheduler.LambdaLR(self.critic_optimizer, multiplier)
        self.amp_dtype = resolve_amp(cfg.train.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.ema = None
        if cfg.train.ema_decay is not None:
            self.ema = AveragedModel(self.model, multi_avg_fn=ema_with_warmup(cfg.train.ema_decay),
                                     use_buffers=True)

        self.step = 0
        self.best_psnr: float | None = None
        self.last_checkpoint: Path | None = None
        if resume_path is not None:
            self._load(resume_path)
        elif resume and self.ctx.is_main:
            print(f"no checkpoint in {self.run_dir / CHECKPOINT_DIR}: starting from step 0")

        self.net: nn.Module = SupervisedForward(self.model)
        if self.ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.net, device_ids=ids)
        self._signal: int | None = None

    # ----------------------------------------------------------------- construction helpers

    def _datasets(self, root: str | None, train_set: Dataset | None,
                  val_set: Dataset | None) -> tuple[Dataset, Dataset | None]:
        cfg = self.config
        if cfg.data.engine is not None:
            from .data.engine import EngineConfig, EngineDataset, bundled_sources

            if train_set is None:
                engine = EngineConfig.from_dict({**cfg.data.engine, "crop": cfg.data.crop})
                train_set = EngineDataset(bundled_sources("train"), engine, seed=cfg.train.seed)
            if val_set is None and root is None:
                preset = EngineConfig.preset(cfg.data.val_preset, crop=cfg.data.val_crop)
                val_set = EngineDataset(bundled_sources("validation"), preset, seed=cfg.data.val_seed, fixed=True,
                                        length=cfg.data.val_max_images or 64)
        if train_set is None or val_set is None:
            if root is None:
                raise ValueError("give data_root (a dataset folder) or both train_set and val_set")
            from .data.datasets import open_dataset

            if train_set is None:
                train_set = open_dataset(root, cfg.data.train_split, crop=cfg.data.crop,
                                         augment=cfg.data.augment, seed=cfg.train.seed)
            if val_set is None:
                try:
                    val_set = open_dataset(root, cfg.data.val_split)
                except (FileNotFoundError, ValueError) as exc:
                    warnings.warn(f"no validation split {cfg.data.val_split!r} ({exc}); training without "
                                  "validation, so no best.pt", stacklevel=3)
        if len(train_set) == 0:  # type: ignore[arg-type]
            raise ValueError("the training set is empty")
        return train_set, val_set

    def _optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        o = self.config.optim
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        return cls(module.parameters(), lr=o.lr, betas=(o.betas[0], o.betas[1]), eps=o.eps, weight_decay=o.weight_decay)

    # ----------------------------------------------------------------- checkpoints

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "total_steps": self.total_steps,
            "config": self.config.to_dict(),
            "world_size": self.ctx.world_size,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema_state_dict": self.ema.module.state_dict() if self.ema is not None else None,
            "ema_updates": int(self.ema.n_averaged.item()) if self.ema is not None else 0,
            "rng": rng_state(self.device),
            "best_psnr": self.best_psnr,
        }
        if self.critic is not None:
            state.update(critic_state_dict=self.critic.state_dict(),
                         critic_optimizer=self.critic_optimizer.state_dict(),  # type: ignore[union-attr]
                         critic_scheduler=self.critic_scheduler.state_dict())  # type: ignore[union-attr]
        return state

    def save(self, path: Path | None = None, **extra: Any) -> Path | None:
        """Write a checkpoint of the current step (main process only); prune old step checkpoints."""
        if not self.ctx.is_main:
            return None
        target = path or checkpoint_path(self.run_dir, self.step)
        save_checkpoint(target, self.model, **self._state(), **extra)
        if path is None:
            self.last_checkpoint = target
            for old in sorted((self.run_dir / CHECKPOINT_DIR).glob("step-*.pt"))[: -self.config.train.keep_last]:
                old.unlink(missing_ok=True)
        return target

    def _init_weights(self, path: Path) -> None:
        """Start from ``path``'s weights (EMA when present): same network, new optimiser and schedule."""
        source, _ = load_model(path)
        if source.model_name != self.model.model_name:
            raise ValueError(f"train.init_from {path} holds {source.model_name!r}, the config trains "
                             f"{self.model.model_name!r}")
        try:
            self.model.load_state_dict(source.state_dict())
        except RuntimeError as exc:
            raise ValueError(f"train.init_from {path}: its {source.model_name!r} has other widths or "
                             f"settings than the config's model.kwargs: {exc}") from None
        if self.ctx.is_main:
            print(f"initialised from {path}")

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        if "optimizer" not in ckpt:
            raise ValueError(f"{path} holds weights only (a released model such as sdk/models/*.pt), no optimiser "
                             "state to resume: start from it with --init-from instead of --resume")
        saved = ckpt.get("config") or {}
        current = self.config.to_dict()
        if saved.get("model") != current["model"]:
            raise ValueError(f"{path} holds model {saved.get('model')}, the config asks for {current['model']}")
        # init_from only seeds a fresh start: a resumed run does not read it. A key the checkpoint predates
        # changes nothing when it holds the value that older code implied (its default).
        saved_flat, defaults = _flatten(saved), _flatten(TrainConfig().to_dict())
        changed = sorted(k for k, v in _flatten(current).items()
                         if k != "train.init_from" and saved_flat.get(k, defaults.get(k)) != v)
        if changed and self.ctx.is_main:
            warnings.warn(f"resuming {path} with changed settings {changed}: the run will not replay exactly",
                          stacklevel=3)
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            if ckpt.get("ema_state_dict") is not None:
                self.ema.module.load_state_dict(ckpt["ema_state_dict"])
                self.ema.n_averaged.fill_(int(ckpt.get("ema_updates", 0)))
            else:
                self.ema.n_averaged.zero_()   # the next update copies the current weights
        if self.critic is not None:
            if "critic_state_dict" not in ckpt:
                raise ValueError(f"{path} has no critic state; it was not written by an adversarial run")
            self.critic.load_state_dict(ckpt["critic_state_dict"])
            self.critic_optimizer.load_state_dict(ckpt["critic_optimizer"])  # type: ignore[union-attr]
            self.critic_scheduler.load_state_dict(ckpt["critic_scheduler"])  # type: ignore[union-attr]
        set_rng_state(ckpt["rng"], self.device)
        self.step = int(ckpt["step"])
        self.best_psnr = ckpt.get("best_psnr")
        if self.ctx.is_main:
            print(f"resumed {path} at step {self.step}")

    # ----------------------------------------------------------------- one step

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.config.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def _critic_steps(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        # The critic runs in float32: its gradient penalty differentiates twice, which GradScaler does not cover.
        assert self.critic is not None and self.critic_optimizer is not None
        terms: dict[str, torch.Tensor] = {}
        for _ in range(self.config.gan.critic_steps):
            self.critic_optimizer.zero_grad(set_to_none=True)
            terms = self.loss.critic_terms(self.critic, real, fake)  # type: ignore[operator]
            terms["total"].backward()
            distributed.average_gradients(self.ctx, self.critic)
            self.critic_optimizer.step()
        return {f"critic_{k}": v for k, v in terms.items()}

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the logged loss terms."""
        self.model.train()
        x = to_model_range(batch["blur"].to(self.device, non_blocking=True), self.model)
        y = to_model_range(batch["sharp"].to(self.device, non_blocking=True), self.model)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            outputs = self.net(x)
        outputs = [o.float() for o in outputs]   # losses (FFT, log) run in float32
        logged: dict[str, torch.Tensor] = {}
        if self.critic is not None:
            self.critic.train()
            logged.update(self._critic_steps(y, outputs[-1].detach()))
            self.critic.requires_grad_(False)
            terms = self.loss(outputs, y, critic=self.critic)
            self._backward_and_step(terms["total"])
            self.critic.requires_grad_(True)
            self.critic_scheduler.step()  # type: ignore[union-attr]
        else:
            terms = self.loss(outputs, y)
            self._backward_and_step(terms["total"])
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        logged.update(terms)
        return {k: float(v.detach()) for k, v in logged.items()}

    # ----------------------------------------------------------------- validation

    def validate(self) -> dict[str, float] | None:
        """Mean PSNR/SSIM on the validation set (main process; EMA weights when enabled)."""
        if self.val_set is None or not self.ctx.is_main:
            return None
        net: DeblurNet = self.ema.module if self.ema is not None else self.model  # type: ignore[assignment]
        scores = evaluate(net, self.val_set, device=self.device, max_images=self.config.data.val_max_images,
                          progress=self.progress)
        self.model.train()
        return summarize(scores)

    # ----------------------------------------------------------------- the loop

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signal is not None:
            raise KeyboardInterrupt   # a second Ctrl-C: stop now, without a checkpoint
        self._signal = signum

    def _loader(self) -> DataLoader:
        cfg = self.config.data
        sampler = StepSampler(len(self.train_set), cfg.batch_size, self.config.train.seed,  # type: ignore[arg-type]
                              self.step, self.stop_step, self.ctx.rank, self.ctx.world_size)
        # Its own generator: creating an iterator draws a worker base seed, which must not advance
        # the global RNG (dropout and the like) differently in a resumed run than in a straight one.
        return DataLoader(EpochItems(self.train_set), batch_sampler=sampler, num_workers=cfg.num_workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False,
                          worker_init_fn=_leave_stop_signals_to_the_trainer,
                          generator=torch.Generator().manual_seed(self.config.train.seed))

    def fit(self) -> FitResult:
        """Train from the current step to the stop step; returns how it ended."""
        cfg = self.config.train
        handlers: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._on_signal)
        main = self.ctx.is_main
        writer = None
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
            writer = tensorboard_writer(self.run_dir / "tensorboard") if cfg.tensorboard else None
        train_log, val_log = CsvLog(self.run_dir / "train_log.csv"), CsvLog(self.run_dir / "val_log.csv")
        bar = tqdm(total=self.stop_step, initial=self.step, disable=not self.progress, unit="step",
                   dynamic_ncols=True, desc="train")
        status = "finished" if self.stop_step == self.total_steps else "stopped"
        try:
            started = last_log = time.perf_counter()
            last_log_step = self.step
            for batch in self._loader():
                lr = self.optimizer.param_groups[0]["lr"]   # the lr this step uses
                terms = self.train_step(batch)
                self.step += 1
                bar.update(1)
                at_end = self.step >= self.stop_step
                if self.step % cfg.log_every == 0 or at_end:
                    terms = distributed.mean_over_ranks(self.ctx, terms)
                    now = time.perf_counter()
                    row = {"step": self.step, "lr": lr, **terms,
                           "sec_per_step": (now - last_log) / (self.step - last_log_step), "elapsed_s": now - started}
                    last_log, last_log_step = now, self.step
                    if main:
                        train_log.write(row)
                        bar.set_postfix(loss=f"{terms['total']:.4g}", lr=f"{row['lr']:.2e}")
                        if writer is not None:
                            for k, v in row.items():
                                if k not in ("step", "elapsed_s"):
                                    writer.add_scalar(f"train/{k}", v, self.step)
                if self.step % cfg.val_every == 0 or at_end:
                    self._validate_and_keep_best(val_log, writer, bar)
                stop_now = distributed.any_rank(self.ctx, self._signal is not None)
                if self.step % cfg.ckpt_every == 0 or at_end or stop_now:
                    self.save()
                    distributed.barrier(self.ctx)
                if stop_now:
                    status = "interrupted"
                    break
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        if main and status == "interrupted":
            print(f"stopped by signal {self._signal} at step {self.step}; checkpoint {self.last_checkpoint}")
        return FitResult(self.step, status, self.best_psnr, self.last_checkpoint, self._signal)

    def _validate_and_keep_best(self, val_log: CsvLog, writer: Any, bar: tqdm) -> None:
        summary = self.validate()
        if summary is not None:
            val_log.write({"step": self.step, "psnr": summary["output_psnr"], "ssim": summary["output_ssim"],
                           "input_psnr": summary["input_psnr"], "input_ssim": summary["input_ssim"]})
            if writer is not None:
                writer.add_scalar("val/psnr", summary["output_psnr"], self.step)
                writer.add_scalar("val/ssim", summary["output_ssim"], self.step)
            bar.write(f"step {self.step}: val PSNR {summary['output_psnr']:.2f} dB, SSIM {summary['output_ssim']:.4f} "
                      f"(input {summary['input_psnr']:.2f} dB)")
            if self.best_psnr is None or summary["output_psnr"] > self.best_psnr:
                self.best_psnr = summary["output_psnr"]
                self.save(self.run_dir / BEST_NAME, val_psnr=summary["output_psnr"], val_ssim=summary["output_ssim"])
        distributed.barrier(self.ctx)

    def close(self) -> None:
        distributed.teardown(self.ctx)

"""Training configurations: YAML files in ``training/configs/`` read into checked dataclasses.

A config has six sections; every key is optional except ``model.name`` and one of
``train.epochs`` / ``train.steps``::

    model:    {name: rdafnet-nano, kwargs: {}}            # training.models.build(name, **kwargs)
    loss:     {fft_weight: 0.1}                           # training.losses.loss_for(architecture, **loss)
    data:     {crop: 128, batch_size: 8, augment: true, num_workers: 2,
               train_split: train, val_split: test, val_max_images: 16,
               engine: null, val_preset: mixed, val_crop: 256, val_seed: 0}     # engine: on-the-fly data
    optim:    {name: adam, lr: 2.0e-4, betas: [0.9, 0.999], eps: 1.0e-8, weight_decay: 0.0, grad_clip: null}
    schedule: {name: cosine, warmup: 0, hold: 0, min_lr: 1.0e-6}   # warmup/hold in train.epochs or steps units
    train:    {epochs: null, steps: 3000, seed: 0, amp: auto, ema_decay: null, init_from: null,
               val_every: 500, ckpt_every: 500, keep_last: 3, log_every: 50, tensorboard: true}
    gan:      {critic: bag-critic, critic_kwargs: {}, critic_steps: 5}   # adversarial losses only

``batch_size`` is per process: under ``torchrun`` with K processes the global batch is K times it.

Example::

    >>> cfg = load_config("training/configs/rdafnet-nano-synthetic-cpu.yaml", ["data.batch_size=4"])
    >>> cfg.data.batch_size
    4
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
AMP_MODES = ("auto", "none", "bf16", "fp16")
SCHEDULES = ("constant", "cosine", "linear")
OPTIMIZERS = ("adam", "adamw")


class ConfigError(ValueError):
    """A training config is unreadable or has a missing, unknown or invalid field."""


@dataclass
class ModelConfig:
    name: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    crop: int = 256
    batch_size: int = 8
    augment: bool = True            # the 8 flips/rotations every paper here uses
    num_workers: int = 0
    train_split: str = "train"
    val_split: str = "test"
    val_max_images: int | None = None
    # On-the-fly data (training.data.engine): EngineConfig fields, crop taken from data.crop.
    # Set (even to {}) to train on fresh samples; validation then uses the engine's held-out
    # sources with preset val_preset at val_crop, unless --data names a folder.
    engine: dict[str, Any] | None = None
    val_preset: str = "mixed"
    val_crop: int = 256
    # The validation pairs' seed, apart from train.seed: runs with other training seeds (an anneal, a
    # second campaign) are then scored on the same pairs and their curves compare.
    val_seed: int = 0


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float | None = None  # max global gradient norm; None: no clipping


@dataclass
class ScheduleConfig:
    name: str = "constant"
    warmup: float = 0.0             # linear warm-up length, in the unit of the run length (epochs or steps)
    hold: float = 0.0               # constant length after warm-up, same unit
    min_lr: float = 0.0             # the lr reached at the end of the decay


@dataclass
class TrainLoopConfig:
    epochs: int | None = None
    steps: int | None = None
    seed: int = 0
    amp: str = "auto"
    ema_decay: float | None = None
    # Fine-tuning: start from the weights of this checkpoint (its EMA weights when it has them), e.g.
    # sdk/models/default.pt on your own data, with a fresh optimiser and schedule. --resume wins over it.
    init_from: str | None = None
    val_every: int = 1000           # steps; the last step is always validated
    ckpt_every: int = 1000          # steps; the last step is always saved
    keep_last: int = 3
    log_every: int = 50
    tensorboard: bool = True        # also log to RUN_DIR/tensorboard when tensorboard is installed


@dataclass
class GANConfig:
    critic: str = "bag-critic"
    critic_kwargs: dict[str, Any] = field(default_factory=dict)
    critic_steps: int = 5


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    gan: GANConfig = field(default_factory=GANConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types only, so checkpoints holding it load with ``weights_only=True``."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "config") -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
        sections = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(sections))
        if unknown:
            raise ConfigError(f"{source}: unknown sections {unknown}; known: {sorted(sections)}")
        values: dict[str, Any] = {}
        for name, f in sections.items():
            raw = data.get(name) or {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{source}: section {name!r} must be a mapping, got {raw!r}")
            if name == "loss":
                values[name] = dict(raw)
            else:
                values[name] = _section(f.default_factory, raw, f"{source}: {name}")  # type: ignore[misc]
        cfg = cls(**values)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "config") -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"{source}: {msg}")

        if not self.model.name:
            raise bad("model.name is required (a name from `deblur models`)")
        if (self.train.epochs is None) == (self.train.steps is None):
            raise bad("set exactly one of train.epochs and train.steps")
        if (self.train.epochs or self.train.steps or 0) < 1:
            raise bad("train.epochs / train.steps must be positive")
        for name in ("crop", "batch_size"):
            if getattr(self.data, name) < 1:
                raise bad(f"data.{name} must be positive")
        if self.data.engine is not None:
            from .data.engine import EngineConfig

            try:
                EngineConfig.from_dict({**self.data.engine, "crop": self.data.crop})
                EngineConfig.preset(self.data.val_preset, crop=self.data.val_crop)
            except (TypeError, ValueError) as exc:
                raise bad(f"data.engine: {exc}") from None
        if self.data.num_workers < 0:
            raise bad("data.num_workers must be >= 0")
        if self.optim.name not in OPTIMIZERS:
            raise bad(f"optim.name must be one of {OPTIMIZERS}, got {self.optim.name!r}")
        if self.optim.lr <= 0 or len(self.optim.betas) != 2:
            raise bad("optim.lr must be positive and optim.betas two numbers")
        if self.optim.grad_clip is not None and self.optim.grad_clip <= 0:
            raise bad("optim.grad_clip must be positive or null")
        if self.schedule.name not in SCHEDULES:
            raise bad(f"schedule.name must be one of {SCHEDULES}, got {self.schedule.name!r}")
        if self.schedule.warmup < 0 or self.schedule.hold < 0 or not 0 <= self.schedule.min_lr <= self.optim.lr:
            raise bad("schedule.warmup/hold must be >= 0 and 0 <= schedule.min_lr <= optim.lr")
        if self.train.amp not in AMP_MODES:
            raise bad(f"train.amp must be one of {AMP_MODES}, got {self.train.amp!r}")
        if self.train.ema_decay is not None and not 0 < self.train.ema_decay < 1:
            raise bad("train.ema_decay must be in (0, 1) or null")
        for name in ("val_every", "ckpt_every", "keep_last", "log_every"):
            if getattr(self.train, name) < 1:
                raise bad(f"train.{name} must be positive")
        if self.gan.critic_steps < 1:
            raise bad("gan.critic_steps must be positive")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(value: Any, annotation: str, where: str) -> Any:
    """YAML 1.1 reads ``2e-4`` as a string and users write ``5`` for ``5.0``: convert by the field's type."""
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where} must not be null")
    try:
        if annotation.startswith("int"):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if annotation.startswith("float"):
            return float(value)
        if annotation.startswith("bool"):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if annotation.startswith("str"):
            return str(value)
        if annotation.startswith("tuple"):
            return tuple(float(v) for v in value)
        if annotation.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {annotation}, got {value!r}") from None
    return value


def _section(factory: Any, raw: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(factory)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(fields)}")
    return factory(**{k: _coerce(v, str(fields[k].type), f"{where}.{k}") for k, v in raw.items()})


def resolve_config_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as given, or the name of a bundled config (``rdafnet-nano-synthetic-cpu``)."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    bundled = CONFIG_DIR / (candidate.name if candidate.suffix else candidate.name + ".yaml")
    if bundled.is_file():
        return bundled
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"config not found: {path} (bundled configs: {', '.join(names)})")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["data.batch_size=4", "model.kwargs.num_blocks=2"]`` applied to a raw config dict (values parsed as YAML)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[leaf] = yaml.safe_load(text)
    return data


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (a path or a bundled name) and apply ``section.key=value`` overrides."""
    resolved = resolve_config_path(path)
    try:
        data = yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{resolved}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{resolved}: expected a mapping of sections at the top level")
    return TrainConfig.from_dict(apply_overrides(data, list(overrides or [])), source=str(resolved))

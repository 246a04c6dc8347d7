"""Finding (blurred, sharp) file pairs in the on-disk layouts of the public deblurring datasets.

Each function returns a sorted list of ``ImagePair`` and fails early, naming the offending path,
when the layout is broken: a missing folder, a blurred image without its sharp twin (or the
reverse), a list line that points nowhere. Image contents (size, readability) are checked when a
pair is loaded (``PairedImageDataset``) or all at once with ``PairedImageDataset.verify()``.

Supported layouts:

* **GoPro** (Nah et al. 2017, ``GOPRO_Large``)::

      <root>/{train,test}/<sequence>/{blur,blur_gamma,sharp}/<frame>.png

  ``blur`` is the linear average the papers train on; ``blur_gamma`` the gamma-curve variant.
  ``deblur synth`` writes this layout too (without ``blur_gamma``).
* **HIDE** (Shen et al. 2019, ``HIDE_dataset``)::

      <root>/GT/<name>.png                   sharp images of both splits
      <root>/train/<name>.png                blurred training images
      <root>/test/test-close-ups/<name>.png  blurred test images, close-up subset
      <root>/test/test-long-shot/<name>.png  blurred test images, long-shot subset
      <root>/train.txt, <root>/test.txt      optional: one file name per line

  The sharp image of a blurred one has the same file name in ``GT/``. Where ``train.txt`` /
  ``test.txt`` exist they define the split (every listed name must exist); otherwise the folder
  contents do. Splits: ``train``, ``test`` (both subsets), ``test-close-ups``, ``test-long-shot``.
* **RealBlur** (Rim et al. 2020): list files such as ``RealBlur_J_test_list.txt`` with one pair per
  line, ``<gt_path> <blur_path>``, both relative to the folder holding the list (or ``root``).
* **Folder pair**: any ``blur/`` and ``sharp/`` folders (or ``input/`` and ``target/``, as the
  Restormer-style test sets name them) whose images match by file name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .imageio import DatasetError, is_image_file

GOPRO_BLUR_KINDS = ("blur", "blur_gamma")
HIDE_TEST_SUBSETS = ("test-close-ups", "test-long-shot")
HIDE_SPLITS = ("train", "test", *HIDE_TEST_SUBSETS)
# Folder names used for the two sides of a pair, in the order they are tried by ``find_layout``.
FOLDER_PAIR_NAMES = (("blur", "sharp"), ("input", "target"))


@dataclass(frozen=True)
class ImagePair:
    """One training or test example on disk: the blurred file, its sharp target and a stable name."""

    blur: Path
    sharp: Path
    name: str


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _images_by_name(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if is_image_file(p)}


def _describe(names: Iterable[str], folder: Path, limit: int = 5) -> str:
    names = sorted(names)
    shown = ", ".join(str(folder / n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return shown + more


def folder_pairs(blur_dir: str | Path, sharp_dir: str | Path, name_prefix: str = "") -> list[ImagePair]:
    """Pair the images of two folders by identical file name; every image must have its twin.

    Example::

        pairs = folder_pairs("my_set/blur", "my_set/sharp")
    """
    blur_dir = _require_dir(Path(blur_dir), "blurred-image folder")
    sharp_dir = _require_dir(Path(sharp_dir), "sharp-image folder")
    blurred, sharp = _images_by_name(blur_dir), _images_by_name(sharp_dir)
    if not blurred:
        raise DatasetError(f"no images in {blur_dir}")
    missing_sharp = blurred.keys() - sharp.keys()
    if missing_sharp:
        raise DatasetError(
            f"blurred images without a sharp image of the same name in {sharp_dir}: "
            f"{_describe(missing_sharp, blur_dir)}"
        )
    missing_blur = sharp.keys() - blurred.keys()
    if missing_blur:
        raise DatasetError(
            f"sharp images without a blurred image of the same name in {blur_dir}: "
            f"{_describe(missing_blur, sharp_dir)}"
        )
    return [ImagePair(blurred[n], sharp[n], name_prefix + n) for n in sorted(blurred)]


def gopro_pairs(root: str | Path, split: str = "train", blur_kind: str = "blur") -> list[ImagePair]:
    """Pairs of a GoPro-layout dataset split; names are ``<sequence>/<frame>.png``.

    Example::

        pairs = gopro_pairs("GOPRO_Large", "test")        # 1111 pairs on the real dataset
    """
    if blur_kind not in GOPRO_BLUR_KINDS:
        raise ValueError(f"blur_kind must be one of {GOPRO_BLUR_KINDS}, got {blur_kind!r}")
    split_dir = _require_dir(Path(root) / split, f"GoPro split folder '{split}'")
    sequences = sorted(p for p in split_dir.iterdir() if p.is_dir())
    if not sequences:
        raise DatasetError(f"no sequence folders in {split_dir}")
    pairs: list[ImagePair] = []
    for seq in sequences:
        pairs += folder_pairs(seq / blur_kind, seq / "sharp", name_prefix=f"{seq.name}/")
    return pairs


def _read_name_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def hide_pairs(root: str | Path, split: str = "test") -> list[ImagePair]:
    """Pairs of the HIDE dataset (layout in the module docstring); names are ``<subset>/<file>``.

    Example::

        pairs = hide_pairs("HIDE_dataset", "test")         # 2025 pairs on the real dataset
    """
    if split not in HIDE_SPLITS:
        raise ValueError(f"HIDE split must be one of {HIDE_SPLITS}, got {split!r}")
    root = Path(root)
    gt_dir = _require_dir(root / "GT", "HIDE sharp-image folder")
    if split == "train":
        blur_dirs = [_require_dir(root / "train", "HIDE training folder")]
    else:
        subsets = HIDE_TEST_SUBSETS if split == "test" else (split,)
        blur_dirs = [_require_dir(root / "test" / s, f"HIDE test folder '{s}'") for s in subsets]

    blurred: dict[str, Path] = {}
    for folder in blur_dirs:
        blurred.update(_images_by_name(folder))
    list_file = root / ("train.txt" if split == "train" else "test.txt")
    if list_file.is_file():
        listed = [Path(n).name for n in _read_name_list(list_file)]
        if split in HIDE_TEST_SUBSETS:
            # test.txt covers both subsets, so names of the other subset are expected to be absent here.
            names = [n for n in listed if n in blurred]
        else:
            missing = [n for n in listed if n not in blurred]
            if missing:
                where = " or ".join(str(d) for d in blur_dirs)
                raise DatasetError(f"{list_file} lists images missing from {where}: {', '.join(missing[:5])}")
            names = listed
    else:
        names = sorted(blurred)
    if not names:
        raise DatasetError(f"no HIDE images for split '{split}' under {root}")

    pairs = []
    for n in names:
        sharp = gt_dir / n
        if not sharp.is_file():
            raise DatasetError(f"blurred image {blurred[n]} has no sharp image {sharp}")
        pairs.append(ImagePair(blurred[n], sharp, f"{blurred[n].parent.name}/{n}"))
    return pairs


def realblur_pairs(list_file: str | Path, root: str | Path | None = None) -> list[ImagePair]:
    """Pairs from a RealBlur list file (``<gt_path> <blur_path>`` per line, paths relative to ``root``).

    ``root`` defaults to the folder that holds the list file. Names are the blurred paths as listed.

    Example::

        pairs = realblur_pairs("RealBlur/RealBlur_J_test_list.txt")   # 980 pairs on the real dataset
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"RealBlur list file not found: {list_file}")
    base = Path(root) if root is not None else list_file.parent
    pairs = []
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DatasetError(f"{list_file} line {number}: expected '<gt_path> <blur_path>', got {line.strip()!r}")
        sharp, blur = base / fields[0], base / fields[1]
        for path, what in ((sharp, "sharp"), (blur, "blurred")):
            if not path.is_file():
                raise DatasetError(f"{list_file} line {number}: {what} image not found: {path}")
        pairs.append(ImagePair(blur, sharp, fields[1]))
    if not pairs:
        raise DatasetError(f"RealBlur list {list_file} has no pairs")
    return pairs


def find_layout(path: str | Path, split: str = "train") -> tuple[str, list[ImagePair]]:
    """Recognise the layout at ``path`` and return ``(layout_name, pairs)`` for ``split``.

    Tried in order: a RealBlur list file; HIDE (``GT/`` beside ``train/`` or ``test/``); GoPro
    (``<path>/<split>/<sequence>/sharp``); a folder pair in ``<path>/<split>/`` or ``<path>/``.

    Example::

        layout, pairs = find_layout("synth_out", "test")     # ("gopro", [...]) for `deblur synth` output
    """
    path = Path(path)
    if path.is_file():
        return "realblur", realblur_pairs(path)
    if not path.is_dir():
        raise FileNotFoundError(f"dataset not found: {path}")
    if (path / "GT").is_dir() and ((path / "train").is_dir() or (path / "test").is_dir()):
        return "hide", hide_pairs(path, split)
    split_dir = path / split
    if split_dir.is_dir() and any((s / "sharp").is_dir() for s in split_dir.iterdir() if s.is_dir()):
        return "gopro", gopro_pairs(path, split)
    for folder in (split_dir, path):
        for blur_name, sharp_name in FOLDER_PAIR_NAMES:
            if (folder / blur_name).is_dir() and (folder / sharp_name).is_dir():
                return "folders", folder_pairs(folder / blur_name, folder / sharp_name)
    raise DatasetError(
        f"no known dataset layout at {path} for split '{split}': expected a RealBlur list file, HIDE "
        f"(GT/ + train/ or test/), GoPro ({split}/<sequence>/blur|sharp) or blur/ + sharp/ folders"
    )

"""The model card's pictures, made through ``sdk.Deblurrer`` (what users run):

- ``grid.png``: rows of held-out crops (the data engine's ``motion-9-21`` set: scikit-image's coffee
  and rocket, straight and curved motion of 9-21 px) as blurred | output | sharp, each labelled
  with its PSNR against the sharp crop;
- ``clock.png``: scikit-image's ``clock_motion.png``, a real photo blurred by camera motion (no sharp
  version exists), before | after.

Example::

    python -m benchmarks.model_card_pictures --out sdk/models/card
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

ROWS = 4
CROP = 160


def _label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 18), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.PSNR(a, b))


def grid(deblurrer: object, rows: int = ROWS, crop: int = CROP) -> np.ndarray:
    """Blurred | output | sharp rows (RGB uint8) of the held-out motion-9-21 set."""
    from sdk.cli.eval import ENGINE_SEED
    from training.data.engine import EngineConfig, EngineDataset, bundled_sources

    data = EngineDataset(bundled_sources("validation"), EngineConfig.preset("motion-9-21", crop=crop),
                         seed=ENGINE_SEED + 1, fixed=True, length=rows)
    lines = []
    for i in range(rows):
        sharp, blur, info = data.sample(data.rng(i))
        out = deblurrer.process(blur)  # type: ignore[attr-defined]
        lines.append(np.concatenate([
            _label(blur, f"blurred {info['length']:.0f}px {_psnr(blur, sharp):.1f} dB"),
            _label(out, f"output {_psnr(out, sharp):.1f} dB"),
            _label(sharp, "sharp")], axis=1))
    return np.concatenate(lines, axis=0)


def clock(deblurrer: object) -> np.ndarray:
    """scikit-image's real motion-blurred clock photo, before | after (RGB uint8)."""
    from skimage import data

    grey = data.clock()
    rgb = np.repeat(grey[..., None], 3, axis=2)
    out = deblurrer.process(rgb)  # type: ignore[attr-defined]
    return np.concatenate([_label(rgb, "clock_motion.png (real blur)"), _label(out, "output")], axis=1)


def main(argv: Sequence[str] | None = None) -> int:
    import sdk

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--out", type=Path, default=Path("sdk/models/card"))
    args = parser.parse_args(argv)
    deblurrer = sdk.Deblurrer(args.model, color="rgb", device="cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, image in (("grid.png", grid(deblurrer)), ("clock.png", clock(deblurrer))):
        path = args.out / name
        cv2.imwrite(str(path), image[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

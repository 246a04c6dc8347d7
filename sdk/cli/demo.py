"""``deblur demo``: blur a short clip of a bundled photo, deblur it, show the PSNR gain.

No network, no arguments, no PyTorch: the clip is a camera pan across ``sdk/data/demo_sharp.png``
with motion blur made by averaging sub-pixel shifted copies along each frame's exposure path
(NumPy/OpenCV), so the sharp frame behind every blurred one is known exactly.
"""

from __future__ import annotations

import argparse
import math
from importlib import resources
from pathlib import Path

import numpy as np

HELP = "deblur a synthetic blurred clip with the bundled model; writes a side-by-side video, prints PSNR"

CLIP_SIZE = (256, 384)          # (height, width) of the demo frames
BLUR_LENGTHS = (9.0, 17.0)      # exposure path length in pixels, smallest and largest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="deblur-demo", help="folder for the results (default: %(default)s)")
    parser.add_argument("--model", default=None, help="model to run: a file or a bundled model's name (default: the bundled default)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--frames", type=int, default=24, help="clip length (default: %(default)s)")


def load_demo_image() -> np.ndarray:
    """The bundled sharp photo as a BGR uint8 array."""
    import cv2

    data = (resources.files("sdk") / "data" / "demo_sharp.png").read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError("sdk/data/demo_sharp.png is damaged in this installation")
    return image


def _shifted(image: np.ndarray, dy: float, dx: float, size: tuple[int, int]) -> np.ndarray:
    """The ``size`` window whose top-left corner sits at sub-pixel (dy, dx), bilinear, float32."""
    import cv2

    m = np.array([[1, 0, -dx], [0, 1, -dy]], np.float32)
    return cv2.warpAffine(image, m, (size[1], size[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def make_demo_clip(image: np.ndarray, frames: int = 24, size: tuple[int, int] = CLIP_SIZE,
                   seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(blurred, sharp)`` uint8 BGR pairs: a pan across ``image`` with a shaky, blurred exposure per frame.

    The sharp frame is the window at the middle of the exposure path, so blurred and sharp are aligned.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    h, w = image.shape[:2]
    if h < size[0] or w < size[1]:
        raise ValueError(f"image {w}x{h} is smaller than the clip size {size[1]}x{size[0]}")
    # Exposure integrates light, so the blur is an average in linear light (as the training data's is);
    # the sRGB transfer is the synthesiser's own (numpy only: no torch needed here).
    from training.data.camera import linear_to_srgb, srgb_to_linear

    rng = np.random.default_rng(seed)
    source = srgb_to_linear(image.astype(np.float32) / 255.0).astype(np.float32)
    travel_y, travel_x = h - size[0], w - size[1]
    pairs = []
    for t in range(frames):
        phase = t / max(frames - 1, 1)
        cy = travel_y / 2 + (travel_y / 2 - 10) * math.sin(2 * math.pi * phase)
        cx = 8 + (travel_x - 16) * phase
        length = rng.uniform(*BLUR_LENGTHS)
        angle = rng.uniform(-0.6, 0.6)             # mostly horizontal, like a pan with hand shake
        dy, dx = math.sin(angle) * length, math.cos(angle) * length
        steps = int(math.ceil(length)) + 1
        acc = np.zeros((*size, 3), np.float32)
        for s in np.linspace(-0.5, 0.5, steps):
            acc += _shifted(source, cy + s * dy, cx + s * dx, size)
        blurred = np.clip(linear_to_srgb(acc / steps) * 255 + 0.5, 0, 255).astype(np.uint8)
        sharp = np.clip(linear_to_srgb(_shifted(source, cy, cx, size)) * 255 + 0.5, 0, 255).astype(np.uint8)
        pairs.append((blurred, sharp))
    return pairs


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    return float(cv2.PSNR(a, b))


def side_by_side(*images: np.ndarray, labels: tuple[str, ...] = ()) -> np.ndarray:
    """Images next to each other with a small caption on each."""
    import cv2

    tiles = []
    for i, image in enumerate(images):
        tile = image.copy()
        if i < len(labels):
            cv2.putText(tile, labels[i], (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tile, labels[i], (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.hstack(tiles)


def run(args: argparse.Namespace) -> int:
    import sdk
    from sdk.bundled import is_bundled_name
    from sdk.stream import VideoFileSink

    deblur = sdk.Deblurrer(args.model, device=args.device)
    pairs = make_demo_clip(load_demo_image(), frames=args.frames)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = VideoFileSink(out_dir / "demo_side_by_side.mp4", fps=12)
    before, after = [], []
    try:
        for blurred, sharp in pairs:
            restored = deblur.process(blurred)
            before.append(psnr(blurred, sharp))
            after.append(psnr(restored, sharp))
            video.write(side_by_side(blurred, restored, sharp, labels=("blurred", "deblurred", "sharp")))
    finally:
        video.close()
    b, a = float(np.mean(before)), float(np.mean(after))
    print(f"model      {deblur.info.model} ({deblur.info.backend}, {deblur.info.device}, {deblur.info.precision})")
    # The bundled models' data engine keeps coffee for validation: they never train on the demo photo.
    held_out = ", a photo the bundled models never trained on" if args.model is None or is_bundled_name(args.model) else ""
    print(f"photo      sdk/data/demo_sharp.png (scikit-image's coffee{held_out})")
    print(f"clip       {len(pairs)} frames of {CLIP_SIZE[1]}x{CLIP_SIZE[0]}, pan with "
          f"{BLUR_LENGTHS[0]:g}-{BLUR_LENGTHS[1]:g} px motion blur")
    print(f"PSNR       blurred {b:.2f} dB -> deblurred {a:.2f} dB ({a - b:+.2f} dB)")
    print(f"video      {video.path} (blurred | deblurred | sharp)")
    return 0

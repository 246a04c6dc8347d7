"""``deblur eval``: PSNR/SSIM of a checkpoint on a paired dataset, as the papers measure it."""

from __future__ import annotations

import argparse

HELP = "score a checkpoint on a paired dataset: PSNR/SSIM table (input and output vs target) and a per-image CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by `deblur train` (e.g. RUN/best.pt)")
    parser.add_argument("--data", required=True, help="dataset folder (GoPro layout, HIDE, folder pair) or RealBlur list")
    parser.add_argument("--split", default="test", help="dataset split (default: test)")
    parser.add_argument("--save-images", metavar="DIR", default=None, help="also write every restored image as PNG")
    parser.add_argument("--csv", metavar="PATH", default=None,
                        help="per-image scores (default: beside the checkpoint, <name>-<split>-eval.csv)")
    parser.add_argument("--max-images", type=int, default=None, metavar="N", help="score N pairs spread evenly over the split")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights even where the checkpoint has EMA weights")


def run(args: argparse.Namespace) -> int:
    try:
        import torch

        from training.checkpoint import load_model
        from training.data.datasets import open_dataset
        from training.evaluate import evaluate, format_table, summarize, write_csv
    except ImportError as exc:
        from sdk.extras import missing_extra

        raise missing_extra("`deblur eval`", "train", exc) from None
    from pathlib import Path

    if args.max_images is not None and args.max_images < 1:
        raise ValueError(f"--max-images must be positive, got {args.max_images}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, manifest = load_model(args.checkpoint, use_ema=not args.no_ema)
    dataset = open_dataset(args.data, args.split)
    scores = evaluate(model, dataset, device=device, max_images=args.max_images, save_dir=args.save_images)
    checkpoint = Path(args.checkpoint)
    csv_path = write_csv(scores, args.csv or checkpoint.with_name(f"{checkpoint.stem}-{args.split}-eval.csv"))
    print(f"{manifest.variant} on {args.data} [{args.split}]")
    print(format_table(summarize(scores)))
    print(f"per-image scores: {csv_path}")
    if args.save_images:
        print(f"restored images: {args.save_images}")
    return 0

"""``deblur eval``: PSNR/SSIM of a model on a paired dataset, as the papers measure it.

The model is a training checkpoint (``--checkpoint``, run in PyTorch) or anything ``sdk.Deblurrer``
opens (``--model``: ``.onnx``, ``.pt``, ``.engine``, or ``default`` for the bundled model; scored
through the runtime users run, its own pre/post-processing included). The pairs are a dataset folder
(``--data``) or a fixed set drawn by the data engine from its held-out sources (``--engine PRESET``:
``motion-9-21``, ``motion-3-5``, ``sharp``, ``mixed``)::

    deblur eval --model default --engine motion-9-21 --count 60
    deblur eval --checkpoint runs/nano/best.pt --data synth --max-images 60
"""

from __future__ import annotations

import argparse

HELP = "score a model on a paired dataset: PSNR/SSIM table (input and output vs target) and a per-image CSV"
ENGINE_SEED = 2024   # the fixed held-out engine sets: one seed, so every model is scored on the same pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="a checkpoint written by `deblur train` (e.g. RUN/best.pt), run in PyTorch")
    what.add_argument("--model", help="a model sdk.Deblurrer opens (.onnx, .pt, .engine), or a bundled model's name ('default', 'small')")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", help="dataset folder (GoPro layout, HIDE, folder pair) or RealBlur list")
    data.add_argument("--engine", metavar="PRESET",
                      help="a fixed set from the data engine's held-out sources: motion-9-21, motion-3-5, sharp, mixed")
    parser.add_argument("--count", type=int, default=60, help="pairs in an --engine set (default 60)")
    parser.add_argument("--size", type=int, default=256, help="side of the --engine crops (default 256)")
    parser.add_argument("--split", default="test", help="dataset split of --data (default: test)")
    parser.add_argument("--save-images", metavar="DIR", default=None, help="also write every restored image as PNG")
    parser.add_argument("--csv", metavar="PATH", default=None,
                        help="per-image scores (default: <name>-<set>-eval.csv beside the checkpoint/model, "
                             "in the current folder for a bundled model)")
    parser.add_argument("--max-images", type=int, default=None, metavar="N", help="score N pairs spread evenly over the split")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights even where the checkpoint has EMA weights")


def _dataset(args: argparse.Namespace):  # noqa: ANN202 - torch types are imported lazily
    if args.engine is None:
        from training.data.datasets import open_dataset

        return open_dataset(args.data, args.split), f"{args.data} [{args.split}]", args.split
    from training.data.engine import EngineConfig, EngineDataset, bundled_sources

    if args.count < 1:
        raise ValueError(f"--count must be positive, got {args.count}")
    preset = EngineConfig.preset(args.engine, crop=args.size)
    dataset = EngineDataset(bundled_sources("validation"), preset, seed=ENGINE_SEED, fixed=True, length=args.count)
    return dataset, f"engine preset {args.engine} ({args.count} pairs of {args.size}x{args.size}, held-out sources)", args.engine


def run(args: argparse.Namespace) -> int:
    try:
        import torch

        from training.evaluate import evaluate, evaluate_deblurrer, format_table, summarize, write_csv
    except ImportError as exc:
        from sdk.extras import missing_extra

        raise missing_extra("`deblur eval`", "train", exc) from None
    from pathlib import Path

    if args.max_images is not None and args.max_images < 1:
        raise ValueError(f"--max-images must be positive, got {args.max_images}")
    dataset, described, set_name = _dataset(args)
    if args.checkpoint is not None:
        from training.checkpoint import load_model

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, manifest = load_model(args.checkpoint, use_ema=not args.no_ema)
        scores = evaluate(model, dataset, device=device, max_images=args.max_images, save_dir=args.save_images)
        source, label = Path(args.checkpoint), manifest.variant
    else:
        import sdk
        from sdk.bundled import is_bundled_name, resolve_model

        model_file = resolve_model(args.model)
        deblurrer = sdk.Deblurrer(model_file, color="rgb", device=args.device or "auto")
        scores = evaluate_deblurrer(deblurrer, dataset, max_images=args.max_images, save_dir=args.save_images)
        # A bundled model lives inside the installed package: its scores go to the current folder.
        source = Path(model_file.name) if is_bundled_name(args.model) else model_file
        label = f"{deblurrer.manifest.variant} ({deblurrer.info.backend})"
    csv_path = write_csv(scores, args.csv or source.with_name(f"{source.stem}-{set_name}-eval.csv"))
    print(f"{label} on {described}")
    print(format_table(summarize(scores)))
    print(f"per-image scores: {csv_path}")
    if args.save_images:
        print(f"restored images: {args.save_images}")
    return 0

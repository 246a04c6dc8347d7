"""``python -m training.train``: the trainer's command line, also what ``torchrun`` launches.

Example::

    deblur train --config rdafnet-nano-synthetic-cpu --data synth --out runs/nano
    torchrun --nproc_per_node=4 -m training.train --config rdafnet-multi-gopro --data GOPRO_Large --out runs/ms
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .cli_args import HELP, add_arguments
from .config import load_config
from .trainer import Trainer


def run_training(args: argparse.Namespace) -> int:
    """Train as ``args`` (from :func:`training.cli_args.add_arguments`) say; 128 + signal when interrupted."""
    overrides = list(args.overrides) + ([f"train.init_from={args.init_from}"] if args.init_from else [])
    config = load_config(args.config, overrides)
    trainer = Trainer(config, args.out, data_root=args.data, resume=args.resume, max_steps=args.max_steps,
                      device=args.device, progress=not args.no_progress)
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    if result.status == "interrupted":
        return 128 + int(result.signal or 0)
    if trainer.ctx.is_main:
        best = f", best val PSNR {result.best_psnr:.2f} dB" if result.best_psnr is not None else ""
        print(f"{result.status} at step {result.step}{best}; checkpoint {result.checkpoint}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=HELP)
    add_arguments(parser)
    return run_training(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

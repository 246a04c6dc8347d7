"""``deblur train``: train a model from a YAML config (one process; multi-GPU through torchrun)."""

from __future__ import annotations

import argparse

HELP = "train a model from a YAML config (multi-GPU: torchrun --nproc_per_node=K -m training.train ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The trainer owns its arguments (torchrun launches training.train without the sdk CLI).
    from training.cli_args import add_arguments as add_training_arguments

    add_training_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        from training.train import run_training
    except ImportError as exc:
        from sdk.extras import missing_extra

        raise missing_extra("`deblur train`", "train", exc) from None
    return run_training(args)

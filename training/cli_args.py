"""Command-line arguments of the trainer, shared by ``deblur train`` and ``python -m training.train``.

Standard library only, so that building the ``deblur`` parser imports no PyTorch.
"""

from __future__ import annotations

import argparse

HELP = "train a model from a YAML config (multi-GPU: torchrun --nproc_per_node=K -m training.train ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="YAML config: a path, or the name of one in training/configs (e.g. rdafnet-nano-synthetic-cpu)")
    parser.add_argument("--data", default=None,
                        help="dataset folder, e.g. GoPro layout DIR/{train,test}/<seq>/{blur,sharp}/*.png "
                             "(what `deblur synth` writes); not needed when the config sets data.engine "
                             "(on-the-fly data), where it names a validation folder instead")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, logs, best.pt")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CKPT",
                        help="continue exactly from the newest checkpoint in --out (or from CKPT)")
    parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                        help="stop after step N; the lr schedule keeps the config's full length, so --resume continues it")
    parser.add_argument("--init-from", default=None, metavar="CKPT",
                        help="fine-tune: start from this checkpoint's weights (e.g. sdk/models/default.pt) with a "
                             "fresh optimiser and schedule (same as --set train.init_from=CKPT)")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                        help="override a config value, e.g. --set data.batch_size=4 (repeatable)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")

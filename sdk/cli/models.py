"""``deblur models``: every registered model with its size and cost."""

from __future__ import annotations

import argparse

from sdk.processing import padded_size

HELP = "list every registered model with its parameter count and MACs at 256x256 and 1280x720"

SIZES = ((256, 256), (720, 1280))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")


def run(args: argparse.Namespace) -> int:
    try:
        import torch

        from training.models import build, list_models, spec
        from training.models.complexity import count_macs, count_parameters
    except ImportError as exc:
        from sdk.extras import missing_extra

        raise missing_extra("`deblur models`", "train", exc) from None

    rows = []
    for name in list_models():
        with torch.device("meta"):     # counting needs shapes only: no weights are initialised
            net = build(name)
        macs = []
        for h, w in SIZES:
            shape = (1, 3, *padded_size(h, w, net.pad_multiple))   # the padded size the runtime feeds
            macs.append(count_macs(net, shape) / 1e9)
        rows.append((name, spec(name).paper, count_parameters(net), *macs))

    header = ("model", "paper", "params", "GMACs 256x256", "GMACs 1280x720")
    cells = [(n, p, f"{c:,}", f"{a:,.1f}", f"{b:,.1f}") for n, p, c, a, b in rows]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in cells:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *cells)]
        for row in (header, *cells):
            print("  ".join(str(x).ljust(w) if i < 2 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths))))
    return 0

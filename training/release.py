"""Turn a training checkpoint into the weights-only file shipped beside a bundled model.

Example::

    python -m training.release runs/small-engine/best.pt sdk/models/small.pt
    deblur export sdk/models/small.pt --to onnx --fp16 --out sdk/models/small.onnx
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .checkpoint import release_checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by `deblur train` (e.g. RUN/best.pt)")
    parser.add_argument("out", type=Path, help="the weights-only file to write")
    args = parser.parse_args(argv)
    out = release_checkpoint(args.checkpoint, args.out)
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB (from {args.checkpoint}, {args.checkpoint.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

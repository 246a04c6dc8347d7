"""Turn a training checkpoint into the weights-only file shipped beside a bundled model.

Example::

    python -m training.release runs/small-engine/best.pt sdk/models/small.pt
    deblur export sdk/models/small.pt --to onnx --fp16 --out sdk/models/small.onnx
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .checkpoint import load_checkpoint, release_checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by `deblur train` (e.g. RUN/best.pt)")
    parser.add_argument("out", type=Path, help="the weights-only file to write")
    args = parser.parse_args(argv)
    out = release_checkpoint(args.checkpoint, args.out)
    released = load_checkpoint(out)
    if "effective_radius" not in released:
        reach = "per-image statistics: tiles never equal the whole frame"
    elif released["effective_radius"] is None:
        reach = "effective radius beyond the probe: the runtime keeps the overlap it is given"
    else:
        reach = f"effective radius {released['effective_radius']} px"
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB (from {args.checkpoint}, "
          f"{args.checkpoint.stat().st_size / 1e6:.1f} MB); {reach}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

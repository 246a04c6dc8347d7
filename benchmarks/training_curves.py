"""The model card's training curves: held-out validation PSNR against step for each campaign.

Reads the ``val_log.csv`` every campaign folder commits (``training/campaigns/<name>/``, written by
``deblur train``: step, psnr, ssim, input_psnr, input_ssim) and draws one line per campaign, the input
PSNR of the validation pairs as a dashed baseline, and a marker on each bundled checkpoint.

Example::

    python -m benchmarks.training_curves --out sdk/models/card/curves.png \\
        --mark rdafnet-unet-nano-engine=13500:default --mark rdafnet-small-engine=14517:small
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CAMPAIGNS = Path("training/campaigns")


@dataclass(frozen=True)
class Curve:
    name: str
    steps: tuple[int, ...]
    psnr: tuple[float, ...]
    input_psnr: float


@dataclass(frozen=True)
class Mark:
    campaign: str
    step: int
    label: str


def read_curve(log: Path) -> Curve:
    """One campaign's validation curve; a log without rows or without the trainer's columns is an error."""
    with log.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{log}: no validation rows")
    missing = {"step", "psnr", "input_psnr"} - set(rows[0])
    if missing:
        raise ValueError(f"{log}: not a `deblur train` val_log.csv (missing columns {sorted(missing)})")
    rows.sort(key=lambda r: int(r["step"]))
    return Curve(log.parent.name, tuple(int(r["step"]) for r in rows), tuple(float(r["psnr"]) for r in rows),
                 float(rows[0]["input_psnr"]))


def campaign_curves(root: Path = CAMPAIGNS) -> list[Curve]:
    """Every campaign folder's curve (only the top-level log: experiments in sub-folders are left out)."""
    logs = sorted(root.glob("*/val_log.csv"))
    if not logs:
        raise FileNotFoundError(f"no */val_log.csv under {root}")
    return [read_curve(log) for log in logs]


def parse_mark(text: str) -> Mark:
    """``CAMPAIGN=STEP[:LABEL]``, e.g. ``rdafnet-small-engine=14517:small``."""
    campaign, sep, rest = text.partition("=")
    step, _, label = rest.partition(":")
    if not sep or not campaign or not step.isdigit():
        raise argparse.ArgumentTypeError(f"--mark {text!r}: expected CAMPAIGN=STEP[:LABEL]")
    return Mark(campaign, int(step), label or f"step {int(step):,}")


def mark_point(curves: Sequence[Curve], mark: Mark) -> tuple[int, float]:
    """The logged (step, PSNR) of a marked checkpoint: it must be a validated step of a known campaign."""
    curve = next((c for c in curves if c.name == mark.campaign), None)
    if curve is None:
        raise ValueError(f"--mark: no campaign {mark.campaign!r} (have {[c.name for c in curves]})")
    # A bundled checkpoint saved between validations (a stop) is drawn at the last validation before it.
    before = [i for i, s in enumerate(curve.steps) if s <= mark.step]
    if not before:
        raise ValueError(f"--mark: {mark.campaign} has no validation at or before step {mark.step}")
    i = before[-1]
    return curve.steps[i], curve.psnr[i]


def plot(curves: Sequence[Curve], marks: Sequence[Mark], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=100)
    colours = {}
    for curve in curves:
        (line,) = ax.plot(curve.steps, curve.psnr, marker=".", label=curve.name)
        colours[curve.name] = line.get_color()
    inputs = {round(c.input_psnr, 2) for c in curves}
    for value in sorted(inputs):
        ax.axhline(value, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"blurred input {value:.2f} dB", (0, value), xytext=(4, 3), textcoords="offset points",
                    xycoords=("axes fraction", "data"), fontsize=8, color="grey")
    for mark in marks:
        step, psnr = mark_point(curves, mark)
        ax.plot([step], [psnr], marker="o", markersize=9, markerfacecolor="none",
                markeredgecolor=colours[mark.campaign], markeredgewidth=2)
        ax.annotate(f"{mark.label} ({psnr:.2f} dB)", (step, psnr), xytext=(6, -14), textcoords="offset points",
                    fontsize=8)
    ax.set_xlabel("training step (batch 8)")
    ax.set_ylabel("validation PSNR, dB (48 held-out pairs)")
    ax.set_title("Held-out validation of the edge campaigns", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--campaigns", type=Path, default=CAMPAIGNS, help="folder of campaign folders")
    parser.add_argument("--out", type=Path, default=Path("sdk/models/card/curves.png"))
    parser.add_argument("--mark", type=parse_mark, action="append", default=[],
                        help="a bundled checkpoint to circle: CAMPAIGN=STEP[:LABEL] (repeatable)")
    args = parser.parse_args(argv)
    curves = campaign_curves(args.campaigns)
    print(plot(curves, args.mark, args.out))
    for curve in curves:
        best = max(range(len(curve.psnr)), key=curve.psnr.__getitem__)
        print(f"  {curve.name}: {len(curve.steps)} validations to step {curve.steps[-1]:,}, "
              f"best {curve.psnr[best]:.2f} dB at step {curve.steps[best]:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

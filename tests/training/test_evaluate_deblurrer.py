"""Scoring through sdk.Deblurrer: what `deblur eval --model` and the quality goals measure."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from training.evaluate import evaluate_deblurrer


class _Invert:
    """A stand-in runtime that returns 255 - frame: its PSNR against any target is known in closed form."""

    color = "rgb"

    def __init__(self) -> None:
        self.seen: list[tuple[tuple[int, ...], np.dtype]] = []

    def process(self, frame: np.ndarray) -> np.ndarray:
        self.seen.append((frame.shape, frame.dtype))
        return 255 - frame


def _pairs(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [{"blur": torch.rand(3, 8, 12, generator=g), "sharp": torch.rand(3, 8, 12, generator=g), "name": f"p{i}"}
            for i in range(n)]


def test_scores_are_those_of_the_runtime_output():
    pairs = _pairs(3)
    runtime = _Invert()
    scores = evaluate_deblurrer(runtime, pairs, progress=False)  # type: ignore[arg-type]
    assert runtime.seen == [((8, 12, 3), np.uint8)] * 3   # 8-bit HWC RGB in, as users pass frames
    for score, pair in zip(scores, pairs):
        blur8 = np.round(pair["blur"].permute(1, 2, 0).numpy() * 255).astype(np.int64)
        sharp8 = np.round(pair["sharp"].permute(1, 2, 0).numpy() * 255).astype(np.int64)
        mse = np.mean(((255 - blur8) - sharp8) ** 2)
        assert score.output_psnr == pytest.approx(10 * math.log10(255 ** 2 / mse), abs=1e-6)
        assert score.input_psnr == pytest.approx(10 * math.log10(255 ** 2 / np.mean((blur8 - sharp8) ** 2)), abs=1e-6)


def test_a_bgr_deblurrer_is_refused():
    runtime = _Invert()
    runtime.color = "bgr"
    with pytest.raises(ValueError, match="color='rgb'"):
        evaluate_deblurrer(runtime, _pairs(1), progress=False)  # type: ignore[arg-type]


def test_deblur_eval_scores_the_bundled_model_on_an_engine_set(tmp_path, capsys):
    pytest.importorskip("skimage")
    from sdk.cli import main

    out = tmp_path / "scores.csv"
    assert main(["eval", "--model", "default", "--engine", "sharp", "--count", "2", "--size", "32",
                 "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "engine preset sharp (2 pairs of 32x32, held-out sources)" in printed
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2
    # Sharp pairs: the input equals the target.
    assert all(float(r["input_psnr"]) == math.inf for r in rows)

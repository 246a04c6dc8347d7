"""benchmarks.training_curves: reads the trainer's val_log.csv files and draws the model card's curves."""

from __future__ import annotations

import argparse

import cv2
import pytest

from benchmarks.training_curves import campaign_curves, main, mark_point, parse_mark, read_curve

HEADER = "step,psnr,ssim,input_psnr,input_ssim\n"


def _campaign(root, name, rows):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "val_log.csv").write_text(HEADER + "".join(f"{s},{p},0.8,29.0,0.81\n" for s, p in rows))
    return folder


def test_curves_come_from_each_campaign_folder_sorted_by_step(tmp_path):
    _campaign(tmp_path, "b-engine", [(2000, 29.5), (1000, 29.2)])
    _campaign(tmp_path, "a-engine", [(500, 29.1)])
    # An experiment inside a campaign folder is not a campaign of its own.
    _campaign(tmp_path / "b-engine", "long-motion", [(500, 31.0)])
    curves = campaign_curves(tmp_path)
    assert [c.name for c in curves] == ["a-engine", "b-engine"]
    assert curves[1].steps == (1000, 2000) and curves[1].psnr == (29.2, 29.5)
    assert curves[1].input_psnr == 29.0


def test_a_bundled_step_between_validations_is_drawn_at_the_validation_before_it(tmp_path):
    _campaign(tmp_path, "small-engine", [(14000, 30.02), (6000, 29.93)])
    curves = campaign_curves(tmp_path)
    assert mark_point(curves, parse_mark("small-engine=14517:small")) == (14000, 30.02)
    assert mark_point(curves, parse_mark("small-engine=6000")) == (6000, 29.93)
    with pytest.raises(ValueError, match="no validation at or before step 10"):
        mark_point(curves, parse_mark("small-engine=10"))
    with pytest.raises(ValueError, match="no campaign 'nano-engine'"):
        mark_point(curves, parse_mark("nano-engine=7000"))


def test_marks_and_logs_that_are_not_what_they_claim_are_refused(tmp_path):
    assert parse_mark("x-engine=7000").label == "step 7,000"
    for bad in ("x-engine", "=7000", "x-engine=seven", "x-engine=7000.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="CAMPAIGN=STEP"):
            parse_mark(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER)
    with pytest.raises(ValueError, match="no validation rows"):
        read_curve(empty)
    other = tmp_path / "train_log.csv"
    other.write_text("step,lr,total\n50,0.0001,1.0\n")
    with pytest.raises(ValueError, match=r"missing columns \['input_psnr', 'psnr'\]"):
        read_curve(other)
    with pytest.raises(FileNotFoundError, match="no \\*/val_log.csv"):
        campaign_curves(tmp_path / "nowhere")


def test_the_cli_writes_a_png_and_reports_each_best_step(tmp_path, capsys):
    _campaign(tmp_path, "unet-engine", [(1000, 29.08), (2000, 29.44), (3000, 29.40)])
    out = tmp_path / "card" / "curves.png"
    assert main(["--campaigns", str(tmp_path), "--out", str(out), "--mark", "unet-engine=2000:default"]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (420, 750, 3)
    assert "unet-engine: 3 validations to step 3,000, best 29.44 dB at step 2,000" in capsys.readouterr().out

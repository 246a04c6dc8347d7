"""Benchmarks that write a results pair refuse to replace committed results, and say so before they
spend minutes measuring (a 30-minute soak that ends in FileExistsError loses its numbers)."""

from __future__ import annotations

import pytest

from benchmarks import quality_goals, serving, soak_rtsp


def _never(*args, **kwargs):
    raise AssertionError("measured although the results could not be written")


@pytest.mark.parametrize("module, measure, argv, name", [
    (soak_rtsp, "soak", ["--minutes", "0.1", "--results"], "soak_rtsp"),
    (serving, "run", ["--out"], "serving"),
    (quality_goals, "score_sets", ["--out"], "default-goals"),
])
def test_existing_results_are_refused_before_measuring(module, measure, argv, name, tmp_path, monkeypatch):
    monkeypatch.setattr(module, measure, _never)
    (tmp_path / f"{name}.md").write_text("committed\n")
    with pytest.raises(FileExistsError, match=f"{name}.md exists"):
        module.main([*argv, str(tmp_path)])
    assert (tmp_path / f"{name}.md").read_text() == "committed\n" and not (tmp_path / f"{name}.json").exists()


def test_overwrite_replaces_the_pair(tmp_path, monkeypatch):
    result = {"soak": {"passed": True}}
    monkeypatch.setattr(soak_rtsp, "soak", lambda *a, **k: result["soak"])
    monkeypatch.setattr(soak_rtsp, "markdown", lambda r: f"passed {r['soak']['passed']}\n")
    (tmp_path / "soak_rtsp.md").write_text("old\n")
    assert soak_rtsp.main(["--minutes", "0.1", "--results", str(tmp_path), "--overwrite"]) == 0
    assert (tmp_path / "soak_rtsp.md").read_text() == "passed True\n"
    assert '"passed": true' in (tmp_path / "soak_rtsp.json").read_text()


def test_quality_goals_table_marks_met_goals_and_leaves_the_sharp_sets_gain_empty():
    sets = {"motion-9-21": {"images": 60, "input_psnr": 25.78, "output_psnr": 26.70, "input_ssim": 0.75, "output_ssim": 0.79},
            "sharp": {"images": 60, "input_psnr": float("inf"), "output_psnr": 36.47, "input_ssim": 1.0, "output_ssim": 0.96}}
    for s in sets.values():
        s["gain_db"] = s["output_psnr"] - s["input_psnr"]
    text = quality_goals.markdown({"model": "m.onnx", "date": "d", "device": "cpu", "cpu_flags": ["avx2"], "count": 60,
                                   "size": 256, "versions": {}, "sets": sets})
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()
            if line.startswith("| motion") or line.startswith("| sharp")}
    assert rows["motion-9-21"][4] == "+0.92" and rows["motion-9-21"][-1] == "no"     # 26.70 - 25.78, goal +3 dB
    assert rows["sharp"][4] == "" and rows["sharp"][-1] == "yes"                    # 36.47 dB >= 35 dB


def test_quality_goals_judges_no_loss_on_the_whole_synth_split_only():
    def row(images, gain):
        synth = {"images": images, "input_psnr": 26.35, "output_psnr": 26.35 + gain, "input_ssim": 0.76,
                 "output_ssim": 0.80, "gain_db": gain}
        text = quality_goals.markdown({"model": "m.onnx", "date": "d", "device": "cpu", "cpu_flags": [], "count": 60,
                                       "size": 256, "versions": {}, "sets": {"synth-heldout": synth}})
        line = next(line for line in text.splitlines() if line.startswith("| synth-heldout"))
        return line.split("|")[-2].strip()
    assert row(360, 0.70) == "yes" and row(360, 0.60) == "no"       # the first model: +0.65 dB on all 360
    assert row(60, 0.90) == "not comparable: a subset"


def test_model_swap_times_models_interleaved_and_writes_the_pair(tmp_path):
    from benchmarks import model_swap
    from sdk import default_model_path

    model = str(default_model_path())
    assert model_swap.main([f"new={model}", f"same={model}", "--size", "64x48", "--calls", "2", "--out", str(tmp_path)]) == 0
    import json

    result = json.loads((tmp_path / "model-swap.json").read_text())
    assert result["size"] == "64x48" and result["calls"] == 2 and list(result["models"]) == ["new", "same"]
    new, same = result["models"]["new"], result["models"]["same"]
    assert new["ratio_to_new"] == 1.0 and 0 < new["min_s"] <= new["median_s"] <= new["max_s"]
    assert same["ratio_to_new"] > 0 and "| same |" in (tmp_path / "model-swap.md").read_text()
    with pytest.raises(SystemExit):
        model_swap.main(["new=missing.onnx", "--out", str(tmp_path / "x")])

"""Quality across backends on a tiny paired set, through sdk.Deblurrer: ONNX Runtime and OpenVINO float32
must score what PyTorch float32 scores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.latency import from_module
from benchmarks.quality import QualitySettings, run_quality, write_quality
from training.data.imageio import write_rgb
from training.models import build


@pytest.fixture()
def tiny_pairs(tmp_path):
    rng = np.random.default_rng(0)
    for side in ("blur", "sharp"):
        (tmp_path / "data" / side).mkdir(parents=True)
    for i in range(2):
        sharp = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
        blur = ((sharp.astype(np.float32) + np.roll(sharp, 2, axis=1)) / 2).round().astype(np.uint8)
        write_rgb(tmp_path / "data" / "blur" / f"{i}.png", blur)
        write_rgb(tmp_path / "data" / "sharp" / f"{i}.png", sharp)
    return tmp_path / "data"


def test_quality_rows_per_backend_and_precision(tmp_path, tiny_pairs):
    net = build("rdafnet-nano", num_blocks=1)
    mut = from_module(net, workdir=tmp_path / "work")
    settings = QualitySettings(backends=("torch-fp32", "torch-bf16", "torch-fp16", "ort-cpu", "openvino-fp32",
                                         "openvino-int8"), device="cpu")
    result = run_quality(mut, tiny_pairs, settings)
    rows = {r["backend"]: r for r in result["rows"]}
    assert result["reference"] == "torch-fp32"
    assert rows["torch-fp32"]["images"] == 2 and math.isfinite(rows["torch-fp32"]["psnr"])
    assert rows["torch-fp32"]["delta_psnr_db"] == 0.0 and "within_tolerance" not in rows["torch-fp32"]
    # Same weights, same float32 arithmetic up to rounding: the 8-bit outputs agree to well under 0.01 dB.
    assert abs(rows["ort-cpu"]["delta_psnr_db"]) < 0.01 and rows["ort-cpu"]["within_tolerance"] is True
    bf16 = rows["torch-bf16"]
    assert bf16["precision"] == "bf16" and isinstance(bf16["within_tolerance"], bool)
    assert bf16["delta_psnr_db"] != 0.0      # bf16 rounding changes the 8-bit output; the verdict is tested below
    # The shipped torch backend runs float16 on CUDA only, so that row says so rather than score something else.
    assert rows["torch-fp16"]["available"] is False and "CUDA only" in rows["torch-fp16"]["reason"]
    if rows["openvino-fp32"]["available"]:
        assert abs(rows["openvino-fp32"]["delta_psnr_db"]) < 0.01
        assert rows["openvino-int8"]["available"] is False and "calibration" in rows["openvino-int8"]["reason"]
    # Every row scored the same blurred inputs.
    assert rows["ort-cpu"]["input_psnr"] == rows["torch-fp32"]["input_psnr"]

    json_path, md_path = write_quality(result, tmp_path / "out")
    assert json.loads(json_path.read_text())["schema"] == "deblur-quality/2"
    md = md_path.read_text()
    assert "| ort-cpu | fp32 | cpu | 2 |" in md and "| torch-bf16 | bf16 | cpu | 2 |" in md
    with pytest.raises(FileExistsError, match="not overwritten unless asked"):
        write_quality(result, tmp_path / "out")


def test_emulated_precisions_wait_for_a_capped_set(tmp_path, tiny_pairs, monkeypatch):
    import benchmarks.devices

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test\nflags\t\t: avx2 fma\n")
    monkeypatch.setattr(benchmarks.devices, "CPUINFO", cpuinfo)
    mut = from_module(build("rdafnet-nano", num_blocks=1), workdir=tmp_path / "work")
    settings = QualitySettings(backends=("torch-fp32", "torch-bf16", "torch-fp16"), device="cpu", allow_emulated=False)
    rows = {r["backend"]: r for r in run_quality(mut, tiny_pairs, settings)["rows"]}
    assert rows["torch-fp32"]["available"] and rows["torch-fp32"]["images"] == 2
    for name, instruction in (("torch-bf16", "bfloat16"), ("torch-fp16", "float16")):
        assert rows[name]["available"] is False
        assert f"not scored by default: this CPU has no {instruction} instructions" in rows[name]["reason"]


def test_within_tolerance_follows_the_tolerance_setting(tmp_path, tiny_pairs):
    net = build("rdafnet-nano", num_blocks=1)
    mut = from_module(net, workdir=tmp_path / "work")

    def bf16_row(tolerance_db: float) -> dict:
        settings = QualitySettings(backends=("torch-fp32", "torch-bf16"), device="cpu",
                                   tolerances_db={"bf16": tolerance_db})
        return next(r for r in run_quality(mut, tiny_pairs, settings)["rows"] if r["backend"] == "torch-bf16")

    delta = abs(bf16_row(0.1)["delta_psnr_db"])
    assert delta > 0
    # The same weights and images give the same delta; a tolerance under it fails the row, one over it passes.
    assert bf16_row(delta / 2)["within_tolerance"] is False
    assert bf16_row(delta * 2)["within_tolerance"] is True

"""``deblur export``: checkpoint -> verified ONNX with its reports; engine requests fail clearly without TensorRT."""

from __future__ import annotations

import torch

from sdk.cli import main
from sdk.manifest import Manifest
from training.checkpoint import save_checkpoint
from training.models import build


def test_export_to_onnx_prints_verification_compatibility_and_fp16_reports(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "bag.pt", build("bag", base_channels=8, num_modules=1, growth=4, dense_layers=2))
    out = tmp_path / "exported" / "bag.onnx"
    assert main(["export", str(ckpt), "--to", "onnx", "--fp16", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"ONNX export: {out}" in text
    assert "Verification, ONNX Runtime vs PyTorch (float32): OK" in text
    assert "1x3x40x56 (reflect-padded from 37x53)" in text
    assert "TensorRT compatibility (8.6, 10.3, 10.16, 11.1): OK" in text
    assert "FP16 safety (4 calibration frames 128x128)" in text
    assert Manifest.read_onnx(out).variant == "bag"


def test_engine_requests_and_bad_arguments_fail_with_one_clear_line(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "nano.pt", build("rdafnet-nano", num_blocks=1))
    assert main(["export", str(ckpt), "--to", "onnx"]) == 0
    onnx_path = tmp_path / "nano.onnx"                      # default: the checkpoint's name with .onnx
    assert onnx_path.is_file()
    capsys.readouterr()
    assert main(["export", str(onnx_path), "--to", "engine", "--fp16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deblur export: error:") and "TensorRT" in err     # stubs only, or no tensorrt at all
    assert main(["export", str(ckpt), "--shapes", "1x3x720x1280"]) == 2
    assert "expected MIN:OPT:MAX" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "absent.onnx"), "--to", "engine"]) == 2
    assert "ONNX file not found" in capsys.readouterr().err

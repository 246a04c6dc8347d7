"""``deblur export --to openvino``: IR with the manifest in rt_info, bf16 marking, NNCF int8 on given frames."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("openvino")

from tests_paths import REPO  # noqa: E402

from export.openvino import calibration_files, export_openvino, model_inputs  # noqa: E402
from sdk.backends import open_backend  # noqa: E402
from sdk.cli import main  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "sdk"))
import sdk_onnx_models as M  # noqa: E402


@pytest.fixture(scope="module")
def conv_onnx(tmp_path_factory) -> Path:
    return M.conv3x3(tmp_path_factory.mktemp("ov") / "conv.onnx", M.manifest(pad_multiple=4))


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    """A `deblur synth`-shaped folder: blur/ inputs to calibrate on, sharp/ targets that must be skipped."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for kind in ("blur", "sharp"):
            (root / split / "seq" / kind).mkdir(parents=True)
            for i in range(3):
                img = cv2.GaussianBlur(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (5, 5), 0)
                cv2.imwrite(str(root / split / "seq" / kind / f"{i:03d}.png"), img)
    return root


def _run(backend, x):
    out = np.empty_like(x)
    backend.infer(x, out)
    return out


def test_fp32_ir_carries_the_manifest_and_matches_onnxruntime(tmp_path, conv_onnx):
    old = os.umask(0o022)
    try:
        result = export_openvino(conv_onnx, tmp_path / "conv.xml")
    finally:
        os.umask(old)
    assert result.path.is_file() and result.path.with_suffix(".bin").is_file()
    assert oct(result.path.stat().st_mode & 0o777) == oct(0o644)        # not mkstemp's 0600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    ir = open_backend(tmp_path / "conv.xml", device="cpu", threads=1)
    assert ir.name == "openvino" and ir.manifest_source == "rt_info"
    assert ir.manifest.pad_multiple == 4 and ir.manifest.precision == "fp32" and "openvino" in ir.manifest.toolchain
    x = np.random.default_rng(1).random((1, 3, 16, 20), dtype=np.float32)
    ref = _run(open_backend(conv_onnx, backend="onnxruntime", device="cpu"), x)
    np.testing.assert_allclose(_run(ir, x), ref, atol=1e-5)


def test_calibration_takes_blurred_inputs_spread_evenly(frames):
    files = calibration_files(frames, max_frames=4)
    assert len(files) == 4 and all(p.parent.name == "blur" for p in files)
    assert files[0].name == "000.png" and files[-1] == sorted(frames.rglob("blur/*.png"))[-1]
    (frames / "empty").mkdir(exist_ok=True)
    with pytest.raises(ValueError, match="no images"):
        calibration_files(frames / "empty")


def test_int8_is_quantised_on_the_frames_and_stays_close(tmp_path, conv_onnx, frames):
    with pytest.raises(ValueError, match="int8 needs calibration frames"):
        export_openvino(conv_onnx, tmp_path / "q.xml", precision="int8")
    result = export_openvino(conv_onnx, tmp_path / "q.xml", precision="int8", calibration=frames, max_frames=6)
    assert result.frames == 6 and result.manifest.precision == "int8"
    xml = (tmp_path / "q.xml").read_text()
    assert "FakeQuantize" in xml or "FakeConvert" in xml            # NNCF inserted quantisers
    q = open_backend(tmp_path / "q.xml", device="cpu", threads=1)
    assert q.precision == "int8"
    # A frame like those calibrated on (a test-split one), fed as the runtime feeds it.
    x = next(model_inputs([frames / "test" / "seq" / "blur" / "001.png"], q.manifest))
    ref = _run(open_backend(conv_onnx, backend="openvino", device="cpu", threads=1), x)
    err = np.abs(_run(q, x) - ref)
    assert 0 < err.max() < 0.05       # quantised (not bit-identical), yet within a few 8-bit steps of [0, 1]


def test_cli_writes_a_bf16_ir(tmp_path, conv_onnx):
    out = tmp_path / "b.xml"
    assert main(["export", str(conv_onnx), "--to", "openvino", "--precision", "bf16", "--out", str(out)]) == 0
    backend = open_backend(out, device="cpu")
    assert backend.manifest.precision == "bf16"

"""`deblur run`, `deblur info` and `deblur demo` end to end, on tiny ONNX models."""

from __future__ import annotations

import json
import re
import sys

import cv2
import numpy as np
import pytest
from sdk_onnx_models import affine_uint8
from stream_helpers import count_video_frames, level_frame, write_video

from sdk.cli import main
from sdk.manifest import Manifest


def test_run_video_to_video_with_side_by_side(onnx_models, tmp_path, capsys):
    clip = write_video(tmp_path / "in.mp4", 8, shape=(32, 48))
    out = tmp_path / "out.mp4"
    assert main(["run", str(clip), "-o", str(out), "--model", str(onnx_models["affine"]), "--device", "cpu",
                 "--side-by-side"]) == 0
    assert count_video_frames(out) == (8, 8)
    cap = cv2.VideoCapture(str(out))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (32, 96, 3)               # input | deblurred
    assert frame[:, 48:].mean() - frame[:, :48].mean() > 40  # the right half went through x * 0.5 + 0.25
    assert "wrote 8 frame(s)" in capsys.readouterr().out


def test_run_single_image_and_default_output_name(onnx_models, tmp_path, monkeypatch):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), level_frame(5))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(image), "--model", str(onnx_models["affine"]), "--device", "cpu"]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "photo_deblurred.png")),
                                  affine_uint8(level_frame(5), 0.5, 0.25))


def test_run_folder_to_folder_with_max_frames(onnx_models, tmp_path):
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(5):
        cv2.imwrite(str(src / f"{i}.jpg"), level_frame(i))
    assert main(["run", str(src), "-o", str(tmp_path / "out"), "--model", str(onnx_models["identity"]),
                 "--device", "cpu", "--max-frames", "3"]) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_run_errors_are_one_line(onnx_models, tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.mp4"), "--model", str(onnx_models["identity"])]) == 2
    assert "deblur run: error: video source not found" in capsys.readouterr().err
    clip = write_video(tmp_path / "in.mp4", 2)
    assert main(["run", str(clip), "--model", str(tmp_path / "nope.onnx")]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_info_prints_manifest_backend_device_precision(onnx_models, capsys):
    assert main(["info", str(onnx_models["affine"]), "--device", "cpu", "--backend", "onnxruntime"]) == 0
    text = capsys.readouterr().out
    assert "backend       onnxruntime on cpu, fp32" in text and "test / test-model" in text
    assert main(["info", str(onnx_models["affine"]), "--device", "cpu", "--backend", "onnxruntime", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "onnxruntime" and report["manifest"]["pad_multiple"] == 8


def test_info_on_an_engine_without_tensorrt_shows_its_sidecar(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)      # as where TensorRT is absent, also where it is not
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    Manifest(architecture="rdafnet", variant="rdafnet-nano", value_range=(-1.0, 1.0), pad_multiple=2,
             precision="fp16", toolchain={"tensorrt": "10.3.0"}).write_sidecar(engine)
    assert main(["info", str(engine)]) == 0
    captured = capsys.readouterr()
    assert "TensorRT is not installed" in captured.err
    assert "rdafnet-nano (rdafnet), fp16" in captured.out


def test_info_reads_the_manifest_inside_an_engine_file(tmp_path, capsys, monkeypatch):
    from sdk.backends.engine_file import pack_engine

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    engine = tmp_path / "m.engine"
    engine.write_bytes(pack_engine(b"plan", Manifest(architecture="rdafnet", variant="rdafnet-small",
                                                     value_range=(-1.0, 1.0), pad_multiple=4, precision="fp16")))
    assert main(["info", str(engine), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["manifest_source"] == "engine header" and report["manifest"]["variant"] == "rdafnet-small"
    engine.write_bytes(b"plan")                             # a bare plan: refused, saying how to fix it
    assert main(["info", str(engine)]) == 2
    assert "without a deblur manifest" in capsys.readouterr().err


def test_demo_writes_a_side_by_side_video_and_prints_psnr(onnx_models, tmp_path, capsys):
    assert main(["demo", "--model", str(onnx_models["identity"]), "--device", "cpu", "-o", str(tmp_path),
                 "--frames", "4"]) == 0
    text = capsys.readouterr().out
    before, after = map(float, re.search(r"blurred ([\d.]+) dB -> deblurred ([\d.]+) dB", text).groups())
    assert 20 < before < 32 and after == before       # an identity model restores nothing
    assert "photo      sdk/data/demo_sharp.png (scikit-image's coffee)" in text   # no claim about another model
    video = tmp_path / "demo_side_by_side.mp4"
    assert count_video_frames(video) == (4, 4)
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (256, 3 * 384, 3)


def test_demo_without_a_bundled_model_says_so(monkeypatch, tmp_path, capsys):
    import sdk.bundled

    monkeypatch.setattr(sdk.bundled, "_bundle_dir", lambda: tmp_path / "no-models")
    assert main(["demo", "-o", str(tmp_path)]) == 2
    assert "sdk/models/default.onnx" in capsys.readouterr().err


@pytest.mark.parametrize("frames", [0, -1])
def test_demo_clip_needs_frames(frames):
    from sdk.cli.demo import load_demo_image, make_demo_clip

    with pytest.raises(ValueError, match="frames must be >= 1"):
        make_demo_clip(load_demo_image(), frames=frames)


@pytest.mark.parametrize("extra, code", [([], 0), (["--queue-size", "0"], 2)])
def test_run_closes_the_source_it_opened(onnx_models, tmp_path, monkeypatch, capsys, extra, code):
    import sdk.stream

    opened: list[sdk.stream.VideoSource] = []

    class RecordedSource(sdk.stream.VideoSource):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(sdk.stream, "VideoSource", RecordedSource)
    clip = write_video(tmp_path / "in.mp4", 3)
    assert main(["run", str(clip), "-o", str(tmp_path / "out.mp4"), "--model", str(onnx_models["identity"]),
                 "--device", "cpu", *extra]) == code
    assert len(opened) == 1 and opened[0].ended and opened[0]._reader.cap is None
    if code:
        assert "queue_size must be an int >= 1, got 0" in capsys.readouterr().err


def test_run_takes_a_sharp_threshold_of_zero_at_its_word(onnx_models, tmp_path, monkeypatch):
    from sdk.blur import DEFAULT_SHARP_THRESHOLD, blur_score

    texture = np.random.default_rng(6).integers(0, 256, (32, 48, 3)).astype(np.uint8)
    image = cv2.GaussianBlur(texture, (0, 0), 3.0)                                   # a soft, blurred texture
    assert 0 < blur_score(image) < DEFAULT_SHARP_THRESHOLD
    cv2.imwrite(str(tmp_path / "faint.png"), image)
    monkeypatch.chdir(tmp_path)
    command = ["run", "faint.png", "--model", str(onnx_models["affine"]), "--device", "cpu", "--skip-sharp"]
    assert main([*command, "--sharp-threshold", "0"]) == 0
    np.testing.assert_array_equal(cv2.imread("faint_deblurred.png"), image)      # any texture counts as sharp
    assert main(command) == 0
    np.testing.assert_array_equal(cv2.imread("faint_deblurred.png"), affine_uint8(image, 0.5, 0.25))


def test_run_help_says_where_the_default_output_goes():
    import argparse

    from sdk.cli import run as run_command

    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "default for files: <input>_deblurred in the current folder" in text

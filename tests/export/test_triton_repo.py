"""`deblur export --to triton-repo`: a model repository whose config.pbtxt Triton's own schema parses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import sdk
from export.triton_repo import TritonRepoOptions, write_triton_repo
from sdk.cli import main
from sdk.manifest import Manifest, ShapeProfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))
import sdk_onnx_models as M  # noqa: E402


def parse_config(path: Path):
    """config.pbtxt through tritonclient's generated ModelConfig (text_format rejects unknown fields)."""
    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_bundled_onnx_repository_parses_with_tritons_schema(tmp_path, capsys):
    pb = pytest.importorskip("tritonclient.grpc.model_config_pb2")

    repo = tmp_path / "repo"
    assert main(["export", str(sdk.default_model_path()), "--to", "triton-repo", "--out", str(repo),
                 "--max-batch", "8", "--instances", "2", "--fp16"]) == 0
    assert "tritonserver --model-repository" in capsys.readouterr().out
    cfg = parse_config(repo / "deblur" / "config.pbtxt")
    assert cfg.name == "deblur" and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 8
    assert [(t.name, list(t.dims), pb.DataType.Name(t.data_type)) for t in cfg.input] == \
        [("input", [3, -1, -1], "TYPE_FP32")]
    assert [(t.name, list(t.dims)) for t in cfg.output] == [("output", [3, -1, -1])]
    assert list(cfg.dynamic_batching.preferred_batch_size) == [4, 8]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert [(g.count, pb.ModelInstanceGroup.Kind.Name(g.kind)) for g in cfg.instance_group] == [(2, "KIND_GPU")]
    (trt,) = cfg.optimization.execution_accelerators.gpu_execution_accelerator
    assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == "FP16"
    assert trt.parameters["trt_profile_min_shapes"] == "input:1x3x256x256"
    assert trt.parameters["trt_profile_opt_shapes"] == "input:4x3x720x1280"
    assert trt.parameters["trt_profile_max_shapes"] == "input:8x3x1088x1920"
    # The manifest sits beside the model as the SDK's sidecar, so the SDK can open the repository's model too.
    model = repo / "deblur" / "1" / "model.onnx"
    assert Manifest.read_sidecar(model) == Manifest.read_onnx(sdk.default_model_path())
    assert sdk.Deblurrer(model).manifest.variant == "rdafnet-unet-nano"
    notes = (repo / "README.md").read_text()
    assert "docker run --rm --gpus all" in notes and "nvcr.io/nvidia/tritonserver" in notes
    assert "did not run Triton" in notes


def test_cpu_instances_have_no_tensorrt_accelerator(tmp_path):
    written = write_triton_repo(sdk.default_model_path(), tmp_path, TritonRepoOptions(name="cam", kind="cpu",
                                                                                      max_batch=1))
    cfg = parse_config(written.config)
    assert cfg.name == "cam" and cfg.instance_group[0].kind == 2          # KIND_CPU
    assert not cfg.optimization.HasField("execution_accelerators")
    assert list(cfg.dynamic_batching.preferred_batch_size) == []


def test_an_engine_with_the_sdk_header_is_written_as_a_bare_plan(tmp_path):
    from sdk.backends.engine_file import pack_engine

    profile = ShapeProfile(min=(1, 64, 64), opt=(2, 256, 256), max=(4, 512, 512))
    meta = M.manifest(shape_profile=profile, input_name="x", output_name="y", final_output="y")
    engine = tmp_path / "nano.engine"
    engine.write_bytes(pack_engine(b"PLAN-BYTES", meta))
    written = write_triton_repo(engine, tmp_path / "repo")
    assert written.model.read_bytes() == b"PLAN-BYTES"          # what Triton's TensorRT backend can load
    assert Manifest.read_sidecar(written.model).shape_profile == profile


def test_plan_repository_takes_the_engines_profile(tmp_path):
    plan = tmp_path / "nano.engine"
    plan.write_bytes(b"not parsed: copied as it is")
    profile = ShapeProfile(min=(1, 64, 64), opt=(2, 256, 256), max=(4, 720, 1280))
    M.manifest(shape_profile=profile, input_name="x", output_name="y", final_output="y").write_sidecar(plan)
    written = write_triton_repo(plan, tmp_path / "repo", TritonRepoOptions(max_batch=16))
    cfg = parse_config(written.config)
    assert cfg.platform == "tensorrt_plan" and cfg.max_batch_size == 4         # capped by the engine's profile
    assert [(t.name, list(t.dims)) for t in cfg.input] == [("x", [3, -1, -1])]
    assert list(cfg.instance_group[0].profile) == ["0"]
    assert written.model.name == "model.plan" and written.model.read_bytes() == plan.read_bytes()


def test_models_triton_cannot_batch_are_refused(tmp_path, capsys):
    static = M.static_identity(tmp_path / "static.onnx", 64, M.manifest())
    with pytest.raises(ValueError, match="fixed batch axis"):
        write_triton_repo(static, tmp_path / "repo")
    with pytest.raises(ValueError, match=r"\.onnx model or a TensorRT \.plan"):
        write_triton_repo(tmp_path / "model.pt", tmp_path / "repo")
    assert main(["export", str(static), "--to", "triton-repo"]) == 2
    assert "needs --out DIR" in capsys.readouterr().err

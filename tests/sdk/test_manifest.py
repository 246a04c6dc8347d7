"""The manifest: one schema, round-tripped through JSON, a sidecar file and ONNX metadata; corrupt ones fail clearly."""

from __future__ import annotations

import importlib.util
import json

import onnx
import pytest
from onnx import TensorProto, helper

from sdk.manifest import (
    ONNX_METADATA_KEY,
    SCHEMA_VERSION,
    Manifest,
    ManifestError,
    ShapeProfile,
    sidecar_path,
)


def full_manifest() -> Manifest:
    return Manifest(architecture="rdafnet", variant="rdafnet-nano", value_range=(-1.0, 1.0), pad_multiple=2,
                    shape_profile=ShapeProfile((1, 256, 256), (1, 720, 1280), (2, 1088, 1920)), precision="fp16",
                    fp32_layers=("/trunk/blocks.0/convs.0/Conv",), checkpoint_sha256="ab" * 32, onnx_sha256="cd" * 32,
                    toolchain={"torch": "2.13.0", "onnx": "1.23.2", "opset": "17", "tensorrt": "10.13.0",
                               "compute_capability": "8.7", "gpu": "Orin"})


def tiny_onnx(path, metadata: dict[str, str] | None = None) -> None:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"], name="id")], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)  # ORT-readable
    helper.set_model_props(model, metadata or {})
    onnx.save(model, str(path))


def test_round_trips_through_json_sidecar_and_onnx_metadata(tmp_path):
    m = full_manifest()
    assert Manifest.from_json(m.to_json()) == m
    artefact = tmp_path / "model.engine"
    assert m.write_sidecar(artefact) == tmp_path / "model.engine.json" == sidecar_path(artefact)
    assert Manifest.read_sidecar(artefact) == m
    tiny_onnx(tmp_path / "m.onnx", m.onnx_metadata())
    assert Manifest.read_onnx(tmp_path / "m.onnx") == m
    stored = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(stored[ONNX_METADATA_KEY])["fp32_layers"] == ["/trunk/blocks.0/convs.0/Conv"]


def test_reads_onnx_metadata_through_onnxruntime_when_onnx_is_absent(tmp_path, monkeypatch):
    m = full_manifest()
    tiny_onnx(tmp_path / "m.onnx", m.onnx_metadata())
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    assert Manifest.read_onnx(tmp_path / "m.onnx") == m


def test_shape_profile_parses_trtexec_notation_and_rejects_nonsense():
    p = ShapeProfile.parse("1x3x256x256:1x3x720x1280:1x3x1088x1920")
    assert (p.min, p.opt, p.max) == ((1, 256, 256), (1, 720, 1280), (1, 1088, 1920))
    assert p.to_spec() == "1x3x256x256:1x3x720x1280:1x3x1088x1920"
    assert ShapeProfile.parse(p.to_spec(channels=1), channels=1) == p
    with pytest.raises(ManifestError, match="expected MIN:OPT:MAX"):
        ShapeProfile.parse("1x3x256x256:1x3x720x1280")
    with pytest.raises(ManifestError, match="OPT '1x3x720' is not of the form NxCxHxW"):
        ShapeProfile.parse("1x3x256x256:1x3x720:1x3x1088x1920")
    with pytest.raises(ManifestError, match="MAX has 4 channels, the model takes 3"):
        ShapeProfile.parse("1x3x256x256:1x3x720x1280:1x4x1088x1920")
    with pytest.raises(ManifestError, match="height: need min <= opt <= max, got 256, 720, 512"):
        ShapeProfile.parse("1x3x256x256:1x3x720x1280:1x3x512x1920")


@pytest.mark.parametrize("change, message", [
    ({"schema_version": SCHEMA_VERSION + 1}, "schema_version 2 is not supported"),
    ({"value_range": [1.0, -1.0]}, "value_range must be .low, high. with low < high"),
    ({"pad_multiple": 0}, "pad_multiple must be a positive int"),
    ({"pad_multiple": True}, "pad_multiple must be a positive int"),
    ({"color_order": "YUV"}, "color_order must be one of"),
    ({"precision": "fp8"}, "precision must be one of"),
    ({"fp32_layers": "conv1"}, "fp32_layers must be a list of layer names"),
    ({"checkpoint_sha256": "abc"}, "checkpoint_sha256 must be 64 lowercase hex digits"),
    ({"shape_profile": {"min": [1, 16, 16], "opt": [1, 8, 8], "max": [1, 32, 32]}}, "need min <= opt <= max"),
    ({"shape_profile": {"min": [1, 16], "opt": [1, 16, 16], "max": [1, 32, 32]}}, "shape_profile.min must be three"),
    ({"shape_profile": {"lo": [1, 16, 16]}}, "shape_profile has unknown keys"),
    ({"shape_profile": [1, 2, 3]}, "shape_profile must be"),
    ({"toolchain": {"tensorrt": 10}}, "toolchain must map names to version strings"),
    ({"toolchain": {"compute_capability": "sm87"}}, "compute_capability must look like '8.7'"),
    ({"colour": "RGB"}, "unknown manifest fields \\['colour'\\]"),
])
def test_invalid_fields_are_named_in_the_error(change, message):
    data = full_manifest().to_dict()
    data.update(change)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_dict(data, source="m.json")


def test_corrupt_or_missing_manifests_say_what_is_wrong(tmp_path):
    artefact = tmp_path / "model.engine"
    with pytest.raises(ManifestError, match="no manifest beside .*model.engine.json"):
        Manifest.read_sidecar(artefact)
    text = full_manifest().to_json()
    sidecar_path(artefact).write_text(text[: len(text) // 2])
    with pytest.raises(ManifestError, match="model.engine.json: not valid JSON"):
        Manifest.read_sidecar(artefact)
    sidecar_path(artefact).write_text(json.dumps({"architecture": "rdafnet"}))
    with pytest.raises(ManifestError, match=r"lacks required fields \['variant', 'value_range', 'pad_multiple'\]"):
        Manifest.read_sidecar(artefact)
    sidecar_path(artefact).write_text("[1, 2]")
    with pytest.raises(ManifestError, match="expected a JSON object, got list"):
        Manifest.read_sidecar(artefact)

    tiny_onnx(tmp_path / "bare.onnx")
    with pytest.raises(ManifestError, match="carries no deblur-sdk manifest"):
        Manifest.read_onnx(tmp_path / "bare.onnx")
    tiny_onnx(tmp_path / "broken.onnx", {ONNX_METADATA_KEY: text.replace('"variant"', '"variant" "')})
    with pytest.raises(ManifestError, match="broken.onnx metadata 'deblur_manifest': not valid JSON"):
        Manifest.read_onnx(tmp_path / "broken.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07 not a protobuf at all \xff\xff")
    with pytest.raises(ManifestError, match="garbage.onnx is not a readable ONNX file"):
        Manifest.read_onnx(tmp_path / "garbage.onnx")
    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        Manifest.read_onnx(tmp_path / "absent.onnx")


def test_summary_names_what_a_user_needs():
    line = full_manifest().summary()
    assert line == ("rdafnet-nano (rdafnet), fp16, RGB NCHW in [-1, 1], pad to 2, profile "
                    "1x3x256x256:1x3x720x1280:2x3x1088x1920, 1 layers pinned to fp32")

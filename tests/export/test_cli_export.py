"""``deblur export``: checkpoint -> verified ONNX with its reports; engine requests fail clearly without TensorRT."""

from __future__ import annotations

import sys
import types

import pytest
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


def test_engine_requests_and_bad_arguments_fail_with_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)        # the same answer where TensorRT is installed
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


@pytest.mark.slow
def test_fused_export_writes_plugin_nodes_checked_against_pytorch_and_engine_builds_get_that_onnx(tmp_path, capsys,
                                                                                                  monkeypatch):
    import onnx

    import export.tensorrt

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "nano.pt", build("rdafnet-nano", num_blocks=1))
    out = tmp_path / "nano-fused.onnx"
    assert main(["export", str(ckpt), "--to", "onnx", "--fused", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Verification, onnx ReferenceEvaluator (deblur nodes: PyTorch references) vs PyTorch (float32): OK" in text
    assert "TensorRT compatibility (10.16, 11.1): OK" in text
    aot = {(n.op_type, tuple(onnx.helper.get_attribute_value(a) for a in n.attribute if a.name == "aot"))
           for n in onnx.load(str(out)).graph.node if n.domain == "deblur"}
    assert aot == {("pixel_attention_map", (1,)), ("attention_fusion", ())}

    built = []
    monkeypatch.setattr(export.tensorrt, "build_engine", lambda onnx_path, engine_path, options, **kw: built.append(
        (onnx_path, engine_path, options.precision, kw["plugins"])) or types.SimpleNamespace(format=lambda: "built"))
    monkeypatch.setattr(export.tensorrt, "import_tensorrt", lambda: types.SimpleNamespace())  # the builder is faked
    assert main(["export", str(ckpt), "--to", "engine", "--fused", "--jit", "--fp16"]) == 0
    ((onnx_path, engine_path, precision, plugins),) = built
    assert (onnx_path.name, engine_path.name, precision, plugins) == ("nano.fused.onnx", "nano.fused.engine", "fp16", None)
    assert {onnx.helper.get_attribute_value(a) for n in onnx.load(str(onnx_path)).graph.node if n.domain == "deblur"
            for a in n.attribute if a.name == "aot"} == {0}                    # --jit: the JIT implementations
    built.clear()
    assert main(["export", str(ckpt), "--to", "engine", "--fused", "--plugins", "cpp"]) == 0
    ((onnx_path, _, _, plugins),) = built
    assert plugins == "cpp"                     # the C++ plugins have no AOT kernels: no node asks for them
    assert {onnx.helper.get_attribute_value(a) for n in onnx.load(str(onnx_path)).graph.node if n.domain == "deblur"
            for a in n.attribute if a.name == "aot"} == {0}
    capsys.readouterr()
    assert main(["export", str(ckpt), "--jit"]) == 2
    assert "--jit applies to the fused export only" in capsys.readouterr().err


def test_fused_engine_from_a_standard_onnx_is_refused(tmp_path, capsys):
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "g", [x], [y])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "plain.onnx"))
    assert main(["export", str(tmp_path / "plain.onnx"), "--to", "engine", "--fused"]) == 2
    assert "has no fused-op (plugin) nodes: export the checkpoint with --fused" in capsys.readouterr().err

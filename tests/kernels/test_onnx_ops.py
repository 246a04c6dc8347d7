"""Opt-in export of the fused ops as ``deblur`` custom ONNX nodes (what the TensorRT plugins consume)."""

from __future__ import annotations

import onnx
import pytest
import torch

from kernels import attention_fusion_with_map, pixel_attention, self_attention

pytest.importorskip("onnxscript")


class _Block(torch.nn.Module):
    """Each public op once, wired like RDAFB / MSAN use them, with a missing bias on the fusion."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.am0, self.am1 = torch.nn.Conv2d(c, c, 1), torch.nn.Conv2d(c, c, 1)
        self.fuse = torch.nn.Conv2d(2 * c, c, 1, bias=False)
        self.dw = torch.nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.pw = torch.nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gated, first_map = pixel_attention(x, self.am0.weight, self.am0.bias, return_map=True)
        out, _ = attention_fusion_with_map([first_map], self.am1.weight, self.am1.bias, self.fuse.weight, None,
                                           self.dw.weight, self.pw.weight, gated)
        b, c, h, w = out.shape
        tokens = out.reshape(b, c, h * w)
        return self_attention(tokens, tokens, tokens, scale=0.5).reshape(b, c, h, w)


def test_fused_export_writes_deblur_nodes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kernels.onnx_ops import DOMAIN, fused_op_export

    model, x = _Block().eval(), torch.randn(1, 4, 5, 6)
    with fused_op_export(aot=True) as table:
        torch.onnx.export(model, (x,), tmp_path / "fused.onnx", dynamo=True, custom_translation_table=table,
                          verbose=False)
    proto = onnx.load(tmp_path / "fused.onnx")
    custom = [n for n in proto.graph.node if n.domain == DOMAIN]
    assert [n.op_type for n in custom] == ["pixel_attention_map", "pixel_attention_map", "attention_fusion",
                                           "self_attention"]
    for node in custom:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        # aot=1 only where the plugin has an aot_impl: TensorRT refuses "AOT requested, but not defined".
        assert attrs["plugin_namespace"] == b"deblur"
        assert attrs.get("aot") == (None if node.op_type == "attention_fusion" else 1), node.op_type
    fusion = next(n for n in custom if n.op_type == "attention_fusion")
    assert len(fusion.input) == 6
    concat = next(n for n in proto.graph.node if fusion.input[0] in n.output)
    assert concat.op_type == "Concat"
    scale = next(a for a in custom[-1].attribute if a.name == "scale")
    assert onnx.helper.get_attribute_value(scale) == pytest.approx(0.5)
    assert (DOMAIN, 1) in {(o.domain, o.version) for o in proto.opset_import}
    # None of the fused computation leaked into standard ops.
    assert not {"Sigmoid", "Softmax", "MatMul"} & {n.op_type for n in proto.graph.node}
    # Outside the block the same model records standard ops again, and they compute what torch computes.
    torch.onnx.export(model, (x,), tmp_path / "plain.onnx", dynamo=True, verbose=False)
    plain = onnx.load(tmp_path / "plain.onnx")
    assert not [n for n in plain.graph.node if n.domain == DOMAIN]
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "plain.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), atol=1e-5, rtol=1e-4)


def test_jit_export_marks_the_aot_capable_nodes_jit_and_runs_in_the_reference_evaluator(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from onnx.reference import ReferenceEvaluator

    from kernels.onnx_ops import DOMAIN, fused_op_export, reference_ops

    torch.manual_seed(0)
    model, x = _Block().eval(), torch.randn(1, 4, 5, 6)
    with fused_op_export(aot=False) as table:
        torch.onnx.export(model, (x,), tmp_path / "jit.onnx", dynamo=True, custom_translation_table=table,
                          input_names=["x"], verbose=False)
    proto = onnx.load(tmp_path / "jit.onnx")
    aot = {n.op_type: [onnx.helper.get_attribute_value(a) for a in n.attribute if a.name == "aot"]
           for n in proto.graph.node if n.domain == DOMAIN}
    assert aot == {"pixel_attention_map": [0], "attention_fusion": [], "self_attention": [0]}
    # ONNX Runtime cannot run deblur nodes; onnx's reference evaluator can, through our PyTorch references.
    (got,) = ReferenceEvaluator(proto, new_ops=reference_ops()).run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    scale = float(abs(want).max())
    assert scale > 1e-3                             # a real signal, not two zeros compared
    assert got.shape == want.shape and float(abs(got - want).max()) < 1e-4 * scale

"""The static TensorRT operator check: the transcribed lists, and unsupported nodes reported by name."""

from __future__ import annotations

import json

import pytest
from onnx import TensorProto, helper

from export.opcheck import (
    OPS_FILE,
    PluginOp,
    UnsupportedOpsError,
    check_tensorrt_compatibility,
    deblur_plugin_ops,
    known_targets,
    supported_ops,
)


def graph_with(nodes, opset: int = 17, extra_opsets=()):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph(nodes, "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])


def test_the_op_lists_record_their_source_and_hold_what_deblurring_nets_use():
    table = json.loads(OPS_FILE.read_text())
    # Keyed by the versions users have: 8.6, 10.3 (JetPack 6), the newest 10.x, the newest 11.x.
    assert known_targets() == ("8.6", "10.3", "10.16", "11.1")
    for target in known_targets():
        sources = table["versions"][target]["sources"]
        assert sources and sources[0]["url"].startswith("https://github.com/onnx/onnx-tensorrt/")
    ours = {"Conv", "ConvTranspose", "InstanceNormalization", "Pad", "Sigmoid", "Softmax", "MatMul", "Resize",
            "LeakyRelu", "Relu", "Tanh", "Clip", "Concat", "Add", "Mul", "ReduceMean", "ReduceMax", "Slice"}
    assert ours <= supported_ops("8.6") <= supported_ops("10.3") <= supported_ops("10.16") <= supported_ops("11.1")
    # Facts of the lists as transcribed: LayerNormalization arrived in 8.6, DFT is in none, the STFT and window
    # ops came in 10.4/10.5 (so not on JetPack 6's 10.3), Attention in 10.14, Swish in 11.0.
    assert "LayerNormalization" in supported_ops("8.6") and "DFT" not in supported_ops("11.1")
    assert supported_ops("10.16") - supported_ops("10.3") == {
        "STFT", "BlackmanWindow", "HammingWindow", "HannWindow", "Attention", "RMSNormalization", "RotaryEmbedding",
        "TensorScatter"}
    assert supported_ops("11.1") - supported_ops("10.16") == {"Swish"}
    assert [len(supported_ops(t)) for t in known_targets()] == [145, 150, 158, 159]
    with pytest.raises(ValueError, match="unknown TensorRT target '7.0'"):
        supported_ops("7.0")


def test_unsupported_and_custom_ops_are_reported_by_node_name_before_any_build():
    model = graph_with([
        helper.make_node("Relu", ["input"], ["a"], name="/head/Relu"),
        helper.make_node("DFT", ["a"], ["b"], name="/fft/DFT"),
        helper.make_node("FancyDeblur", ["b"], ["c"], name="/plugin/FancyDeblur", domain="deblur"),
        helper.make_node("STFT", ["c"], ["output"], name="/spec/STFT"),
    ], extra_opsets=[helper.make_opsetid("deblur", 1)])
    report = check_tensorrt_compatibility(model, targets=("8.6", "10.3", "10.16"))
    assert not report.ok
    assert report.unsupported_nodes == ["/fft/DFT", "/plugin/FancyDeblur", "/spec/STFT"]
    by_target = {(i.target, i.node) for i in report.issues if i.fatal}
    assert by_target == {(t, n) for t in ("8.6", "10.3", "10.16") for n in ("/fft/DFT", "/plugin/FancyDeblur")} | \
        {("8.6", "/spec/STFT"), ("10.3", "/spec/STFT")}
    # STFT is native from 10.5 on: a warning for the 10.4-10.16 line, not an error.
    assert [(i.node, i.fatal) for i in report.issues if i.target == "10.16" and i.node == "/spec/STFT"] == \
        [("/spec/STFT", False)]
    text = report.format()
    assert "3 unsupported node(s)" in text and "node '/plugin/FancyDeblur' (deblur::FancyDeblur): custom-domain op" in text
    with pytest.raises(UnsupportedOpsError, match="/fft/DFT"):
        report.raise_if_unsupported()


def test_nodes_inside_subgraphs_and_the_opset_are_checked_too():
    then_graph = helper.make_graph([helper.make_node("Det", ["input"], ["t"], name="det")], "then", [],
                                   [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_graph = helper.make_graph([helper.make_node("Relu", ["input"], ["e"], name="relu")], "else", [],
                                   [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    model = graph_with([
        helper.make_node("Constant", [], ["cond"], name="cond",
                         value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
        helper.make_node("If", ["cond"], ["output"], name="/branch/If", then_branch=then_graph, else_branch=else_graph),
    ], opset=18)
    report = check_tensorrt_compatibility(model, targets=("8.6",))
    assert report.unsupported_nodes == ["/branch/If/then_branch/det", "<model>"]
    assert "opset 18 is outside the 1..17 range TensorRT 8.6 parses" in report.format()


def test_a_clean_graph_passes():
    model = graph_with([helper.make_node("Sigmoid", ["input"], ["output"], name="/gate/Sigmoid")])
    report = check_tensorrt_compatibility(model)
    assert report.ok and report.issues == [] and report.op_counts == {"Sigmoid": 1}
    report.raise_if_unsupported()


def fused_graph(aot_by_op: dict[str, int | None]):
    nodes, previous = [], "input"
    for i, (op, aot) in enumerate(aot_by_op.items()):
        out = "output" if i == len(aot_by_op) - 1 else f"t{i}"
        attrs = {"plugin_namespace": "deblur", **({} if aot is None else {"aot": aot})}
        nodes.append(helper.make_node(op, [previous], [out], name=f"/{op}", domain="deblur", **attrs))
        previous = out
    return graph_with(nodes, opset=18, extra_opsets=[helper.make_opsetid("deblur", 1)])


def test_declared_plugin_ops_pass_where_their_plugins_run_and_nowhere_else():
    model = fused_graph({"pixel_attention_map": 1, "self_attention": 1, "attention_fusion": None})
    plugins = deblur_plugin_ops()
    assert {p.op_type: (p.min_version, p.aot_min_version) for p in plugins} == {
        "pixel_attention": ((10, 6), (10, 9)), "pixel_attention_map": ((10, 6), (10, 9)),
        "self_attention": ((10, 6), (10, 9)), "attention_fusion": ((10, 6), None)}
    assert check_tensorrt_compatibility(model, ("10.16", "11.1"), plugins=plugins).ok
    # Undeclared, the same nodes are unknown custom ops; on 8.6 and JetPack's 10.3 tensorrt.plugin does not exist.
    assert not check_tensorrt_compatibility(model, ("10.16",)).ok
    old = check_tensorrt_compatibility(model, ("8.6", "10.3"), plugins=plugins)
    plugin_issues = [(i.target, i.node) for i in old.issues if "needs TensorRT >= 10.6" in i.reason]
    assert sorted(plugin_issues) == sorted((t, f"/{op}") for t in ("8.6", "10.3")
                                           for op in ("pixel_attention_map", "self_attention", "attention_fusion"))


def test_aot_on_a_plugin_without_an_aot_implementation_is_caught_before_tensorrt_refuses_it():
    report = check_tensorrt_compatibility(fused_graph({"attention_fusion": 1}), ("10.16",), plugins=deblur_plugin_ops())
    assert report.unsupported_nodes == ["/attention_fusion"]
    assert "no ahead-of-time implementation" in report.format()
    # A target older than the AOT release of a plugin that has one: re-export with --jit.
    early = PluginOp("deblur", "pixel_attention", (10, 6), (10, 17))
    report = check_tensorrt_compatibility(fused_graph({"pixel_attention": 1}), ("10.16",), plugins=[early])
    assert "aot=1 needs TensorRT >= 10.17; export with --jit" in report.format()
    assert check_tensorrt_compatibility(fused_graph({"pixel_attention": 0}), ("10.16",), plugins=[early]).ok

"""The static TensorRT operator check: the transcribed lists, and unsupported nodes reported by name."""

from __future__ import annotations

import json

import pytest
from onnx import TensorProto, helper

from export.opcheck import (
    OPS_FILE,
    UnsupportedOpsError,
    check_tensorrt_compatibility,
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
    assert known_targets() == ("8.6", "10.x")
    for target in known_targets():
        sources = table["versions"][target]["sources"]
        assert sources and all(s["url"].startswith("https://github.com/onnx/onnx-tensorrt/") for s in sources)
    ours = {"Conv", "ConvTranspose", "InstanceNormalization", "Pad", "Sigmoid", "Softmax", "MatMul", "Resize",
            "LeakyRelu", "Relu", "Tanh", "Clip", "Concat", "Add", "Mul", "ReduceMean", "ReduceMax", "Slice"}
    assert ours <= supported_ops("8.6") <= supported_ops("10.x")
    # Facts of the lists as transcribed: LayerNormalization arrived in 8.6, DFT is in neither, STFT only in 10.x.
    assert "LayerNormalization" in supported_ops("8.6")
    assert "DFT" not in supported_ops("10.x") and "STFT" in supported_ops("10.x") - supported_ops("8.6")
    assert (len(supported_ops("8.6")), len(supported_ops("10.x"))) == (145, 158)
    with pytest.raises(ValueError, match="unknown TensorRT target '7.0'"):
        supported_ops("7.0")


def test_unsupported_and_custom_ops_are_reported_by_node_name_before_any_build():
    model = graph_with([
        helper.make_node("Relu", ["input"], ["a"], name="/head/Relu"),
        helper.make_node("DFT", ["a"], ["b"], name="/fft/DFT"),
        helper.make_node("FancyDeblur", ["b"], ["c"], name="/plugin/FancyDeblur", domain="deblur"),
        helper.make_node("STFT", ["c"], ["output"], name="/spec/STFT"),
    ], extra_opsets=[helper.make_opsetid("deblur", 1)])
    report = check_tensorrt_compatibility(model)
    assert not report.ok
    assert report.unsupported_nodes == ["/fft/DFT", "/plugin/FancyDeblur", "/spec/STFT"]
    by_target = {(i.target, i.node) for i in report.issues if i.fatal}
    assert by_target == {("8.6", "/fft/DFT"), ("10.x", "/fft/DFT"), ("8.6", "/plugin/FancyDeblur"),
                         ("10.x", "/plugin/FancyDeblur"), ("8.6", "/spec/STFT")}
    # STFT is native from 10.5 on: a warning for the 10.x line, not an error.
    assert [(i.node, i.fatal) for i in report.issues if i.target == "10.x" and i.node == "/spec/STFT"] == \
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

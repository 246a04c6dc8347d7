"""ONNX export: every architecture, dynamic batch/H/W, ORT parity, the manifest in metadata, fp32 pins mapped to nodes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from export.onnx import ExportError, export_onnx, node_scope, nodes_of_modules, ort_session
from sdk.manifest import ONNX_METADATA_KEY, Manifest
from training.checkpoint import save_checkpoint
from training.models import build, list_models

# Small constructor overrides keep the suite fast; rdafnet-single runs at its paper size.
CONFIGS = {
    "rdafnet-single": {},
    "rdafnet-multi": {"base_channels": 8, "blocks_per_stage": (2, 2, 2)},
    "rdafnet-small": {"num_blocks": 2},
    "rdafnet-nano": {"num_blocks": 2},
    "rdafnet-unet-nano": {"base_channels": 8, "widths": (8, 16, 32, 64), "middle": 1},
    "msan": {"num_stages": 2, "num_blocks": 1, "width": 8},
    "dsanet": {"widths": (8, 16, 32), "num_resblocks": 1},
    "bag": {"base_channels": 8, "num_modules": 1, "growth": 4, "dense_layers": 2},
}


def test_every_image_model_in_the_registry_is_covered():
    image_models = [n for n in list_models() if not getattr(build(n, **CONFIGS.get(n, {})), "is_critic", False)]
    assert sorted(image_models) == sorted(CONFIGS)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_architecture_exports_with_dynamic_shapes_and_matches_pytorch(name, tmp_path):
    torch.manual_seed(0)
    net = build(name, **CONFIGS[name]).eval()
    report = export_onnx(net, tmp_path / f"{name}.onnx")
    model = onnx.load(str(report.path))

    assert report.ok and report.opset == 17 and report.exporter == "torchscript"
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["output"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    # Two sizes, one of them odd and padded to the model's multiple, both within 1e-4 of PyTorch.
    (square, odd) = report.parity
    m = net.pad_multiple
    assert square.shape[0] == 2 and odd.padded_from == (37, 53)
    assert odd.shape[2:] == (-(-37 // m) * m, -(-53 // m) * m)
    assert max(square.max_abs_error, odd.max_abs_error) <= 1e-4
    assert report.compatibility is not None and report.compatibility.ok

    manifest = Manifest.read_onnx(report.path)
    assert manifest == report.manifest
    assert (manifest.variant, manifest.pad_multiple, manifest.value_range) == (name, m, tuple(net.input_range))
    assert manifest.toolchain["opset"] == "17" and manifest.toolchain["torch"] == torch.__version__.split("+")[0]
    assert "deblur" not in {o.domain for o in model.opset_import}


def test_instance_norm_without_affine_exports_as_instancenormalization_with_unit_scale(tmp_path):
    torch.manual_seed(0)
    net = build("rdafnet-nano", num_blocks=1, norm="instance").eval()
    report = export_onnx(net, tmp_path / "nano.onnx")
    model = onnx.load(str(report.path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert len(norms) == 4                      # one per conv of the single RDAFB
    for node in norms:
        scale, bias = weights[node.input[1]], weights[node.input[2]]   # initializers, as TensorRT 8.x requires
        assert np.array_equal(scale, np.ones_like(scale)) and np.array_equal(bias, np.zeros_like(bias))
    assert {n.op_type for n in model.graph.node}.isdisjoint({"ReduceMean", "Sqrt", "Constant"})


def test_a_checkpoint_exports_with_its_hash_and_runs_at_another_batch_and_size(tmp_path):
    torch.manual_seed(0)
    net = build("msan", **CONFIGS["msan"])
    ckpt = save_checkpoint(tmp_path / "msan.pt", net)
    report = export_onnx(ckpt, tmp_path / "msan.onnx")
    assert report.manifest.checkpoint_sha256 is not None and len(report.manifest.checkpoint_sha256) == 64
    session = ort_session(report.path, threads=1)
    x = (torch.rand(3, 3, 48, 80) - 0.5).numpy()
    (y,) = session.run(["output"], {"input": x})
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(x)).numpy()
    assert y.shape == (3, 3, 48, 80) and float(np.abs(y - expected).max()) <= 1e-4


def test_export_measures_the_tile_radius_of_the_weights_it_ships(tmp_path):
    net = build("rdafnet-nano", base_channels=12, num_blocks=5, norm="none")
    with torch.no_grad():
        net.to_image.weight.zero_()             # the identity: no neighbour moves an output pixel
    report = export_onnx(save_checkpoint(tmp_path / "identity.pt", net), tmp_path / "identity.onnx")
    assert report.manifest.receptive_field == 0                 # not the architecture table's 33 px
    assert "identity.pt: effective radius 0 px (sets the runtime's tile overlap)" in report.notes


class TwoBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.heads = nn.ModuleList([nn.Conv2d(4, 3, 1), nn.Conv2d(4, 3, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + self.heads[0](y) * torch.sigmoid(self.heads[1](y))


def test_module_names_map_onto_exported_node_names(tmp_path):
    manifest = Manifest(architecture="toy", variant="two-branch", value_range=(0.0, 1.0), pad_multiple=1)
    report = export_onnx(TwoBranch().eval(), tmp_path / "toy.onnx", manifest=manifest)
    model = onnx.load(str(report.path))
    assert {node.name: node_scope(node) for node in model.graph.node} == {
        "/body/body.0/Conv": "body.0", "/body/body.1/Relu": "body.1", "/heads.0/Conv": "heads.0",
        "/heads.1/Conv": "heads.1", "/Sigmoid": "", "/Mul": "", "/Add": ""}
    assert nodes_of_modules(model, ["body.0", "heads.1", ""]) == {
        "body.0": ["/body/body.0/Conv"], "heads.1": ["/heads.1/Conv"], "": ["/Sigmoid", "/Mul", "/Add"]}


class Nested(nn.Module):
    """Containers in containers, called and uncalled: the names the exporter shortens the most."""

    def __init__(self, inner: bool = True) -> None:
        super().__init__()
        conv = lambda: nn.Conv2d(3, 3, 1)   # noqa: E731
        self.seq = nn.Sequential(conv(), nn.Sequential(conv()))
        self.lst = nn.ModuleList([nn.Sequential(conv())])
        self.stages = nn.ModuleList([Nested(inner=False)]) if inner else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lst[0](self.seq(x))
        return self.stages[0](x) if self.stages is not None else x


def test_nested_container_names_are_rebuilt_exactly(tmp_path):
    manifest = Manifest(architecture="toy", variant="nested", value_range=(0.0, 1.0), pad_multiple=1)
    net = Nested().eval()
    report = export_onnx(net, tmp_path / "nested.onnx", manifest=manifest, targets=())
    model = onnx.load(str(report.path))
    convs = [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    assert sorted(node_scope(n) for n in model.graph.node) == sorted(convs)
    assert "/stages.0/seq/seq.1/seq.1.0/Conv" in nodes_of_modules(model, convs)["stages.0.seq.1.0"]


def test_fp16_analysis_writes_pinned_node_names_into_the_manifest(tmp_path):
    from test_fp16_safety import Overflowing

    manifest = Manifest(architecture="toy", variant="overflowing", value_range=(-1.0, 1.0), pad_multiple=1)
    torch.manual_seed(0)
    report = export_onnx(Overflowing().eval(), tmp_path / "o.onnx", manifest=manifest, fp16=True,
                         calibration_size=(32, 32))
    assert report.fp16.fp32_layers == ["boost", "shrink"] and report.fp16.psnr_pinned >= 40.0
    stored = Manifest.read_onnx(report.path)
    assert stored.fp32_layers == ("/boost/Conv", "/shrink/Conv") == report.manifest.fp32_layers
    assert stored.precision == "fp32"           # the graph itself stays float32; the pins guide the engine build
    assert "FP16 safety" in report.format() and "keep fp32: boost" in report.format()


def test_a_graph_that_does_not_match_pytorch_is_refused(tmp_path, monkeypatch):
    import export.onnx as eo

    manifest = Manifest(architecture="toy", variant="two-branch", value_range=(0.0, 1.0), pad_multiple=1)
    real_session = eo.ort_session

    class Skewed:
        def __init__(self, path, threads=None):
            self.inner = real_session(path, threads)

        def run(self, names, feeds):
            return [y + 1e-3 for y in self.inner.run(names, feeds)]

    monkeypatch.setattr(eo, "ort_session", Skewed)
    with pytest.raises(ExportError, match=r"max \|ORT - PyTorch\| = 0.001 \(FAIL, tol 0.0001\)"):
        export_onnx(TwoBranch().eval(), tmp_path / "bad.onnx", manifest=manifest)
    assert (tmp_path / "bad.onnx").is_file()      # kept for inspection
    report = export_onnx(TwoBranch().eval(), tmp_path / "bad.onnx", manifest=manifest, strict=False)
    assert not report.ok and "the exported graph differs" in report.format()


def test_bad_requests_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="opset must be >= 17"):
        export_onnx("rdafnet-nano", tmp_path / "x.onnx", opset=13)
    with pytest.raises(FileNotFoundError, match="neither a checkpoint file nor a registered model"):
        export_onnx("rdafnet-giant", tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="pass manifest="):
        export_onnx(TwoBranch(), tmp_path / "x.onnx")


def test_metadata_key_is_the_shared_constant(tmp_path):
    manifest = Manifest(architecture="toy", variant="two-branch", value_range=(0.0, 1.0), pad_multiple=1)
    report = export_onnx(TwoBranch().eval(), tmp_path / "toy.onnx", manifest=manifest, targets=())
    keys = [p.key for p in onnx.load(str(report.path)).metadata_props]
    assert keys == [ONNX_METADATA_KEY] and report.compatibility is None


def test_onnxslim_takes_over_where_onnxsim_fails(tmp_path, monkeypatch):
    import sys
    import types

    def broken(model, *args, **kwargs):
        raise RuntimeError("onnxsim crashed")

    monkeypatch.setitem(sys.modules, "onnxsim", types.SimpleNamespace(simplify=broken, __version__="0"))
    manifest = Manifest(architecture="toy", variant="two-branch", value_range=(0.0, 1.0), pad_multiple=1)
    report = export_onnx(TwoBranch().eval(), tmp_path / "toy.onnx", manifest=manifest)
    assert report.simplifier.startswith("onnxslim ") and report.ok
    assert report.op_counts == {"Conv": 3, "Relu": 1, "Sigmoid": 1, "Mul": 1, "Add": 1}

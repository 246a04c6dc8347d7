"""Bundled models by name: ``sdk.Deblurrer("small")``, ``deblur export small``, ``deblur eval --model small``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest

import sdk
import sdk.bundled
from sdk.bundled import bundled_model_path, bundled_models, resolve_model


@pytest.fixture
def bundle(tmp_path, onnx_models, monkeypatch) -> Path:
    """A package whose sdk/models folder holds one model, ``cam``, as ONNX and checkpoint."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(onnx_models["affine"], folder / "cam.onnx")
    (folder / "cam.pt").write_bytes(b"not read by these tests")
    (folder / "MODEL_CARD.md").write_text("not a model")
    monkeypatch.setattr(sdk.bundled, "_bundle_dir", lambda: folder)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return folder


def test_a_bare_name_opens_the_bundled_model_of_that_name(bundle):
    assert bundled_models() == {"cam": bundle / "cam.onnx"}        # the card is no model
    deblur = sdk.Deblurrer("cam")
    assert deblur.model_path == str(bundle / "cam.onnx")
    frame = np.full((16, 24, 3), 100, np.uint8)
    # the affine test model maps x to 0.5 x + 0.25 in [0, 1]: 100 -> 0.5 * 100 + 64 = 114
    assert np.abs(deblur.process(frame).astype(int) - 114).max() <= 1


def test_a_file_in_the_current_folder_wins_over_a_bundled_name(bundle, onnx_models):
    shutil.copy(onnx_models["identity"], "cam")
    assert resolve_model("cam") == Path("cam")


def test_an_unknown_name_lists_what_is_bundled(bundle):
    with pytest.raises(FileNotFoundError, match=r"'smal'.*\(bundled: cam\)"):
        sdk.Deblurrer("smal")


def test_paths_are_not_names(bundle):
    assert resolve_model("models/cam") == Path("models/cam")       # a folder: a path, left to the backend
    assert resolve_model("cam.onnx") == Path("cam.onnx")
    with pytest.raises(FileNotFoundError, match="cam.onnx"):
        sdk.Deblurrer("cam.onnx")                                   # not here: the bundle is no search path


def test_bundled_checkpoint_and_bad_suffix(bundle):
    assert bundled_model_path("cam", ".pt") == bundle / "cam.pt"
    with pytest.raises(ValueError, match="suffix"):
        bundled_model_path("cam", ".engine")


def _export_args(**overrides) -> argparse.Namespace:
    values = dict(source="cam", to="engine", fused=False, random_weights=False, out=None)
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.mark.parametrize(("to", "fused", "source", "out"), [
    ("engine", False, "cam.onnx", "cam.engine"),     # TensorRT builds from the ONNX
    ("openvino", False, "cam.onnx", "cam.xml"),
    ("onnx", False, "cam.pt", "cam.onnx"),           # re-export and verify from PyTorch
    ("onnx", True, "cam.pt", "cam.fused.onnx"),
    ("triton-repo", False, "cam.onnx", None),        # a repository folder must be named (--out)
])
def test_export_takes_a_bundled_name_and_writes_to_the_current_folder(bundle, to, fused, source, out):
    from sdk.cli.export import _use_bundled_model

    args = _export_args(to=to, fused=fused)
    _use_bundled_model(args)
    assert args.source == str(bundle / source)
    assert args.out == (None if out is None else Path.cwd() / out)


def test_export_leaves_registry_names_and_given_outputs_alone(bundle):
    from sdk.cli.export import _use_bundled_model

    registry = _export_args(source="rdafnet-nano", random_weights=True)
    _use_bundled_model(registry)
    assert (registry.source, registry.out) == ("rdafnet-nano", None)
    named = _export_args(out=Path("elsewhere.engine"))
    _use_bundled_model(named)
    assert (named.source, named.out) == (str(bundle / "cam.onnx"), Path("elsewhere.engine"))


def test_bench_resolves_a_bundled_name_to_its_onnx(bundle, tmp_path):
    pytest.importorskip("torch")
    from benchmarks.latency import load_model_under_test

    (bundle / "cam.pt").unlink()     # a checkpoint beside the ONNX would be loaded for the PyTorch backends
    mut = load_model_under_test("cam", workdir=tmp_path / "bench")
    assert mut.onnx_path == bundle / "cam.onnx"


def test_eval_of_a_bundled_model_writes_its_scores_here_not_into_the_package(bundle):
    pytest.importorskip("torch")
    from sdk.cli import main

    assert main(["eval", "--model", "cam", "--engine", "sharp", "--count", "2", "--size", "64"]) == 0
    written = sorted(p.name for p in Path.cwd().iterdir())
    assert len(written) == 1 and written[0].startswith("cam-") and written[0].endswith("-eval.csv"), written
    assert sorted(p.name for p in bundle.iterdir()) == ["MODEL_CARD.md", "cam.onnx", "cam.pt"]

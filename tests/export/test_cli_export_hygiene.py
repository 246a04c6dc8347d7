"""`deblur export` leaves nothing behind when it cannot finish, and never ships random weights by
accident (issue 13, finding 8)."""

from __future__ import annotations

import pytest

from sdk.cli import main


def _tensorrt_builds() -> bool:
    try:
        import tensorrt
    except ImportError:
        return False
    return hasattr(tensorrt, "Builder")


@pytest.mark.skipif(_tensorrt_builds(), reason="TensorRT is installed: an engine would really be built")
def test_engine_without_tensorrt_writes_nothing_and_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "rdafnet-nano", "--random-weights", "--to", "engine"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deblur export: error:") and "pip install" in err and "TensorRT" in err
    assert list(tmp_path.iterdir()) == []                   # no stray rdafnet-nano.onnx


def test_a_model_name_without_random_weights_is_refused_before_any_export(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "rdafnet-nano"]) == 2
    err = capsys.readouterr().err
    assert "--random-weights" in err and "checkpoint" in err
    assert list(tmp_path.iterdir()) == []


def test_random_weights_must_be_asked_for_and_then_export(tmp_path, capsys):
    out = tmp_path / "nano.onnx"
    assert main(["export", "rdafnet-nano", "--random-weights", "--out", str(out)]) == 0
    assert out.is_file() and "freshly initialised weights" in capsys.readouterr().out

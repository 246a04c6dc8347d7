"""Benchmarks that write a results pair refuse to replace committed results, and say so before they
spend minutes measuring (a 30-minute soak that ends in FileExistsError loses its numbers)."""

from __future__ import annotations

import pytest

from benchmarks import quality_goals, serving, soak_rtsp


def _never(*args, **kwargs):
    raise AssertionError("measured although the results could not be written")


@pytest.mark.parametrize("module, measure, argv, name", [
    (soak_rtsp, "soak", ["--minutes", "0.1", "--results"], "soak_rtsp"),
    (serving, "run", ["--out"], "serving"),
    (quality_goals, "score_sets", ["--out"], "default-goals"),
])
def test_existing_results_are_refused_before_measuring(module, measure, argv, name, tmp_path, monkeypatch):
    monkeypatch.setattr(module, measure, _never)
    (tmp_path / f"{name}.md").write_text("committed\n")
    with pytest.raises(FileExistsError, match=f"{name}.md exists"):
        module.main([*argv, str(tmp_path)])
    assert (tmp_path / f"{name}.md").read_text() == "committed\n" and not (tmp_path / f"{name}.json").exists()


def test_overwrite_replaces_the_pair(tmp_path, monkeypatch):
    result = {"soak": {"passed": True}}
    monkeypatch.setattr(soak_rtsp, "soak", lambda *a, **k: result["soak"])
    monkeypatch.setattr(soak_rtsp, "markdown", lambda r: f"passed {r['soak']['passed']}\n")
    (tmp_path / "soak_rtsp.md").write_text("old\n")
    assert soak_rtsp.main(["--minutes", "0.1", "--results", str(tmp_path), "--overwrite"]) == 0
    assert (tmp_path / "soak_rtsp.md").read_text() == "passed True\n"
    assert '"passed": true' in (tmp_path / "soak_rtsp.json").read_text()

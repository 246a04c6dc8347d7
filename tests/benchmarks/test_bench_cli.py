"""``deblur bench`` end to end on tiny shapes: registry name, ONNX file, bundled default; the written files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.choices import BenchContext, Unavailable, open_for_bench, parse_backend
from benchmarks.latency import BenchSettings, from_module, load_model_under_test, parse_sizes, run_benchmark
from benchmarks.report import write_results, write_summary
from sdk.cli import main
from training.models import build
from training.models.complexity import count_macs

FAST = ["--res", "32,48x32", "--iters", "2", "--warmup", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    from export.onnx import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(build("rdafnet-nano", num_blocks=1), path)
    return path


def _written(out: Path, label: str) -> tuple[dict, str]:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    for suffix in (".json", ".md", ".png"):
        assert (folder / f"{label}{suffix}").stat().st_size > 0
    assert (folder / f"{label}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads((folder / f"{label}.json").read_text()), (folder / f"{label}.md").read_text()


def _backend(result: dict, name: str) -> dict:
    return next(b for b in result["backends"] if b["backend"] == name)


def test_bench_registry_name_writes_json_markdown_and_plot(tmp_path):
    rc = main(["bench", "rdafnet-nano", "--backends", "torch-fp32,torch-fp16,ort-cpu", *FAST, "--out", str(tmp_path)])
    assert rc == 0
    result, md = _written(tmp_path, "rdafnet-nano")
    torch_runs = _backend(result, "torch-fp32")["runs"]
    assert [(r["width"], r["height"]) for r in torch_runs] == [(32, 32), (48, 32)]
    for run in torch_runs + _backend(result, "ort-cpu")["runs"]:
        assert run["device_ms"]["n"] == 2 and run["end_to_end_ms"]["n"] == 2
        assert 0 < run["device_ms"]["p50_ms"] <= run["device_ms"]["max_ms"]
        assert run["macs_per_frame"] == count_macs(build("rdafnet-nano"), (1, 3, run["height"], run["width"]))
        assert run["achieved_tflops"] > 0 and 0 < run["fraction_of_peak"]
        assert run["host_rss_peak_mb"] > 50
    fp16 = _backend(result, "torch-fp16")
    assert fp16["available"] is False and "CUDA" in fp16["reason"]
    assert result["model"]["params"] == 174_264 and result["settings"]["threads"] == 1
    assert result["device"]["kind"] == "cpu" and "torch" in result["versions"]
    assert "| torch-fp32 | 32x32 | 1 |" in md and "## Unavailable backends" in md


def test_bench_onnx_file_runs_onnxruntime_only(tmp_path, tiny_onnx):
    rc = main(["bench", str(tiny_onnx), "--backends", "torch-fp32,ort-cpu", *FAST, "--batch", "2",
               "--out", str(tmp_path), "--no-plot"])
    assert rc == 0
    (folder,) = list(tmp_path.iterdir())
    result = json.loads((folder / "tiny.json").read_text())
    torch_entry = _backend(result, "torch-fp32")
    assert torch_entry["available"] is False and "no PyTorch weights" in torch_entry["reason"]
    runs = _backend(result, "ort-cpu")["runs"]
    assert [r["batch"] for r in runs] == [2, 2] and all(r["device_ms"]["fps"] > 0 for r in runs)
    # The ONNX holds a 1-block nano; the registry's nano has 5 blocks, so MACs cannot be attributed.
    assert result["model"]["params"] > 0 and "MACs unknown" in result["model"]["macs_note"]
    assert runs[0]["macs_per_frame"] is None


def test_checkpoint_models_and_checkpoints_beside_an_onnx(tmp_path, tiny_onnx):
    import shutil

    from training.checkpoint import save_checkpoint

    net = build("rdafnet-nano", num_blocks=1)
    save_checkpoint(tmp_path / "tiny.pt", net)
    from_pt = load_model_under_test(tmp_path / "tiny.pt", workdir=tmp_path / "work", export=False)
    assert from_pt.label == "tiny" and from_pt.torch_model is not None and from_pt.onnx_path is None
    assert from_pt.params == sum(p.numel() for p in net.parameters()) == 50_808
    # An ONNX with its checkpoint beside it: PyTorch backends get the checkpoint's weights.
    shutil.copy(tiny_onnx, tmp_path / "tiny.onnx")
    pair = load_model_under_test(tmp_path / "tiny.onnx", workdir=tmp_path / "work")
    assert pair.torch_model is not None and pair.onnx_path == tmp_path / "tiny.onnx"
    assert pair.macs_per_frame(32, 32) == count_macs(net, (1, 3, 32, 32))
    assert any("tiny.pt" in note for note in pair.notes)


def test_bench_without_model_uses_the_bundled_default(tmp_path, tiny_onnx, monkeypatch):
    import sdk.bundled

    monkeypatch.setattr(sdk.bundled, "default_model_path", lambda: tiny_onnx)
    rc = main(["bench", "--backends", "ort-cpu", "--res", "32", "--iters", "1", "--warmup", "0",
               "--out", str(tmp_path), "--no-plot"])
    assert rc == 0
    (folder,) = list(tmp_path.iterdir())
    assert json.loads((folder / "default.json").read_text())["model"]["label"] == "default"


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / "sdk" / "models" / "default.onnx").is_file(),
                    reason="sdk/models/default.onnx is not in this checkout yet")
def test_bench_the_real_bundled_model(tmp_path):
    assert main(["bench", "--backends", "ort-cpu", "--res", "32", "--iters", "1", "--warmup", "0",
                 "--out", str(tmp_path)]) == 0
    _written(tmp_path, "default")


def test_torch_compile_path_and_summary(tmp_path):
    net = build("rdafnet-nano", num_blocks=1)
    mut = from_module(net, workdir=tmp_path / "work")
    # The "eager" dynamo backend exercises the compile path (reset, first-call timing) without a C++ build.
    settings = BenchSettings(backends=("torch-fp32", "torch-compile", "ort-cpu"), sizes=parse_sizes("32"),
                             warmup=0, iters=2, threads=1, compile_backend="eager")
    result = run_benchmark(mut, settings)
    compiled = _backend(result, "torch-compile")
    assert compiled["available"] and compiled["runs"][0]["setup_seconds"] > 0
    write_results(result, tmp_path / "results", plot=False)
    summary = write_summary(tmp_path / "results" / result["device"]["slug"]).read_text()
    assert "| rdafnet-nano | 32x32 | 1 |" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| rdafnet-nano"))
    assert row.count("x |") == 2          # two speed-up cells: torch-compile and ort-cpu


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="resolution 'big'"):
        parse_sizes("256,big")
    with pytest.raises(ValueError, match="unknown backend 'torch-fp64'"):
        parse_backend("torch-fp64")
    with pytest.raises(ValueError, match="neither a registered model"):
        load_model_under_test("no-such-net", workdir=Path("/tmp"))
    assert main(["bench", "missing.onnx", "--out", "/tmp"]) == 2


@pytest.mark.parametrize("flags,runs", [("avx2 fma", False), ("avx2 fma avx512f avx512_bf16", True)])
def test_default_list_skips_bf16_only_where_the_cpu_emulates_it(tmp_path, monkeypatch, flags, runs):
    import benchmarks.devices

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test\ncpu MHz\t\t: 2000\nflags\t\t: {flags}\n")
    monkeypatch.setattr(benchmarks.devices, "CPUINFO", cpuinfo)
    mut = from_module(build("rdafnet-nano", num_blocks=1), workdir=tmp_path, export=False)
    choice = parse_backend("torch-bf16")
    if runs:
        backend, notes = open_for_bench(choice, mut, BenchContext(allow_emulated_bf16=False))
        assert backend.precision == "bf16" and notes == []
    else:
        with pytest.raises(Unavailable, match="not run by default: this CPU has no bfloat16"):
            open_for_bench(choice, mut, BenchContext(allow_emulated_bf16=False))
        backend, notes = open_for_bench(choice, mut, BenchContext())
        assert "emulates bf16" in notes[0]


def test_bench_onnx_on_deployed_backends_interleaved_into_a_new_folder(tmp_path, tiny_onnx, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.chdir(tmp_path)
    args = ["bench", str(tiny_onnx), "--backends", "ort-cpu,openvino-fp32,openvino-int8", "--res", "32",
            "--iters", "3", "--warmup", "1", "--threads", "1", "--interleave", "--no-plot"]
    assert main(args) == 0
    (out,) = tmp_path.glob("deblur-bench-*")          # the default: a new folder in the current directory
    result = json.loads(next(out.rglob("tiny.json")).read_text())
    ort, ov = _backend(result, "ort-cpu"), _backend(result, "openvino-fp32")
    assert ov["available"] and ov["precision"] == "fp32" and ov["device"] == "cpu"
    assert ov["runs"][0]["interleaved_with"] == ["ort-cpu"] and ort["runs"][0]["interleaved_with"] == ["openvino-fp32"]
    assert ov["runs"][0]["end_to_end_ms"]["n"] == 3 and len(ov["runs"][0]["load_average_1m"]["per_round"]) == 3
    assert "calibration" in _backend(result, "openvino-int8")["reason"]
    assert set(result["device"]["cpu"]["flags"]) <= benchmarks_devices().NOTABLE_CPU_FLAGS
    assert "openvino" in result["versions"] and result["settings"]["cpu_affinity"]
    md = next(out.rglob("tiny.md")).read_text()
    assert "- CPU: " in md and "interleaved: backends alternated" in md
    # The same folder again: refused, the first results stay.
    before = next(out.rglob("tiny.json")).read_bytes()
    assert main([*args, "--out", str(out)]) == 2
    assert next(out.rglob("tiny.json")).read_bytes() == before


def benchmarks_devices():
    import benchmarks.devices

    return benchmarks.devices

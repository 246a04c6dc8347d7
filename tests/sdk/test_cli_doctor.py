"""``deblur doctor [--gpu]``: on this GPU-less machine every acceptance step is skipped with its reason
and the exit status is 0; with a fake GPU machine (fake commands, fake parity) real failures give 1."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from sdk.cli import main
from sdk.cli.doctor import probe, run
from sdk.cli.gpu_acceptance import (
    FAILED,
    PASSED,
    SKIPPED,
    CommandResult,
    Environment,
    RealTools,
    frame_parity,
)

STEPS_PER_ROW = ("export onnx", "build FP16 engine", "parity vs ONNX Runtime", "deblur bench")


def test_frame_parity_numbers():
    a = np.zeros((4, 5, 3), np.uint8)
    b = np.full((4, 5, 3), 2, np.uint8)
    numbers = frame_parity(a, b)
    assert numbers["psnr_db"] == pytest.approx(10 * math.log10(255 ** 2 / 4)) and numbers["max_error"] == 2
    b[0, 0, 0] = 40
    assert frame_parity(a, b)["max_error"] == 40
    assert frame_parity(a, a)["psnr_db"] == math.inf
    with pytest.raises(ValueError, match="differ in shape"):
        frame_parity(a, a[:2])


def test_doctor_on_this_machine_skips_every_gpu_step_with_its_reason_and_exits_0(tmp_path, capsys):
    env = probe()
    if env.gpu is not None:
        pytest.skip(f"this machine has a GPU ({env.gpu}); the real acceptance run is `deblur doctor --gpu`")
    assert main(["doctor", "--gpu", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    steps = summary["steps"]
    rows = [(s["step"], s["model"], s["variant"]) for s in steps]
    assert rows[0] == ("gpu/trt tests", "-", "-") and len(steps) == 1 + 2 * 2 * 4
    for model in ("default", "rdafnet-small"):
        for variant in ("standard", "fused"):
            assert [r[0] for r in rows if r[1:] == (model, variant)] == list(STEPS_PER_ROW)
    assert {s["status"] for s in steps} == {SKIPPED}
    assert all(s["detail"].startswith("no usable CUDA GPU: ") for s in steps)
    table = (tmp_path / "summary.md").read_text()
    assert table.count("| skipped |") == 17 and summary["gpu"] is None and summary["gpu_problem"]
    assert "0 passed, 0 failed, 17 skipped" in capsys.readouterr().out


def test_plain_doctor_reports_the_machine_and_exits_0(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "python" in out and "GPU" in out and "deblur export --fused" in out


# --------------------------------------------------------------------------- a fake GPU machine
def gpu_machine(tmp_path: Path, *, fused: bool = True) -> Environment:
    return Environment(versions={"tensorrt": "10.9.0"}, gpu="Orin (compute capability 8.7)", checkout=tmp_path,
                       export_has_fused=fused)


class FakeTools:
    """Every command succeeds unless named in ``fail``; engines are written; bench writes its JSON."""

    def __init__(self, *, fail: tuple[str, ...] = (), psnr: dict[str, float] | None = None) -> None:
        self.fail, self.psnr, self.commands = fail, psnr or {}, []

    def run(self, argv, log, cwd):
        argv = list(argv)
        self.commands.append(argv)
        if any(word in " ".join(argv) for word in self.fail):
            return CommandResult(1, "boom: something broke")
        if "--out" in argv:
            out = Path(argv[argv.index("--out") + 1])
            if out.suffix == ".engine":
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(b"x" * 2_500_000)
            elif "bench" in argv:
                (out / "cuda").mkdir(parents=True)
                (out / "cuda" / "m.json").write_text(json.dumps({"backends": [
                    {"backend": "tensorrt", "runs": [{"size": "720p", "device_ms": {"p50_ms": 4.2}}]}]}))
        return CommandResult(0, "ok")

    def parity(self, engine, reference_onnx, *, fused):
        assert reference_onnx.name.endswith("-standard.onnx")      # always ONNX Runtime on standard ops
        return {"psnr_db": self.psnr.get(engine.stem, 48.0), "max_error": 3.0}


def run_doctor(tmp_path, env, tools) -> tuple[int, list[dict]]:
    args = argparse.Namespace(gpu=True, out=tmp_path / "results", min_psnr=40.0, max_error=16)
    code = run(args, env=env, tools=tools)
    return code, json.loads((tmp_path / "results" / "summary.json").read_text())["steps"]


def test_a_clean_gpu_run_passes_every_step_and_records_numbers(tmp_path):
    tools = FakeTools()
    code, steps = run_doctor(tmp_path, gpu_machine(tmp_path), tools)
    assert code == 0 and {s["status"] for s in steps} == {PASSED}
    bench = [s for s in steps if s["step"] == "deblur bench"]
    assert all(s["numbers"]["p50_ms_720p"] == 4.2 and s["detail"].startswith("p50 4.20 ms at 720p") for s in bench)
    parity = next(s for s in steps if s["step"] == "parity vs ONNX Runtime")
    assert parity["detail"] == "PSNR 48.00 dB (>= 40), max error 3 levels (<= 16)"
    engine = next(s for s in steps if s["step"] == "build FP16 engine" and s["variant"] == "fused")
    assert engine["detail"].startswith("2.5 MB")
    build = [c for c in tools.commands if "engine" in c and "--fused" in c]
    assert len(build) == 2 and all("--fp16" in c and "--shapes" in c for c in build)
    assert tools.commands[0][2:6] == ["pytest", "-q", "-rs", "-m"] and "gpu or trt" in tools.commands[0]


def test_export_without_fused_fails_the_fused_rows_and_exits_1(tmp_path):
    code, steps = run_doctor(tmp_path, gpu_machine(tmp_path, fused=False), FakeTools())
    assert code == 1
    fused = [s for s in steps if s["variant"] == "fused"]
    assert [s["status"] for s in fused if s["step"] == "export onnx"] == [FAILED, FAILED]
    assert "has no --fused option" in fused[0]["detail"]
    assert {s["status"] for s in fused if s["step"] != "export onnx"} == {SKIPPED}
    assert all(s["detail"] == "the ONNX export failed" for s in fused if s["step"] == "build FP16 engine")
    assert {s["status"] for s in steps if s["variant"] == "standard"} == {PASSED}


def test_poor_parity_or_failing_tests_are_real_failures(tmp_path):
    code, steps = run_doctor(tmp_path, gpu_machine(tmp_path), FakeTools(psnr={"rdafnet-small-fused": 31.5}))
    bad = [s for s in steps if s["status"] == FAILED]
    assert code == 1 and [(s["step"], s["model"], s["variant"]) for s in bad] == [
        ("parity vs ONNX Runtime", "rdafnet-small", "fused")]
    assert bad[0]["detail"].startswith("PSNR 31.50 dB (>= 40)")
    code, steps = run_doctor(tmp_path, gpu_machine(tmp_path), FakeTools(fail=("pytest",)))
    assert code == 1 and steps[0]["status"] == FAILED and "boom" in steps[0]["detail"]


def test_gpu_without_tensorrt_skips_the_engines_and_says_why(tmp_path):
    env = gpu_machine(tmp_path)
    env.tensorrt_problem = "TensorRT is not installed (it is not importable here): pip install 'deblur-sdk[trt]'"
    code, steps = run_doctor(tmp_path, env, FakeTools())
    engines = [s for s in steps if s["step"] == "build FP16 engine"]
    assert code == 0 and {s["status"] for s in engines} == {SKIPPED}
    assert engines[0]["detail"] == "TensorRT is not installed (it is not importable here)"
    exports = {s["variant"]: s for s in steps if s["step"] == "export onnx"}
    assert exports["standard"]["status"] == PASSED and exports["fused"]["status"] == SKIPPED


def test_real_tools_log_a_command_and_return_its_status_and_last_lines(tmp_path):
    log = tmp_path / "logs" / "x.log"
    code = "import sdk, sys; print('one'); print('two'); print(sdk.__name__); sys.exit(3)"
    result = RealTools().run([sys.executable, "-c", code], log, None)
    assert result.returncode == 3 and result.tail == "one\ntwo\nsdk"
    assert log.read_text().splitlines()[1:] == ["one", "two", "sdk"]


def test_a_jetson_with_tensorrt_10_3_skips_the_fused_rows_and_passes(tmp_path):
    env = gpu_machine(tmp_path)
    env.versions["tensorrt"] = "10.3.0.30"
    code, steps = run_doctor(tmp_path, env, FakeTools())
    fused = [s for s in steps if s["variant"] == "fused"]
    assert code == 0 and {s["status"] for s in fused} == {SKIPPED} and len(fused) == 8
    assert all(s["detail"].startswith("TensorRT 10.3.0.30 has no tensorrt.plugin") for s in fused)
    assert {s["status"] for s in steps if s["variant"] != "fused"} == {PASSED}

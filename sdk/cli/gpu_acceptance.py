"""The GPU acceptance run behind ``deblur doctor --gpu``: its steps, how they run, and the results folder.

Each step needs things this machine may lack ("gpu", "tensorrt", "plugins", "torch", "checkout"); a
step whose needs are missing is recorded as skipped with the first missing one, a step that builds on
one that did not pass is skipped with that reason, and only a step that ran and went wrong is failed.
Commands run through :class:`Tools`, which tests replace with a fake GPU machine.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MODELS = ("default", "rdafnet-small")         # "default": the bundled model's checkpoint
VARIANTS = ("standard", "fused")
SHAPES = "1x3x64x64:1x3x720x1280:1x3x1088x1920"
PLUGIN_MIN_TENSORRT = (10, 6)                  # tensorrt.plugin, which the fused plugins are written with
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


# --------------------------------------------------------------------------- what the steps need
@dataclass
class Environment:
    """What the acceptance steps need; each ``*_problem`` says why something is missing (None: present)."""

    versions: dict[str, str] = field(default_factory=dict)
    gpu: str | None = None
    gpu_problem: str | None = None
    tensorrt_problem: str | None = None
    torch_problem: str | None = None
    checkout: Path | None = None          # a source checkout (tests/ and benchmarks/ beside sdk/)
    checkout_problem: str | None = None
    export_has_fused: bool = False

    def problem(self, need: str) -> str | None:
        """Why ``need`` ("gpu", "tensorrt", "plugins", "torch", "checkout") is missing, in one short clause;
        None if present."""
        if need == "plugins":
            return self._plugin_problem()
        reason = {"gpu": self.gpu_problem and f"no usable CUDA GPU: {_first_clauses(self.gpu_problem)}",
                  "tensorrt": self.tensorrt_problem and _first_clauses(self.tensorrt_problem, 1),
                  "torch": self.torch_problem and f"exporting needs PyTorch: {self.torch_problem}",
                  "checkout": self.checkout_problem}[need]
        return reason or None

    def _plugin_problem(self) -> str | None:
        version = self.versions.get("tensorrt")
        parts = [int(p) for p in version.split(".")[:2] if p.isdigit()] if version else []
        if len(parts) == 2 and tuple(parts) < PLUGIN_MIN_TENSORRT:
            return (f"TensorRT {version} has no tensorrt.plugin (the fused plugins need >= 10.6; JetPack 6 ships "
                    "10.3): this machine runs the standard-op engine")
        return None


def _first_clauses(message: str, count: int = 2) -> str:
    """``"call failed: what: how to fix"`` -> ``"call failed: what"``: the fix is printed once, at the top."""
    return ": ".join(message.split(": ")[:count])


# --------------------------------------------------------------------------- parity
def frame_parity(out: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """PSNR (dB, 8-bit peak) and the largest per-pixel difference between two uint8 frames."""
    if out.shape != reference.shape:
        raise ValueError(f"frames differ in shape: {out.shape} vs {reference.shape}")
    diff = out.astype(np.float64) - reference.astype(np.float64)
    mse = float(np.mean(diff ** 2))
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
    return {"psnr_db": psnr, "max_error": float(np.abs(diff).max())}


# --------------------------------------------------------------------------- how steps run (tests fake this)
@dataclass
class CommandResult:
    returncode: int
    tail: str            # the last lines of its output, for the summary


class Tools(Protocol):
    def run(self, argv: Sequence[str], log: Path, cwd: Path | None) -> CommandResult: ...
    def parity(self, engine: Path, reference_onnx: Path, *, fused: bool) -> dict[str, float]: ...


class RealTools:
    """Runs commands as subprocesses (output to ``log``) and compares engines on the bundled photo."""

    def run(self, argv: Sequence[str], log: Path, cwd: Path | None) -> CommandResult:
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # `python -m sdk.cli` must find this sdk (and export, kernels beside it) whether installed or checked out.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        with open(log, "w", encoding="utf-8") as f:
            f.write("$ " + " ".join(argv) + "\n")
            f.flush()
            done = subprocess.run(list(argv), stdout=f, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        return CommandResult(done.returncode, "\n".join(lines[-3:]))

    def parity(self, engine: Path, reference_onnx: Path, *, fused: bool) -> dict[str, float]:
        import cv2

        import sdk

        if fused:   # the engine's plugin layers need their creators registered before it deserialises
            from kernels.trt_plugins import register_plugins

            register_plugins()

        photo = Path(sdk.__file__).parent / "data" / "demo_sharp.png"
        frame = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if frame is None:
            raise FileNotFoundError(f"cannot read {photo}")
        with sdk.Deblurrer(reference_onnx, device="cpu") as reference, sdk.Deblurrer(engine, device="cuda") as trt:
            return frame_parity(trt.process(frame), reference.process(frame))


# --------------------------------------------------------------------------- the acceptance run
@dataclass
class Step:
    step: str
    model: str = "-"
    variant: str = "-"
    status: str = SKIPPED
    detail: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sdk.cli", *args]


def _export_source(model: str) -> str:
    if model == "default":
        import sdk

        return str(Path(sdk.__file__).parent / "models" / "default.pt")
    return model


def _bench_p50(folder: Path) -> float | None:
    """The TensorRT p50 latency (ms) from the JSON ``deblur bench`` wrote under ``folder``, if it has one."""
    for path in sorted(folder.rglob("*.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
            for entry in result.get("backends", []):
                for run in entry.get("runs", []):
                    if str(entry.get("backend", "")).startswith("tensorrt") and "device_ms" in run:
                        return float(run["device_ms"]["p50_ms"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return None


class Acceptance:
    """Runs the steps in order; a step whose needs are missing is skipped with the first missing need."""

    def __init__(self, env: Environment, tools: Tools, out: Path, *, min_psnr: float, max_error: int) -> None:
        self.env, self.tools, self.out = env, tools, out
        self.min_psnr, self.max_error = min_psnr, max_error
        self.steps: list[Step] = []

    def _skip_reason(self, needs: Sequence[str]) -> str | None:
        for need in needs:
            reason = self.env.problem(need)
            if reason:
                return reason
        return None

    def _command(self, step: Step, needs: Sequence[str], argv: list[str], log: str,
                 cwd: Path | None = None) -> Step:
        reason = self._skip_reason(needs)
        if reason:
            step.detail = reason
            return self._add(step)
        result = self.tools.run(argv, self.out / "logs" / log, cwd)
        step.status = PASSED if result.returncode == 0 else FAILED
        step.detail = f"log: logs/{log}" + ("" if result.returncode == 0 else
                                            f"; exit {result.returncode}: {result.tail}")
        return self._add(step)

    def _add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def run(self) -> list[Step]:
        self._tests()
        for model in MODELS:
            reference = self._onnx(model, "standard")
            for variant in VARIANTS:
                onnx = reference if variant == "standard" else self._onnx(model, variant)
                engine = self._engine(model, variant, onnx)
                self._parity(model, variant, engine, reference)
                self._bench(model, variant, engine)
        return self.steps

    def _tests(self) -> None:
        step = Step("gpu/trt tests")
        reason = self._skip_reason(("gpu", "checkout"))
        if reason:
            step.detail = reason
            self._add(step)
            return
        assert self.env.checkout is not None
        argv = [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu or trt", "tests",
                f"--junitxml={self.out / 'tests.xml'}"]
        result = self.tools.run(argv, self.out / "logs" / "tests.log", self.env.checkout)
        if result.returncode == 5:
            step.detail = "no gpu/trt tests were collected"
        else:
            step.status = PASSED if result.returncode == 0 else FAILED
            step.detail = f"{result.tail.splitlines()[-1] if result.tail else ''} (log: logs/tests.log)"
        self._add(step)

    def _after(self, step: Step, previous: Step | None, what: str) -> bool:
        """Skip ``step`` when the step it builds on did not pass; True when it may run."""
        if previous is None or previous.status == PASSED:
            return True
        step.detail = previous.detail if previous.status == SKIPPED else f"the {what} failed"
        self._add(step)
        return False

    def _onnx(self, model: str, variant: str) -> Step:
        path = self.out / "onnx" / f"{model}-{variant}.onnx"
        step = Step("export onnx", model, variant, numbers={"path": str(path)})
        argv = _cli("export", _export_source(model), "--to", "onnx", "--fp16", "--out", str(path))
        needs: tuple[str, ...] = ("gpu", "torch")
        if variant == "fused":
            needs = ("gpu", "tensorrt", "plugins", "torch")
            if not self._skip_reason(needs) and not self.env.export_has_fused:
                step.status, step.detail = FAILED, "`deblur export` has no --fused option in this version"
                return self._add(step)
            argv.append("--fused")
        return self._command(step, needs, argv, f"export-onnx-{model}-{variant}.log")

    def _engine(self, model: str, variant: str, onnx: Step) -> Step:
        path = self.out / "engines" / f"{model}-{variant}.engine"
        step = Step("build FP16 engine", model, variant, numbers={"path": str(path)})
        if not self._after(step, onnx, "ONNX export"):
            return step
        argv = _cli("export", onnx.numbers["path"], "--to", "engine", "--fp16", "--shapes", SHAPES, "--out", str(path))
        if variant == "fused":
            argv.append("--fused")
        self._command(step, ("gpu", "tensorrt"), argv, f"build-engine-{model}-{variant}.log")
        if step.status == PASSED and path.is_file():
            step.detail = f"{path.stat().st_size / 1e6:.1f} MB; {step.detail}"
        return step

    def _parity(self, model: str, variant: str, engine: Step, reference: Step) -> None:
        step = Step("parity vs ONNX Runtime", model, variant)
        if not self._after(step, engine, "engine build"):
            return
        try:
            numbers = self.tools.parity(Path(engine.numbers["path"]), Path(reference.numbers["path"]),
                                        fused=variant == "fused")
        except Exception as exc:  # noqa: BLE001 — any failure to run the engine is this step's failure
            step.status, step.detail = FAILED, f"{type(exc).__name__}: {exc}"
            self._add(step)
            return
        step.numbers = numbers
        ok = numbers["psnr_db"] >= self.min_psnr and numbers["max_error"] <= self.max_error
        step.status = PASSED if ok else FAILED
        step.detail = (f"PSNR {numbers['psnr_db']:.2f} dB (>= {self.min_psnr:g}), max error "
                       f"{numbers['max_error']:.0f} levels (<= {self.max_error})")
        self._add(step)

    def _bench(self, model: str, variant: str, engine: Step) -> None:
        folder = self.out / "bench" / f"{model}-{variant}"
        step = Step("deblur bench", model, variant)
        if not self._after(step, engine, "engine build"):
            return
        argv = _cli("bench", engine.numbers["path"], "--backends", "tensorrt", "--res", "720p", "--device", "cuda",
                    "--no-plot", "--out", str(folder))
        self._command(step, ("checkout",), argv, f"bench-{model}-{variant}.log", cwd=self.env.checkout)
        p50 = _bench_p50(folder) if step.status == PASSED else None
        if p50 is not None:
            step.numbers["p50_ms_720p"] = p50
            step.detail = f"p50 {p50:.2f} ms at 720p; {step.detail}"


# --------------------------------------------------------------------------- reports
def summary_table(env: Environment, steps: Sequence[Step]) -> str:
    lines = ["# deblur doctor --gpu", "",
             f"GPU: {env.gpu or 'none (' + (env.gpu_problem or '?') + ')'}",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in env.versions.items()), "",
             "| step | model | variant | status | result |", "|---|---|---|---|---|"]
    for s in steps:
        detail = s.detail.replace("|", "/").replace("\n", " ")
        lines.append(f"| {s.step} | {s.model} | {s.variant} | {s.status} | {detail} |")
    return "\n".join(lines) + "\n"


def write_results(env: Environment, steps: Sequence[Step], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    md = out / "summary.md"
    md.write_text(summary_table(env, steps), encoding="utf-8")
    data = {"gpu": env.gpu, "gpu_problem": env.gpu_problem, "versions": env.versions,
            "steps": [asdict(s) for s in steps]}
    js = out / "summary.json"
    js.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    return [md, js]

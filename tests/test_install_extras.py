"""setup.py's GPU extras: `.[jetson]` can pull no CUDA 13 cuda-python and no TensorRT wheel; `.[trt]`
and `.[trt-cu13]` pair TensorRT and cuda-python of one CUDA major.

Why it matters: cuda-python 13 fails on JetPack 6's CUDA 12 driver, and TensorRT from PyPI is not
JetPack's build (JetPack ships TensorRT 10.3 as python3-libnvinfer). The static checks read setup.py's
own requirements; the slow test asks pip to resolve `.[jetson]` for a Jetson (aarch64, Python 3.10).
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
# cuda-python and its parts (cuda-bindings, cuda-core...) all share CUDA's major version.
CUDA_13_AND_LATER = ["13.0.0", "13.0.0rc1", "13.4.4", "13.9.99", "14.0.0"]


def setup_arguments(monkeypatch) -> dict:
    """The keyword arguments setup.py passes to setuptools.setup, without building anything."""
    import setuptools

    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    monkeypatch.chdir(REPO)
    runpy.run_path(str(REPO / "setup.py"))
    return captured


def jetson_problems(requirements: list[str]) -> list[str]:
    """Why these requirements could pull TensorRT or a CUDA 13 cuda-python (empty when they cannot)."""
    problems = []
    names = set()
    for line in requirements:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        names.add(name)
        if name.startswith("tensorrt"):
            problems.append(f"{line}: a TensorRT wheel from PyPI")
        if name == "deblur-sdk":
            problems.append(f"{line}: pulls other extras")
        if name.startswith("cuda-"):
            allowed = [v for v in CUDA_13_AND_LATER if req.specifier.contains(Version(v), prereleases=True)]
            if allowed:
                problems.append(f"{line}: admits cuda-python {allowed}")
    if "cuda-python" not in names:
        problems.append("no cuda-python: the TensorRT backend needs it for device memory")
    return problems


def test_jetson_extra_cannot_pull_cuda_13_or_tensorrt(monkeypatch):
    args = setup_arguments(monkeypatch)
    requirements = list(args["install_requires"]) + list(args["extras_require"]["jetson"])
    assert jetson_problems(requirements) == []
    cuda = next(Requirement(r) for r in requirements if Requirement(r).name == "cuda-python")
    assert cuda.specifier.contains("12.2.0") and cuda.specifier.contains("12.9.10")   # JetPack 6's CUDA 12


def test_the_check_catches_the_pins_that_broke_jetson():
    assert jetson_problems(["tensorrt>=8.6", "cuda-python>=12"]) == [
        "tensorrt>=8.6: a TensorRT wheel from PyPI",
        "cuda-python>=12: admits cuda-python ['13.0.0', '13.0.0rc1', '13.4.4', '13.9.99', '14.0.0']"]
    assert jetson_problems(["cuda-python<13", "cuda-bindings"])[0].startswith("cuda-bindings: admits")
    assert jetson_problems(["onnx>=1.16"]) == ["no cuda-python: the TensorRT backend needs it for device memory"]


@pytest.mark.parametrize("extra, major", [("trt", 12), ("trt-cu13", 13)])
def test_desktop_extras_pair_tensorrt_and_cuda_python_of_one_cuda_major(monkeypatch, extra, major):
    requirements = [Requirement(r) for r in setup_arguments(monkeypatch)["extras_require"][extra]]
    tensorrt = [r for r in requirements if canonicalize_name(r.name).startswith("tensorrt")]
    cuda = [r for r in requirements if canonicalize_name(r.name) == "cuda-python"]
    assert [canonicalize_name(r.name) for r in tensorrt] == [f"tensorrt-cu{major}"]   # not the floating metapackage
    assert len(cuda) == 1
    spec = cuda[0].specifier
    assert spec.contains(f"{major}.9.0") and not spec.contains(f"{major + 1}.0.0") and not spec.contains(f"{major - 1}.9.0")
    # TensorRT 10.3 (JetPack 6's) up to 11.x: the versions export/tensorrt.py is written for.
    assert not tensorrt[0].specifier.contains("12.0.0") and not tensorrt[0].specifier.contains("8.6.1")


@pytest.mark.slow
def test_pip_resolves_jetson_extra_for_a_jetson_without_tensorrt_or_cuda_13(tmp_path):
    """pip's own resolver, for JetPack 6 (Ubuntu 22.04 aarch64, Python 3.10), metadata only."""
    platforms = [f"--platform={p}" for p in ("manylinux_2_35_aarch64", "manylinux_2_28_aarch64",
                                             "manylinux_2_27_aarch64", "manylinux2014_aarch64")]
    # setup.py with its README and build config alone: pip writes its metadata there, not into the checkout.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "README.md", "pyproject.toml"):
        (source / name).write_bytes((REPO / name).read_bytes())
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
           "--only-binary=:all:", *platforms, "--python-version=3.10", f"--target={tmp_path / 'target'}",
           f"--report={report}", f"{source}[jetson]"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and any(s in result.stderr for s in ("NewConnectionError", "Temporary failure in name "
                                                                   "resolution", "Network is unreachable")):
        pytest.skip("PyPI is not reachable from here")
    assert result.returncode == 0, result.stderr[-2000:]
    installed = {canonicalize_name(i["metadata"]["name"]): Version(i["metadata"]["version"])
                 for i in json.loads(report.read_text())["install"]}
    assert not [n for n in installed if n.startswith("tensorrt")]
    assert installed["cuda-python"].major == 12
    assert all(v.major < 13 for n, v in installed.items() if n.startswith("cuda-") and n != "cuda-pathfinder")

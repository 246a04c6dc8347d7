"""Every TensorRT attribute our code touches exists in the TensorRT releases whose path reaches it.

The names come from an AST scan of ``kernels/``, ``export/`` and ``sdk/backends/`` (no hand list): every
``trt.X.Y`` chain on a ``tensorrt`` / ``tensorrt.plugin`` alias, and every member used on a variable annotated
or constructed as a TensorRT class. The tables (``export/data/trt_api/<version>.json``) were generated from
TensorRT's own binding sources by :mod:`export.trt_api`.

"On a version's path": a use under ``if aot:`` (kernels/trt_plugins.py) counts only where AOT plugins exist,
one under ``if plan.<flag>:`` only on the versions whose :func:`export.tensorrt.plan_build` can set that flag,
one under ``if hasattr(trt, "X")`` only where X exists, and a function called only under such a gate inherits
it. Every other use must exist from the file's minimum TensorRT version on.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from export import trt_api
from export.tensorrt import MIN_VERSION, EngineBuildError, TensorRTVersion, plan_build
from kernels import trt_plugins

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("kernels", "export", "sdk/backends")
Gate = str
Version = tuple[int, int]


def version_of(name: str) -> Version:
    major, minor = name.split(".")
    return int(major), int(minor)


# The first TensorRT each file supports; the rest of the project's TensorRT code starts at MIN_VERSION.
FILE_MIN: dict[str, Version] = {"kernels/trt_plugins.py": trt_plugins.JIT_MIN_VERSION}


@dataclass(frozen=True)
class Use:
    file: str
    line: int
    module: str                 # "trt" (tensorrt) or "trtp" (tensorrt.plugin)
    chain: tuple[str, ...]      # ("BuilderFlag", "FP16") for trt.BuilderFlag.FP16; (Class, member) for typed uses
    typed: bool                 # chain[0] is the class of an annotated/constructed variable
    gates: frozenset[Gate]

    def where(self) -> str:
        return f"{self.file}:{self.line} {self.module}.{'.'.join(self.chain)}"


def _aliases(tree: ast.AST) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "tensorrt":
                    found[alias.asname or "tensorrt"] = "trt"
                elif alias.name == "tensorrt.plugin" and alias.asname:
                    found[alias.asname] = "trtp"
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if (isinstance(func, ast.Name) and func.id == "import_tensorrt") or \
                    (isinstance(func, ast.Attribute) and func.attr == "import_tensorrt"):
                found.update({t.id: "trt" for t in node.targets if isinstance(t, ast.Name)})
    return found


def _chain(node: ast.expr) -> tuple[str, list[str]] | None:
    """``a.b.c`` -> ("a", ["b", "c"])."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    return (node.id, parts) if isinstance(node, ast.Name) else None


def _gate(test: ast.expr, aliases: dict[str, str]) -> Gate | None:
    """The version gate an ``if`` test stands for, or None when it does not depend on the version."""
    if isinstance(test, ast.Name) and test.id == "aot":
        return "aot"
    if isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "plan":
        return f"plan.{test.attr}"
    if (isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "hasattr"
            and isinstance(test.args[0], ast.Name) and test.args[0].id in aliases
            and isinstance(test.args[1], ast.Constant)):
        return f"hasattr.{aliases[test.args[0].id]}.{test.args[1].value}"
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str, aliases: dict[str, str], function_gates: dict[str, frozenset[Gate]]) -> None:
        self.file, self.aliases, self.function_gates = file, aliases, function_gates
        self.gates: list[Gate] = []
        self.typed: dict[str, tuple[str, str]] = {}      # unparsed target -> (module, class)
        self.uses: list[Use] = []
        self.calls: dict[str, list[frozenset[Gate]]] = {}

    def _class_of(self, annotation: ast.expr | None) -> tuple[str, str] | None:
        if annotation is None:
            return None
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            annotation = ast.parse(annotation.value, mode="eval").body
        for node in ast.walk(annotation):
            chain = _chain(node) if isinstance(node, ast.Attribute) else None
            if chain and chain[0] in self.aliases and len(chain[1]) == 1:
                return self.aliases[chain[0]], chain[1][0]
        return None

    def _record(self, node: ast.AST, module: str, chain: list[str], typed: bool) -> None:
        self.uses.append(Use(self.file, getattr(node, "lineno", 0), module, tuple(chain), typed, frozenset(self.gates)))

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        gate = _gate(node.test, self.aliases)
        self.gates += [gate] if gate else []
        for child in node.body:
            self.visit(child)
        if gate:
            self.gates.pop()
        for child in node.orelse:
            self.visit(child)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        inherited = sorted(self.function_gates.get(node.name, frozenset()))
        self.gates += inherited
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            cls = self._class_of(arg.annotation)
            if cls:
                self.typed[arg.arg] = cls
        self.generic_visit(node)
        del self.gates[len(self.gates) - len(inherited):]

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        cls = self._class_of(node.annotation)
        if cls:
            self.typed[ast.unparse(node.target)] = cls
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call):
            chain = _chain(node.value.func)
            if chain and chain[0] in self.aliases and len(chain[1]) == 1:
                for target in node.targets:
                    self.typed[ast.unparse(target)] = (self.aliases[chain[0]], chain[1][0])
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name):
            self.calls.setdefault(node.func.id, []).append(frozenset(self.gates))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = _chain(node)
        if chain and chain[0] in self.aliases:
            self._record(node, self.aliases[chain[0]], chain[1], typed=False)
            return
        owner = ast.unparse(node.value)
        if owner in self.typed:
            module, cls = self.typed[owner]
            self._record(node, module, [cls, node.attr], typed=True)
        self.generic_visit(node)


def scan(path: Path) -> list[Use]:
    """Two passes: the first learns which gates every call of a local function sits under."""
    tree = ast.parse(path.read_text())
    file = path.relative_to(REPO).as_posix()
    aliases = _aliases(tree)
    if not aliases:
        return []
    first = _Scanner(file, aliases, {})
    first.visit(tree)
    function_gates = {name: frozenset.intersection(*sites) for name, sites in first.calls.items() if sites}
    second = _Scanner(file, aliases, function_gates)
    second.visit(tree)
    return second.uses


def all_uses() -> list[Use]:
    return [use for folder in SCANNED for path in sorted((REPO / folder).rglob("*.py")) for use in scan(path)]


# --------------------------------------------------------------------------- what a version's path reaches
PLAN_FIELDS = {f.name for f in dataclasses.fields(plan_build(TensorRTVersion(10, 3), "fp32"))}


def _plan_can_set(field: str, version: Version) -> bool:
    assert field in PLAN_FIELDS, f"plan.{field} is not a BuildPlan field"
    for precision in ("fp32", "fp16", "int8"):
        for pins in ((), ("a",)):
            try:
                if getattr(plan_build(TensorRTVersion(*version), precision, pins), field):
                    return True
            except EngineBuildError:
                continue        # int8 on 11.x: refused before any TensorRT call
    return False


def gate_open(gate: Gate, version: Version, table: dict[str, Any]) -> bool:
    if gate == "aot":
        # register_plugins passes aot only from AOT_MIN_VERSION on; tensorrt.plugin's IS_AOT_ENABLED
        # is hasattr(trt, "QuickPluginCreationRequest").
        return version >= trt_plugins.AOT_MIN_VERSION and "QuickPluginCreationRequest" in table["module"]
    if gate.startswith("plan."):
        return _plan_can_set(gate[len("plan."):], version)
    if gate.startswith("hasattr."):
        _, module, name = gate.split(".", 2)
        return name in (table["module"] if module == "trt" else table["plugin"])
    raise AssertionError(f"unknown gate {gate}")


def missing(use: Use, table: dict[str, Any]) -> str | None:
    """What of ``use`` the table lacks, or None when all of it exists. Dunder members (``__init__``)
    exist on every Python class."""
    if use.typed and use.chain[1].startswith("__") and use.chain[1].endswith("__"):
        return None
    if use.module == "trtp":
        head, *rest = use.chain
        if use.typed:
            return None if rest[0] in trt_api.members(table, head, "plugin_classes") else f"{head}.{rest[0]}"
        kind = table["plugin"].get(head)
        # "aot" names exist only where tensorrt.plugin's IS_AOT_ENABLED (TensorRT's core has QuickPluginCreationRequest).
        if kind is None or (kind == "aot" and "QuickPluginCreationRequest" not in table["module"]):
            return head
        return None
    if use.typed:
        cls, member = use.chain
        return None if member in trt_api.members(table, cls) else f"{cls}.{member}"
    head, *rest = use.chain
    if head not in table["module"]:
        return head
    owner = head
    for name in rest:
        if name.startswith("__") and name.endswith("__"):
            break
        if name not in trt_api.members(table, owner):
            return f"{owner}.{name}"
        owner = name                       # nested enums (ILogger.Severity.WARNING) are classes of their own
        if owner not in table["classes"]:
            break
    return None


def versions_reaching(use: Use) -> Iterator[tuple[str, dict[str, Any]]]:
    start = FILE_MIN.get(use.file, MIN_VERSION)
    for name in trt_api.VERSIONS:
        version, table = version_of(name), trt_api.load(name)
        if version >= start and all(gate_open(g, version, table) for g in use.gates):
            yield name, table


def problems(uses: list[Use]) -> list[str]:
    found = []
    for use in uses:
        for name, table in versions_reaching(use):
            lacks = missing(use, table)
            if lacks is not None:
                found.append(f"{use.where()}: TensorRT {name} has no {lacks}")
    return found


# --------------------------------------------------------------------------- the tests
def test_the_tables_hold_what_tensorrt_documents_for_each_release():
    # Facts read in NvInfer.h and tensorrt/plugin of each release branch, so a broken generator shows here.
    t86, t103, t106, t109, t1012, t111 = (trt_api.load(v) for v in ("8.6", "10.3", "10.6", "10.9", "10.12", "11.1"))
    assert "STRONGLY_TYPED" not in trt_api.members(t86, "NetworkDefinitionCreationFlag")
    assert {"EXPLICIT_BATCH", "STRONGLY_TYPED"} <= trt_api.members(t103, "NetworkDefinitionCreationFlag")
    assert "FP16" in trt_api.members(t1012, "BuilderFlag") and "FP16" not in trt_api.members(t111, "BuilderFlag")
    assert "precision" in trt_api.members(t1012, "IConvolutionLayer") and "precision" not in trt_api.members(t111, "ILayer")
    assert "WARNING" in trt_api.members(t86, "Logger")                    # added by tensorrt/__init__.py
    assert t86["plugin"] == {} and t103["plugin"] == {}                      # no tensorrt.plugin before 10.6
    assert "KernelLaunchParams" not in t106["plugin"] and "SymIntExprs" not in t106["plugin"]
    assert (t109["plugin"]["KernelLaunchParams"], t109["plugin"]["aot_impl"]) == ("aot", "always")
    assert "like" in trt_api.members(t106, "TensorDesc", "plugin_classes")


def test_the_scan_finds_the_tensorrt_calls_of_every_scanned_package():
    uses = all_uses()
    names = {(u.file, u.module, u.chain) for u in uses}
    assert ("export/tensorrt.py", "trt", ("BuilderFlag", "FP16")) in names
    assert ("kernels/trt_plugins.py", "trtp", ("KernelLaunchParams",)) in names
    assert ("sdk/backends/tensorrt.py", "trt", ("ICudaEngine", "get_tensor_mode")) in names     # a typed member
    fp16 = next(u for u in uses if u.chain == ("BuilderFlag", "FP16"))
    assert fp16.gates == {"plan.fp16_flag"}
    launch = next(u for u in uses if u.chain == ("KernelLaunchParams",))
    assert "aot" in launch.gates                    # inherited: the helper is defined and called under `if aot`


def test_every_tensorrt_attribute_we_use_exists_on_every_release_whose_path_reaches_it():
    uses = all_uses()
    assert len(uses) > 50
    assert problems(uses) == []


def test_the_check_catches_an_ungated_aot_name_and_a_removed_weak_typing_call():
    # What defect 1 was: KernelLaunchParams used unconditionally in a file that supports 10.6.
    ungated = Use("kernels/trt_plugins.py", 1, "trtp", ("KernelLaunchParams",), False, frozenset())
    assert problems([ungated]) == ["kernels/trt_plugins.py:1 trtp.KernelLaunchParams: TensorRT 10.6 has no "
                                   "KernelLaunchParams", "kernels/trt_plugins.py:1 trtp.KernelLaunchParams: "
                                   "TensorRT 10.8 has no KernelLaunchParams"]
    # BuilderFlag.FP16 without the plan gate would reach TensorRT 11.1, which removed it.
    weak = Use("export/tensorrt.py", 2, "trt", ("BuilderFlag", "FP16"), False, frozenset())
    assert problems([weak]) == ["export/tensorrt.py:2 trt.BuilderFlag.FP16: TensorRT 11.1 has no BuilderFlag.FP16"]
    assert problems([dataclasses.replace(weak, gates=frozenset({"plan.fp16_flag"}))]) == []
    # A member used on an annotated variable: ILayer.precision is gone in 11.x.
    precision = Use("export/tensorrt.py", 3, "trt", ("ILayer", "precision"), True, frozenset())
    assert problems([precision]) == ["export/tensorrt.py:3 trt.ILayer.precision: TensorRT 11.1 has no ILayer.precision"]
    assert ("export/tensorrt.py", "trt", ("ILayer", "precision")) in {(u.file, u.module, u.chain) for u in all_uses()}


@pytest.mark.parametrize("gate, open_on", [
    ("plan.explicit_batch_flag", ["8.6"]),
    ("plan.strongly_typed_flag", ["10.12", "10.16"]),
    ("plan.fp16_flag", ["8.6", "10.3", "10.6", "10.8", "10.9", "10.12", "10.16"]),   # 10.12+: only int8 still sets it
    ("aot", ["10.9", "10.12", "10.16", "11.1"]),
])
def test_gates_open_on_the_versions_the_code_takes_them(gate: str, open_on: list[str]) -> None:
    assert [v for v in trt_api.VERSIONS if gate_open(gate, version_of(v), trt_api.load(v))] == open_on


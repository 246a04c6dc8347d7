"""The TensorRT Python API per release, read from TensorRT's own binding sources, as data.

Nothing here imports TensorRT: the tables in ``export/data/trt_api/<version>.json`` were generated from
a checkout of NVIDIA's public TensorRT repository (``python/src/**/*.cpp``: the pybind11 bindings, the
wheel's ``tensorrt/__init__.py`` and the pure-Python ``tensorrt/plugin`` package) and are what
``tests/export/test_trt_api.py`` holds our code to: every ``tensorrt``/``tensorrt.plugin`` attribute
that ``kernels/``, ``export/`` and ``sdk/backends/`` use on a version's path must exist in that
version's table. TensorRT's own files are never committed, only the names.

Regenerate (one release branch per call)::

    git -C TensorRT checkout release/10.12
    python -m export.trt_api TensorRT 10.12        # writes export/data/trt_api/10.12.json

Table format: ``{"version", "source", "module": [names], "classes": {name: {"bases": [...], "members":
[...]}}, "plugin": {name: "always" | "aot"}, "plugin_classes": {name: {"bases", "members"}}}``. ``plugin`` lists ``tensorrt.plugin``'s public names;
``"aot"`` marks those that exist only when TensorRT's core has AOT support
(``IS_AOT_ENABLED = hasattr(trt, "QuickPluginCreationRequest")`` in ``plugin/_export.py``).
Limits: names behind ``#if`` in the bindings are all included (the full ``tensorrt`` wheel, which
builds with ``EXPORT_ALL_BINDINGS``), and only names are recorded, not signatures.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

TABLE_DIR = Path(__file__).resolve().parent / "data" / "trt_api"
VERSIONS = ("8.6", "10.3", "10.6", "10.8", "10.9", "10.12", "10.16", "11.1")

_CLASS_START = re.compile(r"py::(?:class_|enum_)<")
_CLASS_NAME = re.compile(r"\s*(\w+)?\s*[({]\s*(\w+)\s*,\s*\"(\w+)\"")
_MEMBER = re.compile(r"\.(?:def|def_static|def_property|def_property_readonly|def_readwrite|def_readonly|"
                     r"def_property_static|def_property_readonly_static|value)\s*\(\s*\"(\w+)\"")
_MODULE = re.compile(r"\bm\.(?:def|attr)\s*\(\s*\"(\w+)\"")
_VAR_USE = re.compile(r"^\s*(\w+)\s*\.\s*(?:def|value)")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _statements(text: str) -> list[str]:
    """C++ statements split on ``;`` outside parentheses (lambda bodies stay inside their ``.def(...)``);
    braces are not counted, so namespace and function bodies do not hide their statements."""
    out, depth, start, quote, i = [], 0, 0, "", 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == ";" and depth <= 0:
            out.append(text[start:i])
            start = i + 1
            depth = 0
        i += 1
    return out


def _declaration(statement: str) -> tuple[str, str, str | None, str, str, int] | None:
    """``py::class_<Cpp, Base, Holder> var{m, "Name"`` -> (Cpp, "Base, Holder", var, m, Name, end)."""
    start = _CLASS_START.search(statement)
    if start is None:
        return None
    depth, i = 1, start.end()
    while depth and i < len(statement):
        depth += {"<": 1, ">": -1}.get(statement[i], 0)
        i += 1
    args = statement[start.end():i - 1]
    named = _CLASS_NAME.match(statement, i)
    if named is None:
        return None
    # Top-level template arguments only: "A, B, std::unique_ptr<A, py::nodelete>" -> A, B, std::unique_ptr<..>
    parts, depth, current = [], 0, ""
    for c in args:
        if c == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += {"<": 1, ">": -1}.get(c, 0)
        current += c
    parts.append(current.strip())
    return parts[0], ", ".join(parts[1:]), named.group(1), named.group(2), named.group(3), named.end()


def read_bindings(source: Path) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """Module-level names and classes (Python name -> bases as C++ types, members) of ``python/src``."""
    module: set[str] = set()
    classes: dict[str, dict[str, Any]] = {}
    cpp_to_py: dict[str, str] = {}
    variables: dict[str, str] = {}
    for path in sorted((source / "python" / "src").rglob("*.cpp")):
        for statement in _statements(_strip_comments(path.read_text(errors="replace"))):
            current = None
            declared = _declaration(statement)
            if declared:
                cpp, rest, var, scope, name, end = declared
                current = name
                cpp_to_py[cpp.split("::")[-1]] = name
                bases = [b.strip().split("::")[-1] for b in rest.strip(", ").split(",")
                         if b.strip() and "<" not in b and "py::" not in b and not b.strip().startswith("std")]
                entry = classes.setdefault(name, {"bases": [], "members": set()})
                entry["bases"] = sorted(set(entry["bases"]) | set(bases))
                if var:
                    variables[var] = name
                if scope == "m":
                    module.add(name)
                elif scope in variables:       # a nested enum such as Logger.Severity
                    classes[variables[scope]]["members"].add(name)
                body = statement[end:]
            else:
                used = _VAR_USE.match(statement)
                if used and used.group(1) in variables:
                    current = variables[used.group(1)]
                body = statement
            if current is not None:
                classes[current]["members"].update(_MEMBER.findall(body))
            module.update(_MODULE.findall(statement))
    for entry in classes.values():
        entry["bases"] = sorted(cpp_to_py.get(b, b) for b in entry["bases"] if cpp_to_py.get(b, b) in classes)
    return module, classes


def read_wheel_init(source: Path, module: set[str], classes: dict[str, dict[str, Any]]) -> None:
    """What ``tensorrt/__init__.py`` adds in Python: functions, ``Class.attr = ...``, Logger's severities."""
    init = source / "python" / "packaging" / "bindings_wheel" / "tensorrt" / "__init__.py"
    if not init.is_file():
        init = source / "python" / "packaging" / "tensorrt" / "__init__.py"     # 8.6's layout
    text = init.read_text()
    text = text.replace("##TENSORRT_MODULE##", "tensorrt")
    tree = ast.parse(re.sub(r"##\w+##", "False", text))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node in tree.body:
            module.add(node.name)
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and node in tree.body:
                    module.add(target.id)
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id in classes):
                    classes[target.value.id]["members"].add(target.attr)
    if "setattr(Logger, attr, value)" in text and "ILogger" in classes:
        severity = classes.get("Severity", {}).get("members", set())
        classes.setdefault("Logger", {"bases": [], "members": set()})["members"].update(severity | {"Severity"})


def _class_members(node: ast.ClassDef) -> dict[str, Any]:
    """Methods, properties, class attributes and ``self.x = ...`` attributes of a pure-Python class."""
    found: set[str] = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.add(item.name)
            for sub in ast.walk(item):
                if (isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store)
                        and isinstance(sub.value, ast.Name) and sub.value.id == "self"):
                    found.add(sub.attr)
        elif isinstance(item, (ast.Assign, ast.AnnAssign)):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            found.update(t.id for t in targets if isinstance(t, ast.Name))
    bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
    return {"bases": bases, "members": sorted(found)}


def read_plugin_package(source: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """``tensorrt.plugin``'s public names (``@public_api()`` or ``__all__``) and whether AOT-only, and the
    members of every class the package defines."""
    package = source / "python" / "packaging" / "bindings_wheel" / "tensorrt" / "plugin"
    names: dict[str, str] = {}
    classes: dict[str, dict[str, Any]] = {}
    if not package.is_dir():
        return names, classes

    def visit(body: list[ast.stmt], gate: str) -> None:
        for node in body:
            if isinstance(node, ast.If):
                test = ast.unparse(node.test)
                visit(node.body, "aot" if "IS_AOT_ENABLED" in test else gate)
                visit(node.orelse, gate)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                if any("public_api" in ast.unparse(d) for d in node.decorator_list):
                    names[node.name] = gate
                if isinstance(node, ast.ClassDef):
                    classes[node.name] = _class_members(node)
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                       for t in node.targets):
                for elt in getattr(node.value, "elts", []):
                    if isinstance(elt, ast.Constant):
                        names.setdefault(str(elt.value), gate)

    for path in sorted(package.glob("*.py")):
        visit(ast.parse(path.read_text()).body, "always")
    return names, classes


def generate(source: Path, version: str) -> dict[str, Any]:
    module, classes = read_bindings(source)
    read_wheel_init(source, module, classes)
    plugin, plugin_classes = read_plugin_package(source)
    return {"version": version,
            "source": f"NVIDIA/TensorRT release/{version}: python/src/**/*.cpp, python/packaging (names only)",
            "module": sorted(module),
            "classes": {n: {"bases": c["bases"], "members": sorted(c["members"])} for n, c in sorted(classes.items())},
            "plugin": dict(sorted(plugin.items())),
            "plugin_classes": dict(sorted(plugin_classes.items()))}


@cache
def load(version: str) -> dict[str, Any]:
    """The committed table of one TensorRT version (see :data:`VERSIONS`)."""
    with open(TABLE_DIR / f"{version}.json", encoding="utf-8") as f:
        table: dict[str, Any] = json.load(f)
    return table


def members(table: dict[str, Any], cls: str, kind: str = "classes") -> set[str]:
    """Members of ``cls`` including those of its bases (pybind11 or Python inheritance); ``kind``:
    ``"classes"`` for ``tensorrt``'s bindings, ``"plugin_classes"`` for ``tensorrt.plugin``."""
    entry = table[kind].get(cls)
    if entry is None:
        return set()
    found = set(entry["members"])
    for base in entry["bases"]:
        if base != cls:
            found |= members(table, base, kind)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write export/data/trt_api/<version>.json from a TensorRT checkout")
    parser.add_argument("source", type=Path, help="TensorRT repository checkout (or a copy of its python/ folder)")
    parser.add_argument("version", help="the release it is, e.g. 10.12")
    args = parser.parse_args(argv)
    TABLE_DIR.mkdir(parents=True, exist_ok=True)
    table = generate(args.source, args.version)
    (TABLE_DIR / f"{args.version}.json").write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")
    print(f"{args.version}: {len(table['module'])} module names, {len(table['classes'])} classes, "
          f"{len(table['plugin'])} tensorrt.plugin names")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

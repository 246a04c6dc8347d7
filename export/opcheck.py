"""Static TensorRT compatibility check: is every node of an ONNX graph one the TensorRT parser imports?

The operator lists live in ``export/data/trt_onnx_ops.json``, transcribed from onnx-tensorrt's
``docs/operators.md`` with the source commit recorded there. Checking before a build turns an
opaque parser failure on the device into a list of node names on the workstation.

Example::

    >>> report = check_tensorrt_compatibility("rdafnet-nano.onnx")
    >>> print(report.format())
    TensorRT compatibility (8.6, 10.3, 10.16, 11.1): OK, 218 nodes, 12 op types, opset 17
    >>> report.raise_if_unsupported()          # UnsupportedOpsError listing the nodes, when there are any

A graph with custom-domain nodes passes only for the ops declared in ``plugins`` (what the builder
registers before parsing, e.g. :func:`deblur_plugin_ops`) and only on versions those plugins run on.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import onnx

OPS_FILE = Path(__file__).resolve().parent / "data" / "trt_onnx_ops.json"
DEFAULT_TARGETS = ("8.6", "10.3", "10.16", "11.1")
# Domains whose ops the parser imports natively; anything else needs a plugin.
ONNX_DOMAINS = ("", "ai.onnx")


class UnsupportedOpsError(RuntimeError):
    """An ONNX graph holds ops the target TensorRT versions cannot import."""


@dataclass(frozen=True)
class PluginOp:
    """A custom-domain op that the builder registers as a TensorRT plugin before parsing."""

    domain: str
    op_type: str
    min_version: tuple[int, int]                  # first TensorRT whose ONNX parser finds this plugin
    aot_min_version: tuple[int, int] | None = None   # None: no ahead-of-time implementation


def deblur_plugin_ops() -> tuple[PluginOp, ...]:
    """The ``deblur`` nodes of :func:`kernels.onnx_ops.fused_op_export`, as :mod:`kernels.trt_plugins` registers them."""
    from kernels import trt_plugins as plugins

    return tuple(PluginOp(plugins.NAMESPACE, name, plugins.JIT_MIN_VERSION,
                          plugins.AOT_MIN_VERSION if name in plugins.AOT_PLUGINS else None)
                 for name in plugins.PLUGINS)


def target_version(target: str) -> tuple[int, int]:
    """``"10.16"`` -> ``(10, 16)``: the release a target of the operator table stands for."""
    major, minor = target.split(".")[:2]
    return int(major), int(minor)


@dataclass(frozen=True)
class OpIssue:
    node: str
    op_type: str
    domain: str
    target: str
    reason: str
    fatal: bool = True

    def format(self) -> str:
        where = f"{self.domain}::{self.op_type}" if self.domain not in ONNX_DOMAINS else self.op_type
        return f"[{self.target}] node {self.node!r} ({where}): {self.reason}"


@dataclass
class CompatibilityReport:
    targets: tuple[str, ...]
    opset: int
    node_count: int
    op_counts: dict[str, int]
    issues: list[OpIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.fatal for i in self.issues)

    @property
    def unsupported_nodes(self) -> list[str]:
        return sorted({i.node for i in self.issues if i.fatal})

    def format(self) -> str:
        status = "OK" if self.ok else f"{len(self.unsupported_nodes)} unsupported node(s)"
        lines = [f"TensorRT compatibility ({', '.join(self.targets)}): {status}, {self.node_count} nodes, "
                 f"{len(self.op_counts)} op types, opset {self.opset}"]
        lines += ["  " + i.format() + ("" if i.fatal else " (warning)") for i in self.issues]
        return "\n".join(lines)

    def raise_if_unsupported(self) -> None:
        if not self.ok:
            raise UnsupportedOpsError(self.format())


@lru_cache(maxsize=1)
def _load_table() -> dict[str, Any]:
    with open(OPS_FILE, encoding="utf-8") as f:
        table: dict[str, Any] = json.load(f)
    return table


def known_targets() -> tuple[str, ...]:
    return tuple(_load_table()["versions"])


def supported_ops(target: str) -> frozenset[str]:
    """The ONNX op types TensorRT ``target`` (e.g. ``"8.6"``, ``"10.3"``) imports natively."""
    return frozenset(_target(target)["ops"])


def _target(target: str) -> dict[str, Any]:
    versions: dict[str, Any] = _load_table()["versions"]
    if target not in versions:
        raise ValueError(f"unknown TensorRT target {target!r}; known: {', '.join(versions)}")
    return dict(versions[target])


def _walk_nodes(graph: onnx.GraphProto, prefix: str = "") -> Iterator[tuple[str, onnx.NodeProto]]:
    """Every node, including those inside If/Loop/Scan bodies, with a path-qualified name."""
    for index, node in enumerate(graph.node):
        name = prefix + (node.name or f"<unnamed {node.op_type} #{index}>")
        yield name, node
        for attr in node.attribute:
            subgraphs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
            for sub in subgraphs:
                yield from _walk_nodes(sub, prefix=f"{name}/{attr.name}/")


def _default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ONNX_DOMAINS:
            return int(entry.version)
    raise ValueError("ONNX model declares no default-domain opset")


def _plugin_issue(node: onnx.NodeProto, plugin: PluginOp | None, target: str) -> str | None:
    """Why a custom-domain node cannot be parsed by TensorRT ``target``, or None when it can."""
    if plugin is None:
        return "custom-domain op: TensorRT needs a plugin registered under this name"
    version = target_version(target)
    if version < plugin.min_version:
        return (f"plugin op: needs TensorRT >= {'.'.join(map(str, plugin.min_version))} (tensorrt.plugin); "
                f"export without --fused for TensorRT {target}")
    aot = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "aot"), 0)
    if not aot:
        return None
    if plugin.aot_min_version is None:
        return "aot=1 but this plugin has no ahead-of-time implementation; TensorRT refuses to parse it"
    if version < plugin.aot_min_version:
        return (f"aot=1 needs TensorRT >= {'.'.join(map(str, plugin.aot_min_version))}; "
                f"export with --jit for TensorRT {target}")
    return None


def check_tensorrt_compatibility(model: onnx.ModelProto | str | os.PathLike[str],
                                 targets: Sequence[str] = DEFAULT_TARGETS,
                                 plugins: Sequence[PluginOp] = ()) -> CompatibilityReport:
    """Report every node whose op the TensorRT ONNX parser of each target cannot import natively,
    and an opset outside a target's range. Ops added within a release line (``added_in``) are warnings.
    Custom-domain nodes pass where ``plugins`` declares them and the target runs those plugins."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(model), load_external_data=False)
    opset = _default_opset(model)
    nodes = list(_walk_nodes(model.graph))
    report = CompatibilityReport(targets=tuple(targets), opset=opset, node_count=len(nodes),
                                 op_counts=dict(Counter(n.op_type for _, n in nodes)))
    declared = {(p.domain, p.op_type): p for p in plugins}
    for target in targets:
        spec = _target(target)
        ops, added_in = frozenset(spec["ops"]), dict(spec.get("added_in", {}))
        if not spec["opset_min"] <= opset <= spec["opset_max"]:
            report.issues.append(OpIssue("<model>", "opset", "", target,
                                         f"opset {opset} is outside the {spec['opset_min']}..{spec['opset_max']} "
                                         f"range TensorRT {target} parses; re-export with an opset in range"))
        for name, node in nodes:
            if node.domain not in ONNX_DOMAINS:
                reason = _plugin_issue(node, declared.get((node.domain, node.op_type)), target)
                if reason is not None:
                    report.issues.append(OpIssue(name, node.op_type, node.domain, target, reason))
            elif node.op_type not in ops:
                report.issues.append(OpIssue(name, node.op_type, node.domain, target,
                                             "not supported by the TensorRT ONNX parser"))
            elif node.op_type in added_in:
                report.issues.append(OpIssue(name, node.op_type, node.domain, target,
                                             f"only in TensorRT >= {added_in[node.op_type]}", fatal=False))
    return report

"""The manifest: one small JSON document that travels with every model artefact.

A checkpoint, an ONNX file (in ``metadata_props`` under :data:`ONNX_METADATA_KEY`) and a TensorRT
engine (in a ``model.engine.json`` sidecar) all carry the same document, so the runtime never guesses
a value range, a colour order or a pad multiple.

This module imports nothing beyond the standard library; reading a manifest out of an ONNX file
imports ``onnx`` (or, in a runtime-only install, ``onnxruntime``) only when asked to.

Example::

    >>> from sdk.manifest import Manifest
    >>> m = Manifest(architecture="rdafnet", variant="rdafnet-nano", value_range=(-1.0, 1.0), pad_multiple=2)
    >>> Manifest.from_json(m.to_json()) == m
    True
    >>> ShapeProfile.parse("1x3x256x256:1x3x720x1280:1x3x1088x1920").opt
    (1, 720, 1280)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
ONNX_METADATA_KEY = "deblur_manifest"
SIDECAR_SUFFIX = ".json"

LAYOUTS = ("NCHW",)
COLOR_ORDERS = ("RGB", "BGR")
# "input": the network adds its input itself (RDAFNet, BAG, MSAN as exported): output is the image.
# "none": the network predicts the image directly. "add": the runtime must add the input.
RESIDUALS = ("input", "none", "add")
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "mixed")
# Where an engine's deblur::* plugin layers get their code (sdk.plugin_library): the C++ library or
# the Python plugins of kernels.trt_plugins.
PLUGIN_FLAVOURS = ("cpp", "python")

# Toolchain entries the export path records (all strings). Other keys are allowed and kept.
TOOLCHAIN_KEYS = {
    "torch": "PyTorch version that traced the network",
    "onnx": "onnx package version that wrote the graph",
    "opset": "ONNX default-domain opset of the graph",
    "onnxruntime": "ONNX Runtime version the export was verified with",
    "tensorrt": "TensorRT version that built the engine",
    "compute_capability": "GPU compute capability the engine was built for, e.g. '8.7'",
    "gpu": "GPU name the engine was built on",
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMPUTE_CAPABILITY = re.compile(r"^\d+\.\d+$")


class ManifestError(ValueError):
    """A manifest is missing, unreadable, of an unknown schema, or has an invalid field."""


@dataclass(frozen=True)
class ShapeProfile:
    """Smallest, typical and largest input ``(batch, height, width)`` an artefact accepts."""

    min: tuple[int, int, int] = (1, 16, 16)
    opt: tuple[int, int, int] = (1, 720, 1280)
    max: tuple[int, int, int] = (1, 1088, 1920)

    def validate(self) -> None:
        for name in ("min", "opt", "max"):
            dims = getattr(self, name)
            if (not isinstance(dims, tuple) or len(dims) != 3
                    or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims)):
                raise ManifestError(f"shape_profile.{name} must be three positive ints (batch, H, W), got {dims!r}")
        for i, axis in enumerate(("batch", "height", "width")):
            if not self.min[i] <= self.opt[i] <= self.max[i]:
                raise ManifestError(
                    f"shape_profile {axis}: need min <= opt <= max, got {self.min[i]}, {self.opt[i]}, {self.max[i]}"
                )

    @classmethod
    def parse(cls, spec: str, *, channels: int = 3) -> ShapeProfile:
        """Read ``MIN:OPT:MAX`` with each shape ``NxCxHxW`` (trtexec's notation), checking C == ``channels``.

        Example::

            >>> ShapeProfile.parse("1x3x256x256:1x3x720x1280:1x3x1088x1920").max
            (1, 1088, 1920)
        """
        parts = spec.strip().split(":")
        if len(parts) != 3:
            raise ManifestError(
                f"shape profile {spec!r}: expected MIN:OPT:MAX, e.g. 1x3x256x256:1x3x720x1280:1x3x1088x1920"
            )
        dims: list[tuple[int, int, int]] = []
        for label, part in zip(("MIN", "OPT", "MAX"), parts):
            fields = part.strip().lower().split("x")
            if len(fields) != 4 or not all(f.isdigit() for f in fields):
                raise ManifestError(f"shape profile {spec!r}: {label} {part!r} is not of the form NxCxHxW, e.g. 1x3x720x1280")
            n, c, h, w = (int(f) for f in fields)
            if c != channels:
                raise ManifestError(f"shape profile {spec!r}: {label} has {c} channels, the model takes {channels}")
            dims.append((n, h, w))
        profile = cls(min=dims[0], opt=dims[1], max=dims[2])
        profile.validate()
        return profile

    def to_spec(self, *, channels: int = 3) -> str:
        """The inverse of :meth:`parse`: ``"1x3x256x256:1x3x720x1280:1x3x1088x1920"``."""
        return ":".join(f"{n}x{channels}x{h}x{w}" for n, h, w in (self.min, self.opt, self.max))


@dataclass(frozen=True)
class Manifest:
    """What the runtime must know to feed a model and read its answer.

    ``value_range`` is the range the network's input and output live in (RDAFNet and BAG use
    (-1, 1), MSAN (-0.5, 0.5)); ``pad_multiple`` the size multiple H and W must have.
    ``receptive_field`` is the *effective* radius: how many pixels on each side of an output pixel can
    change it by half an 8-bit grey level or more, whatever lies beyond (``None``: unknown). It is
    measured on trained weights (``benchmarks/receptive_field.py``), not the theoretical support, which
    is far larger (rdafnet-nano after 5,000 steps: 31 px effective, 73 px support). ``tile_exact`` says whether the
    network is local (True: tiles overlapping by enough of
    the receptive field equal the whole frame), uses per-image statistics such as InstanceNorm or
    global pooling (False: every tile is normalised by its own content, so tiles can never equal the
    whole frame), or unknown (None); :class:`sdk.Deblurrer` picks its tile overlap from them.
    ``fp32_layers`` names the graph nodes (ONNX node names, which TensorRT uses as layer names) that
    must stay in float32 in a float16 engine; ``checkpoint_sha256`` is the SHA-256 of the checkpoint
    file the artefact came from, ``onnx_sha256`` that of the ONNX file an engine was built from.
    ``plugins`` names the TensorRT plugins an engine needs (``"deblur::self_attention"``) and
    ``plugin_flavour`` which implementation it was built with (``"cpp"`` or ``"python"``).
    """

    architecture: str
    variant: str
    value_range: tuple[float, float]
    pad_multiple: int
    input_name: str = "input"
    output_name: str = "output"
    layout: str = "NCHW"
    color_order: str = "RGB"
    residual: str = "input"
    final_output: str = "output"
    in_channels: int = 3
    shape_profile: ShapeProfile | None = None
    precision: str = "fp32"
    fp32_layers: tuple[str, ...] = ()
    checkpoint_sha256: str | None = None
    onnx_sha256: str | None = None
    toolchain: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    plugins: tuple[str, ...] = ()
    plugin_flavour: str | None = None
    schema_version: int = SCHEMA_VERSION
    receptive_field: int | None = None
    tile_exact: bool | None = None

    def __post_init__(self) -> None:
        # JSON gives lists; normalise so that equality and hashing behave.
        if not isinstance(self.value_range, (list, tuple)):
            raise ManifestError(f"manifest value_range must be (low, high), got {self.value_range!r}")
        object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))
        if isinstance(self.fp32_layers, str) or not isinstance(self.fp32_layers, (list, tuple)):
            raise ManifestError(f"manifest fp32_layers must be a list of layer names, got {self.fp32_layers!r}")
        object.__setattr__(self, "fp32_layers", tuple(self.fp32_layers))
        if isinstance(self.plugins, str) or not isinstance(self.plugins, (list, tuple)):
            raise ManifestError(f"manifest plugins must be a list of plugin names, got {self.plugins!r}")
        object.__setattr__(self, "plugins", tuple(self.plugins))
        if isinstance(self.shape_profile, dict):
            unknown = sorted(set(self.shape_profile) - {"min", "opt", "max"})
            if unknown:
                raise ManifestError(f"manifest shape_profile has unknown keys {unknown}; expected min, opt, max")
            try:
                dims = {k: tuple(v) for k, v in self.shape_profile.items()}
            except TypeError:
                raise ManifestError(f"manifest shape_profile entries must be [batch, H, W], got {self.shape_profile!r}") from None
            object.__setattr__(self, "shape_profile", ShapeProfile(**dims))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ManifestError(
                f"manifest schema_version {self.schema_version} is not supported (this SDK reads {SCHEMA_VERSION}); "
                "re-export the model with this SDK's `deblur export`"
            )
        for name in ("architecture", "variant", "input_name", "output_name", "final_output"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ManifestError(f"manifest field {name!r} must be a non-empty string, got {value!r}")
        lo, hi = self.value_range if len(self.value_range) == 2 else (None, None)
        if lo is None or hi is None or not lo < hi:
            raise ManifestError(f"manifest value_range must be (low, high) with low < high, got {self.value_range!r}")
        for name, allowed_ints in (("pad_multiple", None), ("in_channels", (1, 3))):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ManifestError(f"manifest {name} must be a positive int, got {value!r}")
            if allowed_ints is not None and value not in allowed_ints:
                raise ManifestError(f"manifest {name} must be one of {allowed_ints}, got {value!r}")
        for name, allowed in (("layout", LAYOUTS), ("color_order", COLOR_ORDERS), ("residual", RESIDUALS),
                              ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ManifestError(f"manifest {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.shape_profile is not None:
            if not isinstance(self.shape_profile, ShapeProfile):
                raise ManifestError(f"manifest shape_profile must be {{min, opt, max}}, got {self.shape_profile!r}")
            self.shape_profile.validate()
        if not all(isinstance(n, str) and n for n in self.fp32_layers):
            raise ManifestError(f"manifest fp32_layers must be non-empty layer names, got {list(self.fp32_layers)!r}")
        for name in ("checkpoint_sha256", "onnx_sha256"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _SHA256.match(value)):
                raise ManifestError(f"manifest {name} must be 64 lowercase hex digits (a SHA-256), got {value!r}")
        if not isinstance(self.toolchain, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.toolchain.items()):
            raise ManifestError(f"manifest toolchain must map names to version strings, got {self.toolchain!r}")
        cc = self.toolchain.get("compute_capability")
        if cc is not None and not _COMPUTE_CAPABILITY.match(cc):
            raise ManifestError(f"manifest toolchain compute_capability must look like '8.7', got {cc!r}")
        if not all(isinstance(n, str) and "::" in n for n in self.plugins):
            raise ManifestError(f"manifest plugins must be 'namespace::name' strings, got {list(self.plugins)!r}")
        if self.plugin_flavour not in (None, *PLUGIN_FLAVOURS):
            raise ManifestError(f"manifest plugin_flavour must be one of {PLUGIN_FLAVOURS} or null, "
                                f"got {self.plugin_flavour!r}")
        if bool(self.plugins) != (self.plugin_flavour is not None):
            raise ManifestError("manifest plugins and plugin_flavour go together: an engine with plugin layers "
                                f"names both, got plugins={list(self.plugins)!r}, plugin_flavour={self.plugin_flavour!r}")
        rf = self.receptive_field
        if rf is not None and (isinstance(rf, bool) or not isinstance(rf, int) or rf < 0):
            raise ManifestError(f"manifest receptive_field must be None or an int >= 0 (pixels), got {rf!r}")
        if self.tile_exact not in (None, True, False):
            raise ManifestError(f"manifest tile_exact must be true, false or null, got {self.tile_exact!r}")
        if not isinstance(self.notes, str):
            raise ManifestError(f"manifest notes must be a string, got {self.notes!r}")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "manifest") -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ManifestError(f"{source}: unknown manifest fields {unknown}")
        missing = [n for n in ("architecture", "variant", "value_range", "pad_multiple") if n not in data]
        if missing:
            raise ManifestError(f"{source}: manifest lacks required fields {missing}")
        try:
            return cls(**data)
        except ManifestError as exc:
            raise ManifestError(f"{source}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{source}: invalid manifest ({exc})") from None

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "manifest") -> Manifest:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{source}: not valid JSON ({exc})") from None
        except RecursionError:      # a corrupt file of nested brackets; no manifest nests deeply
            raise ManifestError(f"{source}: not a manifest (JSON nested too deeply)") from None
        return cls.from_dict(data, source=source)

    def replace(self, **changes: Any) -> Manifest:
        return dataclasses.replace(self, **changes)

    def summary(self) -> str:
        """One line for logs and CLI reports."""
        lo, hi = self.value_range
        profile = f", profile {self.shape_profile.to_spec(channels=self.in_channels)}" if self.shape_profile else ""
        pinned = f", {len(self.fp32_layers)} layers pinned to fp32" if self.fp32_layers else ""
        plugins = f", {len(self.plugins)} {self.plugin_flavour} plugin ops" if self.plugins else ""
        return (f"{self.variant} ({self.architecture}), {self.precision}, {self.color_order} {self.layout} in "
                f"[{lo:g}, {hi:g}], pad to {self.pad_multiple}{profile}{pinned}{plugins}")

    # ------------------------------------------------------------------ ONNX metadata_props
    def onnx_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` entry carrying this manifest: ``{ONNX_METADATA_KEY: json}``."""
        return {ONNX_METADATA_KEY: self.to_json()}

    @classmethod
    def from_onnx_metadata(cls, metadata: Mapping[str, str], *, source: str = "ONNX model") -> Manifest:
        """Read the manifest from ONNX metadata: ``{p.key: p.value for p in model.metadata_props}``
        or ONNX Runtime's ``session.get_modelmeta().custom_metadata_map``."""
        if ONNX_METADATA_KEY not in metadata:
            raise ManifestError(
                f"{source} carries no deblur-sdk manifest (metadata key {ONNX_METADATA_KEY!r} missing); "
                "export it with `deblur export`"
            )
        return cls.from_json(metadata[ONNX_METADATA_KEY], source=f"{source} metadata {ONNX_METADATA_KEY!r}")

    @classmethod
    def read_onnx(cls, path: str | os.PathLike[str]) -> Manifest:
        """The manifest stored in an ONNX file's ``metadata_props``.

        Uses ``onnx`` when installed (reading the graph only, not the weights), else ONNX Runtime.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {path}")
        import importlib.util

        if importlib.util.find_spec("onnx") is not None:
            import onnx

            try:
                model = onnx.load(str(path), load_external_data=False)
            except Exception as exc:  # protobuf raises DecodeError and friends for corrupt files
                raise ManifestError(f"{path} is not a readable ONNX file: {exc}") from None
            metadata = {p.key: p.value for p in model.metadata_props}
        else:
            import onnxruntime

            try:
                session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
                raise ManifestError(f"{path} is not a readable ONNX file: {exc}") from None
            metadata = dict(session.get_modelmeta().custom_metadata_map)
        return cls.from_onnx_metadata(metadata, source=str(path))

    # ------------------------------------------------------------------ sidecar files
    def write_sidecar(self, artefact: str | os.PathLike[str]) -> Path:
        """Write ``<artefact>.json`` atomically and return its path."""
        from .files import (
            atomic_write,  # a leaf module too; imported here so this one imports nothing of ours
        )

        path = sidecar_path(artefact)
        atomic_write(path, self.to_json())
        return path

    @classmethod
    def read_sidecar(cls, artefact: str | os.PathLike[str]) -> Manifest:
        path = sidecar_path(artefact)
        if not path.is_file():
            raise ManifestError(f"no manifest beside {artefact} (expected {path})")
        return cls.from_json(path.read_bytes(), source=str(path))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in 1 MiB blocks: the provenance hashes a manifest records."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sidecar_path(artefact: str | os.PathLike[str]) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    p = Path(artefact)
    return p.with_name(p.name + SIDECAR_SUFFIX)

"""The manifest: one small JSON document that travels with every model artefact.

A checkpoint, an ONNX file (in ``metadata_props`` under :data:`ONNX_METADATA_KEY`) and a TensorRT
engine (in a ``model.engine.json`` sidecar) all carry the same document, so the runtime never guesses
a value range, a colour order or a pad multiple.

Example::

    >>> from sdk.manifest import Manifest
    >>> m = Manifest(architecture="rdafnet", variant="rdafnet-nano", value_range=(-1.0, 1.0), pad_multiple=2)
    >>> Manifest.from_json(m.to_json()) == m
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
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
            if len(dims) != 3 or any((not isinstance(d, int)) or d < 1 for d in dims):
                raise ManifestError(f"shape_profile.{name} must be three positive ints (batch, H, W), got {dims!r}")
        for i, axis in enumerate(("batch", "height", "width")):
            if not self.min[i] <= self.opt[i] <= self.max[i]:
                raise ManifestError(
                    f"shape_profile {axis}: need min <= opt <= max, got {self.min[i]}, {self.opt[i]}, {self.max[i]}"
                )

    def contains(self, batch: int, height: int, width: int) -> bool:
        return all(lo <= v <= hi for lo, v, hi in zip(self.min, (batch, height, width), self.max))


@dataclass(frozen=True)
class Manifest:
    """What the runtime must know to feed a model and read its answer.

    ``value_range`` is the range the network's input and output live in (RDAFNet and BAG use
    (-1, 1), MSAN (-0.5, 0.5)); ``pad_multiple`` the size multiple H and W must have.
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
    toolchain: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        # JSON gives lists; normalise so that equality and hashing behave.
        object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))
        object.__setattr__(self, "fp32_layers", tuple(self.fp32_layers))
        if isinstance(self.shape_profile, dict):
            object.__setattr__(
                self, "shape_profile", ShapeProfile(**{k: tuple(v) for k, v in self.shape_profile.items()})
            )
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
        if lo is None or not lo < hi:
            raise ManifestError(f"manifest value_range must be (low, high) with low < high, got {self.value_range!r}")
        if not isinstance(self.pad_multiple, int) or self.pad_multiple < 1:
            raise ManifestError(f"manifest pad_multiple must be a positive int, got {self.pad_multiple!r}")
        if not isinstance(self.in_channels, int) or self.in_channels not in (1, 3):
            raise ManifestError(f"manifest in_channels must be 1 or 3, got {self.in_channels!r}")
        for name, allowed in (("layout", LAYOUTS), ("color_order", COLOR_ORDERS), ("residual", RESIDUALS),
                              ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ManifestError(f"manifest {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.shape_profile is not None:
            self.shape_profile.validate()
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.toolchain.items()):
            raise ManifestError("manifest toolchain must map names to version strings")

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
        return cls.from_dict(data, source=source)

    def replace(self, **changes: Any) -> Manifest:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ sidecar files
    def write_sidecar(self, artefact: str | os.PathLike[str]) -> Path:
        """Write ``<artefact>.json`` atomically and return its path."""
        path = sidecar_path(artefact)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def read_sidecar(cls, artefact: str | os.PathLike[str]) -> Manifest:
        path = sidecar_path(artefact)
        if not path.is_file():
            raise ManifestError(f"no manifest beside {artefact} (expected {path})")
        return cls.from_json(path.read_bytes(), source=str(path))


def sidecar_path(artefact: str | os.PathLike[str]) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    p = Path(artefact)
    return p.with_name(p.name + SIDECAR_SUFFIX)

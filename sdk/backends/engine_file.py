"""A TensorRT engine file that carries its own manifest: a small header in front of the plan.

Layout (what :func:`pack_engine` writes)::

    b"DEBLURv1" | manifest length: uint32 little-endian | manifest JSON (UTF-8) | TensorRT plan

Ultralytics prefixes its engines the same way (a length and JSON metadata before the plan), because a
sidecar file gets lost when an engine is copied to a robot alone, and an engine without its manifest
would run with guessed value ranges. A plan without the header (an engine from ``trtexec``, or from an
older ``deblur export``) is still read, with its manifest taken from the ``<engine>.json`` sidecar.

Example::

    >>> data = pack_engine(plan_bytes, manifest)
    >>> manifest2, plan = unpack_engine(data)
    >>> manifest2 == manifest and plan == plan_bytes
    True
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from ..manifest import Manifest, ManifestError
from .base import ModelLoadError

MAGIC = b"DEBLURv1"
_LENGTH = struct.Struct("<I")
HEADER_SIZE = len(MAGIC) + _LENGTH.size
# A manifest is a few KiB (fp32 layer names included); a larger length is a corrupt header, not a manifest.
MAX_MANIFEST_BYTES = 16 << 20


def pack_engine(plan: bytes, manifest: Manifest) -> bytes:
    """The engine file's bytes: header with ``manifest``, then ``plan`` (TensorRT's serialized engine)."""
    if not plan:
        raise ValueError("the TensorRT plan is empty; nothing to write")
    if plan.startswith(MAGIC):
        raise ValueError("this plan already carries a deblur manifest header; pass the bare TensorRT plan")
    body = manifest.to_json().encode("utf-8")
    return MAGIC + _LENGTH.pack(len(body)) + body + bytes(plan)


def unpack_engine(data: bytes, *, source: str = "engine") -> tuple[Manifest | None, bytes]:
    """``(manifest, plan)`` from an engine file's bytes; ``manifest`` is ``None`` for a plain plan.

    A header that is cut short, has an impossible length, holds no valid manifest, or is followed by
    no plan raises :class:`ModelLoadError` (a ``ValueError``) that says the file is damaged.
    """
    if not data.startswith(MAGIC):
        if data and MAGIC.startswith(data):
            raise ModelLoadError(f"{source} ends inside its deblur header ({len(data)} bytes): the file is truncated")
        return None, data
    if len(data) < HEADER_SIZE:
        raise ModelLoadError(f"{source} ends inside its deblur header ({len(data)} bytes): the file is truncated")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if not 0 < length <= MAX_MANIFEST_BYTES:
        raise ModelLoadError(f"{source} has a corrupt deblur header (manifest length {length})")
    end = HEADER_SIZE + length
    if end > len(data):
        raise ModelLoadError(f"{source} is truncated: its header announces a {length}-byte manifest, "
                             f"but the file has {len(data)} bytes")
    try:
        manifest = Manifest.from_json(data[HEADER_SIZE:end], source=f"{source} (header)")
    except (ManifestError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{source} has a corrupt manifest in its header: {exc}") from None
    plan = data[end:]
    if not plan:
        raise ModelLoadError(f"{source} has a manifest header but no TensorRT plan after it: the file is truncated")
    return manifest, plan


def read_engine(path: str | os.PathLike[str]) -> tuple[Manifest | None, bytes]:
    """``(manifest, plan)`` of an engine file: the manifest from its header, else ``None``."""
    path = Path(path)
    return unpack_engine(path.read_bytes(), source=str(path))


def load_engine(path: str | os.PathLike[str]) -> tuple[Manifest | None, str, bytes]:
    """``(manifest, where it came from, plan)``: the manifest from the file's header (``"engine header"``),
    else from the sidecar (``"sidecar"``), else ``(None, "none", plan)``. A sidecar that exists but is
    broken raises ``ManifestError``: it is an error, not a missing manifest."""
    header, plan = read_engine(path)
    if header is not None:
        return header, "engine header", plan
    try:
        return Manifest.read_sidecar(path), "sidecar", plan
    except ManifestError:
        if Path(str(path) + ".json").is_file():
            raise
        return None, "none", plan


def missing_manifest_message(path: str | os.PathLike[str]) -> str:
    """Why a plan without a manifest is refused, and the three ways to fix it."""
    return (
        f"{path} is a TensorRT plan without a deblur manifest (no header in the file, no {Path(path).name}.json "
        "beside it), so its value range, colour order and pad multiple are unknown and its output could be "
        "silently wrong. Rebuild it with `deblur export MODEL --to engine` (the manifest goes inside the "
        "engine), or write one beside it (sdk.Manifest(...).write_sidecar(path)), or pass it: "
        "sdk.Deblurrer(path, manifest=sdk.Manifest(...))"
    )

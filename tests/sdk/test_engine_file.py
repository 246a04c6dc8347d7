"""The engine file's manifest header: round trip, plain plans, and damaged headers refused clearly."""

from __future__ import annotations

import struct

import pytest

import sdk
from sdk.backends.engine_file import (
    HEADER_SIZE,
    MAGIC,
    load_engine,
    missing_manifest_message,
    pack_engine,
    read_engine,
    unpack_engine,
)
from sdk.manifest import Manifest, ShapeProfile

PLAN = bytes(range(256)) * 40          # stands in for a TensorRT plan (TensorRT's own bytes are opaque to us)
MANIFEST = Manifest(architecture="rdafnet", variant="rdafnet-small", value_range=(-1.0, 1.0), pad_multiple=16,
                    precision="fp16", shape_profile=ShapeProfile(min=(1, 64, 64), opt=(1, 720, 1280),
                                                                 max=(1, 1088, 1920)),
                    toolchain={"tensorrt": "10.3.0", "compute_capability": "8.7", "gpu": "Orin"})


def test_header_round_trip_keeps_the_manifest_and_the_exact_plan(tmp_path):
    data = pack_engine(PLAN, MANIFEST)
    assert data[:8] == b"DEBLURv1" and data.endswith(PLAN)
    (length,) = struct.unpack("<I", data[8:12])
    assert len(data) == 12 + length + len(PLAN)
    path = tmp_path / "m.engine"
    path.write_bytes(data)
    manifest, plan = read_engine(path)
    assert manifest == MANIFEST and manifest.value_range == (-1.0, 1.0) and plan == PLAN
    assert load_engine(path)[:2] == (MANIFEST, "engine header")


def test_plain_plans_are_read_as_they_are_with_the_sidecar_as_manifest(tmp_path):
    path = tmp_path / "plain.engine"
    path.write_bytes(PLAN)
    assert read_engine(path) == (None, PLAN)
    assert load_engine(path) == (None, "none", PLAN)
    MANIFEST.write_sidecar(path)
    assert load_engine(path) == (MANIFEST, "sidecar", PLAN)


def test_the_header_wins_over_a_stale_sidecar(tmp_path):
    path = tmp_path / "m.engine"
    path.write_bytes(pack_engine(PLAN, MANIFEST))
    MANIFEST.replace(value_range=(0.0, 1.0)).write_sidecar(path)
    manifest, source, _ = load_engine(path)
    assert source == "engine header" and manifest.value_range == (-1.0, 1.0)


@pytest.mark.parametrize("cut", [3, len(MAGIC), HEADER_SIZE - 1, HEADER_SIZE + 10])
def test_a_file_cut_inside_its_header_is_a_model_load_error(cut):
    data = pack_engine(PLAN, MANIFEST)[:cut]
    with pytest.raises(sdk.ModelLoadError, match="truncated"):
        unpack_engine(data, source="cut.engine")


def test_a_header_with_no_plan_after_it_is_truncated():
    data = pack_engine(PLAN, MANIFEST)
    with pytest.raises(sdk.ModelLoadError, match="no TensorRT plan after it"):
        unpack_engine(data[: len(data) - len(PLAN)])


@pytest.mark.parametrize("length", [0, 1 << 30])
def test_an_impossible_manifest_length_is_corrupt(length):
    data = MAGIC + struct.pack("<I", length) + b"{}" + PLAN
    with pytest.raises(sdk.ModelLoadError, match=f"corrupt deblur header \\(manifest length {length}\\)"):
        unpack_engine(data)


@pytest.mark.parametrize("body", [b"{not json", b'{"schema": 999}', b"\xff\xfe\x00garbage"])
def test_a_header_whose_manifest_does_not_parse_is_corrupt(body):
    data = MAGIC + struct.pack("<I", len(body)) + body + PLAN
    with pytest.raises(ValueError, match="corrupt manifest in its header"):
        unpack_engine(data, source="x.engine")


def test_packing_refuses_an_empty_or_already_packed_plan():
    with pytest.raises(ValueError, match="empty"):
        pack_engine(b"", MANIFEST)
    with pytest.raises(ValueError, match="already carries"):
        pack_engine(pack_engine(PLAN, MANIFEST), MANIFEST)


def test_the_refusal_message_says_how_to_fix_it(tmp_path):
    message = missing_manifest_message(tmp_path / "bare.engine")
    assert "deblur export MODEL --to engine" in message and "write_sidecar" in message
    assert "manifest=sdk.Manifest(" in message and "bare.engine.json" in message

"""sdk.files: the one atomic write (all or nothing, normal permissions) and the one cache folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sdk.files import atomic_write, cache_dir


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_permissions_the_umask_gives(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write(tmp_path / "a" / "m.json", "{}")          # creates the folder too
    assert (tmp_path / "a" / "m.json").read_text() == "{}"
    assert (tmp_path / "a" / "m.json").stat().st_mode & 0o777 == mode


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "best.pt"
    atomic_write(target, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(target) as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_a_path_writer_replaces_the_file_in_one_step(tmp_path):
    target = tmp_path / "model.onnx"
    atomic_write(target, b"v1")
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"v2")
        assert target.read_bytes() == b"v1"                 # nothing changes until the block ends
    assert target.read_bytes() == b"v2"


def test_cache_dir_follows_deblur_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DEBLUR_CACHE", str(tmp_path))
    assert cache_dir("ort-tensorrt") == tmp_path / "ort-tensorrt"
    monkeypatch.delenv("DEBLUR_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "deblur-sdk"

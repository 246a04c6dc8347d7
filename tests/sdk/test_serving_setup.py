"""Serving without a server: model URLs, `deblur serve` options, and the interpreter check for PyTriton's stub."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sdk.serving import RemoteDeblurrer, is_remote_model, parse_model_url
from sdk.serving import server as srv
from sdk.serving.protocol import ModelURL


@pytest.mark.parametrize("url, model, want", [
    ("grpc://10.0.0.5:8001/deblur", None, ModelURL("grpc", "10.0.0.5", 8001, "deblur")),
    ("grpc://gpu-box", None, ModelURL("grpc", "gpu-box", 8001, "deblur")),
    ("HTTP://gpu-box/cams", None, ModelURL("http", "gpu-box", 8000, "cams")),
    ("http://127.0.0.1:9000", "other", ModelURL("http", "127.0.0.1", 9000, "other")),
    ("grpc://[::1]:8001/deblur", None, ModelURL("grpc", "::1", 8001, "deblur")),
])
def test_model_urls(url, model, want):
    got = parse_model_url(url, model)
    assert got == want
    assert parse_model_url(str(got)) == want          # str() gives back a URL that parses the same


@pytest.mark.parametrize("url, match", [
    ("127.0.0.1:8001", "grpc://host:8001"),            # no scheme
    ("grpc://:8001/deblur", "no host"),
    ("grpc://host:99999/deblur", "bad port"),
    ("grpc://host:8001/a/b", "one segment"),
    ("grpc://host:8001/a?x=1", "one segment"),
])
def test_bad_model_urls(url, match):
    with pytest.raises(ValueError, match=match):
        parse_model_url(url)


def test_model_named_twice_must_agree():
    with pytest.raises(ValueError, match="names model 'a' but model='b'"):
        parse_model_url("grpc://h/a", "b")


def test_only_grpc_and_http_models_are_remote():
    assert is_remote_model("grpc://h/deblur") and is_remote_model("http://h:8000")
    assert not is_remote_model("model.onnx") and not is_remote_model(None) and not is_remote_model("rtsp://cam")


@pytest.mark.parametrize("kwargs, match", [
    (dict(timeout=0), "timeout"), (dict(retries=-1), "retries"), (dict(retries=True), "retries"),
    (dict(backoff=-1), "backoff"), (dict(color="yuv"), "color"),
])
def test_remote_arguments_are_checked(kwargs, match):
    pytest.importorskip("tritonclient")
    with pytest.raises(ValueError, match=match):
        RemoteDeblurrer("grpc://127.0.0.1:1/deblur", **kwargs)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_server_that_is_not_there_fails_fast_with_a_clear_error(protocol):
    pytest.importorskip("tritonclient")
    import time

    import numpy as np

    from sdk.serving.launch import free_port

    remote = RemoteDeblurrer(f"{protocol}://127.0.0.1:{free_port()}/deblur", timeout=2, retries=2, backoff=0.05)
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match=r"did not answer: 3 tries .*[Rr]efused.*`deblur serve` running"):
        remote.process(np.zeros((8, 8, 3), np.uint8))
    assert time.monotonic() - t0 < 3 * 2 + 1          # three short tries, no hang
    with pytest.raises(ConnectionError):
        _ = remote.info


@pytest.mark.parametrize("changes, match", [
    (dict(name="bad name"), "--name"), (dict(name="x-info"), "--name"), (dict(http_port=0), "--http-port"),
    (dict(grpc_port=8000), "must differ"), (dict(max_batch=0), "--max-batch"), (dict(instances=0), "--instances"),
    (dict(queue_delay_us=-1), "--queue-delay-us"), (dict(threads=0), "--threads"),
])
def test_serve_options_are_checked(changes, match):
    with pytest.raises(ValueError, match=match):
        srv.ServeOptions(**changes).validate()


def test_ready_urls_name_a_reachable_host():
    assert srv.ServeOptions(host="0.0.0.0", http_port=1, grpc_port=2, name="m").urls() == \
        ("http://127.0.0.1:1/m", "grpc://127.0.0.1:2/m")


def test_stub_loads_this_interpreters_libpython_first(monkeypatch, tmp_path):
    own = tmp_path / "lib" / "libpython3.11.so.1.0"
    own.parent.mkdir()
    own.write_bytes(b"")
    monkeypatch.setattr(srv, "stub_path", lambda: tmp_path / "stub")
    monkeypatch.setattr(srv, "interpreter_library", lambda: own)
    # ldd resolves the library through LD_LIBRARY_PATH: stand in for it.
    monkeypatch.setattr(srv, "resolved_library", lambda stub, env: Path(env["LD_LIBRARY_PATH"].split(":")[0]) / own.name)
    env = srv.stub_library_path({"LD_LIBRARY_PATH": "/opt/x"})
    assert env["LD_LIBRARY_PATH"] == f"{own.parent}:/opt/x"


def test_an_interpreter_without_libpython_is_told_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(srv, "stub_path", lambda: tmp_path / "stub")
    monkeypatch.setattr(srv, "interpreter_library", lambda: None)
    monkeypatch.setattr(srv, "resolved_library", lambda stub, env: Path("/usr/lib/libpython3.11.so.1.0"))
    v = f"{sys.version_info.major}.{sys.version_info.minor}"
    with pytest.raises(srv.ServeError, match=rf"_recursion_count.*/usr/bin/python{v} -m venv"):
        srv.stub_library_path({})


def test_serve_without_pytriton_says_which_extra(monkeypatch, capsys):
    from sdk.cli import main

    monkeypatch.setitem(sys.modules, "pytriton", None)     # as if not installed
    assert main(["serve", "--http-port", "18000"]) == 2
    assert "pip install 'deblur-sdk[serve]'" in capsys.readouterr().err

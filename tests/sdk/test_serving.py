"""`deblur serve` (PyTriton on 127.0.0.1) against `sdk.RemoteDeblurrer` and the in-process Deblurrer."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from serve_helpers import frames, require_serving, serve_env, within

import sdk
from sdk.serving import RemoteDeblurrer, ServerUnavailableError
from sdk.serving.launch import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    python = require_serving()
    # A long queue delay makes batching certain in the concurrency test; lone requests pay 30 ms.
    s = ServerProcess(["--threads", "1", "--max-batch", "8", "--queue-delay-us", "30000"], python=python,
                      env=serve_env()).start()
    try:
        yield s
    finally:
        code = within(60, s.stop)               # SIGTERM, as a service manager stops it
    assert code == 0 and "deblur serve: stopped" in s.log, list(s.log)[-10:]


@pytest.fixture(scope="module")
def local():
    with sdk.Deblurrer(threads=1) as d:
        yield d


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_remote_frames_equal_in_process(server, local, rng, protocol):
    url = server.grpc_url if protocol == "grpc" else server.http_url
    with RemoteDeblurrer(f"{url}/deblur", timeout=30, retries=0) as remote:
        for frame in frames(rng, 1, 48, 64) + frames(rng, 1, 37, 51):     # an odd size is padded and cropped
            out = remote.process(frame)
            assert _max_diff(out, local.process(frame)) <= 1
            assert _max_diff(out, frame) > 10          # the network changed the frame: not an echo
        batch = frames(rng, 3, 32, 40) + frames(rng, 1, 40, 32)
        for got, frame in zip(remote.process_batch(batch), batch):
            assert _max_diff(got, local.process(frame)) <= 1


def test_rgb_client_gets_rgb_back(server, local, rng):
    frame = frames(rng, 1, 32, 48)[0]
    with RemoteDeblurrer(server.grpc_url, color="rgb", retries=0) as remote:
        out = remote.process(np.ascontiguousarray(frame[..., ::-1]))
    assert _max_diff(np.ascontiguousarray(out[..., ::-1]), local.process(frame)) <= 1


def test_info_is_the_servers_model(server, local):
    info = RemoteDeblurrer(server.grpc_url, retries=0).info
    assert info.manifest == local.manifest
    assert info.backend == "triton/onnxruntime" and info.device == "cpu"
    assert info.details["server batch"].startswith("up to 8, 1 instance(s)")
    assert info.details["server model"].endswith("default.onnx")


def test_concurrent_clients_are_batched_by_the_server(server, local, rng):
    clients, per_client = 6, 3
    work = [frames(rng, per_client, 40, 56) for _ in range(clients)]
    expected = [[local.process(f) for f in fs] for fs in work]
    probe = RemoteDeblurrer(server.grpc_url, retries=0)
    before = probe.batch_counts()
    results: list[list[np.ndarray] | None] = [None] * clients
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        remote = RemoteDeblurrer(server.grpc_url, timeout=60, retries=0)
        start.wait(30)
        results[i] = [remote.process(f) for f in work[i]]
        remote.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    within(120, lambda: [t.join() for t in threads])
    for got, want in zip(results, expected):
        assert got is not None and all(_max_diff(g, w) <= 1 for g, w in zip(got, want))
    formed = probe.batch_counts_after(before, clients * per_client)
    assert sum(size * n for size, n in formed.items()) == clients * per_client
    assert max(formed) > 1, f"no batch above 1 frame: {formed}"


def test_bad_requests_get_clear_errors_and_the_server_keeps_serving(server, local, rng):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    good = frames(rng, 1, 24, 32)[0]

    def raw(array: np.ndarray, dtype: str) -> str:
        inp = grpcclient.InferInput("frames", list(array.shape), dtype)
        inp.set_data_from_numpy(array)
        with pytest.raises(InferenceServerException) as err:
            client.infer("deblur", [inp], client_timeout=30)
        return str(err.value)

    assert "UINT8" in raw(np.zeros((1, 8, 8, 3), np.float32), "FP32")
    assert "unexpected shape" in raw(np.zeros((1, 8, 8, 5), np.uint8), "UINT8")
    raw(np.zeros((1, 0, 0, 3), np.uint8), "UINT8")     # PyTriton's own message (it cannot pass empty tensors)
    client.close()
    remote = RemoteDeblurrer(server.grpc_url, retries=0)
    with pytest.raises(TypeError, match="uint8"):
        remote.process(good.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="shape"):
        remote.process(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        remote.process(np.zeros((0, 0, 3), np.uint8))
    # A model the server lacks may be one still loading after a restart: retried, then named in the error.
    with pytest.raises(ServerUnavailableError, match="unknown model: 'nope'.*--name nope"):
        RemoteDeblurrer(server.grpc_url, "nope", retries=0).process(good)
    assert _max_diff(remote.process(good), local.process(good)) <= 1    # still serving


def test_sdk_run_and_deblur_run_use_the_server(server, local, rng, tmp_path):
    from sdk.cli import main

    clip = frames(rng, 3, 32, 48)
    for i, f in enumerate(clip):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), f)
    got: list[np.ndarray] = []
    remote = RemoteDeblurrer(f"{server.grpc_url}/deblur", retries=0)
    sdk.run(str(tmp_path / "*.png"), remote, sinks=[sdk.CallbackSink(lambda image, frame: got.append(image))])
    assert len(got) == 3 and all(_max_diff(g, local.process(f)) <= 1 for g, f in zip(got, clip))

    out = tmp_path / "sharp.png"
    assert main(["run", str(tmp_path / "00.png"), "--model", f"{server.grpc_url}/deblur", "-o", str(out)]) == 0
    assert _max_diff(cv2.imread(str(out)), local.process(clip[0])) <= 1
    assert main(["run", str(tmp_path / "00.png"), "--model", server.grpc_url, "--tile", "16", "-o", str(out)]) == 2


def test_killed_server_gives_a_clear_error_then_a_retry_reaches_its_restart(local, rng):
    python = require_serving()
    args = ["--threads", "1", "--queue-delay-us", "0"]
    first = ServerProcess(args, python=python, env=serve_env()).start()
    ports = dict(http_port=first.http_port, grpc_port=first.grpc_port)
    frame = frames(rng, 1, 32, 48)[0]
    want = local.process(frame)
    fail_fast = RemoteDeblurrer(first.grpc_url, timeout=5, retries=1, backoff=0.2)
    patient = RemoteDeblurrer(first.grpc_url, timeout=5, retries=7, backoff=0.5)   # waits up to ~64 s
    second = None
    starter: threading.Thread | None = None
    try:
        stream_errors: list[BaseException] = []
        served = 0

        def stream() -> None:
            nonlocal served
            try:
                for _ in range(200):      # bounded: the kill comes long before the end
                    fail_fast.process(frame)
                    served += 1
            except BaseException as exc:  # noqa: BLE001
                stream_errors.append(exc)

        t = threading.Thread(target=stream)
        t.start()
        deadline = time.monotonic() + 60
        while served < 2 and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.05)
        assert served >= 2, stream_errors
        first.kill()                       # SIGKILL to tritonserver and all: mid-stream, no goodbye
        t.join(30)
        assert not t.is_alive(), "the client hung after the server died"
        assert len(stream_errors) == 1 and isinstance(stream_errors[0], ServerUnavailableError)
        assert "did not answer" in str(stream_errors[0]) and "2 tries" in str(stream_errors[0])

        second = ServerProcess(args, python=python, env=serve_env(), **ports)
        starter = threading.Thread(target=second.start, daemon=True)
        starter.start()
        assert _max_diff(within(120, lambda: patient.process(frame)), want) <= 1   # retried until it was back
    finally:
        first.kill()
        if starter is not None:
            starter.join(150)             # a server still starting must not be left behind
        if second is not None:
            within(60, second.stop)

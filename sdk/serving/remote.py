"""``sdk.RemoteDeblurrer``: :class:`sdk.Deblurrer`'s ``process``/``process_batch``/``info``, run by ``deblur serve``.

Frames go to the server as uint8 (the camera's bytes, a quarter of float32's), the server runs the
SDK's own pre/post-processing and backend, and the answer comes back as uint8 of the same shape.
A server that is down, restarting or slower than ``timeout`` gives, after ``retries`` further tries
``backoff``, ``2*backoff``, ``4*backoff``... seconds apart (each on a fresh connection), a
:class:`ServerUnavailableError`; a request the server refuses gives a :class:`RemoteError`. No call
waits longer than about ``(retries + 1) * timeout`` plus the backoff.

Example::

    >>> import sdk
    >>> deblur = sdk.RemoteDeblurrer("grpc://gpu-box:8001/deblur", timeout=10, retries=3)
    >>> sharp = deblur.process(frame)                   # HxWx3 uint8 BGR in, the same out
    >>> sdk.run("rtsp://cam1/stream", deblur, sinks=[sdk.VideoFileSink("cam1.mp4")])
    >>> print(deblur.info)                              # the server's manifest, backend and device
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ..processing import COLORS, inspect_frame
from .protocol import INFO_INPUT, INFO_OUTPUT, INFO_SUFFIX, INPUT, OUTPUT, ModelURL, parse_model_url

T = TypeVar("T")

# Failures worth another try: the connection (refused, reset, timed out) or a model still loading.
_RETRYABLE = ("unavailable", "deadline", "timed out", "timeout", "connection", "socket closed", "broken pipe",
              "not ready", "unknown model", "is not found", "failed to connect", "eof", "reset by peer")


class RemoteError(RuntimeError):
    """The server answered, and refused the request (bad frame, model error); the message is the server's."""


class ServerUnavailableError(ConnectionError, RuntimeError):
    """The server did not answer (down, restarting, too slow) within the tries allowed."""


class RemoteDeblurrer:
    """Deblur frames on a ``deblur serve`` (Triton) server over gRPC or HTTP.

    Args:
        url: ``grpc://host:8001/deblur`` or ``http://host:8000/deblur`` (the port defaults to 8001 or
            8000, the model to the URL's path).
        model: the model's name on the server when the URL has no path (``deblur serve --name``);
            default ``"deblur"``.
        timeout: seconds one request may take (connection and answer) before it counts as failed.
        retries: further tries after a failed connection or timeout; 0 fails at once.
        backoff: seconds before the first retry; doubled before each next one.
        color: channel order of your frames, "bgr" (OpenCV) or "rgb".
    """

    def __init__(self, url: str, model: str | None = None, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.5, color: str = "bgr") -> None:
        if color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {color!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff!r}")
        self.url: ModelURL = parse_model_url(url, model)
        self.timeout, self.retries, self.backoff, self.color = float(timeout), retries, float(backoff), color
        self._module = _import_client(self.url.protocol)
        self._local = threading.local()          # one client per thread: HTTP's gevent client is single-threaded
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._info: Any = None
        self._max_batch: int | None = None
        self.model_path = str(self.url)

    # ------------------------------------------------------------------ public API
    @property
    def info(self) -> Any:
        """A :class:`sdk.DeblurrerInfo` of what the server runs (asked once, then cached)."""
        if self._info is None:
            from ..deblurrer import DeblurrerInfo
            from ..manifest import Manifest

            data = json.loads(self._call(self._ask_info))
            self._info = DeblurrerInfo(
                model=str(self.url), manifest=Manifest.from_dict(data["manifest"], source=str(self.url)),
                manifest_source=f"server ({data['manifest_source']})", backend=f"triton/{data['backend']}",
                device=data["device"], precision=data["precision"],
                details={"protocol": self.url.protocol, "server model": data["model"],
                         "server batch": f"up to {data['max_batch']}, {data['instances']} instance(s), "
                                         f"queue delay {data['queue_delay_us']} us"})
        return self._info

    @property
    def manifest(self) -> Any:
        return self.info.manifest

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Deblur one HxWx3 uint8 frame on the server; the result has the frame's shape."""
        self._check(frame)
        return self._from_wire(self._send(self._to_wire(frame)[None])[0])

    __call__ = process

    def process_batch(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Deblur several frames; frames of one size go in one request (split at the server's max batch)."""
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            frames = list(frames)
        if not isinstance(frames, Sequence):
            raise TypeError(f"process_batch expects a list of frames, got {type(frames).__name__}")
        for f in frames:
            self._check(f)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(f.shape, []).append(i)
        results: list[np.ndarray | None] = [None] * len(frames)
        step = self._server_max_batch()
        for indices in groups.values():
            for start in range(0, len(indices), step):
                chunk = indices[start:start + step]
                out = self._send(np.stack([self._to_wire(frames[i]) for i in chunk]))
                for i, r in zip(chunk, out):
                    results[i] = self._from_wire(r)
        return [r for r in results if r is not None]

    def batch_counts(self) -> dict[int, int]:
        """How many batches of each size the server has run for this model since it started (Triton's statistics).

        Example: ``{1: 12, 4: 3}`` is twelve single frames and three batches of four.
        """
        def ask(client: Any) -> dict[int, int]:
            if self.url.protocol == "grpc":
                stats = client.get_inference_statistics(self.url.model, client_timeout=self.timeout)
                rows = [(b.batch_size, b.compute_infer.count) for m in stats.model_stats for b in m.batch_stats]
            else:
                stats = client.get_inference_statistics(self.url.model)
                rows = [(int(b["batch_size"]), int(b["compute_infer"]["count"]))
                        for m in stats["model_stats"] for b in m.get("batch_stats", [])]
            counts: dict[int, int] = {}
            for size, count in rows:
                counts[int(size)] = counts.get(int(size), 0) + int(count)
            return counts
        return self._call(ask)

    def batch_counts_after(self, before: dict[int, int], frames: int, wait: float = 10.0) -> dict[int, int]:
        """The batches run since ``before`` (a :meth:`batch_counts`), once they hold ``frames`` frames.

        Triton records an execution's statistics just after its responses go out, so a client that
        has all its answers may read the counts a moment too early; this waits (at most ``wait`` s).
        """
        deadline = time.monotonic() + wait
        while True:
            now = self.batch_counts()
            since = {size: n - before.get(size, 0) for size, n in now.items() if n - before.get(size, 0)}
            if sum(size * n for size, n in since.items()) >= frames or time.monotonic() > deadline:
                return since
            time.sleep(0.05)

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            _close_quietly(client)

    def __enter__(self) -> RemoteDeblurrer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteDeblurrer({str(self.url)!r}, timeout={self.timeout:g}, retries={self.retries})"

    # ------------------------------------------------------------------ internals
    def _check(self, frame: np.ndarray) -> None:
        spec = inspect_frame(frame, color=self.color)
        if spec.dtype != np.uint8 or spec.ndim != 3 or spec.channels != 3:
            raise TypeError(f"RemoteDeblurrer sends HxWx3 uint8 {self.color.upper()} frames (a camera's bytes); "
                            f"got {frame.dtype} of shape {frame.shape}: convert it first, e.g. with "
                            "cv2.cvtColor / (frame * 255).round().astype(np.uint8), or use sdk.Deblurrer in process")

    def _to_wire(self, frame: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(frame if self.color == "bgr" else frame[..., ::-1])

    def _from_wire(self, result: np.ndarray) -> np.ndarray:
        return result if self.color == "bgr" else np.ascontiguousarray(result[..., ::-1])

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            address = self.url.address
            if self.url.protocol == "grpc":
                client = self._module.InferenceServerClient(url=address)
            else:
                client = self._module.InferenceServerClient(url=address, connection_timeout=self.timeout,
                                                            network_timeout=self.timeout)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _drop_client(self) -> None:
        # A gRPC channel that saw the server go keeps backing off its reconnects: start a fresh one.
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._clients_lock:
                if client in self._clients:
                    self._clients.remove(client)
            _close_quietly(client)

    def _call(self, request: Callable[[Any], T]) -> T:
        start = time.monotonic()
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return request(self._client())
            except Exception as exc:   # noqa: BLE001 — tritonclient, gevent and socket errors all land here
                if not _retryable(exc):
                    raise RemoteError(f"{self.url} refused the request: {_message(exc)}") from None
                last = exc
                self._drop_client()
        raise ServerUnavailableError(
            f"{self.url} did not answer: {self.retries + 1} tries over {time.monotonic() - start:.1f} s "
            f"(timeout {self.timeout:g} s each) failed, last with: {_message(last)}. "
            f"Is `deblur serve` running there with --name {self.url.model}?") from None

    def _send(self, batch: np.ndarray) -> np.ndarray:
        def request(client: Any) -> np.ndarray:
            inp = self._module.InferInput(INPUT, list(batch.shape), "UINT8")
            inp.set_data_from_numpy(batch)
            out = self._module.InferRequestedOutput(OUTPUT)
            if self.url.protocol == "grpc":
                result = client.infer(self.url.model, [inp], outputs=[out], client_timeout=self.timeout)
            else:
                result = client.infer(self.url.model, [inp], outputs=[out])
            return result.as_numpy(OUTPUT)

        out = self._call(request)
        if out is None or out.shape != batch.shape or out.dtype != np.uint8:
            got = "nothing" if out is None else f"{out.dtype} {out.shape}"
            raise RemoteError(f"{self.url} answered {got} for uint8 {batch.shape}: is it a `deblur serve` model?")
        return out

    def _ask_info(self, client: Any) -> bytes:
        inp = self._module.InferInput(INFO_INPUT, [1], "UINT8")
        inp.set_data_from_numpy(np.zeros(1, np.uint8))
        kwargs = {"client_timeout": self.timeout} if self.url.protocol == "grpc" else {}
        result = client.infer(self.url.model + INFO_SUFFIX, [inp], **kwargs)
        value = result.as_numpy(INFO_OUTPUT)[0]
        return value if isinstance(value, bytes) else bytes(value)

    def _server_max_batch(self) -> int:
        if self._max_batch is None:
            def ask(client: Any) -> int:
                if self.url.protocol == "grpc":
                    return int(client.get_model_config(self.url.model, client_timeout=self.timeout).config.max_batch_size)
                return int(client.get_model_config(self.url.model)["max_batch_size"])
            self._max_batch = max(1, self._call(ask))
        return self._max_batch


def _import_client(protocol: str) -> Any:
    try:
        if protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
    except (ImportError, RuntimeError) as exc:   # tritonclient raises RuntimeError when an extra is missing
        raise ImportError(f"{exc}; RemoteDeblurrer needs tritonclient: pip install 'deblur-sdk[remote]'") from None
    return module


def _message(exc: BaseException | None) -> str:
    if exc is None:
        return "no error recorded"
    text = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
    return f"{type(exc).__name__}: {text or repr(exc)}"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return True
    status = exc.status() if callable(getattr(exc, "status", None)) else None
    text = f"{status or ''} {_message(exc)}".lower()
    return any(word in text for word in _RETRYABLE)


def _close_quietly(client: Any) -> None:
    try:
        client.close()
    except Exception:   # noqa: BLE001 — closing a client of a dead server must not mask the real error
        pass

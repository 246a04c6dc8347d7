"""``deblur serve``: any model :class:`sdk.Deblurrer` opens, behind Triton Inference Server (PyTriton).

Triton's dynamic batcher joins requests for frames of one size into a batch (up to ``max_batch``,
waiting at most ``queue_delay_us`` for company); each of the ``instances`` runs its own
:class:`sdk.Deblurrer`, so pre/post-processing and the backend are exactly the in-process ones.
A second model, ``<name>-info``, answers what runs (manifest, backend, device) for
:attr:`sdk.RemoteDeblurrer.info`.

Example::

    >>> from sdk.serving.server import ServeOptions, serve
    >>> serve(ServeOptions(model="rdafnet-nano.onnx", max_batch=8, instances=2))   # blocks; Ctrl-C stops

PyTriton's Python-backend stub is a C++ program linked to ``libpython3.X.so.1.0``; it must load the
library of the interpreter that runs the server, or the interpreter's standard library and the
library disagree (seen as ``'_thread.RLock' object has no attribute '_recursion_count'``).
:func:`stub_library_path` finds the interpreter's own library and puts its folder first on the
stub's library path; :func:`check_interpreter` says what to do when there is none.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .protocol import (
    DEFAULT_GRPC_PORT,
    DEFAULT_HTTP_PORT,
    DEFAULT_MODEL_NAME,
    INFO_INPUT,
    INFO_OUTPUT,
    INFO_SUFFIX,
    INPUT,
    OUTPUT,
)

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class ServeError(RuntimeError):
    """The server cannot start here; the message says why and what to do."""


@dataclass
class ServeOptions:
    """What ``deblur serve`` runs; see ``deblur serve --help``."""

    model: str | None = None            # None: the bundled model
    name: str = DEFAULT_MODEL_NAME
    host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    metrics_port: int | None = 8002     # None: no Prometheus metrics endpoint
    max_batch: int = 8
    instances: int = 1
    queue_delay_us: int = 500
    backend: str = "auto"
    device: str = "auto"
    threads: int | None = None          # ONNX Runtime intra-op threads per instance
    deblurrer_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not _NAME.match(self.name) or self.name.endswith(INFO_SUFFIX):
            raise ValueError(f"--name must be letters, digits, '.', '_' or '-' and not end in {INFO_SUFFIX!r}, "
                             f"got {self.name!r}")
        for label, port in (("--http-port", self.http_port), ("--grpc-port", self.grpc_port),
                            ("--metrics-port", self.metrics_port)):
            if port is not None and not 1 <= port <= 65535:
                raise ValueError(f"{label} must be 1..65535, got {port}")
        ports = [p for p in (self.http_port, self.grpc_port, self.metrics_port) if p is not None]
        if len(set(ports)) != len(ports):
            raise ValueError(f"HTTP, gRPC and metrics ports must differ, got {ports}")
        if self.max_batch < 1:
            raise ValueError(f"--max-batch must be >= 1, got {self.max_batch}")
        if self.instances < 1:
            raise ValueError(f"--instances must be >= 1, got {self.instances}")
        if self.queue_delay_us < 0:
            raise ValueError(f"--queue-delay-us must be >= 0, got {self.queue_delay_us}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")

    def urls(self) -> tuple[str, str]:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return (f"http://{host}:{self.http_port}/{self.name}", f"grpc://{host}:{self.grpc_port}/{self.name}")


# ---------------------------------------------------------------------------------------- interpreter
def stub_path() -> Path:
    """PyTriton's Python-backend stub for this interpreter's Python version."""
    try:
        import pytriton
    except ImportError as exc:
        raise ServeError(f"{exc}; `deblur serve` needs PyTriton: pip install 'deblur-sdk[serve]'") from None
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = Path(pytriton.__file__).parent / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServeError(f"this PyTriton has no Python-backend stub for Python {version} ({stub} missing); "
                         "run the server with a Python that PyTriton supports")
    return stub


def interpreter_library() -> Path | None:
    """This interpreter's own ``libpython3.X.so.1.0``, or None when it was built without one (static)."""
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or not libdir or not soname:
        return None
    path = Path(libdir) / soname
    return path if path.is_file() else None


def resolved_library(stub: Path, env: dict[str, str]) -> Path | None:
    """The libpython the stub loads under ``env`` (from ``ldd``); None when ldd cannot tell."""
    if shutil.which("ldd") is None:
        return None
    try:
        out = subprocess.run(["ldd", str(stub)], capture_output=True, text=True, timeout=30, env=env).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        name, _, rest = line.strip().partition(" => ")
        if name.startswith("libpython"):
            target = rest.split(" (")[0].strip()
            return Path(target) if target and target != "not found" else Path("not found")
    return None


def stub_library_path(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment under which the stub loads this interpreter's libpython; ServeError when none does.

    Returns a copy of ``env`` (default ``os.environ``) with the interpreter's library folder first on
    ``LD_LIBRARY_PATH`` (PyTriton appends its own libraries after whatever is there).
    """
    env = dict(os.environ if env is None else env)
    stub = stub_path()
    own = interpreter_library()
    if own is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join([str(own.parent)] + [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    loaded = resolved_library(stub, env)
    if own is not None and (loaded is None or os.path.realpath(loaded) == os.path.realpath(own)):
        return env
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = "no libpython at all" if loaded in (None, Path("not found")) else f"{loaded}"
    raise ServeError(
        f"PyTriton's Python-backend stub needs this interpreter's own libpython{version}.so.1.0, and "
        f"{sys.executable} (Python {sys.version.split()[0]}) has none: it would load {found}, whose standard "
        "library differs (the stub then fails with \"'_thread.RLock' object has no attribute '_recursion_count'\"). "
        f"Run the server from a virtualenv of the system Python: /usr/bin/python{version} -m venv ~/deblur-serve && "
        "~/deblur-serve/bin/pip install 'deblur-sdk[serve]' && ~/deblur-serve/bin/deblur serve "
        f"(on Debian/Ubuntu: apt install python{version}-venv libpython{version}), or use a Python built with "
        "--enable-shared")


# ---------------------------------------------------------------------------------------- the model
class FrameModel:
    """One Triton model instance: a batch of same-size uint8 BGR frames -> the deblurred batch."""

    def __init__(self, deblurrer: Any) -> None:
        self.deblurrer = deblurrer

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        # Triton has already checked dtype (uint8), rank and the 3 channels against the model config.
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames of shape (N, H, W, 3), got {frames.dtype} {frames.shape}")
        if frames.shape[1] == 0 or frames.shape[2] == 0:
            raise ValueError(f"empty frame: height x width is {frames.shape[1]}x{frames.shape[2]}")
        results = self.deblurrer.process_batch(list(frames))
        return {OUTPUT: np.stack(results)}


def describe(deblurrer: Any, options: ServeOptions) -> dict[str, Any]:
    """What ``<name>-info`` answers: the manifest and how the server runs it."""
    info = deblurrer.info
    return {"manifest": json.loads(info.manifest.to_json()), "manifest_source": info.manifest_source,
            "model": info.model, "backend": info.backend, "device": info.device, "precision": info.precision,
            "max_batch": options.max_batch, "instances": options.instances,
            "queue_delay_us": options.queue_delay_us}


def open_deblurrers(options: ServeOptions) -> list[Any]:
    from ..deblurrer import Deblurrer

    backend_options = dict(options.deblurrer_options)
    if options.threads is not None:
        backend_options["threads"] = options.threads
    deblurrers: list[Any] = []
    try:
        for _ in range(options.instances):
            deblurrers.append(Deblurrer(options.model, backend=options.backend, device=options.device,
                                        **backend_options))
    except BaseException:
        for d in deblurrers:
            d.close()
        raise
    return deblurrers


def serve(options: ServeOptions, *, ready: Callable[[str, str], None] | None = None,
          stop: threading.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set); ``ready(http_url, grpc_url)`` once requests are accepted."""
    options.validate()
    env = stub_library_path()
    os.environ["LD_LIBRARY_PATH"] = env.get("LD_LIBRARY_PATH", "")   # read by PyTriton when it starts tritonserver
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonConfig, TritonSecurityConfig

    deblurrers = open_deblurrers(options)
    info_json = json.dumps(describe(deblurrers[0], options)).encode()

    def info_fn(requests: list[Any]) -> list[dict[str, np.ndarray]]:
        return [{INFO_OUTPUT: np.array([info_json], dtype=object)} for _ in requests]

    config = TritonConfig(
        http_address=options.host, http_port=options.http_port, grpc_address=options.host,
        grpc_port=options.grpc_port, allow_metrics=options.metrics_port is not None,
        metrics_address=options.host if options.metrics_port is not None else None,
        metrics_port=options.metrics_port, exit_timeout_secs=5)
    # Statistics stay readable without PyTriton's token: they are how clients see the batches formed.
    security = TritonSecurityConfig(restricted_endpoints=[e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"])
    stop = stop or threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    triton = None
    try:
        triton = Triton(config=config, security_config=security)
        triton.bind(
            model_name=options.name,
            infer_func=[batch(FrameModel(d)) for d in deblurrers],
            inputs=[Tensor(name=INPUT, dtype=np.uint8, shape=(-1, -1, 3))],
            outputs=[Tensor(name=OUTPUT, dtype=np.uint8, shape=(-1, -1, 3))],
            config=ModelConfig(max_batch_size=options.max_batch, batcher=DynamicBatcher(
                max_queue_delay_microseconds=options.queue_delay_us)),
            strict=True)
        triton.bind(
            model_name=options.name + INFO_SUFFIX, infer_func=info_fn,
            inputs=[Tensor(name=INFO_INPUT, dtype=np.uint8, shape=(1,))],
            outputs=[Tensor(name=INFO_OUTPUT, dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=False))
        triton.run()
        if ready is not None:
            ready(*options.urls())
        while not stop.wait(0.5):
            if not triton.is_alive():
                raise ServeError("Triton Inference Server stopped unexpectedly; see its log above")
    finally:
        if triton is not None:
            triton.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for d in deblurrers:
            d.close()

"""Start ``deblur serve`` in a child process, wait for its ready line, stop it (tests, benchmarks, scripts).

Example::

    >>> with ServerProcess(["--max-batch", "8"], http_port=18000, grpc_port=18001) as server:
    ...     deblur = sdk.RemoteDeblurrer(server.grpc_url)
    ...     sharp = deblur.process(frame)

The server runs under ``python`` (default ``$DEBLUR_SERVE_PYTHON``, else this interpreter): PyTriton
needs NumPy < 2, so it often lives in a virtualenv of its own. The child gets its own process group,
so :meth:`ServerProcess.kill` takes ``tritonserver`` and its Python stubs down with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

READY = "deblur serve: ready"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve_python() -> str:
    return os.environ.get("DEBLUR_SERVE_PYTHON") or sys.executable


class ServerProcess:
    """``python -m sdk.cli serve ARGS`` on 127.0.0.1; :meth:`start` returns once it is ready."""

    def __init__(self, args: Sequence[str] = (), *, http_port: int | None = None, grpc_port: int | None = None,
                 python: str | None = None, env: dict[str, str] | None = None, start_timeout: float = 120.0,
                 cpu: int | None = None) -> None:
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.args = ["--host", "127.0.0.1", "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
                     "--metrics-port", "0", *args]
        self.python = python or serve_python()
        self.env = env
        self.start_timeout = start_timeout
        self.cpu = cpu
        self.process: subprocess.Popen[str] | None = None
        self.log: deque[str] = deque(maxlen=200)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def grpc_url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> ServerProcess:
        env = dict(os.environ if self.env is None else self.env)
        root = str(Path(__file__).resolve().parents[2])   # this checkout, ahead of any installed copy
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        command = [self.python, "-m", "sdk.cli", "serve", *self.args]
        if self.cpu is not None:
            command = ["taskset", "-c", str(self.cpu), *command]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=env, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with {self.process.returncode}" if self.process.poll() is not None
                       else f"not ready after {self.start_timeout:g} s")
                self.kill()
                tail = "\n".join(list(self.log)[-25:])
                raise RuntimeError(f"deblur serve {why}: {' '.join(command)}\n{tail}")
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:   # drained to the end: a full pipe would stall the server
            self.log.append(line.rstrip())
            if line.startswith(READY):
                self._ready.set()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as a service manager would; SIGKILL to the whole group if it has not stopped in ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self._reap_group()
        if self._reader is not None:
            self._reader.join(5)      # the server's last lines are in the log when stop() returns
        return code

    def kill(self) -> None:
        """SIGKILL the server and everything it started (a crash, as the clients see it)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)

    def _reap_group(self) -> None:
        # tritonserver and its stubs share the group; none may outlive the server.
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(1.0)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""What ``deblur serve`` and :class:`sdk.RemoteDeblurrer` agree on: tensor names, dtypes, URLs.

Frames travel as uint8 ``(N, H, W, 3)`` BGR, the camera's own format: a quarter of float32's bytes,
and the server runs the SDK's one pre/post-processing path, so a remote frame equals a local one.
Triton's dynamic batcher joins requests only when their shapes match, so a batch is always frames
of one size.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_MODEL_NAME = "deblur"
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_PORT = 8001
INPUT = "frames"              # uint8 (N, H, W, 3) BGR
OUTPUT = "deblurred"          # uint8 (N, H, W, 3) BGR, the same size
INFO_SUFFIX = "-info"         # a second model, "<name>-info", answers what runs on the server
INFO_INPUT = "query"          # uint8 (1,), ignored: Triton needs an input to run a model
INFO_OUTPUT = "info"          # bytes (1,): JSON with the manifest and the server's backend
PROTOCOLS = ("grpc", "http")
SCHEMES = tuple(f"{p}://" for p in PROTOCOLS)


def is_remote_model(model: object) -> bool:
    """True for ``grpc://...`` and ``http://...`` model strings (what ``deblur run --model`` hands on)."""
    return isinstance(model, str) and model.lower().startswith(SCHEMES)


@dataclass(frozen=True)
class ModelURL:
    """``grpc://host:8001/deblur`` split into what tritonclient needs."""

    protocol: str   # "grpc" or "http"
    host: str
    port: int
    model: str

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol}://{self.address}/{self.model}"


def parse_model_url(url: str, model: str | None = None) -> ModelURL:
    """``grpc://host:8001/deblur`` or ``http://host:8000`` (+ ``model``) -> :class:`ModelURL`.

    The port defaults to Triton's (8001 gRPC, 8000 HTTP); the model to the URL's path, then ``model``,
    then ``"deblur"``. A model named both in the path and in ``model`` must agree.

    Example::

        >>> parse_model_url("grpc://10.0.0.5:8001/deblur")
        ModelURL(protocol='grpc', host='10.0.0.5', port=8001, model='deblur')
    """
    if not isinstance(url, str) or not is_remote_model(url):
        raise ValueError(f"a remote model URL looks like grpc://host:8001/deblur or http://host:8000/deblur, got {url!r}")
    parts = urlsplit(url)
    protocol = parts.scheme.lower()
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}; expected e.g. {protocol}://127.0.0.1:"
                         f"{DEFAULT_GRPC_PORT if protocol == 'grpc' else DEFAULT_HTTP_PORT}/deblur")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    if port is None:
        port = DEFAULT_GRPC_PORT if protocol == "grpc" else DEFAULT_HTTP_PORT
    path = parts.path.strip("/")
    if "/" in path or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: the path is the model's name, one segment (e.g. /deblur), without ?query or #")
    if path and model and path != model:
        raise ValueError(f"{url!r} names model {path!r} but model={model!r} was passed")
    return ModelURL(protocol, parts.hostname, port, path or model or DEFAULT_MODEL_NAME)

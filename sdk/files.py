"""Files the SDK writes and reads: one atomic write, one cache folder, one list of image suffixes.

Standard library only, so that the manifest, training checkpoints and the exporters can all use it
without loading the runtime.

Example::

    >>> from sdk.files import atomic_write, cache_dir
    >>> atomic_write("model.engine", engine_bytes)                  # all or nothing, 0644 under umask 022
    >>> with atomic_write("best.pt") as tmp: torch.save(state, tmp)    # a writer that wants a path
    >>> cache_dir("ort-tensorrt")                                     # $DEBLUR_CACHE/ort-tensorrt
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

# The image files every reader and writer of the SDK accepts (OpenCV reads and writes all of them).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
CACHE_ENV = "DEBLUR_CACHE"

_umask_lock = threading.Lock()


def cache_dir(*parts: str) -> Path:
    """``$DEBLUR_CACHE/<parts>`` (default ``~/.cache/deblur-sdk``): engines, compiled models; not created here."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "deblur-sdk"
    return Path(root, *parts)


def _umask() -> int:
    with _umask_lock:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


class atomic_write(contextlib.AbstractContextManager):  # noqa: N801 - used like a function
    """Write ``path`` all or nothing: a temporary file in the same folder, fsync, then rename over ``path``.

    Called with ``data`` (bytes or str) it writes at once. Used as a context manager (no ``data``) it
    yields the temporary path for writers that take a path (``torch.save``, ``onnx.save``,
    ``openvino.save_model``); the rename happens when the block ends without an exception. The file gets
    the permissions a plain ``open()`` would give (0666 less the umask), not ``mkstemp``'s 0600, and
    a crash mid-write leaves the previous file intact.
    """

    def __init__(self, path: str | os.PathLike[str], data: bytes | str | None = None) -> None:
        self.path = Path(path)
        self._tmp: Path | None = None
        if data is not None:
            with self as tmp:
                tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(name)
        return self._tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        tmp, self._tmp = self._tmp, None
        if tmp is None:
            return
        if exc_type is not None:
            tmp.unlink(missing_ok=True)
            return
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with contextlib.suppress(OSError):  # the rename is durable once its folder is synced (not on Windows)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


"""The models shipped inside the package, by name: ``sdk.Deblurrer("small")`` opens ``sdk/models/small.onnx``.

Each bundled model is an ONNX file (what the runtime runs, no PyTorch needed); a source checkout also has,
beside it, the ``.pt`` checkpoint it was exported from (to fine-tune it: ``deblur train --init-from``).
``default`` is the fast edge model that ``sdk.Deblurrer()`` opens; ``sdk/models/MODEL_CARD.md`` describes each.

Example::

    >>> import sdk
    >>> sorted(sdk.bundled_models())
    ['default', 'small']
    >>> deblur = sdk.Deblurrer("small")          # the wider, slower, sharper model
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

DEFAULT_NAME = "default"
_MODEL_DIR = "models"


def _bundle_dir():   # a Traversable: the package may live in a wheel or a source checkout
    return resources.files("sdk") / _MODEL_DIR


def bundled_models() -> dict[str, Path]:
    """Name -> ONNX file of every model shipped in this installation (empty when none is)."""
    folder = _bundle_dir()
    if not folder.is_dir():
        return {}
    return {Path(item.name).stem: Path(str(item)) for item in sorted(folder.iterdir(), key=lambda i: i.name)
            if item.name.endswith(".onnx") and item.is_file()}


def bundled_model_path(name: str = DEFAULT_NAME, suffix: str = ".onnx") -> Path:
    """The file of bundled model NAME: its ONNX, or with ``suffix=".pt"`` the checkpoint it came from.

    Raises FileNotFoundError naming the models this installation has when NAME is not one of them.
    """
    if suffix not in (".onnx", ".pt"):
        raise ValueError(f"suffix must be '.onnx' or '.pt', got {suffix!r}")
    ref = _bundle_dir() / f"{name}{suffix}"
    if not ref.is_file():
        have = ", ".join(bundled_models()) or "none"
        raise FileNotFoundError(
            f"the bundled model {name!r} (sdk/models/{name}{suffix}) is not in this installation (bundled: {have}); "
            "pass a model path instead, e.g. sdk.Deblurrer('model.onnx')")
    return Path(str(ref))


def default_model_path() -> Path:
    """The bundled default model, ``sdk/models/default.onnx``; FileNotFoundError when this install lacks it."""
    return bundled_model_path(DEFAULT_NAME)


def is_bundled_name(model: str | os.PathLike[str]) -> bool:
    """True for a bare name (no folder, no suffix) that is not a file here: it can only mean a bundled model."""
    text = os.fspath(model)
    path = Path(text)
    return bool(text) and path.name == text and not path.suffix and not path.exists()


def bundled_name(model: str | os.PathLike[str] | None) -> str | None:
    """``model`` itself when it is the bare name of a model bundled here (see :func:`is_bundled_name`), else None."""
    if model is None or not is_bundled_name(model):
        return None
    name = os.fspath(model)
    return name if name in bundled_models() else None


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """The file a model argument means: ``None`` is the default model, an existing file or a path with a
    suffix is itself, and a bare name such as ``"small"`` is the bundled model of that name.

    A bare name that is neither a file nor bundled raises FileNotFoundError listing the bundled names,
    rather than leaving a backend to fail on a file called ``small``.
    """
    if model is None:
        return default_model_path()
    if is_bundled_name(model):
        return bundled_model_path(os.fspath(model))
    return Path(model)

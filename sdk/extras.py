"""The one error for a feature whose optional dependencies (a ``pip install`` extra) are missing.

Example::

    >>> raise missing_extra("`deblur export`", "train", ModuleNotFoundError("No module named 'torch'"))
    ImportError: `deblur export` needs the train extra (No module named 'torch'): pip install 'deblur-sdk[train]'
"""

from __future__ import annotations


def missing_extra(feature: str, extra: str = "train", cause: BaseException | None = None, *,
                  alternative: str = "") -> ImportError:
    """An ImportError saying that ``feature`` needs ``pip install 'deblur-sdk[<extra>]'`` (raise it ``from None``)."""
    why = f" ({cause})" if cause is not None else ""
    tail = f", {alternative}" if alternative else ""
    return ImportError(f"{feature} needs the {extra} extra{why}: pip install 'deblur-sdk[{extra}]'{tail}")

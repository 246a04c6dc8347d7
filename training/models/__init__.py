"""The model zoo: paper-faithful networks and edge variants, built by name.

Example::

    >>> from training.models import build, list_models
    >>> net = build("rdafnet-single")
"""

from .base import DeblurNet
from .padding import forward_padded, pad_to_multiple
from .registry import build, from_official, list_models, register, spec

# Importing an architecture module registers its models.
from . import rdafnet  # noqa: E402,F401  isort: skip
from . import msan  # noqa: E402,F401  isort: skip
from . import dsanet  # noqa: E402,F401  isort: skip
from . import bag  # noqa: E402,F401  isort: skip

__all__ = ["DeblurNet", "build", "forward_padded", "from_official", "list_models", "pad_to_multiple", "register", "spec"]

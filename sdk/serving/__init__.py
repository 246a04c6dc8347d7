"""Serving many cameras from one GPU box: ``deblur serve`` (Triton via PyTriton) and :class:`RemoteDeblurrer`.

Importing this package needs neither PyTriton nor tritonclient: the server imports PyTriton when it
starts, the client imports tritonclient when it connects.
"""

from .protocol import ModelURL, is_remote_model, parse_model_url
from .remote import RemoteDeblurrer, RemoteError, ServerUnavailableError

__all__ = ["ModelURL", "RemoteDeblurrer", "RemoteError", "ServerUnavailableError", "is_remote_model", "parse_model_url"]

"""deblur-sdk runtime: run a deblurring network (.engine, .onnx or .pt) on frames and streams.

Imports only NumPy, OpenCV and ONNX Runtime: a robot needs no PyTorch to run an engine.
"""

from .manifest import Manifest, ManifestError

__version__ = "0.1.0"

__all__ = ["Manifest", "ManifestError", "__version__"]

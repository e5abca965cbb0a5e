"""The exported model folder's format: its ``manifest.json`` and the error for a folder that is
not usable. Neither torch nor onnx, except :mod:`.input_box` (the encoders' image shape), which
reads the model's preprocessing geometry and is imported on its own.

Its own package because two sides read it: :mod:`sam_moelora_ros.export` writes folders in this
format and :mod:`sam_moelora_ros.inference.onnx_backend` loads them. Export imports inference (to
run what it wrote), so the format living in either would make the two import each other.
"""

from .errors import ExportError
from .manifest import FORMAT, FORMAT_VERSION, MANIFEST, Manifest

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "ExportError", "Manifest"]

"""Fixtures of this folder: the tiny model exported to ONNX (``onnx_helpers.tiny_export``)."""

from onnx_helpers import tiny_export

__all__ = ["tiny_export"]

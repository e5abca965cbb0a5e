"""The error of the ONNX export and of an exported folder (export/ writes, inference/ reads)."""

from __future__ import annotations

from sam_moelora_ros.errors import SamMoeLoraError


class ExportError(SamMoeLoraError):
    """A model cannot be exported, or an exported folder is unusable (the message says why)."""

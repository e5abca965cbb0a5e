"""The export subpackage's error type."""

from __future__ import annotations


class ExportError(Exception):
    """A model cannot be exported, or an exported folder is unusable (the message says why)."""

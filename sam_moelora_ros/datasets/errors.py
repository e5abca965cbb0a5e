"""Errors raised by the dataset readers; each message names the input, the problem and the fix."""

from __future__ import annotations

from sam_moelora_ros.errors import SamMoeLoraError


class DatasetError(SamMoeLoraError, ValueError):
    """A dataset folder is malformed or a selection is invalid (the message says how to fix it)."""

"""Errors raised by the model package; each message names the input, the problem and the fix."""

from __future__ import annotations


class ModelConfigError(ValueError):
    """A model configuration value is invalid (the message names the field)."""


class CheckpointError(RuntimeError):
    """A SAM checkpoint or an adapter file cannot be used (the message names the file)."""

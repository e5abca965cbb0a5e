"""Errors raised by the model package; each message names the input, the problem and the fix."""

from __future__ import annotations

from sam_moelora_ros.errors import SamMoeLoraError


class ModelConfigError(SamMoeLoraError, ValueError):
    """A model configuration value is invalid (the message names the field)."""


class CheckpointError(SamMoeLoraError, RuntimeError):
    """A SAM checkpoint or an adapter file cannot be used (the message names the file)."""


class SamCheckpointError(CheckpointError):
    """The official SAM checkpoint (not the adapter) cannot be used (the message names the file).

    A subclass, so callers that configure the two files separately (the node's
    ``model.sam_checkpoint`` and ``model.adapter``) can say which one to fix.
    """

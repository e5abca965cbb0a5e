"""Where the default model comes from when no adapter is given (node, replay, demo), and the
checks of the model files a Segmenter is loaded from (:func:`model_files`).

The package ships ``sam_moelora_ros/models/default_tiny.safetensors``; a deployment (or a test)
may point ``$SAM_MOELORA_ROS_DEFAULT_MODEL`` at another file instead, e.g. a site-wide model, so
that launch files need no ``model.adapter``. Kept apart from the Segmenter so the lookup is one
small function that the node, the replay tools and the demo share.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from sam_moelora_ros.inference.device import SegmenterError

__all__ = [
    "DEFAULT_MODEL_ENV",
    "DEFAULT_MODEL_RESOURCE",
    "default_adapter_path",
    "default_model_location",
    "model_files",
]

DEFAULT_MODEL_RESOURCE = ("models", "default_tiny.safetensors")
"""Where the package's shipped default adapter lives (inside ``sam_moelora_ros``)."""
DEFAULT_MODEL_ENV = "SAM_MOELORA_ROS_DEFAULT_MODEL"
"""Environment variable that, when set, replaces the shipped default model's path (a site-wide
model without a ``model.adapter`` in every launch file; tests point it at a missing file)."""


def default_adapter_path() -> Path | None:
    """The default adapter, or None when there is none.

    ``$SAM_MOELORA_ROS_DEFAULT_MODEL`` when set (:data:`DEFAULT_MODEL_ENV`), else the shipped
    ``sam_moelora_ros/models/default_tiny.safetensors``.
    """
    override = os.environ.get(DEFAULT_MODEL_ENV)
    if override:
        path = Path(override).expanduser()
        return path if path.is_file() else None
    try:
        resource = importlib.resources.files("sam_moelora_ros").joinpath(
            "/".join(DEFAULT_MODEL_RESOURCE)
        )
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - broken install
        return None
    path = Path(str(resource))
    return path if path.is_file() else None


def default_model_location() -> str:
    """Where :func:`default_adapter_path` looks, for messages: the override or the package path."""
    return (
        os.environ.get(DEFAULT_MODEL_ENV) or f"sam_moelora_ros/{'/'.join(DEFAULT_MODEL_RESOURCE)}"
    )


def model_files(
    adapter: str | Path | None, sam_checkpoint: str | Path | None
) -> tuple[Path, Path | None]:
    """The adapter file (None or '': the default model) and the SAM checkpoint (None or '': none)
    to load, checked to exist; :class:`SegmenterError` naming the input otherwise."""
    if adapter in (None, ""):
        shipped = default_adapter_path()
        if shipped is None:
            raise SegmenterError(
                "no model given and there is no default model (looked for "
                f"{default_model_location()}); pass "
                "the path of an adapter .safetensors file (written by save_adapter / training)",
                input_name="adapter",
            )
        adapter = shipped
    adapter_path = Path(adapter).expanduser()
    if not adapter_path.exists():
        raise SegmenterError(
            f"adapter file {str(adapter_path)!r} does not exist", input_name="adapter"
        )
    checkpoint: Path | None = None
    if sam_checkpoint not in (None, ""):
        checkpoint = Path(str(sam_checkpoint)).expanduser()
        if not checkpoint.exists():
            raise SegmenterError(
                f"SAM checkpoint {str(checkpoint)!r} does not exist",
                input_name="sam_checkpoint",
            )
    return adapter_path, checkpoint

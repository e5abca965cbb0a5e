"""Offline training of the MoE-LoRA SAM segmentor: config, loop, torchrun DDP, evaluation.

Run as ``sam_moelora_ros.training`` (which works from any folder; a bare ``training`` outside the
checkout is SAM 2's own trainer); the config paths are relative to the repository root::

    python -m sam_moelora_ros.training.train --config training/configs/synthetic_tiny.yaml
    torchrun --nproc_per_node=4 -m sam_moelora_ros.training.train \
        --config training/configs/deliver_vit_b.yaml
    python -m sam_moelora_ros.training.evaluate --adapter runs/x/checkpoints/best.safetensors \
        --data ROOT

Dataset readers, augmentation and metrics live in ``sam_moelora_ros`` (the node and the
evaluation use them too); this package holds only what training itself needs. See
``docs/training.md``.
"""

from __future__ import annotations

from .config import TrainConfig, TrainConfigError
from .dropout import sample_modalities

__all__ = ["TrainConfig", "TrainConfigError", "sample_modalities"]

"""A tiny random model and random frames for the Segmenter tests (test_inference*.py)."""

from __future__ import annotations

import numpy as np
import torch

from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor

MODALITIES = ("rgb", "depth", "event", "lidar")


def tiny_model(num_classes: int = 25, seed: int = 0, **overrides) -> MoELoRASegmentor:
    """The ``tiny`` preset at 64 px, seeded, with non-zero LoRA B so the experts matter."""
    torch.manual_seed(seed)
    cfg = ModelConfig.preset("tiny", num_classes=num_classes).replace(image_size=64, **overrides)
    model = MoELoRASegmentor(cfg)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    return model


def frame(h: int = 48, w: int = 64, names=MODALITIES, seed: int = 0) -> dict[str, np.ndarray]:
    """Random ``h x w x 3`` uint8 network images for ``names``."""
    rng = np.random.default_rng(seed)
    return {n: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for n in names}

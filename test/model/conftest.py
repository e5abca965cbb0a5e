"""Small models shared by the model tests (the ``tiny`` preset at a CPU-friendly size)."""

from __future__ import annotations

import pytest
import torch

from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor

SMALL = {"image_size": 64, "window_size": 4}


def small_config(**overrides) -> ModelConfig:
    values = {"num_classes": 5, **SMALL, **overrides}
    return ModelConfig.preset("tiny", **values)


def perturb_lora(model: MoELoRASegmentor, seed: int = 0) -> None:
    """Give every LoRA ``B`` non-zero values, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.encoder.lora_layers:
            for expert in layer.experts.values():
                expert.lora_B.copy_(torch.randn(expert.lora_B.shape, generator=gen) * 0.05)


@pytest.fixture()
def small_model() -> MoELoRASegmentor:
    torch.manual_seed(0)
    return MoELoRASegmentor(small_config()).eval()


def random_inputs(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    size = cfg.image_size
    return {m: torch.randn(batch, 3, size, size, generator=gen) for m in cfg.modalities}

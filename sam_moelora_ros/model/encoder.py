"""SAM's ViT image encoder, frozen, with a mixture of per-modality LoRA experts injected.

The encoder is ``segment_anything``'s own :class:`ImageEncoderViT` (so official checkpoints load
key for key); every block's fused ``attn.qkv`` projection is wrapped in a
:class:`~sam_moelora_ros.model.lora.MoELoRALinear`. Each modality also has a light trainable
stem (a 1x1 convolution initialised to the identity) in front of the shared patch embedding, so a
fresh adapter reproduces frozen SAM exactly.

Every present modality goes through the encoder in **one** batched call (modality-major along
the batch dimension); a missing modality is simply not in the batch and costs nothing. The
encoder returns the outputs of the configured ``tap_layers`` blocks for multi-scale fusion.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT
from torch import nn

from .config import ModelConfig
from .lora import MoELoRALinear


class IdentityStem(nn.Module):
    """Per-modality 1x1 colour mixing, initialised to the identity (trainable)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.mix = nn.Conv2d(channels, channels, kernel_size=1)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            self.mix.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x)


def build_sam_vit(cfg: ModelConfig) -> ImageEncoderViT:
    """The frozen ViT exactly as ``segment_anything.build_sam`` builds it, at ``cfg.image_size``."""
    return ImageEncoderViT(
        depth=cfg.depth,
        embed_dim=cfg.embed_dim,
        img_size=cfg.image_size,
        mlp_ratio=cfg.mlp_ratio,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=cfg.num_heads,
        patch_size=cfg.patch_size,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=tuple(cfg.global_attn_indexes),
        window_size=cfg.window_size,
        out_chans=cfg.out_chans,
    )


class MoELoRAEncoder(nn.Module):
    """Frozen SAM ViT + per-modality stems and LoRA experts.

    Attributes:
        vit: the ``ImageEncoderViT`` (frozen; its qkv layers wrapped with experts).
        stems: modality -> :class:`IdentityStem` (trainable).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vit = build_sam_vit(cfg)
        for param in self.vit.parameters():
            param.requires_grad_(False)
        self.lora_layers: list[MoELoRALinear] = []
        for block in self.vit.blocks:
            layer = MoELoRALinear(
                block.attn.qkv,
                modalities=cfg.modalities,
                rank=cfg.lora_rank,
                alpha=cfg.lora_alpha,
                targets=cfg.lora_targets,
            )
            block.attn.qkv = layer
            self.lora_layers.append(layer)
        self.stems = nn.ModuleDict({m: IdentityStem() for m in cfg.modalities})

    def frozen_state_dict(self) -> dict[str, torch.Tensor]:
        """The frozen weights under their official SAM names (``image_encoder.`` prefix)."""
        out = {}
        for name, tensor in self.vit.state_dict().items():
            if ".experts." in name:
                continue
            out["image_encoder." + name.replace(".base_layer.", ".")] = tensor
        return out

    def set_active(self, modalities: tuple[str, ...]) -> None:
        for layer in self.lora_layers:
            layer.set_active(modalities)

    def forward(
        self, inputs: Mapping[str, torch.Tensor], modalities: tuple[str, ...]
    ) -> list[torch.Tensor]:
        """Run the present modalities through the encoder in one batch.

        Args:
            inputs: modality -> ``B x 3 x S x S`` normalised image.
            modalities: the present modalities, in the order to stack them.
        Returns:
            One tensor per tap layer, ``M x B x C x h x w`` (M = len(modalities)).
        """
        batch = inputs[modalities[0]].shape[0]
        x = torch.cat([self.stems[m](inputs[m]) for m in modalities], dim=0)
        self.set_active(modalities)
        try:
            x = self.vit.patch_embed(x)
            if self.vit.pos_embed is not None:
                x = x + self.vit.pos_embed
            taps = []
            for index, block in enumerate(self.vit.blocks):
                x = block(x)
                if index in self.cfg.tap_layers:
                    taps.append(x)
                if index == self.cfg.tap_layers[-1]:
                    break  # later blocks feed nothing
        finally:
            self.set_active(())
        num = len(modalities)
        return [
            t.permute(0, 3, 1, 2).reshape(num, batch, t.shape[3], t.shape[1], t.shape[2])
            for t in taps
        ]

    def neck(self, features: torch.Tensor) -> torch.Tensor:
        """SAM's frozen neck: ``B x C x h x w`` block features -> ``B x out_chans x h x w``."""
        return self.vit.neck(features)

    def merge_lora(self) -> None:
        for layer in self.lora_layers:
            layer.merge()

    def unmerge_lora(self) -> None:
        for layer in self.lora_layers:
            layer.unmerge()

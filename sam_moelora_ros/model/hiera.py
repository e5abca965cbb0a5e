"""SAM 2's Hiera image encoder (the paper's backbone), frozen, with per-modality LoRA experts.

Built from ``sam2``'s own modules (``Hiera`` trunk, ``FpnNeck``, ``ImageEncoder`` with
``scalp=1``) with the hyper-parameters of its packaged SAM 2.1 configs, so official checkpoints
(``sam2.1_hiera_base_plus.pt``: ``{"model": {...}}``) load key for key. LoRA experts sit on the
Q and V parts of every Hiera block's ``attn.qkv`` (as in the sister work MemorySAM).

Multi-scale: the router fuses the three FPN levels SAM 2 keeps (``backbone_fpn`` at strides 4,
8 and 16, ``out_chans`` = 256 channels each). The stride-16 level is the mask decoder's image
embedding (SAM 2's ``vision_features``); the stride-8 and stride-4 levels are its
high-resolution features, through the decoder's ``conv_s1`` / ``conv_s0`` equivalents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .backbone import MoELoRABackbone
from .config import ModelConfig


def build_sam2_hiera(cfg: ModelConfig) -> nn.Module:
    """SAM 2's ``ImageEncoder`` (Hiera trunk + FPN neck, scalp 1) for a ``sam2_hiera`` config."""
    # Imported here, not at the top: only Hiera presets need sam2, so a ViT model never loads it.
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine

    trunk = Hiera(
        embed_dim=cfg.embed_dim,
        num_heads=cfg.num_heads,
        stages=tuple(cfg.hiera_stages),
        global_att_blocks=tuple(cfg.global_attn_indexes),
        window_spec=tuple(cfg.hiera_window_spec),
        window_pos_embed_bkg_spatial_size=tuple(cfg.hiera_pos_embed_size),
    )
    neck = FpnNeck(
        position_encoding=PositionEmbeddingSine(
            num_pos_feats=cfg.out_chans, normalize=True, scale=None, temperature=10000
        ),
        d_model=cfg.out_chans,
        backbone_channel_list=list(trunk.channel_list),
        fpn_top_down_levels=[2, 3],
        fpn_interp_model="nearest",
    )
    return ImageEncoder(trunk=trunk, neck=neck, scalp=1)


class HieraMoELoRAEncoder(MoELoRABackbone):
    """Frozen SAM 2 image encoder (``self.hiera``) + per-modality stems and LoRA experts.

    Args:
        cfg: a ``sam2_hiera`` config.
        encoder: the finished ``ImageEncoder``, as :func:`build_sam2_hiera` builds it for ``cfg``
            (frozen here).
    """

    sam_attr = "hiera"
    hiera: Any  # SAM 2's ImageEncoder (untyped), registered by MoELoRABackbone under ``sam_attr``

    def __init__(self, cfg: ModelConfig, encoder: nn.Module) -> None:
        super().__init__(cfg, encoder, encoder.trunk.blocks)  # type: ignore[union-attr,arg-type]
        self.level_channels = (cfg.out_chans,) * 3
        # The decoder's high-resolution inputs are the fused FPN levels at strides 8 and 4.
        self.high_res_channels = cfg.out_chans

    def forward(
        self, inputs: Mapping[str, torch.Tensor], modalities: tuple[str, ...]
    ) -> list[torch.Tensor]:
        """Present modalities through Hiera + FPN in one batch.

        Returns:
            The FPN levels at strides 4, 8, 16, each ``M x B x out_chans x h x w``.
        """
        batch = inputs[modalities[0]].shape[0]
        x = self.stack_inputs(inputs, modalities)
        self.set_active(modalities)
        try:
            features, _ = self.hiera.neck(self.hiera.trunk(x))
        finally:
            self.set_active(())
        kept = features[: len(features) - self.hiera.scalp]
        return [f.reshape(len(modalities), batch, *f.shape[1:]) for f in kept]

    def decoder_inputs(
        self, fused: list[torch.Tensor], pyramid: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The fused stride-16 level as the embedding; fused strides 8 and 4 as high-res."""
        return fused[2], fused[1], fused[0]

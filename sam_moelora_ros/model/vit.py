"""SAM 1's ViT image encoder, frozen, with a mixture of per-modality LoRA experts injected.

The encoder is ``segment_anything``'s own :class:`ImageEncoderViT` (so official checkpoints load
key for key). SAM 1's ViT is single-scale, so multi-scale fusion taps the outputs of the
configured ``tap_layers`` blocks (all at stride 16); the segmentor turns the fused taps into a
pyramid, and SAM's frozen neck turns the last fused tap into the mask decoder's image embedding.

Content-only input (``input_geometry: content``): the encoder takes any ``H x W`` whose token
grid fits; the absolute position embeddings (learned for the ``image_size`` square) are
interpolated bicubically to the input's grid, as ViTs do at a new resolution, and the
global-attention blocks' relative position tables are interpolated by SAM's own ``get_rel_pos``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT
from torch import nn

from .backbone import MoELoRABackbone
from .config import ModelConfig

__all__ = ["MoELoRAEncoder", "build_sam_vit"]


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


def position_embedding(pos_embed: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """SAM's ``1 x G x G x C`` position embeddings at a ``height x width`` token grid.

    The square grid is returned as it is (letterboxed input: bit-identical to SAM); any other
    grid gets the square interpolated bicubically onto it.
    """
    if tuple(pos_embed.shape[1:3]) == (height, width):
        return pos_embed
    grid = pos_embed.permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1)


class MoELoRAEncoder(MoELoRABackbone):
    """Frozen SAM ViT (``self.vit``) + per-modality stems and LoRA experts.

    Args:
        cfg: a ``sam_vit`` config.
        vit: the finished ViT, as :func:`build_sam_vit` builds it for ``cfg`` (frozen here).
    """

    sam_attr = "vit"
    vit: ImageEncoderViT  # registered by MoELoRABackbone under ``sam_attr``

    def __init__(self, cfg: ModelConfig, vit: ImageEncoderViT) -> None:
        super().__init__(cfg, vit, vit.blocks)
        self.level_channels = (cfg.embed_dim,) * len(cfg.tap_layers)
        # The decoder's high-resolution inputs are the pyramid's stride-8 and stride-4 levels.
        self.high_res_channels = cfg.pyramid_dim

    def forward(
        self, inputs: Mapping[str, torch.Tensor], modalities: tuple[str, ...]
    ) -> list[torch.Tensor]:
        """Run the present modalities through the encoder in one batch.

        Args:
            inputs: modality -> ``B x 3 x H x W`` normalised image (``S x S`` when letterboxed).
            modalities: the present modalities, in the order to stack them.
        Returns:
            One tensor per tap layer, ``M x B x C x h x w`` (M = len(modalities)).
        """
        batch = inputs[modalities[0]].shape[0]
        x = self.stack_inputs(inputs, modalities)
        self.set_active(modalities)
        try:
            x = self.vit.patch_embed(x)
            if self.vit.pos_embed is not None:
                x = x + position_embedding(self.vit.pos_embed, x.shape[1], x.shape[2])
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

    def decoder_inputs(
        self, fused: list[torch.Tensor], pyramid: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SAM's neck on the last fused tap; the pyramid's stride-8 and stride-4 levels."""
        return self.neck(fused[-1]), pyramid[1], pyramid[0]

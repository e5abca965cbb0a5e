"""Multi-scale pyramid, the auxiliary head and the semantic mask decoder (the dual-path decoder).

* :class:`SimplePyramid` turns the four fused ViT taps (all at stride 16) into a pyramid at
  strides 4, 8, 16, 32 (ViTDet's simple feature pyramid: deconvolutions up, pooling down), since
  SAM 1's ViT is single-scale (docs/method.md, "Fusion at several depths": features after
  evenly spaced blocks, built into a pyramid).
* :class:`FpnPyramid` does the same for SAM 2's Hiera, whose FPN already has strides 4-16.
* :class:`AuxHead` is a SegFormer-style all-MLP head over the whole pyramid; it supervises the
  multi-scale branch during training (loss weight ``aux_loss_weight``, 0.4).
* :class:`SemanticMaskDecoder` is SAM's mask decoder used without prompts for K classes: K
  learned class tokens attend to the image embedding through SAM's two-way transformer
  (initialised from the checkpoint's ``mask_decoder.transformer`` when shapes agree), and each
  class token becomes a dynamic 1x1 filter over the upscaled embedding. As in SAM 2's decoder,
  the upscaling path adds the high-resolution pyramid levels (strides 8 and 4). *Our choices:*
  one hypernetwork MLP shared by all class tokens (SAM has one per mask token; sharing keeps the
  head small when K is 25), no IoU head, and SAM's ``no_mask_embed`` (the dense embedding SAM
  uses when no mask prompt is given) added to the image embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.mask_decoder import MLP
from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom
from segment_anything.modeling.transformer import TwoWayTransformer
from torch import nn


class SimplePyramid(nn.Module):
    """Four stride-16 maps (``B x C x h x w``) -> ``B x D`` maps at strides 4, 8, 16, 32."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = max(in_channels // 4, out_channels)
        self.up4 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, mid, 2, stride=2),
            LayerNorm2d(mid),
            nn.GELU(),
            nn.ConvTranspose2d(mid, out_channels, 2, stride=2),
        )
        self.up2 = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.same = nn.Conv2d(in_channels, out_channels, 1)
        self.down2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(in_channels, out_channels, 1))
        self.outputs = nn.ModuleList(
            nn.Sequential(
                LayerNorm2d(out_channels),
                nn.Conv2d(out_channels, out_channels, 1, bias=False),
                LayerNorm2d(out_channels),
            )
            for _ in range(4)
        )

    def forward(self, taps: list[torch.Tensor]) -> list[torch.Tensor]:
        levels = [self.up4(taps[0]), self.up2(taps[1]), self.same(taps[2]), self.down2(taps[3])]
        return [out(level) for out, level in zip(self.outputs, levels, strict=True)]


class FpnPyramid(nn.Module):
    """SAM 2's three fused FPN levels (strides 4, 8, 16) -> four levels at strides 4-32.

    A 1x1 projection per level to the pyramid width, and the stride-32 level pooled from the
    stride-16 one, so the auxiliary head sees the same four-level pyramid for either backbone.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), LayerNorm2d(out_channels))
            for _ in range(3)
        )
        self.down2 = nn.MaxPool2d(2)

    def forward(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        out = [proj(level) for proj, level in zip(self.proj, levels, strict=True)]
        return [*out, self.down2(out[-1])]


class AuxHead(nn.Module):
    """SegFormer-style head: per-level 1x1 projection, upsample to stride 4, fuse, classify."""

    def __init__(self, in_channels: int, dim: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Conv2d(in_channels, dim, 1) for _ in range(4))
        self.fuse = nn.Sequential(
            nn.Conv2d(4 * dim, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout2d(dropout)
        self.classify = nn.Conv2d(dim, num_classes, 1)

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        """-> ``B x K x H/4 x W/4`` logits."""
        size = pyramid[0].shape[-2:]
        maps = [
            F.interpolate(proj(level), size=size, mode="bilinear", align_corners=False)
            if level.shape[-2:] != size
            else proj(level)
            for proj, level in zip(self.proj, pyramid, strict=True)
        ]
        return self.classify(self.dropout(self.fuse(torch.cat(maps, dim=1))))


class SemanticMaskDecoder(nn.Module):
    """SAM's mask decoder without prompts, one output mask per class (see module docstring).

    Args:
        dim: transformer width (SAM: 256, the image embedding's channels).
        num_classes: K, the number of class tokens / output masks.
        pyramid_dim: channels of the high-resolution features added while upscaling (the
            pyramid's for ViT; the FPN's for Hiera, so SAM 2's ``conv_s0``/``conv_s1`` load).
    """

    def __init__(
        self,
        *,
        dim: int,
        num_classes: int,
        pyramid_dim: int,
        depth: int = 2,
        num_heads: int = 8,
        mlp_dim: int = 2048,
    ) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer(
            depth=depth, embedding_dim=dim, num_heads=num_heads, mlp_dim=mlp_dim
        )
        self.pe_layer = PositionEmbeddingRandom(dim // 2)
        self.no_mask_embed = nn.Embedding(1, dim)
        self.class_tokens = nn.Embedding(num_classes, dim)
        # Same layout as SAM's ``output_upscaling`` (0: deconv, 1: LayerNorm2d, 3: deconv).
        self.upscale1 = nn.ConvTranspose2d(dim, dim // 4, 2, stride=2)
        self.upscale_norm = LayerNorm2d(dim // 4)
        self.upscale2 = nn.ConvTranspose2d(dim // 4, dim // 8, 2, stride=2)
        self.act = nn.GELU()
        self.high_res_s8 = nn.Conv2d(pyramid_dim, dim // 4, 1)
        self.high_res_s4 = nn.Conv2d(pyramid_dim, dim // 8, 1)
        self.hyper = MLP(dim, dim, dim // 8, 3)

    def forward(
        self, embedding: torch.Tensor, high_res_s8: torch.Tensor, high_res_s4: torch.Tensor
    ) -> torch.Tensor:
        """``embedding``: ``B x dim x h x w`` (stride 16) -> ``B x K x 4h x 4w`` class logits."""
        batch, _, height, width = embedding.shape
        src = embedding + self.no_mask_embed.weight.reshape(1, -1, 1, 1)
        pos = self.pe_layer((height, width)).unsqueeze(0).to(src.dtype)
        pos = pos.expand(batch, -1, -1, -1)
        tokens = self.class_tokens.weight.unsqueeze(0).expand(batch, -1, -1).to(src.dtype)
        hs, keys = self.transformer(src, pos, tokens)
        src = keys.transpose(1, 2).reshape(batch, -1, height, width)
        up = self.act(self.upscale_norm(self.upscale1(src) + self.high_res_s8(high_res_s8)))
        up = self.act(self.upscale2(up) + self.high_res_s4(high_res_s4))
        filters = self.hyper(hs)  # B x K x dim/8
        b, c, h, w = up.shape
        return (filters @ up.view(b, c, h * w)).view(b, -1, h, w)

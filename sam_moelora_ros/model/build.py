"""Builders: a :class:`~.config.ModelConfig` in, finished modules out.

In the style of ``segment_anything.build_sam``: one table, :data:`BACKBONE_BUILDERS`, maps each
backbone name (``ModelConfig.backbone``) to how that family is built, and the module classes
(:class:`~.vit.MoELoRAEncoder`, :class:`~.hiera.HieraMoELoRAEncoder`,
:class:`~.segmentor.MoELoRASegmentor`) take finished submodules rather than building their own.
Adding a backbone is one entry here, with no ``if backbone == ...`` anywhere else.

Why a module of its own: the backbone base class (:mod:`.backbone`) used to import its two
implementations lazily to build them, while they import it for the base class: an import cycle.
Here the dependencies point one way: ``build`` -> ``vit``/``hiera`` -> ``backbone`` -> ``config``.
The segmentor imports this module; this module never imports the segmentor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from torch import nn

from .backbone import MoELoRABackbone
from .config import ModelConfig
from .errors import ModelConfigError
from .heads import AuxHead, FpnPyramid, SemanticMaskDecoder, SimplePyramid
from .hiera import HieraMoELoRAEncoder, build_sam2_hiera
from .router import ModalityRouter
from .vit import MoELoRAEncoder, build_sam_vit

__all__ = [
    "BACKBONE_BUILDERS",
    "BackboneBuilder",
    "SegmentorParts",
    "backbone_builder",
    "build_backbone",
    "build_segmentor_parts",
]


@dataclass(frozen=True)
class BackboneBuilder:
    """How one backbone family is built: its MoE-LoRA encoder and the pyramid over its levels.

    The two go together because the pyramid's input is the encoder's fused levels (four ViT taps
    at stride 16, or Hiera's three FPN levels), and they are separate callables because the
    segmentor builds the routers in between (keeping the seeded initialisation order).
    """

    encoder: Callable[[ModelConfig], MoELoRABackbone]
    pyramid: Callable[[ModelConfig], nn.Module]


def build_sam_vit_backbone(cfg: ModelConfig) -> MoELoRAEncoder:
    """SAM 1's ViT (:func:`~.vit.build_sam_vit`) frozen, with stems and LoRA experts."""
    return MoELoRAEncoder(cfg, build_sam_vit(cfg))


def build_sam2_hiera_backbone(cfg: ModelConfig) -> HieraMoELoRAEncoder:
    """SAM 2's Hiera + FPN (:func:`~.hiera.build_sam2_hiera`) frozen, with stems and experts."""
    return HieraMoELoRAEncoder(cfg, build_sam2_hiera(cfg))


def build_simple_pyramid(cfg: ModelConfig) -> SimplePyramid:
    """ViTDet's simple pyramid from the four stride-16 ViT taps (``embed_dim`` channels)."""
    return SimplePyramid(cfg.embed_dim, cfg.pyramid_dim)


def build_fpn_pyramid(cfg: ModelConfig) -> FpnPyramid:
    """A pyramid from Hiera's three FPN levels (``out_chans`` channels, strides 4-16)."""
    return FpnPyramid(cfg.out_chans, cfg.pyramid_dim)


BACKBONE_BUILDERS: dict[str, BackboneBuilder] = {
    "sam_vit": BackboneBuilder(encoder=build_sam_vit_backbone, pyramid=build_simple_pyramid),
    "sam2_hiera": BackboneBuilder(encoder=build_sam2_hiera_backbone, pyramid=build_fpn_pyramid),
}
"""Backbone name -> its builders; the keys are the values ``ModelConfig.backbone`` accepts."""


def backbone_builder(name: str) -> BackboneBuilder:
    """The builders of backbone ``name``; an unknown name is an error listing the known ones."""
    try:
        return BACKBONE_BUILDERS[name]
    except KeyError:
        raise ModelConfigError(
            f"unknown backbone {name!r}; known backbones: {list(BACKBONE_BUILDERS)} "
            "(set ModelConfig.backbone to one of them, or start from a preset)"
        ) from None


def build_backbone(cfg: ModelConfig) -> MoELoRABackbone:
    """The frozen encoder with stems and LoRA experts that ``cfg.backbone`` names."""
    return backbone_builder(cfg.backbone).encoder(cfg)


class SegmentorParts(TypedDict):
    """The finished submodules a :class:`~.segmentor.MoELoRASegmentor` is assembled from."""

    encoder: MoELoRABackbone
    routers: nn.ModuleList
    pyramid: nn.Module
    aux_head: AuxHead
    decoder: SemanticMaskDecoder


def build_segmentor_parts(cfg: ModelConfig) -> SegmentorParts:
    """Every submodule of the segmentor ``cfg`` describes, freshly initialised.

    Built in the order the segmentor registers them (encoder, routers, pyramid, auxiliary head,
    decoder), so that under a fixed seed the random initialisation, and hence every weight, is
    the same as it has always been.
    """
    builder = backbone_builder(cfg.backbone)
    encoder = builder.encoder(cfg)
    routers = nn.ModuleList(ModalityRouter(c, cfg.router_scores) for c in encoder.level_channels)
    pyramid = builder.pyramid(cfg)
    aux_head = AuxHead(cfg.pyramid_dim, cfg.aux_dim, cfg.num_classes)
    decoder = SemanticMaskDecoder(
        dim=cfg.out_chans,
        num_classes=cfg.num_classes,
        pyramid_dim=encoder.high_res_channels,
        depth=cfg.decoder_depth,
        num_heads=cfg.decoder_heads,
        mlp_dim=cfg.decoder_mlp_dim,
    )
    return SegmentorParts(
        encoder=encoder, routers=routers, pyramid=pyramid, aux_head=aux_head, decoder=decoder
    )

"""The whole model: a dict of modality images -> per-pixel class logits.

Data flow for a batch holding any non-empty subset of ``cfg.modalities``::

    {modality: B x 3 x S x S}
      -> backbone (frozen SAM encoder, per-modality stems + LoRA experts, one batched pass)
         SAM 1 ViT: 4 block taps, each M x B x C x S/16 x S/16
         SAM 2 Hiera: 3 FPN levels, M x B x 256 x S/4, S/8, S/16
      -> per level: ModalityRouter weights (M x B) and two-stream fusion -> B x C x h x w
      -> pyramid (ViT: SimplePyramid; Hiera: FpnPyramid) -> B x D maps at strides 4, 8, 16, 32
         -> AuxHead (aux logits)
      -> image embedding at stride 16 (ViT: SAM's frozen neck on the last fused tap; Hiera: the
         fused stride-16 level) -> SemanticMaskDecoder (+ high-res strides 8, 4)
      -> main logits, upsampled to the input size.

Only the LoRA experts, stems, routers, pyramid and heads train; the SAM encoder is frozen
(``requires_grad=False``), and the decoder's transformer is initialised from SAM's mask decoder
when a checkpoint provides one (PAPER.md: the mask decoder stays trainable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import FROZEN_PREFIXES, build_backbone
from .config import ModelConfig
from .heads import AuxHead, FpnPyramid, SemanticMaskDecoder, SimplePyramid
from .router import ModalityRouter, fuse


class MoELoRASegmentor(nn.Module):
    """Multi-modal semantic segmentation with SAM and a Mixture of LoRA Experts.

    Call ``model(inputs)`` with ``inputs`` a dict ``{modality: B x 3 x H x W}`` (normalised as in
    :mod:`sam_moelora_ros.model.preprocess`) holding any non-empty subset of ``cfg.modalities``;
    all tensors share ``B``, ``H`` and ``W``. Returns ``B x K x H x W`` logits, or with
    ``return_extras=True`` a tuple ``(logits, extras)`` where ``extras`` holds:

    * ``aux_logits``: ``B x K x H x W`` from the auxiliary multi-scale head;
    * ``router_weights``: modality -> ``B x L`` weights (one per fused level: 4 for ViT, 3 for
      Hiera) for the present
      modalities (absent modalities have no entry: they received no weight);
    * ``modalities``: the present modalities in canonical order.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = build_backbone(cfg)
        self.routers = nn.ModuleList(ModalityRouter(c) for c in self.encoder.level_channels)
        if cfg.backbone == "sam_vit":
            self.pyramid: nn.Module = SimplePyramid(cfg.embed_dim, cfg.pyramid_dim)
            high_res_channels = cfg.pyramid_dim
        else:
            self.pyramid = FpnPyramid(cfg.out_chans, cfg.pyramid_dim)
            high_res_channels = cfg.out_chans
        self.aux_head = AuxHead(cfg.pyramid_dim, cfg.aux_dim, cfg.num_classes)
        self.decoder = SemanticMaskDecoder(
            dim=cfg.out_chans,
            num_classes=cfg.num_classes,
            pyramid_dim=high_res_channels,
            depth=cfg.decoder_depth,
            num_heads=cfg.decoder_heads,
            mlp_dim=cfg.decoder_mlp_dim,
        )

    # ------------------------------------------------------------------ inputs
    def present_modalities(self, inputs: Mapping[str, torch.Tensor]) -> tuple[str, ...]:
        """Validate ``inputs`` and return its modalities in canonical (config) order."""
        unknown = sorted(set(inputs) - set(self.cfg.modalities))
        if unknown:
            raise KeyError(
                f"unknown modality {unknown}; this model was built for {list(self.cfg.modalities)}"
            )
        present = tuple(m for m in self.cfg.modalities if m in inputs)
        if not present:
            raise ValueError(
                f"need at least one modality of {list(self.cfg.modalities)}, got an empty input"
            )
        shape = None
        for m in present:
            x = inputs[m]
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"{m}: expected a B x 3 x H x W tensor, got {tuple(x.shape)}")
            if shape is None:
                shape = (x.shape[0], *x.shape[2:])
            elif (x.shape[0], *x.shape[2:]) != shape:
                raise ValueError(
                    f"all modalities must share batch and size; {present[0]} is "
                    f"{shape}, {m} is {(x.shape[0], *x.shape[2:])}"
                )
        return present

    # ------------------------------------------------------------------ forward
    def forward(
        self, inputs: Mapping[str, torch.Tensor], return_extras: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        present = self.present_modalities(inputs)
        out_size = tuple(inputs[present[0]].shape[-2:])
        size = self.cfg.image_size
        if out_size != (size, size):
            inputs = {
                m: F.interpolate(inputs[m], size=(size, size), mode="bilinear", align_corners=False)
                for m in present
            }
        taps = self.encoder(inputs, present)
        fused, weights = [], []
        for router, tap in zip(self.routers, taps, strict=True):
            w = router(tap)
            weights.append(w)
            fused.append(fuse(tap, w, self.cfg.fusion))
        pyramid = self.pyramid(fused)
        embedding, high_res_s8, high_res_s4 = self.encoder.decoder_inputs(fused, pyramid)
        logits = self.decoder(embedding, high_res_s8, high_res_s4)
        logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
        if not return_extras:
            return logits
        aux = F.interpolate(
            self.aux_head(pyramid), size=out_size, mode="bilinear", align_corners=False
        )
        stacked = torch.stack(weights, dim=-1)  # M x B x L
        extras = {
            "aux_logits": aux,
            "router_weights": {m: stacked[i] for i, m in enumerate(present)},
            "modalities": present,
        }
        return logits, extras

    # ------------------------------------------------------------------ LoRA merging
    def merge_lora(self) -> None:
        """Fold each modality's experts into its own copy of the qkv weights (inference)."""
        self.encoder.merge_lora()

    def unmerge_lora(self) -> None:
        """Undo :meth:`merge_lora` (training needs the separate LoRA factors)."""
        self.encoder.unmerge_lora()

    @property
    def lora_merged(self) -> bool:
        return all(layer.merged for layer in self.encoder.lora_layers)

    def train(self, mode: bool = True) -> MoELoRASegmentor:
        """Training mode unmerges LoRA (gradients must flow to the factors)."""
        if mode:
            self.unmerge_lora()
        return super().train(mode)

    # ------------------------------------------------------------------ bookkeeping
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything except the frozen SAM encoder weights: what an adapter file holds.

        That is the LoRA experts, stems, routers, pyramid and heads, including their buffers
        (batch-norm statistics, the decoder's random positional-encoding matrix).
        """
        return {
            name: tensor for name, tensor in self.state_dict().items() if not is_frozen_name(name)
        }


def is_frozen_name(name: str) -> bool:
    """Whether a ``state_dict`` key of :class:`MoELoRASegmentor` is a frozen SAM weight."""
    return name.startswith(FROZEN_PREFIXES) and ".experts." not in name

"""The backbone interface: a frozen SAM image encoder with per-modality stems and LoRA experts.

Two implementations share it: SAM 1's ViT (:class:`~.vit.MoELoRAEncoder`, single-scale, four
block outputs tapped) and SAM 2's Hiera (:class:`~.hiera.HieraMoELoRAEncoder`, its FPN levels);
:mod:`.build` picks one by name. This module imports neither (they import it), so the three form
no import cycle.
What they have in common lives here: the official encoder module is frozen; every block's fused
``attn.qkv`` projection is wrapped in a :class:`~.lora.MoELoRALinear`; each modality has a light
trainable stem (a 1x1 convolution initialised to the identity) before the shared patch embedding,
so a fresh adapter reproduces frozen SAM exactly; and all present modalities are stacked along
the batch (modality-major) so the frozen encoder runs once per frame, whatever the subset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .config import ModelConfig
from .errors import ModelConfigError
from .lora import MoELoRALinear

FROZEN_PREFIXES = ("encoder.vit.", "encoder.hiera.")
"""``state_dict`` prefixes of the frozen official encoders inside a segmentor."""


class IdentityStem(nn.Module):
    """Per-modality 1x1 colour mixing, initialised to the identity (trainable)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.mix = nn.Conv2d(channels, channels, kernel_size=1)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            if self.mix.bias is not None:
                self.mix.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x)


def _qkv(block: nn.Module) -> nn.Linear:
    """A transformer block's fused ``attn.qkv`` projection, where the LoRA experts go."""
    qkv = block.get_submodule("attn.qkv")
    if not isinstance(qkv, nn.Linear):
        raise ModelConfigError(
            f"{type(block).__name__}.attn.qkv is a {type(qkv).__name__}, not a Linear; pass the "
            "official encoder's blocks, before any LoRA layers are injected"
        )
    return qkv


class MoELoRABackbone(nn.Module):
    """Shared machinery of the MoE-LoRA backbones (see the module docstring).

    Subclasses store the official encoder under ``self.<sam_attr>`` and implement
    :meth:`forward` (per-level features, ``M x B x C x h x w``) and :meth:`decoder_inputs`;
    their constructors set ``level_channels`` (channels of each fused level, one router each) and
    ``high_res_channels`` (channels of the stride-8/stride-4 maps :meth:`decoder_inputs` returns).

    Args:
        cfg: the architecture; ``modalities`` and the ``lora_*`` fields shape the experts.
        sam_encoder: the official encoder, finished (built by :mod:`.build`); it is frozen here
            and its blocks' ``attn.qkv`` projections are replaced by MoE-LoRA layers in place.
        blocks: ``sam_encoder``'s transformer blocks, each with an ``attn.qkv`` linear.
    """

    sam_attr: str = ""
    level_channels: tuple[int, ...] = ()
    high_res_channels: int = 0

    def __init__(self, cfg: ModelConfig, sam_encoder: nn.Module, blocks: Iterable[nn.Module]):
        super().__init__()
        blocks = list(blocks)
        width = _qkv(blocks[0]).in_features if blocks else 0
        if (len(blocks), width) != (cfg.depth, cfg.embed_dim):
            raise ModelConfigError(
                f"the {type(sam_encoder).__name__} given has {len(blocks)} blocks of width "
                f"{width}, but preset {cfg.name!r} has depth={cfg.depth}, embed_dim="
                f"{cfg.embed_dim}; build the encoder from the same ModelConfig (build_backbone)"
            )
        self.cfg = cfg
        setattr(self, self.sam_attr, sam_encoder)
        for param in sam_encoder.parameters():
            param.requires_grad_(False)
        self.lora_layers: list[MoELoRALinear] = []
        for block in blocks:
            layer = MoELoRALinear(
                _qkv(block),
                modalities=cfg.modalities,
                rank=cfg.lora_rank,
                alpha=cfg.lora_alpha,
                targets=cfg.lora_targets,
            )
            block.get_submodule("attn").qkv = layer
            self.lora_layers.append(layer)
        self.stems = nn.ModuleDict({m: IdentityStem() for m in cfg.modalities})

    @property
    def sam(self) -> nn.Module:
        """The frozen official encoder module."""
        return getattr(self, self.sam_attr)

    def frozen_state_dict(self) -> dict[str, torch.Tensor]:
        """The frozen weights under their official names (``image_encoder.`` prefix)."""
        return {
            "image_encoder." + name.replace(".base_layer.", "."): tensor
            for name, tensor in self.sam.state_dict().items()
            if ".experts." not in name
        }

    def load_frozen(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy official-name tensors (as :meth:`frozen_state_dict` names them) into the encoder."""
        own = self.sam.state_dict()
        with torch.no_grad():
            for key, tensor in state.items():
                name = key[len("image_encoder.") :]
                if name not in own:
                    name = name.replace("attn.qkv.", "attn.qkv.base_layer.")
                own[name].copy_(tensor)

    def stack_inputs(
        self, inputs: Mapping[str, torch.Tensor], modalities: tuple[str, ...]
    ) -> torch.Tensor:
        """``(M * B) x 3 x S x S``: each present modality through its stem, modality-major."""
        return torch.cat([self.stems[m](inputs[m]) for m in modalities], dim=0)

    def set_active(self, modalities: tuple[str, ...]) -> None:
        for layer in self.lora_layers:
            layer.set_active(modalities)

    def merge_lora(self) -> None:
        """Merge every layer, or none: a refused merge undoes the layers merged before it.

        A half-merged encoder would run some blocks with folded weights and others without, and
        report ``lora_merged`` False while computing something no adapter describes.
        """
        merged_now: list[MoELoRALinear] = []
        for index, layer in enumerate(self.lora_layers):
            if layer.merged:
                continue
            try:
                layer.merge()
            except ValueError as exc:
                for done in merged_now:
                    done.unmerge()
                raise ValueError(f"encoder block {index}: {exc}") from exc
            merged_now.append(layer)

    def unmerge_lora(self) -> None:
        for layer in self.lora_layers:
            layer.unmerge()

    def decoder_inputs(
        self, fused: list[torch.Tensor], pyramid: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(embedding at stride 16, high-res features at stride 8, at stride 4)``."""
        raise NotImplementedError

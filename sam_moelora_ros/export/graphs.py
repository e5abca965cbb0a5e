"""The two kinds of exported graph, as torch modules over a merged :class:`MoELoRASegmentor`.

Why two kinds (docs/deploy.md, "Why one graph per modality"): the torch model runs only the
modalities present in a frame through its encoder, so a missing sensor costs nothing. One static
graph over all modalities would have to run every encoder branch every frame. Instead:

* :class:`EncoderBranch`, one per modality: that modality's stem and the frozen encoder with the
  modality's LoRA experts folded into plain ``qkv`` weights -> its features at every fused level
  (``B x C x h x w`` each). An absent modality's graph is simply not run.
* :class:`AllModalitiesEncoder`, one for the model (when it has more than one modality): every
  modality's encoder branch in one batched pass, as the torch model runs a frame with all sensors
  (the frozen weights are read once for all modalities, and a small model's many small operators
  run once instead of once per modality). It is only used when every modality is present; it
  adds nothing to the weights on disk (the same tensors as the per-modality graphs).
* :class:`FusionHead`, one for the model: every modality's level features plus a presence mask
  (``M`` floats, 1 present / 0 absent) -> routers, fusion, pyramid and decoder -> ``B x K x S x S``
  logits and the router weights (``M x B x L``). Absent modalities' features are replaced by
  zeros, their router scores by ``-inf`` before the softmax (so they get exactly zero weight and
  the present ones renormalise, as in the torch model), and the average stream divides by the
  number of present modalities: the same arithmetic as :func:`~sam_moelora_ros.model.router.fuse`
  over the present subset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from sam_moelora_ros.model.lora import MoELoRALinear
from sam_moelora_ros.model.router import ModalityRouter
from sam_moelora_ros.model.segmentor import MoELoRASegmentor
from sam_moelora_ros.onnx_format import ExportError


class FlatLinear(nn.Linear):
    """A linear layer run on the flattened leading dimensions: one 2-D matmul (``Gemm``).

    The weight is then stored as is, as in the all-modalities graph, where each modality's chunk
    is a 2-D matmul too; a batched ``MatMul`` would store it transposed, and the two graphs could
    not share it in ``weights.bin``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias)
        return out.reshape(*x.shape[:-1], out.shape[-1])


@contextlib.contextmanager
def plain_qkv(model: MoELoRASegmentor, modality: str) -> Iterator[None]:
    """Swap every MoE-LoRA ``qkv`` for a plain ``Linear`` holding ``modality``'s merged weight.

    The exported encoder graph then holds one ``3D x C`` weight per block, not the stacked
    per-modality copies (``M x 3D x C``) a merged :class:`MoELoRALinear` keeps. The original
    layers are put back on exit, whatever happens inside.
    """
    if not model.lora_merged:
        raise ExportError("export needs the merged model: call model.merge_lora() first")
    swapped: list[tuple[nn.Module, MoELoRALinear]] = []
    try:
        for module in model.encoder.sam.modules():
            attn = getattr(module, "attn", None)
            layer = getattr(attn, "qkv", None)
            if attn is None or not isinstance(layer, MoELoRALinear):
                continue
            if layer.merged_weight is None:  # pragma: no cover - guarded by lora_merged
                raise ExportError("a LoRA layer is not merged; call model.merge_lora() first")
            base = layer.base_layer
            plain = FlatLinear(base.in_features, base.out_features, bias=base.bias is not None)
            plain = plain.to(device=base.weight.device, dtype=base.weight.dtype)
            with torch.no_grad():
                plain.weight.copy_(layer.merged_weight[layer.merged_modalities.index(modality)])
                if base.bias is not None:
                    plain.bias.copy_(base.bias)
            plain.requires_grad_(False)
            attn.qkv = plain
            swapped.append((attn, layer))
        yield
    finally:
        for attn, layer in swapped:
            attn.qkv = layer


class EncoderBranch(nn.Module):
    """One modality's encoder: ``B x 3 x S x S`` normalised image -> ``L`` maps ``B x C x h x w``.

    Export it inside :func:`plain_qkv` for the same modality (the LoRA layers are then plain
    linears and :meth:`~sam_moelora_ros.model.lora.MoELoRALinear.set_active` has no effect).
    """

    def __init__(self, model: MoELoRASegmentor, modality: str) -> None:
        super().__init__()
        if modality not in model.cfg.modalities:
            raise ExportError(
                f"modality {modality!r} is not one of the model's {list(model.cfg.modalities)}"
            )
        self.encoder = model.encoder
        self.modality = modality

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        levels = self.encoder({self.modality: image}, (self.modality,))
        return tuple(level[0] for level in levels)  # 1 x B x C x h x w -> B x C x h x w


class AllModalitiesEncoder(nn.Module):
    """Every modality at once: ``M`` images ``B x 3 x S x S`` -> ``M * L`` maps, modality-major.

    The LoRA layers stay :class:`MoELoRALinear` (merged): each modality's chunk of the stacked
    batch gets its own merged ``qkv`` weight, as in the torch model's forward.
    """

    def __init__(self, model: MoELoRASegmentor) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.modalities = tuple(model.cfg.modalities)

    def forward(self, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        levels = self.encoder(dict(zip(self.modalities, images, strict=True)), self.modalities)
        return tuple(level[m] for m in range(len(self.modalities)) for level in levels)


def masked_router_weights(
    router: ModalityRouter, features: torch.Tensor, present: torch.Tensor
) -> torch.Tensor:
    """The router over ``M x B x C x h x w`` with ``present`` (``M`` bool) -> ``M x B`` weights.

    The softmax runs over the present modalities only: absent ones score ``-inf`` and get 0.
    """
    scores = router.logits(features)  # M x B
    scores = torch.where(present[:, None], scores, torch.full_like(scores, float("-inf")))
    return torch.softmax(scores, dim=0)


def masked_fuse(
    features: torch.Tensor, weights: torch.Tensor, present: torch.Tensor, mode: str
) -> torch.Tensor:
    """:func:`~sam_moelora_ros.model.router.fuse` over the present modalities (absent: zeros)."""
    count = present.to(features.dtype).sum()
    average = features.sum(dim=0) / count
    if mode == "average":
        return average
    routed = (features * weights[:, :, None, None, None].to(features.dtype)).sum(dim=0)
    if mode == "routed":
        return routed
    if mode == "both":
        return 0.5 * (average + routed)
    raise ExportError(f"unknown fusion mode {mode!r}; expected 'both', 'average' or 'routed'")


class FusionHead(nn.Module):
    """Routers, fusion, pyramid and decoder over every modality's level features.

    ``forward(present, *levels)``: ``present`` is ``M`` float32 (1 present, 0 absent, in
    ``cfg.modalities`` order); ``levels`` are ``M * L`` maps, modality-major (``rgb`` level 0 ..
    L-1, then ``depth`` ...), each ``B x C x h x w``; an absent modality's maps may hold anything
    (they are replaced by zeros). Returns ``(logits B x K x H x W, router weights M x B x L)``,
    ``H x W`` the encoders' input (``input_hw``: the square ``S x S`` unless content-only).
    """

    def __init__(self, model: MoELoRASegmentor, input_hw: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.cfg = model.cfg
        size = model.cfg.image_size
        self.input_hw = (size, size) if input_hw is None else (int(input_hw[0]), int(input_hw[1]))
        self.encoder = model.encoder  # for decoder_inputs (ViT: SAM's frozen neck)
        self.routers = model.routers
        self.pyramid = model.pyramid
        self.decoder = model.decoder
        self.num_modalities = len(model.cfg.modalities)
        self.num_levels = len(model.routers)

    def forward(
        self, present: torch.Tensor, *levels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        num, depth = self.num_modalities, self.num_levels
        mask = present > 0.5
        fused, weights = [], []
        for i, router in enumerate(self.routers):
            features = torch.stack([levels[m * depth + i] for m in range(num)])
            features = torch.where(
                mask[:, None, None, None, None], features, torch.zeros_like(features)
            )
            w = masked_router_weights(router, features, mask)  # type: ignore[arg-type]
            weights.append(w)
            fused.append(masked_fuse(features, w, mask, self.cfg.fusion))
        pyramid = self.pyramid(fused)
        embedding, high_res_s8, high_res_s4 = self.encoder.decoder_inputs(fused, pyramid)
        logits = self.decoder(embedding, high_res_s8, high_res_s4)
        logits = F.interpolate(logits, size=self.input_hw, mode="bilinear", align_corners=False)
        return logits, torch.stack(weights, dim=-1)

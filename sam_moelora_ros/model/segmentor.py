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
when a checkpoint provides one (docs/method.md: the mask decoder stays trainable).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..sensors.encodings import DEFAULT_CONTRACT, InputContract
from .backbone import FROZEN_PREFIXES, MoELoRABackbone
from .build import SegmentorParts, build_segmentor_parts
from .config import ModelConfig
from .errors import ModelConfigError
from .heads import AuxHead, SemanticMaskDecoder
from .router import fuse

__all__ = ["MoELoRASegmentor", "build_segmentor", "is_frozen_name"]


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

    The model is assembled from finished submodules (see :mod:`.build`). ``MoELoRASegmentor(cfg)``
    alone builds them from ``cfg`` (what :func:`build_segmentor` does); passing all five instead
    assembles modules built elsewhere (e.g. by :func:`~.build.build_segmentor_parts`, then
    modified). Passing only some of them is an error: a half-built model would silently mix
    fresh and given weights.

    Args:
        cfg: the architecture; stored as ``self.cfg`` (adapter files carry it).
        encoder: the frozen SAM encoder with stems and LoRA experts, built for ``cfg``.
        routers: one :class:`~.router.ModalityRouter` per fused level of ``encoder``.
        pyramid: the multi-scale pyramid over the fused levels.
        aux_head: the auxiliary head over the pyramid.
        decoder: the semantic mask decoder.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        *,
        encoder: MoELoRABackbone | None = None,
        routers: Iterable[nn.Module] | None = None,
        pyramid: nn.Module | None = None,
        aux_head: AuxHead | None = None,
        decoder: SemanticMaskDecoder | None = None,
    ) -> None:
        super().__init__()
        self.input_encodings: InputContract = DEFAULT_CONTRACT.restrict(cfg.modalities)
        """How each modality's network image is made (``sensors.encodings``): training sets it
        from its dataset, ``load_segmentor`` from the adapter; ``save_adapter`` records it."""
        given = (encoder, routers, pyramid, aux_head, decoder)
        if all(part is None for part in given):
            parts = build_segmentor_parts(cfg)
        elif (
            encoder is not None
            and routers is not None
            and pyramid is not None
            and aux_head is not None
            and decoder is not None
        ):
            parts = SegmentorParts(
                encoder=encoder,
                routers=nn.ModuleList(routers),
                pyramid=pyramid,
                aux_head=aux_head,
                decoder=decoder,
            )
        else:
            names = ("encoder", "routers", "pyramid", "aux_head", "decoder")
            missing = [name for name, part in zip(names, given, strict=True) if part is None]
            raise TypeError(
                f"MoELoRASegmentor got some submodules but not {missing}; pass all five "
                "(e.g. **build_segmentor_parts(cfg)) or none (then they are built from cfg)"
            )
        _check_parts(cfg, parts)
        # Registered in this order (as always): it is the order of state_dict() and parameters().
        self.cfg = cfg
        self.encoder = parts["encoder"]
        self.routers = parts["routers"]
        self.pyramid = parts["pyramid"]
        self.aux_head = parts["aux_head"]
        self.decoder = parts["decoder"]

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
    def encoder_size(self, size_hw: tuple[int, int]) -> tuple[int, int]:
        """The ``H x W`` the encoder runs at for ``size_hw`` inputs.

        ``letterbox`` models: always the ``image_size`` square. ``content`` models: the input's
        own size when each side is a multiple of two patches and at most ``image_size`` (what
        :mod:`.preprocess` produces), else the nearest such size with the long side capped.
        """
        size = self.cfg.image_size
        if self.cfg.input_geometry != "content":
            return (size, size)
        step = 2 * self.cfg.patch_size
        scale = min(1.0, size / max(size_hw))
        return (
            max(step, round(size_hw[0] * scale / step) * step),
            max(step, round(size_hw[1] * scale / step) * step),
        )

    def forward(
        self,
        inputs: Mapping[str, torch.Tensor],
        return_extras: bool = False,
        output_size: tuple[int, int] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        """Logits at the input's size, or at ``output_size`` (training's reduced-size loss)."""
        present = self.present_modalities(inputs)
        in_size = (int(inputs[present[0]].shape[-2]), int(inputs[present[0]].shape[-1]))
        out_size = tuple(output_size) if output_size is not None else in_size
        run_size = self.encoder_size(in_size)
        if in_size != run_size:
            inputs = {
                m: F.interpolate(inputs[m], size=run_size, mode="bilinear", align_corners=False)
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


def build_segmentor(cfg: ModelConfig) -> MoELoRASegmentor:
    """The freshly initialised segmentor ``cfg`` describes, from the builders of :mod:`.build`.

    Defined here rather than in :mod:`.build` so that module never imports this one (the
    segmentor imports the builders to support ``MoELoRASegmentor(cfg)``).
    """
    return MoELoRASegmentor(cfg, **build_segmentor_parts(cfg))


def _check_parts(cfg: ModelConfig, parts: SegmentorParts) -> None:
    """Reject submodules built for another config: they would fail (or be wrong) mid-forward."""
    encoder = parts["encoder"]
    if encoder.cfg != cfg:
        listed = ", ".join(
            f"{key}: encoder={mine!r} cfg={theirs!r}"
            for key, (mine, theirs) in sorted(encoder.cfg.differences(cfg).items())
        )
        raise ModelConfigError(
            f"the encoder was built for a different ModelConfig ({listed}); build every part "
            "from the same config (build_segmentor_parts(cfg))"
        )
    levels = len(encoder.level_channels)
    if len(parts["routers"]) != levels:
        raise ModelConfigError(
            f"got {len(parts['routers'])} router(s) for an encoder with {levels} fused levels; "
            "pass one ModalityRouter per level (build_segmentor_parts(cfg))"
        )

"""Mixture of LoRA experts on a frozen linear layer: one low-rank expert per modality.

:class:`MoELoRALinear` wraps the frozen ``qkv`` projection of a SAM attention block (in the
manner of HF peft's ``LoRALayer``: the base layer is kept as ``self.base_layer``; ``A`` is
Kaiming-uniform and ``B`` zero, so a new adapter is an exact no-op; the update is scaled by
``alpha / r``). Unlike peft, the layer holds an expert per *modality* and processes a batch in
which several modalities are stacked along the batch dimension (modality-major): the encoder
runs every present modality through the shared frozen weights in one call, and each chunk of
the batch gets its own modality's low-rank update. Which modalities the current batch holds is
set by the encoder with :meth:`set_active` before each forward.

``merge()`` folds each modality's update into a per-modality copy of the base weight, so that
inference costs exactly one plain linear per modality chunk; ``unmerge()`` drops the copies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

_SLOT = {"q": 0, "k": 1, "v": 2}


class LoRAExpert(nn.Module):
    """The trainable low-rank factors of one modality: ``delta_t = B[t] @ A[t]`` per target t.

    Shapes: ``A`` is ``T x r x in``, ``B`` is ``T x out_per_target x r``.
    """

    def __init__(self, num_targets: int, in_features: int, out_features: int, rank: int) -> None:
        super().__init__()
        if rank <= 0:
            raise ValueError(f"LoRA rank must be a positive integer, got r={rank}")
        self.lora_A = nn.Parameter(torch.empty(num_targets, rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(num_targets, out_features, rank))
        for t in range(num_targets):
            nn.init.kaiming_uniform_(self.lora_A.data[t], a=math.sqrt(5))

    def delta_weight(self) -> torch.Tensor:
        """``T x out x in`` weight updates (before scaling)."""
        return self.lora_B @ self.lora_A


class MoELoRALinear(nn.Module):
    """A frozen fused ``Linear(C, 3D)`` (q, k, v) with a LoRA expert per modality on targets.

    ``D`` equals ``C`` in SAM 1's ViT; in SAM 2's Hiera the first block of a stage widens the
    features, so ``D`` may differ from ``C``.

    Args:
        base_layer: the frozen qkv projection (``out_features`` divisible by 3).
        modalities: every modality that owns an expert.
        rank, alpha: LoRA rank and scaling numerator (scale = alpha / rank).
        targets: which of ``q``, ``k``, ``v`` receive updates (the paper: ``q`` and ``v``).
    """

    def __init__(
        self,
        base_layer: nn.Linear,
        *,
        modalities: Sequence[str],
        rank: int,
        alpha: float,
        targets: Sequence[str] = ("q", "v"),
    ) -> None:
        super().__init__()
        if base_layer.out_features % 3:
            raise ValueError(
                "MoELoRALinear wraps a fused qkv projection (out divisible by 3), got "
                f"in={base_layer.in_features}, out={base_layer.out_features}"
            )
        if rank <= 0:
            raise ValueError(f"LoRA rank must be a positive integer, got r={rank}")
        unknown = [t for t in targets if t not in _SLOT]
        if unknown or not targets:
            raise ValueError(f"LoRA targets must be a non-empty subset of q, k, v; got {targets}")
        self.base_layer = base_layer
        self.dim = base_layer.in_features
        self.out_dim = base_layer.out_features // 3
        self.targets = tuple(targets)
        self.slots = tuple(_SLOT[t] for t in self.targets)
        self.scale = alpha / rank
        self.modalities = tuple(modalities)
        self.experts = nn.ModuleDict(
            {
                m: LoRAExpert(len(self.targets), self.dim, self.out_dim, rank)
                for m in self.modalities
            }
        )
        self.active: tuple[str, ...] = ()
        self.merged_modalities: tuple[str, ...] = ()
        self.merged_weight: torch.Tensor | None = None  # M x 3D x C when merged

    # ----------------------------------------------------------------- bookkeeping
    def set_active(self, modalities: Sequence[str]) -> None:
        """Declare the modality-major layout of the next batch (empty: plain frozen layer)."""
        unknown = [m for m in modalities if m not in self.experts]
        if unknown:
            raise KeyError(f"no LoRA expert for modality {unknown}; known: {list(self.experts)}")
        self.active = tuple(modalities)

    def expert(self, modality: str) -> LoRAExpert:
        """The LoRA expert of ``modality`` (``nn.ModuleDict`` items are typed as plain modules)."""
        return cast(LoRAExpert, self.experts[modality])

    @property
    def merged(self) -> bool:
        return self.merged_weight is not None

    def full_delta(self, modality: str) -> torch.Tensor:
        """The scaled ``3D x C`` update of one modality (zeros in untargeted slots)."""
        delta = self.expert(modality).delta_weight() * self.scale
        full = torch.zeros_like(self.base_layer.weight)
        for t, slot in enumerate(self.slots):
            full[slot * self.out_dim : (slot + 1) * self.out_dim] = delta[t]
        return full

    @torch.no_grad()
    def merge(self) -> None:
        """Fold every expert into a per-modality copy of the base weight (idempotent)."""
        if self.merged:
            return
        weights = [self.base_layer.weight + self.full_delta(m) for m in self.modalities]
        stacked = torch.stack(weights)
        if not torch.isfinite(stacked).all():
            bad = [
                m for m, w in zip(self.modalities, weights, strict=True) if not w.isfinite().all()
            ]
            raise ValueError(
                f"merging the LoRA experts of {bad} (scale alpha/r = {self.scale:g}) gives "
                "NaN/Inf weights, so no layer was merged; the adapter's LoRA factors are damaged: "
                "re-export or retrain it"
            )
        self.merged_weight = stacked
        self.merged_modalities = self.modalities

    def unmerge(self) -> None:
        """Drop the merged copies; the layer computes base + LoRA again (idempotent)."""
        self.merged_weight = None
        self.merged_modalities = ()

    def _apply(self, fn, recurse=True):  # keep the merged copies on the module's device/dtype
        module = super()._apply(fn, recurse)
        if self.merged_weight is not None:
            self.merged_weight = fn(self.merged_weight)
        return module

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``N x ... x C`` with ``N`` divisible by the number of active modalities."""
        if not self.active:
            return self.base_layer(x)
        num = len(self.active)
        if x.shape[0] % num:
            raise ValueError(
                f"batch of {x.shape[0]} cannot be split into {num} modality chunks {self.active}"
            )
        lead = x.shape[:-1]
        chunks = x.reshape(num, -1, self.dim)
        if self.merged_weight is not None:
            bias = self.base_layer.bias
            outs = [
                F.linear(chunks[i], self.merged_weight[self.merged_modalities.index(m)], bias)
                for i, m in enumerate(self.active)
            ]
            return torch.stack(outs).reshape(*lead, 3 * self.out_dim)
        out = self.base_layer(chunks).reshape(num, -1, 3, self.out_dim)
        lora_a = torch.stack([self.expert(m).lora_A for m in self.active])  # M x T x r x C
        lora_b = torch.stack([self.expert(m).lora_B for m in self.active])  # M x T x C x r
        low = torch.einsum("mnc,mtrc->mtnr", chunks, lora_a)
        delta = torch.einsum("mtnr,mtcr->mtnc", low, lora_b) * self.scale
        parts = list(out.unbind(2))
        for t, slot in enumerate(self.slots):
            parts[slot] = parts[slot] + delta[:, t]
        return torch.stack(parts, dim=2).reshape(*lead, 3 * self.out_dim)

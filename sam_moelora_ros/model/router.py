"""The modality router and the paper's two-stream fusion.

Per fused level ``i`` and modality ``m`` (docs/method.md, "Router"):

* ``f_i^m`` = spatial average of modality m's features (after a LayerNorm, so the router sees
  features on a common scale whatever the modality);
* ``s_i^m = sigmoid(W_i f_i^m + b_i)`` (a per-level linear layer shared by all modalities);
* ``w_i^m = softmax_m(tau_i * s_i^m)`` over the **present** modalities only: a missing modality
  is never computed, gets no weight, and the rest renormalise. ``tau_i`` is a learned temperature
  (``exp`` of a parameter initialised to 0). *Our choice:* the sigmoid bounds the scores to (0, 1),
  which alone would keep softmax weights close to uniform; the temperature lets training sharpen
  them. The paper reports top-k routing without giving k; with at most four modalities we keep
  all (k = M), which is also what makes missing-modality inference well defined.

Fusion (``fusion`` in the config): ``average`` = ``(1/M) sum_m Y^m``, ``routed`` =
``sum_m w^m Y^m``, ``both`` = their mean ``(average + routed) / 2``. *Our choice:* the mean (not
the sum) of the two streams, so a single present modality passes through unchanged and the
scale of the fused features does not depend on the fusion mode.
"""

from __future__ import annotations

import torch
from torch import nn


class ModalityRouter(nn.Module):
    """Scores each present modality of one level and returns softmax weights ``M x B``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.score = nn.Linear(channels, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features``: ``M x B x C x h x w`` -> weights ``M x B`` summing to 1 over M."""
        pooled = self.norm(features.mean(dim=(-2, -1)))  # M x B x C
        scores = torch.sigmoid(self.score(pooled)).squeeze(-1)  # M x B
        return torch.softmax(scores * self.log_temperature.exp(), dim=0)


def fuse(features: torch.Tensor, weights: torch.Tensor, mode: str) -> torch.Tensor:
    """Fuse ``M x B x C x h x w`` features with ``weights`` (``M x B``) into ``B x C x h x w``."""
    if mode == "average":
        return features.mean(dim=0)
    routed = (features * weights[:, :, None, None, None].to(features.dtype)).sum(dim=0)
    if mode == "routed":
        return routed
    if mode == "both":
        return 0.5 * (features.mean(dim=0) + routed)
    raise ValueError(f"unknown fusion mode {mode!r}; expected 'both', 'average' or 'routed'")

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

Scores (``router_scores`` in the config): ``sigmoid`` is the above (every adapter written before
the field existed). It cannot route: scores in (0, 1) times a temperature that stays near 1 keep
the weights in about 0.1-0.5. ``linear`` drops the sigmoid, ``s_i^m = W_i f_i^m + b_i`` with
``W_i`` and ``b_i`` zero-initialised (the router starts uniform and the weights can reach near 0
and near 1); training gives the routers their own learning-rate multiplier
(``optim.router_lr_mult``), since a zero start needs a larger step to move.

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

    def __init__(self, channels: int, scores: str = "sigmoid") -> None:
        super().__init__()
        if scores not in ("sigmoid", "linear"):
            raise ValueError(f"unknown router scores {scores!r}; expected 'sigmoid' or 'linear'")
        self.scores_kind = scores
        self.norm = nn.LayerNorm(channels)
        self.score = nn.Linear(channels, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        if scores == "linear":  # a uniform start, any weight reachable
            nn.init.zeros_(self.score.weight)
            nn.init.zeros_(self.score.bias)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """``M x B x C x h x w`` -> the tempered scores ``M x B`` the softmax runs over."""
        pooled = self.norm(features.mean(dim=(-2, -1)))  # M x B x C
        scores = self.score(pooled).squeeze(-1)  # M x B
        if self.scores_kind == "sigmoid":
            scores = torch.sigmoid(scores)
        return scores * self.log_temperature.exp()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features``: ``M x B x C x h x w`` -> weights ``M x B`` summing to 1 over M."""
        return torch.softmax(self.logits(features), dim=0)


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

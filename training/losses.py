"""The training loss: cross-entropy on the main head plus a weighted auxiliary-head term.

``loss = CE(main) + aux_weight * CE(aux)`` with ignore index 255 (docs/method.md; aux_weight 0.4 by
default, from the model config). OHEM (MemorySAM's recipe: threshold 0.7) optionally keeps only
the hard pixels: those whose probability of the true class is below the threshold, but at least
``min_kept`` of the hardest, so an easy batch still yields a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam_moelora_ros.classes import IGNORE_INDEX


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    ohem: bool = False,
    thresh: float = 0.7,
    min_kept: int = 100_000,
) -> torch.Tensor:
    """Mean CE over labelled pixels of ``B x K x H x W`` logits and a ``B x H x W`` target.

    A batch with no labelled pixel gives a zero loss that still depends on ``logits`` (so DDP
    and autograd see every parameter used).
    """
    pixel = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX, reduction="none")
    valid = target != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0
    losses = pixel[valid]
    if ohem:
        with torch.no_grad():
            prob = torch.exp(-losses)  # probability of the true class
            hard = prob < thresh
            keep = min(max(min_kept, int(hard.sum())), losses.numel())
        if int(hard.sum()) >= keep:
            losses = losses[hard]
        else:
            losses = torch.topk(losses, keep, sorted=False).values
    return losses.mean()


def segmentation_loss(
    logits: torch.Tensor,
    aux_logits: torch.Tensor | None,
    target: torch.Tensor,
    aux_weight: float,
    ohem: bool = False,
    thresh: float = 0.7,
    min_kept: int = 100_000,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (``{"loss_main", "loss_aux"}`` as floats for logging)."""
    main = cross_entropy(logits, target, ohem, thresh, min_kept)
    parts = {"loss_main": float(main.detach())}
    total = main
    if aux_logits is not None and aux_weight > 0:
        aux = cross_entropy(aux_logits, target, ohem, thresh, min_kept)
        total = total + aux_weight * aux
        parts["loss_aux"] = float(aux.detach())
    return total, parts

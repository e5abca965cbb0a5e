"""AdamW over the trainable parameters and the warm-up + poly learning-rate schedule.

The schedule is a pure function of the optimizer step (:func:`lr_factor`), applied by hand each
iteration instead of through a ``torch.optim.lr_scheduler`` object: its whole state is the step
counter, which makes ``--resume`` exact and the state file trivially pickle-free.
"""

from __future__ import annotations

import torch
from torch import nn


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    router_lr_mult: float = 1.0,
) -> torch.optim.AdamW:
    """AdamW over parameters with ``requires_grad`` (the frozen SAM encoder is left out).

    Norm weights, biases, the router temperature and 1-d parameters get no weight decay (the
    usual transformer practice: decaying a LayerNorm gain or a bias only shrinks it towards a
    meaningless value). With ``router_lr_mult`` != 1 the routers (``routers.*``) get groups of
    their own whose rate is ``lr_mult`` times the schedule's (:func:`set_lr`): zero-initialised
    linear scores need a larger step than the rest to move within a short run. With the default
    1 the groups are exactly the two they always were (old state files resume unchanged).
    """
    groups_by_key: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim <= 1 or name.endswith(".bias") or "norm" in name
        router = router_lr_mult != 1.0 and name.startswith("routers.")
        groups_by_key.setdefault((router, no_decay), []).append(param)
    if not groups_by_key:
        raise ValueError("the model has no trainable parameters; nothing to optimise")
    groups = []
    for router in (False, True):
        for no_decay in (False, True):
            params = groups_by_key.get((router, no_decay))
            if params is None and router:
                continue
            groups.append(
                {
                    "params": params or [],
                    "weight_decay": 0.0 if no_decay else weight_decay,
                    "lr_mult": router_lr_mult if router else 1.0,
                }
            )
    return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay)


def lr_factor(
    step: int, total_steps: int, warmup_steps: int, warmup_ratio: float = 1e-6, power: float = 0.9
) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Linear warm-up from ``warmup_ratio`` to 1 over ``warmup_steps``, then poly decay
    ``(1 - t)^power`` with ``t`` the fraction of the post-warm-up steps done (MemorySAM's recipe:
    10 warm-up epochs, poly 0.9).
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    warmup_steps = min(warmup_steps, total_steps - 1)
    if step < warmup_steps:
        return warmup_ratio + (1.0 - warmup_ratio) * step / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    done = min(max(step - warmup_steps, 0), span) / span
    return max((1.0 - done) ** power, 0.0)


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> float:
    """Apply ``base_lr * factor`` (times the group's ``lr_mult``) to every parameter group;
    returns the base rate."""
    lr = base_lr * factor
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
    return lr

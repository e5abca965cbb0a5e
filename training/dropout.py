"""Modality dropout: which sensors a training batch gets to see.

The paper trains for the missing-modality setting by dropping inputs at random, so that any
subset of sensors works at test time (a robot loses a sensor; the router renormalises over the
rest). Our rule, per batch:

* every non-RGB modality is dropped independently with probability ``p``;
* RGB (the anchor camera) is dropped with the smaller probability ``p_rgb``, so the model also
  learns to label a scene from depth/event/LiDAR alone, without RGB becoming rare in training;
* never all of them: if the draw would leave nothing, one modality is kept, chosen uniformly
  from the configured ones (uniform, so no sensor is favoured by the repair).

The draw uses only the explicit ``generator``, never the global RNG, so it is reproducible, is
identical on every DDP rank given the same seed (all ranks then run the same encoder passes) and
is restored exactly by ``--resume``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

ANCHOR = "rgb"


def sample_modalities(
    modalities: Sequence[str], p: float, p_rgb: float, generator: torch.Generator
) -> tuple[str, ...]:
    """Draw the modalities to keep for one batch, in the order given; never empty.

    Args:
        modalities: the model's modalities (canonical order).
        p: drop probability of each non-RGB modality, in [0, 1).
        p_rgb: drop probability of RGB, in [0, 1).
        generator: the torch RNG to draw from (advanced by exactly ``len(modalities) + 1`` draws
            so the stream position does not depend on the outcome).
    """
    if not modalities:
        raise ValueError("sample_modalities needs at least one modality, got none")
    for name, value in (("p", p), ("p_rgb", p_rgb)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"dropout probability {name} must be in [0, 1), got {value}")
    draws = torch.rand(len(modalities) + 1, generator=generator).tolist()
    kept = tuple(
        m for m, u in zip(modalities, draws, strict=False) if u >= (p_rgb if m == ANCHOR else p)
    )
    if kept:
        return kept
    fallback = min(int(draws[-1] * len(modalities)), len(modalities) - 1)
    return (modalities[fallback],)

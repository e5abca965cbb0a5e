"""Per-modality input standardisation as a stem initialisation (``model.stem_init: standardise``).

Why: RGB reaches the frozen encoder standardised with ImageNet's statistics (std about 0.65 on
the synthetic scenes), while depth, events and LiDAR are only divided by 255 (std 0.08-0.10):
at the patch embedding their content is about 1/7 of RGB's, and identity-initialised 1x1 stems
moved by at most 5 % in training, so the encoder barely saw them. Initialising each non-RGB
stem to ``(x - mean) / std`` with per-channel statistics of the training split puts every
modality on the scale the encoder was trained for (docs/method.md, "Inputs the encoder can see").

The statistics live in the stem's weights, which every adapter file already holds: nothing is
added to the file format, and adapters trained before this existed load exactly as before (their
stems are whatever they were trained to). RGB keeps its identity stem: its normalisation is
SAM's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from sam_moelora_ros.model.preprocess import image_to_tensor, normalize

MIN_STD = 1e-3
"""Channels flatter than this (a constant channel) keep a unit gain instead of exploding."""
SAMPLES = 64
"""Frames (evenly spaced over the split) the statistics are computed on."""


def _raw_samples(dataset: Dataset, count: int) -> list[dict]:
    """Up to ``count`` evenly spaced untransformed samples (the reader's ``load``)."""
    base = getattr(dataset, "base", dataset)  # SeededDataset
    while isinstance(base, torch.utils.data.Subset):
        base = base.dataset
    size = len(base)  # type: ignore[arg-type]
    step = max(1, size // count)
    load = getattr(base, "load", None)
    if load is None:
        raise TypeError(f"{type(base).__name__} has no load(); pass a dataset reader")
    return [load(i) for i in range(0, size, step)][:count]


def input_statistics(
    dataset: Dataset, modalities: Sequence[str], count: int = SAMPLES
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel ``(mean, std)`` of each modality's normalised input over ``count`` frames."""
    sums: dict[str, torch.Tensor] = {}
    squares: dict[str, torch.Tensor] = {}
    pixels: dict[str, int] = {}
    for sample in _raw_samples(dataset, count):
        for m in modalities:
            x = normalize(image_to_tensor(sample["images"][m]), m).double()
            sums[m] = sums.get(m, 0) + x.sum(dim=(0, 2, 3))
            squares[m] = squares.get(m, 0) + (x * x).sum(dim=(0, 2, 3))
            pixels[m] = pixels.get(m, 0) + x.shape[0] * x.shape[2] * x.shape[3]
    out = {}
    for m in modalities:
        mean = sums[m] / pixels[m]
        var = (squares[m] / pixels[m] - mean * mean).clamp_min(0.0)
        out[m] = (mean.float(), var.sqrt().float())
    return out


@torch.no_grad()
def standardise_stems(
    stems: torch.nn.ModuleDict, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, list[float]]:
    """Set each non-RGB stem to ``(x - mean) / std``; returns the std per modality (logged)."""
    applied = {}
    for m, (mean, std) in stats.items():
        if m == "rgb" or m not in stems:
            continue
        gain = torch.where(std > MIN_STD, 1.0 / std.clamp_min(MIN_STD), torch.ones_like(std))
        conv = stems[m].get_submodule("mix")
        assert isinstance(conv, torch.nn.Conv2d) and conv.bias is not None
        conv.weight.copy_(torch.diag(gain).view_as(conv.weight))
        conv.bias.copy_(-mean * gain)
        applied[m] = [round(float(v), 4) for v in std]
    return applied

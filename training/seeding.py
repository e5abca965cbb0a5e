"""Every seed a training run derives from ``run.seed``, in one module.

Exact ``--resume`` and identical ranks rest on these derivations, so they live together:

* :func:`seed_initialisation`: torch's global generator before the model is built, the same on
  every rank (identical initial weights without a broadcast);
* :func:`seed_rank`: torch's global generator after building, different per rank (the heads'
  dropout layers must not drop the same units on every rank);
* :func:`modality_generator`: the modality-dropout draws, the same on every rank (every rank
  trains the same subset in a step, so DDP's all-reduce averages like with like);
* :func:`sample_seed`: sample ``index`` of epoch ``epoch`` (its augmentation), independent of the
  worker count and world size (:class:`~training.data.SeededDataset`);
* :func:`loader_generator`: the ``DataLoader``'s own generator, so creating an iterator never
  consumes the global stream (a resumed run creates one mid-epoch).

The data order itself is ``DistributedSampler``'s, seeded with ``run.seed`` plus the epoch.
"""

from __future__ import annotations

import random

import numpy as np
import torch

MODALITY_OFFSET = 7919
RANK_STRIDE = 1000


def seed_initialisation(seed: int) -> None:
    """Seed torch's global generator for building the model (the same on every rank)."""
    torch.manual_seed(seed)


def seed_rank(seed: int, rank: int) -> None:
    """Seed torch's global generator for training (dropout layers), distinct per rank."""
    torch.manual_seed(seed + RANK_STRIDE * rank)


def modality_generator(seed: int) -> torch.Generator:
    """The generator of :func:`~training.dropout.sample_modalities` (the same on every rank)."""
    return torch.Generator().manual_seed(seed + MODALITY_OFFSET)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The RNG seed sample ``index`` of ``epoch`` is read and augmented under."""
    return (seed * 1_000_003 + epoch * 10_007 + index) % (2**31 - 1)


def seed_sample_rngs(value: int) -> None:
    """Seed Python's, NumPy's and torch's global generators for one sample (the caller forks
    and restores them: :class:`~training.data.SeededDataset`)."""
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def loader_generator() -> torch.Generator:
    """A fixed generator for ``DataLoader`` (its draws are unused: the sampler orders)."""
    return torch.Generator().manual_seed(0)

"""Dataset readers (DELIVER, MCubeS, MUSES), shared augmentation and batching.

Pure numpy/OpenCV/torch (no rclpy), used by ``training/`` and the evaluation script. Every
reader returns the same sample dict (see :mod:`.common`), and :func:`build_dataset` picks one
by name::

    ds = build_dataset("deliver", "data/DELIVER", "train", modalities=("rgb", "depth"),
                       transform=TrainAugment(512))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .augment import EvalTransform, TrainAugment, collate
from .common import Sample, SegmentationDataset
from .deliver import DeliverDataset
from .errors import DatasetError
from .mcubes import MCubeSDataset
from .muses import MusesDataset

DATASETS: dict[str, Callable[..., SegmentationDataset]] = {
    "deliver": DeliverDataset,
    "mcubes": MCubeSDataset,
    "muses": MusesDataset,
}
"""Registry: dataset name -> reader class."""


def build_dataset(name: str, root: str | Path, split: str, **kwargs: Any) -> SegmentationDataset:
    """Build the reader ``name`` (``deliver``, ``mcubes``, ``muses``); kwargs go to it."""
    key = name.lower()
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[key](root, split, **kwargs)


__all__ = [
    "DATASETS",
    "DatasetError",
    "DeliverDataset",
    "EvalTransform",
    "MCubeSDataset",
    "MusesDataset",
    "Sample",
    "SegmentationDataset",
    "TrainAugment",
    "build_dataset",
    "collate",
]

"""Datasets and loaders for training: reproducible shuffling, augmentation and mid-epoch resume.

Exact ``--resume`` needs the data stream after a restart to be the one an uninterrupted run
would have seen. Two pieces make that so, independent of worker count and world size:

* :class:`ResumableSampler` is a ``DistributedSampler`` (shuffled per epoch from ``seed + epoch``,
  sharded by rank) that can start part-way into an epoch: it skips the samples already consumed.
* :class:`SeededDataset` makes each sample's augmentation a pure function of
  ``(seed, epoch, index)``: it reseeds the Python, NumPy and torch RNGs before calling the
  reader + transform, inside a fork of those RNGs, so the global streams of the training process
  (the aux head's dropout, for instance) are left exactly as they were.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from sam_moelora_ros.datasets.errors import DatasetError
from sam_moelora_ros.sensors.encodings import InputContract

from .config import TrainConfig
from .seeding import loader_generator, sample_seed, seed_sample_rngs


class SeededDataset(Dataset):
    """Wrap a dataset so sample ``i`` of epoch ``e`` is always drawn with the same RNG seed."""

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base = base
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        seed = sample_seed(self.seed, self.epoch, index)
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            seed_sample_rngs(seed)
            try:
                return self.base[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can resume ``start`` samples into the current epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)


class ShardSampler(Sampler[int]):
    """Evaluation shard ``rank::world`` (no padding, so no sample is counted twice)."""

    def __init__(self, length: int, num_replicas: int, rank: int) -> None:
        self.indices = list(range(rank, length, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def eval_transform(model_cfg: Any) -> Any:
    """The evaluation transform a model was validated with: the square letterbox, or for a
    content-only model (``input_geometry: content``) the content box alone.

    Validation during training and ``training.evaluate`` both take it from here: a
    content-only model fed letterboxed squares sees half padding and position embeddings of
    another grid (measured on the v2 recipe: 42 mIoU at validation, 18 on the same frames
    through a square letterbox)."""
    from sam_moelora_ros.datasets.augment import EvalTransform
    from sam_moelora_ros.model.preprocess import content_multiple

    geometry = getattr(model_cfg, "input_geometry", "letterbox")
    multiple = content_multiple(geometry, int(getattr(model_cfg, "patch_size", 16)))
    return EvalTransform(int(model_cfg.image_size), content_multiple=multiple)


def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """The training set (with :class:`TrainAugment`) and the validation set (letterbox).

    Content-only models (``input_geometry: content``) get content crops and a content-box
    evaluation; ``data.cache_mb`` keeps the decoded training frames in memory when they fit.
    """
    from sam_moelora_ros.datasets import build_dataset
    from sam_moelora_ros.datasets.augment import TrainAugment
    from sam_moelora_ros.model.preprocess import content_multiple

    model_cfg = cfg.model_config()
    multiple = content_multiple(model_cfg.input_geometry, model_cfg.patch_size)
    d = cfg.data
    common: dict[str, Any] = {"modalities": model_cfg.modalities}
    if d.conditions is not None:  # only DELIVER/MUSES know conditions; pass what is set
        common["conditions"] = d.conditions
    if d.cases is not None:
        common["cases"] = d.cases
    if d.dataset.lower() == "deliver":
        common["depth_source"] = d.depth_source
        common["depth_max_range"] = d.depth_max_range
    train_set = build_dataset(
        d.dataset,
        d.root,
        d.train_split,
        transform=TrainAugment(
            model_cfg.image_size,
            scale_range=d.scale_range,
            content_multiple=multiple,
            vertical=d.crop_vertical,
        ),
        **common,
    )
    if d.cache_mb and hasattr(train_set, "cache_decoded"):
        train_set.cache_decoded(d.cache_mb * 2**20)
    val_set: Dataset | None = None
    if d.val_split:
        val_set = build_dataset(
            d.dataset,
            d.val_root or d.root,
            d.val_split,
            transform=eval_transform(model_cfg),
            **common,
        )
        if dataset_encodings(val_set) != dataset_encodings(train_set):
            raise DatasetError(
                f"data.val_root: the validation images ({dataset_encodings(val_set).to_json()}) "
                f"are encoded otherwise than the training images "
                f"({dataset_encodings(train_set).to_json()}); use folders written with one "
                "input contract"
            )
        if d.max_val_samples is not None:
            val_set = evenly_spaced_subset(val_set, d.max_val_samples)
    return train_set, val_set


def dataset_encodings(dataset: Any) -> InputContract:
    """The input contract of a reader (through ``Subset`` wrappers): what the model records."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    contract = getattr(dataset, "input_encodings", None)
    if not isinstance(contract, InputContract):
        raise DatasetError(
            f"{type(dataset).__name__} does not say which input encodings its images hold "
            "(input_encodings); readers derive from sam_moelora_ros.datasets.SegmentationDataset"
        )
    return contract


def evenly_spaced_subset(dataset: Dataset, count: int) -> Dataset:
    """``count`` samples spread evenly over ``dataset`` (all of it when it is not larger).

    The readers list frames condition by condition, so an evenly spaced subset keeps every
    condition represented where the first ``count`` frames would hold one or two.
    """
    size = len(dataset)  # type: ignore[arg-type]
    if count <= 0 or size <= count:
        return dataset
    step = size / count
    return torch.utils.data.Subset(dataset, [int(i * step) for i in range(count)])


def make_loader(
    dataset: Dataset,
    sampler: Sampler[int],
    batch_size: int,
    num_workers: int,
    drop_last: bool,
    pin_memory: bool = False,
) -> DataLoader:
    from sam_moelora_ros.datasets.augment import collate

    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=False,  # workers must see the new epoch's seed each epoch
        # Its own generator: creating an iterator must not consume the global torch RNG, or a
        # resumed run (which creates one mid-epoch) would drift from an uninterrupted one.
        generator=loader_generator(),
    )

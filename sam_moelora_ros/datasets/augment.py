"""Training augmentation and the evaluation transform, both ending in the model's input tensors.

Both transforms take a reader's sample dict (``{"images": {modality: H x W x 3 uint8},
"label": H x W uint8, ...metadata}``) and return::

    {"inputs": {modality: 3 x S x S float32 tensor}, "label": S x S int64 tensor,
     "condition": str, "case": str, "name": str, "size_hw": (H, W)}

Normalisation and resampling come from :mod:`sam_moelora_ros.model.preprocess` only (bilinear
for rgb/depth and other dense modalities, nearest for event/lidar, nearest for labels), so the
network sees in training exactly the pixel statistics it sees in the node.

:class:`TrainAugment` (the usual mmseg/DELIVER recipe, one draw per sample shared by every
modality and the label): random scale of the whole frame -> normalise -> pad bottom/right to the
crop size (0 after normalisation, i.e. the mean colour for RGB, as the inference letterbox pads;
255 for the label) -> random crop -> horizontal flip with probability 0.5.

:class:`EvalTransform` is :func:`~sam_moelora_ros.model.preprocess.prepare_inputs`, i.e. the
node's letterbox, with the label resized nearest to the letterboxed size and padded with 255.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sam_moelora_ros.classes import IGNORE_INDEX
from sam_moelora_ros.model.preprocess import (
    image_to_tensor,
    normalize,
    prepare_inputs,
    resize,
)

from .common import Sample

_RESERVED = ("images", "label")


def _metadata(sample: Sample) -> dict[str, Any]:
    return {k: v for k, v in sample.items() if k not in _RESERVED}


def _label_tensor(label: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``H x W`` label -> ``1 x 1 x H x W`` float (interpolation needs float)."""
    t = torch.as_tensor(np.asarray(label)).to(torch.float32)
    if t.ndim != 2:
        raise ValueError(f"label must be H x W, got shape {tuple(t.shape)}")
    return t[None, None]


def resize_label(label: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of a ``1 x 1 x H x W`` label (the sparse modalities' mode)."""
    if tuple(label.shape[-2:]) == tuple(size_hw):
        return label
    return F.interpolate(label, size=size_hw, mode="nearest-exact")


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    return h, w


class TrainAugment:
    """Random scale, pad, crop and flip, identical for every modality and the label.

    Args:
        crop_size: output side ``S`` (or ``(H, W)``); use the model's ``image_size``.
        scale_range: the frame is resized by a factor drawn uniformly from this range.
        flip: horizontal flip with probability 0.5.
        ignore_index: label value of padded pixels.
        seed: ``None`` (recommended for training) draws from torch's global generator, which a
            ``DataLoader`` re-seeds per worker and per epoch from the main process's generator,
            so workers and epochs differ and ``torch.manual_seed`` makes runs repeatable. An
            int gives this transform its own generator: in the main process seeded with
            ``seed`` once (then advancing), in a worker seeded from ``seed`` and the worker's
            seed (which changes per epoch), so worker copies never repeat each other.
    """

    def __init__(
        self,
        crop_size: int | Sequence[int],
        scale_range: tuple[float, float] = (0.5, 2.0),
        flip: bool = True,
        ignore_index: int = IGNORE_INDEX,
        seed: int | None = None,
    ) -> None:
        self.crop_hw = _pair(crop_size)
        lo, hi = float(scale_range[0]), float(scale_range[1])
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
        self.scale_range = (lo, hi)
        self.flip = flip
        self.ignore_index = ignore_index
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._generator_key: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generator"] = state["_generator_key"] = None  # re-seeded in each worker
        return state

    def _rng(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        info = torch.utils.data.get_worker_info()
        key = -1 if info is None else int(info.seed)
        if self._generator is None or self._generator_key != key:
            value = self.seed if info is None else (self.seed * 1_000_003 + key) % (1 << 63)
            self._generator = torch.Generator().manual_seed(value)
            self._generator_key = key
        return self._generator

    def draw(self, size_hw: tuple[int, int]) -> dict[str, Any]:
        """Draw the geometry for one ``H x W`` frame: scaled size, crop offset, flip."""
        gen = self._rng()
        u = torch.rand(3, generator=gen).tolist()
        lo, hi = self.scale_range
        scale = lo + (hi - lo) * u[0]
        new_h = max(1, round(size_hw[0] * scale))
        new_w = max(1, round(size_hw[1] * scale))
        ch, cw = self.crop_hw
        top = int(u[1] * (max(new_h, ch) - ch + 1))
        left = int(u[2] * (max(new_w, cw) - cw + 1))
        flip = bool(self.flip and torch.rand(1, generator=gen).item() < 0.5)
        return {"size_hw": (new_h, new_w), "top": top, "left": left, "flip": flip}

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        """Apply drawn ``params`` (from :meth:`draw`) to a sample; deterministic."""
        label = _label_tensor(sample["label"])
        size_hw = (int(label.shape[-2]), int(label.shape[-1]))
        inputs = {}
        for modality, image in sample["images"].items():
            x = resize(image_to_tensor(image), size_hw, modality)  # e.g. smaller event frames
            x = resize(x, params["size_hw"], modality)
            inputs[modality] = self._geometry(normalize(x, modality), params, 0.0)[0]
        lab = self._geometry(resize_label(label, params["size_hw"]), params, self.ignore_index)
        return {
            **_metadata(sample),
            "inputs": inputs,
            "label": lab[0, 0].round().to(torch.int64),
            "size_hw": size_hw,
        }

    def _geometry(self, x: torch.Tensor, params: dict[str, Any], fill: float) -> torch.Tensor:
        """Pad bottom/right to the crop size with ``fill``, crop, optionally flip."""
        ch, cw = self.crop_hw
        pad_h, pad_w = max(0, ch - x.shape[-2]), max(0, cw - x.shape[-1])
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), value=fill)
        top, left = params["top"], params["left"]
        x = x[..., top : top + ch, left : left + cw]
        if params["flip"]:
            x = x.flip(-1)
        return x.contiguous()

    def __call__(self, sample: Sample) -> Sample:
        return self.apply(sample, self.draw(tuple(np.asarray(sample["label"]).shape[:2])))


class EvalTransform:
    """The node's letterbox: long side to ``image_size``, pad bottom/right (label with 255).

    ``size_hw`` (the frame's original ``H x W``) is kept in the output so predictions can be
    mapped back with :func:`~sam_moelora_ros.model.preprocess.unletterbox` when a full-resolution
    score is wanted; scoring the ``S x S`` output directly ignores the padding (label 255).
    """

    def __init__(self, image_size: int, ignore_index: int = IGNORE_INDEX) -> None:
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = int(image_size)
        self.ignore_index = ignore_index

    def __call__(self, sample: Sample) -> Sample:
        label = _label_tensor(sample["label"])
        size_hw = (int(label.shape[-2]), int(label.shape[-1]))
        tensors, box = prepare_inputs(sample["images"], self.image_size, size_hw=size_hw)
        lab = resize_label(label, (box.new_h, box.new_w))
        pad_h, pad_w = box.size - box.new_h, box.size - box.new_w
        lab = F.pad(lab, (0, pad_w, 0, pad_h), value=float(self.ignore_index))
        return {
            **_metadata(sample),
            "inputs": {m: t[0] for m, t in tensors.items()},
            "label": lab[0, 0].round().to(torch.int64),
            "size_hw": size_hw,
        }


def collate(samples: Sequence[Sample]) -> dict[str, Any]:
    """Batch transformed samples: ``inputs`` -> ``{modality: B x 3 x S x S}``, ``label`` ->
    ``B x S x S``, every other key -> a list (condition, case, name, size_hw, ...).

    All samples must carry the same modalities (modality dropout belongs to the training step,
    after batching, so a batch stays rectangular).
    """
    if not samples:
        raise ValueError("collate got an empty batch")
    names = list(samples[0]["inputs"])
    for s in samples:
        if list(s["inputs"]) != names:
            raise ValueError(
                f"samples in one batch have different modalities: {names} vs {list(s['inputs'])} "
                f"({s.get('name', '?')}); give every sample of a dataset the same modalities"
            )
    batch: dict[str, Any] = {
        "inputs": {m: torch.stack([s["inputs"][m] for s in samples]) for m in names},
        "label": torch.stack([torch.as_tensor(s["label"]) for s in samples]),
    }
    for key in samples[0]:
        if key not in ("inputs", "label"):
            batch[key] = [s.get(key) for s in samples]
    return batch

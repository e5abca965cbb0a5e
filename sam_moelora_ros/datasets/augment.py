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

For content-only models (``content_multiple`` > 0) the crop is the frame's content box (a 2:1
frame at 192 px: 192 x 96, not a 192 square that is half padding), and ``vertical="keep"``
centres the crop vertically (padding, when the scaled frame is shorter, is split between top and
bottom): the content's vertical position (horizon, road at the bottom) stays where the model
sees it at inference, instead of a random vertical offset that moves the horizon anywhere in a
short crop. The horizontal offset stays random.

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
    letterbox_params,
    normalize,
    pad_batch,
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
        content_multiple: 0 (square crops of ``crop_size``) or, for content-only models, the
            multiple the content box is padded to (the crop is then the frame's own box at
            ``crop_size``: :func:`~sam_moelora_ros.model.preprocess.letterbox_params`).
        vertical: ``random`` (uniform vertical offset) or ``keep`` (centred, see module doc).
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
        content_multiple: int = 0,
        vertical: str = "random",
    ) -> None:
        self.crop_hw = _pair(crop_size)
        if content_multiple and not isinstance(crop_size, int):
            raise ValueError("content crops need one crop_size (the model's image_size)")
        if vertical not in ("random", "keep"):
            raise ValueError(f"vertical must be 'random' or 'keep', got {vertical!r}")
        self.content_multiple = int(content_multiple)
        self.vertical = vertical
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

    def crop_for(self, size_hw: tuple[int, int]) -> tuple[int, int]:
        """The crop ``(H, W)`` for an ``H x W`` frame: fixed, or its content box."""
        if not self.content_multiple:
            return self.crop_hw
        box = letterbox_params(size_hw[0], size_hw[1], self.crop_hw[0], self.content_multiple)
        return box.padded_hw

    def draw(self, size_hw: tuple[int, int]) -> dict[str, Any]:
        """Draw the geometry for one ``H x W`` frame: scaled size, crop offset, flip."""
        gen = self._rng()
        u = torch.rand(3, generator=gen).tolist()
        lo, hi = self.scale_range
        scale = lo + (hi - lo) * u[0]
        new_h = max(1, round(size_hw[0] * scale))
        new_w = max(1, round(size_hw[1] * scale))
        ch, cw = self.crop_for(size_hw)
        if self.vertical == "keep":  # centred; negative: pad that many rows on top
            top = (new_h - ch) // 2 if new_h >= ch else -((ch - new_h) // 2)
        else:
            top = int(u[1] * (max(new_h, ch) - ch + 1))
        left = int(u[2] * (max(new_w, cw) - cw + 1))
        flip = bool(self.flip and torch.rand(1, generator=gen).item() < 0.5)
        return {
            "size_hw": (new_h, new_w),
            "crop_hw": (ch, cw),
            "top": top,
            "left": left,
            "flip": flip,
        }

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
        """Pad to the crop size with ``fill`` (bottom/right; on top too for a negative ``top``),
        crop, optionally flip."""
        ch, cw = params.get("crop_hw", self.crop_hw)
        top, left = params["top"], params["left"]
        pad_top = max(0, -top)
        pad_h = max(0, ch - x.shape[-2] - pad_top)
        pad_w = max(0, cw - x.shape[-1])
        if pad_top or pad_h or pad_w:
            x = F.pad(x, (0, pad_w, pad_top, pad_h), value=fill)
        top = max(0, top)
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

    def __init__(
        self, image_size: int, ignore_index: int = IGNORE_INDEX, content_multiple: int = 0
    ) -> None:
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = int(image_size)
        self.ignore_index = ignore_index
        self.content_multiple = int(content_multiple)  # > 0: content-only models (no square)

    def __call__(self, sample: Sample) -> Sample:
        label = _label_tensor(sample["label"])
        size_hw = (int(label.shape[-2]), int(label.shape[-1]))
        tensors, box = prepare_inputs(
            sample["images"], self.image_size, size_hw=size_hw, multiple=self.content_multiple
        )
        lab = resize_label(label, (box.new_h, box.new_w))
        pad_h, pad_w = box.padded_hw[0] - box.new_h, box.padded_hw[1] - box.new_w
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
    after batching, so a batch stays rectangular). Samples of different sizes (content-only
    crops of frames with different aspect ratios) are padded bottom/right to the largest: 0 for
    the inputs (the letterbox's fill), the ignore index for the labels.
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
        "inputs": {m: pad_batch([s["inputs"][m][None] for s in samples]) for m in names},
        "label": pad_batch(
            [torch.as_tensor(s["label"])[None, None] for s in samples], IGNORE_INDEX
        )[:, 0],
    }
    for key in samples[0]:
        if key not in ("inputs", "label"):
            batch[key] = [s.get(key) for s in samples]
    return batch

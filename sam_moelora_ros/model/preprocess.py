"""The one preprocessing path from modality images to model tensors (training and inference).

Every modality reaches the model as a 3-channel ``uint8`` image at the camera's size (RGB as the
camera sees it; depth, events and LiDAR as the network images of
:mod:`sam_moelora_ros.sensors.representation`, which is also what DELIVER-layout PNGs hold).
From there:

* **normalisation** (:func:`normalize`): RGB with ImageNet mean/std (SAM's own pixel statistics),
  every other modality divided by 255 (DELIVER's loader does the same);
* **geometry** (:func:`letterbox_params`, :func:`to_model_tensor`): the image is scaled so its
  long side equals the model's square input side, keeping the aspect ratio, and padded at the
  bottom/right with zeros *after* normalisation (the mean colour for RGB). Labels are padded with
  the ignore index in training, and predictions are cropped back with :func:`unletterbox`.
  A model whose config says ``input_geometry: content`` is fed the content only: the box is
  padded just up to a multiple of ``2 * patch_size`` (:func:`letterbox_params` ``multiple``), so
  a 2:1 frame at 192 px is 192 x 96 tokens' worth of pixels instead of a 192 x 192 square that is
  half padding (the encoder interpolates its position embeddings to that grid). A batch of
  frames with different aspect ratios is padded to its largest box (:func:`pad_batch`):
  letterboxing only where the batch needs it.

Resampling: RGB and depth are smooth signals and use bilinear interpolation (antialiased when
shrinking); event frames and LiDAR range images are sparse, so they use nearest-neighbour to keep
isolated returns/events from being smeared into fake surfaces.

Memory is bounded by the model, not the camera (:func:`shrink_to_box`): an image with more pixels
than its place in the model input is first shrunk to exactly that place on the CPU, as a numpy
array (``cv2.resize``: area averaging for smooth signals, nearest for sparse ones), before it
becomes a float tensor. Without it a 4000 x 8000 RGB frame became a 384 MB float copy (and
several more for its resampling) to feed a 192 px model. Both the Segmenter and
:func:`prepare_inputs` (evaluation) take this step, so serving and evaluation stay one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (123.675, 116.28, 103.53)
"""SAM's ``pixel_mean`` (RGB, 0-255 scale)."""
IMAGENET_STD = (58.395, 57.12, 57.375)
"""SAM's ``pixel_std`` (RGB, 0-255 scale)."""

SPARSE_MODALITIES = frozenset({"event", "lidar"})
"""Modalities resampled with nearest-neighbour (see module docstring)."""


@dataclass(frozen=True)
class Letterbox:
    """How an ``in_h x in_w`` image sits inside the model's ``size x size`` input."""

    in_h: int
    in_w: int
    size: int
    new_h: int
    new_w: int
    pad_h: int = 0
    """Padded input height (0: the square ``size``, the classic letterbox)."""
    pad_w: int = 0
    """Padded input width (0: ``size``)."""

    @property
    def padded_hw(self) -> tuple[int, int]:
        """``(H, W)`` of the model input this box sits in (the content plus its padding)."""
        return (self.pad_h or self.size, self.pad_w or self.size)

    @property
    def scale(self) -> float:
        """Model pixels per input pixel."""
        return self.new_h / self.in_h


def letterbox_params(in_h: int, in_w: int, size: int, multiple: int = 0) -> Letterbox:
    """Scale ``in_h x in_w`` so the long side is ``size``; the rest of the square is padding.

    With ``multiple`` > 0 (content-only input) the padding only rounds each side of the content
    up to a multiple of ``multiple`` (at most ``size``) instead of filling the square.
    """
    if in_h <= 0 or in_w <= 0:
        raise ValueError(f"image size must be positive, got {in_h}x{in_w}")
    if size <= 0:
        raise ValueError(f"model input size must be positive, got {size}")
    scale = size / max(in_h, in_w)
    new_h = min(size, max(1, round(in_h * scale)))
    new_w = min(size, max(1, round(in_w * scale)))
    pad_h = pad_w = 0
    if multiple > 0:
        pad_h = min(size, -(-new_h // multiple) * multiple)
        pad_w = min(size, -(-new_w // multiple) * multiple)
    return Letterbox(
        in_h=in_h, in_w=in_w, size=size, new_h=new_h, new_w=new_w, pad_h=pad_h, pad_w=pad_w
    )


def content_multiple(geometry: str, patch_size: int) -> int:
    """The ``multiple`` of :func:`letterbox_params` for a model's ``input_geometry``.

    ``letterbox`` -> 0 (the square); ``content`` -> two patches, so the token grid is even (the
    ViT pyramid pools it by 2).
    """
    return 2 * patch_size if geometry == "content" else 0


def pad_to(x: torch.Tensor, size_hw: tuple[int, int], fill: float = 0.0) -> torch.Tensor:
    """Pad ``... x h x w`` at the bottom/right to ``size_hw`` with ``fill`` (0: the mean colour)."""
    pad_bottom, pad_right = size_hw[0] - x.shape[-2], size_hw[1] - x.shape[-1]
    if pad_bottom < 0 or pad_right < 0:
        raise ValueError(f"cannot pad {tuple(x.shape[-2:])} to the smaller {tuple(size_hw)}")
    if pad_bottom or pad_right:
        x = F.pad(x, (0, pad_right, 0, pad_bottom), value=fill)
    return x


def pad_batch(tensors: list[torch.Tensor], fill: float = 0.0) -> torch.Tensor:
    """Concatenate ``B_i x C x h_i x w_i`` tensors along B, each padded to the largest ``h, w``.

    Frames that share an aspect ratio concatenate unpadded; only a mixed batch is letterboxed.
    """
    height = max(int(t.shape[-2]) for t in tensors)
    width = max(int(t.shape[-1]) for t in tensors)
    return torch.cat([pad_to(t, (height, width), fill) for t in tensors])


def normalize(images: torch.Tensor, modality: str) -> torch.Tensor:
    """Normalise ``B x 3 x H x W`` images holding 0-255 values (any float/uint8 dtype).

    Returns a float tensor (float32 unless ``images`` already is a floating type).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"{modality}: expected a B x 3 x H x W tensor, got shape {tuple(images.shape)}"
        )
    x = images if images.is_floating_point() else images.float()
    if modality == "rgb":
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std
    return x / 255.0


def resize(images: torch.Tensor, size_hw: tuple[int, int], modality: str) -> torch.Tensor:
    """Resample ``B x C x H x W`` to ``size_hw`` with the modality's interpolation."""
    if tuple(images.shape[-2:]) == tuple(size_hw):
        return images
    x = images if images.is_floating_point() else images.float()
    if modality in SPARSE_MODALITIES:
        return F.interpolate(x, size=size_hw, mode="nearest-exact")
    shrinking = size_hw[0] < x.shape[-2] or size_hw[1] < x.shape[-1]
    return F.interpolate(x, size=size_hw, mode="bilinear", align_corners=False, antialias=shrinking)


_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
"""Dtypes ``cv2.resize`` takes as they are (anything else is resized as float32)."""


def shrink_to_box(image: np.ndarray, box: Letterbox, modality: str) -> np.ndarray:
    """``H x W [x C]`` image with more pixels than ``box.new_h x box.new_w`` -> exactly that size.

    Runs on the CPU before the image becomes a tensor, so nothing larger than the model input is
    ever converted to float (see the module docstring). Smooth modalities use ``INTER_AREA`` (the
    mean over each target pixel's footprint: alias-free shrinking); sparse ones
    (:data:`SPARSE_MODALITIES`) ``INTER_NEAREST_EXACT``. Images that are not larger are returned
    unchanged (enlarging is left to the device, as before), and so are batches (``B x H x W x C``).
    """
    if image.ndim not in (2, 3):
        return image
    height, width = image.shape[:2]
    if height * width <= box.new_h * box.new_w:
        return image
    array = image if image.dtype in _CV2_DTYPES else image.astype(np.float32)
    sparse = modality in SPARSE_MODALITIES
    interpolation = cv2.INTER_NEAREST_EXACT if sparse else cv2.INTER_AREA
    out = cv2.resize(array, (box.new_w, box.new_h), interpolation=interpolation)
    if image.ndim == 3 and out.ndim == 2:  # cv2 drops a single channel axis
        out = out[..., None]
    return out


def fit_to_box(
    images: torch.Tensor, size_hw: tuple[int, int], box: Letterbox, modality: str
) -> torch.Tensor:
    """``B x C x h x w`` -> the frame's model input geometry: what :func:`to_model_tensor` takes.

    An image already at the letterboxed size (e.g. shrunk by :func:`shrink_to_box`) is used as
    is; any other is first resampled to the frame's reference size ``size_hw`` (a smaller event
    frame is stretched over the camera image) and then, by :func:`to_model_tensor`, to the box.
    """
    if tuple(images.shape[-2:]) == (box.new_h, box.new_w):
        return images
    return resize(images, size_hw, modality)


def image_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``H x W x 3`` (or ``B x H x W x 3``) uint8/float array -> ``B x 3 x H x W`` float32."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an H x W x 3 image, got shape {np.asarray(image).shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        array = array[..., :3]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device, non_blocking=True)
    return tensor.permute(0, 3, 1, 2).float()


def to_model_tensor(
    images: torch.Tensor, modality: str, box: Letterbox, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Resize (to ``box``), normalise and pad 0-255 ``B x 3 x H x W`` images to the model input."""
    x = resize(images, (box.new_h, box.new_w), modality)
    x = normalize(x, modality).to(dtype)
    return pad_to(x, box.padded_hw)


def prepare_inputs(
    images: Mapping[str, np.ndarray],
    image_size: int,
    size_hw: tuple[int, int] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    multiple: int = 0,
) -> tuple[dict[str, torch.Tensor], Letterbox]:
    """Turn a frame's modality images into the model's input dict.

    Args:
        images: modality -> ``H x W x 3`` image (uint8 0-255, or float in 0-255). Images whose size
            differs from ``size_hw`` (e.g. DELIVER's smaller event frames) are first resampled
            to it.
        image_size: the model's square input side (``ModelConfig.image_size``).
        size_hw: the frame's reference ``(H, W)``; defaults to the first image's size.
        multiple: 0 for the square letterbox; see :func:`content_multiple` for content-only.
    Returns:
        ``({modality: 1 x 3 x H' x W' tensor}, letterbox)`` (``S x S`` for the letterbox).
    """
    if not images:
        raise ValueError("prepare_inputs needs at least one modality image, got none")
    arrays = {name: np.asarray(img) for name, img in images.items()}
    first = next(iter(arrays.values()))
    spatial = first.shape[1:3] if first.ndim == 4 else first.shape[:2]  # a batch, or one image
    size: tuple[int, int] = size_hw or (int(spatial[0]), int(spatial[-1]))
    box = letterbox_params(size[0], size[1], image_size, multiple)
    out = {}
    for name, array in arrays.items():
        tensor = image_to_tensor(shrink_to_box(array, box, name), device)
        out[name] = to_model_tensor(fit_to_box(tensor, size, box, name), name, box, dtype)
    return out, box


def unletterbox(maps: torch.Tensor, box: Letterbox, mode: str = "bilinear") -> torch.Tensor:
    """Crop the valid region of model-resolution maps (``B x C x H' x W'``), resize to the input.

    The content sits at the top left whatever the padding, so one crop serves both geometries.
    """
    valid = maps[..., : box.new_h, : box.new_w]
    if (box.new_h, box.new_w) == (box.in_h, box.in_w):
        return valid
    if mode == "nearest":
        return F.interpolate(valid, size=(box.in_h, box.in_w), mode="nearest-exact")
    return F.interpolate(valid, size=(box.in_h, box.in_w), mode=mode, align_corners=False)

"""Segmenter: a frame's modality images (numpy) in, class ids, confidence and router weights out.

This is the one place where the node (and the replay tools) touch the model. It owns the device,
the dtype and the no-grad context, and it speaks numpy at the input resolution on both sides, so
its callers never see a tensor, a letterbox or a logit:

* **input**: ``{modality: H x W x 3 uint8 network image}`` (RGB as the camera sees it, the other
  modalities as :mod:`sam_moelora_ros.sensors.representation` renders them), any non-empty subset
  of the model's modalities. Images of other sizes than the frame's reference size are resampled to
  it by :func:`~sam_moelora_ros.model.preprocess.prepare_inputs` -- the one preprocessing path
  shared with training, deliberately not re-implemented here.
* **output**: :class:`Segmentation` with ``labels`` (``H x W`` uint8, or uint16 beyond 256
  classes), ``confidence`` (``H x W`` float32 max softmax probability) and the router's mean weight
  per present modality.

Choices, and why:

* Logits are cropped out of the letterbox and resized *bilinearly* to the input resolution before
  the arg-max (SAM's ``postprocess_masks`` does the same with its mask logits): resizing the label
  image instead would give blocky, aliased class boundaries. Softmax and arg-max run in float32
  whatever the model dtype, so half precision cannot flip a near-tie into a NaN.
* ``merge_lora`` folds the LoRA experts into the frozen weights once at load time (the router still
  runs); inference gets the same logits with fewer matmuls.
* ``torch.inference_mode`` rather than ``no_grad``: nothing produced here is ever trained on.
* Half precision (``float16``/``bfloat16``) runs under ``torch.autocast`` with float32 weights
  rather than by casting the model: SAM's prompt-encoder/decoder code creates float32 tensors
  internally (positional encodings), which a cast model cannot multiply; autocast picks the
  precision per op (matmuls and convolutions in half, reductions in float32).
* Batching (:meth:`Segmenter.segment_batch`) groups frames by their modality set, because a batch
  must share one input dict; frames of different sizes can share a batch (each is letterboxed to
  the same square).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sam_moelora_ros.model.preprocess import Letterbox, prepare_inputs, unletterbox

if TYPE_CHECKING:
    from torch import nn

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
"""Accepted ``dtype`` names -> torch dtypes."""

DEFAULT_MODEL_RESOURCE = ("models", "default_tiny.safetensors")
"""Where the package's shipped default adapter lives (inside ``sam_moelora_ros``)."""


class SegmenterError(Exception):
    """A Segmenter could not be built or was given input it cannot segment."""


@dataclass
class Segmentation:
    """The result for one frame, at the frame's input resolution.

    Attributes:
        labels: ``H x W`` class ids; uint8 when the model has at most 256 classes, else uint16.
        confidence: ``H x W`` float32 max softmax probability (``1/K`` .. ``1``).
        router_weights: present modality -> the router's weight averaged over fused levels.
        modalities: the modalities the model saw, in the model's order.
        inference_s: wall-clock seconds spent in preprocessing, forward and postprocessing
            (per frame; for a batch, the batch time divided by its size).
    """

    labels: np.ndarray
    confidence: np.ndarray
    router_weights: dict[str, float]
    modalities: tuple[str, ...]
    inference_s: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)


def default_adapter_path() -> Path | None:
    """The shipped adapter (``sam_moelora_ros/models/default_tiny.safetensors``), or None."""
    try:
        resource = importlib.resources.files("sam_moelora_ros").joinpath(*DEFAULT_MODEL_RESOURCE)
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - broken install
        return None
    path = Path(str(resource))
    return path if path.is_file() else None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; explicit names are checked.

    Raises:
        SegmenterError: the name is not a torch device, or names a CUDA device this machine lacks.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            message = f"device {device!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:N]'"
            raise SegmenterError(message) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise SegmenterError(
                f"device {str(resolved)!r} requested but CUDA is not available on this machine; "
                "use 'auto' or 'cpu'"
            )
        index = resolved.index or 0
        if index >= torch.cuda.device_count():
            raise SegmenterError(
                f"device {str(resolved)!r} requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist"
            )
    elif resolved.type != "cpu":
        raise SegmenterError(
            f"device {str(resolved)!r} is not supported; use 'auto', 'cpu', 'cuda'"
        )
    return resolved


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32" | "float16" | "bfloat16"`` (or the torch dtype itself) -> torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise SegmenterError(f"dtype {dtype} is not supported; use one of {sorted(DTYPES)}")
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        message = f"dtype {dtype!r} is not supported; use one of {sorted(DTYPES)}"
        raise SegmenterError(message) from None


class Segmenter:
    """Run a :class:`~sam_moelora_ros.model.MoELoRASegmentor` on numpy frames.

    Args:
        model: a built segmentor (``model.config`` or ``model.cfg`` holds its ``ModelConfig``).
        device: ``"auto"`` (cuda if available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"``; the model's weights are cast to it.
        merge_lora: fold the LoRA experts into the base weights (inference only).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
        merge_lora: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        config = getattr(model, "config", None) or getattr(model, "cfg", None)
        if config is None:
            raise SegmenterError(
                f"{type(model).__name__} has no .config/.cfg; pass a MoELoRASegmentor"
            )
        self.config = config
        self.image_size: int = int(config.image_size)
        self.num_classes: int = int(config.num_classes)
        self.modalities: tuple[str, ...] = tuple(config.modalities)
        if merge_lora and hasattr(model, "merge_lora"):
            model.merge_lora()
        # Weights stay float32; half precision runs under autocast (see the module docstring).
        self.model = model.eval().to(device=self.device)
        self.label_dtype = np.uint8 if self.num_classes <= 256 else np.uint16

    @classmethod
    def from_files(
        cls,
        adapter: str | Path | None = None,
        sam_checkpoint: str | Path | None = None,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
        merge_lora: bool = True,
    ) -> Segmenter:
        """Load a saved adapter (and optionally the SAM checkpoint it was trained on).

        ``adapter=None`` or ``""`` uses the package's shipped default model; when the package has
        none, the error says what to pass.
        """
        from sam_moelora_ros.model import load_segmentor

        if adapter in (None, ""):
            shipped = default_adapter_path()
            if shipped is None:
                raise SegmenterError(
                    "no model given and this install ships no default model "
                    f"(looked for sam_moelora_ros/{'/'.join(DEFAULT_MODEL_RESOURCE)}); pass the "
                    "path of an adapter .safetensors file (written by save_adapter / training)"
                )
            adapter = shipped
        adapter_path = Path(adapter).expanduser()
        if not adapter_path.is_file():
            raise SegmenterError(f"adapter file {str(adapter_path)!r} does not exist")
        checkpoint: Path | None = None
        if sam_checkpoint not in (None, ""):
            checkpoint = Path(sam_checkpoint).expanduser()  # type: ignore[arg-type]
            if not checkpoint.is_file():
                raise SegmenterError(f"SAM checkpoint {str(checkpoint)!r} does not exist")
        try:
            model = load_segmentor(
                str(adapter_path),
                sam_checkpoint=None if checkpoint is None else str(checkpoint),
                map_location="cpu",
            )
        except Exception as exc:
            message = f"could not load the model from {str(adapter_path)!r}: {exc}"
            raise SegmenterError(message) from exc
        return cls(model, device=device, dtype=dtype, merge_lora=merge_lora)

    def _check_images(self, images: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate a frame's images; return them in the model's modality order."""
        if not images:
            raise SegmenterError("a frame needs at least one modality image, got none")
        unknown = sorted(set(images) - set(self.modalities))
        if unknown:
            raise SegmenterError(
                f"modalities {unknown} are not known to the model "
                f"(it takes {list(self.modalities)})"
            )
        ordered: dict[str, np.ndarray] = {}
        for name in self.modalities:
            if name not in images:
                continue
            image = np.asarray(images[name])
            if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 3, 4)):
                raise SegmenterError(
                    f"{name}: expected an H x W x 3 image, got shape {tuple(image.shape)}"
                )
            if image.shape[0] == 0 or image.shape[1] == 0:
                raise SegmenterError(f"{name}: image is empty ({tuple(image.shape)})")
            ordered[name] = image
        return ordered

    def _prepare(
        self, images: Mapping[str, np.ndarray], size_hw: tuple[int, int] | None
    ) -> tuple[dict[str, np.ndarray], dict[str, torch.Tensor], Letterbox]:
        ordered = self._check_images(images)
        tensors, box = prepare_inputs(ordered, self.image_size, size_hw=size_hw, device=self.device)
        return ordered, tensors, box

    def __call__(
        self, images: Mapping[str, np.ndarray], size_hw: tuple[int, int] | None = None
    ) -> Segmentation:
        """Segment one frame.

        Args:
            images: modality -> ``H x W x 3`` uint8 network image (any non-empty subset of
                :attr:`modalities`).
            size_hw: the output resolution ``(H, W)``; defaults to the first present modality's
                size in the model's order (rgb first).
        """
        return self.segment_batch([images], [size_hw])[0]

    def segment_batch(
        self,
        frames: Sequence[Mapping[str, np.ndarray]],
        sizes_hw: Sequence[tuple[int, int] | None] | None = None,
    ) -> list[Segmentation]:
        """Segment several frames; frames with the same modality set share one forward pass."""
        if sizes_hw is None:
            sizes_hw = [None] * len(frames)
        if len(sizes_hw) != len(frames):
            raise SegmenterError(f"got {len(frames)} frames but {len(sizes_hw)} sizes")
        prepared = [self._prepare(f, s) for f, s in zip(frames, sizes_hw, strict=True)]
        groups: dict[tuple[str, ...], list[int]] = {}
        for index, (ordered, _, _) in enumerate(prepared):
            groups.setdefault(tuple(ordered), []).append(index)
        results: list[Segmentation | None] = [None] * len(frames)
        for names, indices in groups.items():
            start = time.perf_counter()
            batch = {n: torch.cat([prepared[i][1][n] for i in indices]) for n in names}
            with torch.inference_mode(), self._autocast():
                logits, extras = self.model(batch, return_extras=True)
                router = extras.get("router_weights", {}) if isinstance(extras, dict) else {}
                outputs = [
                    self._postprocess(logits[j : j + 1], prepared[i][2])
                    for j, i in enumerate(indices)
                ]
                weights = {
                    n: w.float().reshape(w.shape[0], -1).mean(dim=1).cpu().numpy()
                    for n, w in router.items()
                }
            elapsed = (time.perf_counter() - start) / len(indices)
            for j, i in enumerate(indices):
                labels, confidence = outputs[j]
                results[i] = Segmentation(
                    labels=labels,
                    confidence=confidence,
                    router_weights={n: float(weights[n][j]) for n in names if n in weights},
                    modalities=names,
                    inference_s=elapsed,
                )
        return [r for r in results if r is not None]

    def _autocast(self) -> Any:
        """float16/bfloat16: ``torch.autocast`` on the device; float32: a no-op context."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _postprocess(self, logits: torch.Tensor, box: Letterbox) -> tuple[np.ndarray, np.ndarray]:
        """``1 x K x S x S`` logits -> (labels, confidence) numpy at the letterbox's input size."""
        full = unletterbox(logits.float(), box, mode="bilinear")
        probs = torch.softmax(full, dim=1)
        confidence, labels = probs.max(dim=1)
        labels_np = labels[0].to(torch.int32).cpu().numpy().astype(self.label_dtype)
        return labels_np, confidence[0].cpu().numpy().astype(np.float32, copy=False)

    def warmup(self, size_hw: tuple[int, int] = (64, 64)) -> float:
        """Run one all-modality frame so the first real frame does not pay for lazy init.

        Returns the seconds the warm-up took.
        """
        start = time.perf_counter()
        blank = np.zeros((*size_hw, 3), dtype=np.uint8)
        self({name: blank for name in self.modalities}, size_hw)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def describe(self) -> str:
        """One line for logs and diagnostics: device, dtype, size, classes, modalities."""
        return (
            f"{self.device} {str(self.dtype).removeprefix('torch.')} S={self.image_size} "
            f"K={self.num_classes} modalities={','.join(self.modalities)}"
        )

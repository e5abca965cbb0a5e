"""Segmenter: a frame's modality images (numpy) in, class ids, confidence and router weights out.

This is the one place where the node (and the replay tools) touch the model. It owns the device,
the compute dtype (autocast; the weights stay float32) and the inference-mode context, and it
speaks numpy at the input resolution on both sides, so its callers never see a tensor, a
letterbox or a logit:

* **input**: ``{modality: H x W x 3 uint8 network image}`` (RGB as the camera sees it, the other
  modalities as :mod:`sam_moelora_ros.sensors.representation` renders them), any non-empty subset
  of the model's modalities. Images of other sizes than the frame's reference size are resampled to
  it with the functions of :mod:`~sam_moelora_ros.model.preprocess` (``shrink_to_box`` on the CPU,
  then ``fit_to_box``, ``to_model_tensor`` on the device: the ops of ``prepare_inputs``, shared
  with evaluation; a test checks the tensors are identical).
* **output**: :class:`Segmentation` with ``labels`` (``H x W`` uint8, or uint16 beyond 256
  classes), ``confidence`` (``H x W`` float32 max softmax probability) and the router's mean weight
  per present modality.

Choices, and why:

* Logits are cropped out of the letterbox and resized *bilinearly* to the input resolution before
  the arg-max (:mod:`.postprocess`; SAM's ``postprocess_masks`` does the same with its mask
  logits): resizing the label image instead would give blocky, aliased class boundaries. Softmax
  and arg-max run in float32 whatever the compute dtype, so half precision cannot flip a near-tie
  into a NaN.
* Memory is bounded by the model, not the camera: an image larger than its place in the model
  input is shrunk on the CPU before upload (``preprocess.shrink_to_box``), and large outputs are
  resized and reduced in bands of rows (:mod:`.postprocess`).
* A model is only ready when its warm-up forward is finite (:meth:`Segmenter.warmup`): an adapter
  whose weights overflow would otherwise publish labels computed from NaNs.
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

Hot path (measured by ``make bench``; the figures behind these choices are in docs/design.md,
"The Segmenter's measured choices"):

* Images travel to the device as **uint8** (a quarter of float32's bytes) and are converted,
  resampled, normalised and letterboxed there with the tensor functions of
  :mod:`~sam_moelora_ros.model.preprocess` (the same ops, in the same order, as
  ``prepare_inputs``), through :class:`~sam_moelora_ros.inference.device.Uploader` (a pinned
  staging buffer on CUDA, no copy on the CPU).
* The router weights are read with forward hooks on the routers and the model is called without
  ``return_extras``: the extras' auxiliary head (a full-resolution K-class map) is a training
  signal, as costly per frame as the tiny model's encoder.
* ``compile`` (off by default): ``torch.compile`` of the model with ``dynamic=False``. One graph
  per modality set, compiled the first time that set is seen (``warmup`` can pre-compile sets).
  ``reduce-overhead`` adds CUDA graphs, which is safe here because every output is copied to the
  host before the next call; on the CPU it degrades to ``default`` (CUDA graphs need CUDA). If
  compiling fails (no C++ compiler, an unsupported op), the Segmenter logs it once and runs
  eagerly: compiling is an optimisation, never a reason to stop segmenting.
* Loading, merging and (on the CPU) the warm-up run on a **short-lived thread of their own**
  (:func:`~.passing_thread.on_passing_thread`, whose docstring says why), so the thread that
  builds the Segmenter never starts torch's OpenMP pool and the thread that segments holds the
  only one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sam_moelora_ros.inference.default_model import (
    DEFAULT_MODEL_ENV,
    DEFAULT_MODEL_RESOURCE,
    default_adapter_path,
    model_files,
)
from sam_moelora_ros.inference.device import (
    COMPILE_MODES,
    DTYPES,
    SegmenterError,
    Uploader,
    resolve_compile,
    resolve_device,
    resolve_dtype,
)
from sam_moelora_ros.inference.passing_thread import on_passing_thread
from sam_moelora_ros.inference.postprocess import labels_and_confidence
from sam_moelora_ros.model.preprocess import (
    Letterbox,
    content_multiple,
    fit_to_box,
    letterbox_params,
    pad_batch,
    shrink_to_box,
    to_model_tensor,
)
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT, InputContract

__all__ = [
    "COMPILE_MODES",
    "DEFAULT_MODEL_ENV",
    "DEFAULT_MODEL_RESOURCE",
    "DTYPES",
    "Segmentation",
    "Segmenter",
    "SegmenterError",
    "default_adapter_path",
    "resolve_compile",
    "resolve_device",
    "resolve_dtype",
]

if TYPE_CHECKING:
    from torch import nn

LOG = logging.getLogger(__name__)


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


class Segmenter:
    """Run a :class:`~sam_moelora_ros.model.MoELoRASegmentor` on numpy frames.

    Args:
        model: a built segmentor (``model.cfg`` holds its ``ModelConfig``).
        device: ``"auto"`` (cuda if available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"``: the compute precision. The weights
            stay float32; half precision runs the forward under ``torch.autocast`` (see the
            module docstring for why the model is not cast).
        merge_lora: fold the LoRA experts into the base weights (inference only).
        compile: ``"none"`` (default), ``"default"``, ``"reduce-overhead"`` (+ CUDA graphs),
            ``"max-autotune"``, or a bool; see the module docstring.
        pin_memory: stage CUDA uploads in pinned host memory (default: on when the device is
            CUDA; ignored on the CPU, where there is no copy to speed up).
        source: what the model is, for error messages (:meth:`from_files` passes the adapter's
            path); default: the model's class and config name.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
        merge_lora: bool = True,
        compile: str | bool = "none",
        pin_memory: bool | None = None,
        source: str | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.compile_mode = resolve_compile(compile, self.device)
        self._upload = Uploader(self.device, pin_memory is None or pin_memory)
        self.pin_memory = self._upload.pin_memory
        self.dtype = resolve_dtype(dtype)
        config = getattr(model, "cfg", None)
        if config is None:
            raise SegmenterError(
                f"{type(model).__name__} has no .cfg (the ModelConfig a MoELoRASegmentor "
                "carries); pass a MoELoRASegmentor"
            )
        self.config = config
        self.source = source or f"{type(model).__name__} {getattr(config, 'name', '')}".strip()
        self.image_size: int = int(config.image_size)
        geometry = getattr(config, "input_geometry", "letterbox")  # content: no square padding
        self._multiple = content_multiple(geometry, int(getattr(config, "patch_size", 16)))
        self.num_classes: int = int(config.num_classes)
        self.modalities: tuple[str, ...] = tuple(config.modalities)
        self.input_encodings: InputContract = getattr(
            model, "input_encodings", DEFAULT_CONTRACT.restrict(self.modalities)
        )
        """The model's input contract (``sensors.encodings``): how the node must build its
        network images."""
        self._require_finite = False  # set by warmup(): check the logits of its forwards
        merge = getattr(model, "merge_lora", None)
        if merge_lora and merge is not None:
            try:
                on_passing_thread(merge)  # matmuls: no OpenMP pool left on this thread
            except ValueError as exc:  # non-finite merged weights: the model is unusable
                raise SegmenterError(f"{self.source}: {exc}", input_name="adapter") from exc
        # Weights stay float32; half precision runs under autocast (see the module docstring).
        self.model = on_passing_thread(lambda: model.eval().to(device=self.device))
        self.label_dtype = np.uint8 if self.num_classes <= 256 else np.uint16
        self._hooked = threading.local()  # router weights of the running forward, per thread
        self._hook_routers()
        self._forward: Any = self.model
        if self.compile_mode != "none":
            self._forward = torch.compile(self.model, mode=self.compile_mode, dynamic=False)

    def _hook_routers(self) -> None:
        """Collect each router's ``M x B`` weights as the forward produces them."""
        routers = getattr(self.model, "routers", None)
        self._router_hooks = routers is not None
        for router in routers or ():
            router.register_forward_hook(self._on_router)

    def _on_router(self, _module: Any, _inputs: Any, output: torch.Tensor) -> None:
        sink = getattr(self._hooked, "weights", None)
        if sink is not None:
            sink.append(output.detach())

    @classmethod
    def from_files(
        cls,
        adapter: str | Path | None = None,
        sam_checkpoint: str | Path | None = None,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
        merge_lora: bool = True,
        compile: str | bool = "none",
        pin_memory: bool | None = None,
    ) -> Segmenter:
        """Load a saved adapter (and optionally the SAM checkpoint it was trained on).

        ``adapter=None`` or ``""`` uses the package's shipped default model; when the package has
        none, the error says what to pass.
        """
        from sam_moelora_ros.model import SamCheckpointError, load_segmentor

        adapter_path, checkpoint = model_files(adapter, sam_checkpoint)
        try:
            # Loading copies every tensor (parallel ops): on a passing thread (on_passing_thread).
            model = on_passing_thread(
                lambda: load_segmentor(
                    str(adapter_path),
                    sam_checkpoint=None if checkpoint is None else str(checkpoint),
                    map_location="cpu",
                )
            )
        except SamCheckpointError as exc:
            message = f"could not load the SAM checkpoint {str(checkpoint)!r}: {exc}"
            raise SegmenterError(message, input_name="sam_checkpoint") from exc
        except Exception as exc:
            message = f"could not load the model from {str(adapter_path)!r}: {exc}"
            raise SegmenterError(message, input_name="adapter") from exc
        return cls(
            model,
            device=device,
            dtype=dtype,
            merge_lora=merge_lora,
            compile=compile,
            pin_memory=pin_memory,
            source=str(adapter_path),
        )

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
        """Check, upload (uint8) and preprocess on the device: ``prepare_inputs``' ops, in order."""
        ordered = self._check_images(images)
        first = next(iter(ordered.values()))
        size: tuple[int, int] = size_hw or (int(first.shape[0]), int(first.shape[1]))
        box = letterbox_params(size[0], size[1], self.image_size, self._multiple)
        # Shrunk on the CPU first: nothing larger than the model input is uploaded or converted.
        uploaded = {
            name: self._upload(name, shrink_to_box(image, box, name))
            for name, image in ordered.items()
        }
        tensors = {
            name: to_model_tensor(fit_to_box(tensor, size, box, name), name, box)
            for name, tensor in uploaded.items()
        }
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
        prepared = []
        prepare_s: list[float] = []
        for images, size_hw in zip(frames, sizes_hw, strict=True):
            start = time.perf_counter()
            prepared.append(self._prepare(images, size_hw))
            prepare_s.append(time.perf_counter() - start)
        groups: dict[tuple[str, ...], list[int]] = {}
        for index, (ordered, _, _) in enumerate(prepared):
            groups.setdefault(tuple(ordered), []).append(index)
        results: list[Segmentation | None] = [None] * len(frames)
        for names, indices in groups.items():
            start = time.perf_counter()
            batch = {n: pad_batch([prepared[i][1][n] for i in indices]) for n in names}
            boxes = [prepared[i][2] for i in indices]
            with torch.inference_mode(), self._autocast():
                logits, levels = self._run(batch)
                if self._require_finite and not bool(torch.isfinite(logits).all()):
                    raise SegmenterError(
                        f"model {self.source}: its warm-up forward ({'+'.join(names)}, "
                        f"{self.dtype}) gives NaN/Inf logits, so it is not ready; the adapter's "
                        "weights overflow: re-export or retrain it (or try dtype float32)",
                        input_name="adapter",
                    )
                labels, confidence = self._postprocess_batch(logits, boxes)
                # M x B x L -> per modality, per frame: mean over fused levels.
                weights = (
                    torch.stack(levels, dim=-1).float().mean(dim=-1).cpu().numpy()
                    if levels
                    else None
                )
            elapsed = (time.perf_counter() - start) / len(indices)
            for j, i in enumerate(indices):
                results[i] = Segmentation(
                    labels=labels[j],
                    confidence=confidence[j],
                    router_weights=(
                        {n: float(weights[m, j]) for m, n in enumerate(names)}
                        if weights is not None
                        else {}
                    ),
                    modalities=names,
                    inference_s=prepare_s[i] + elapsed,
                )
        return [r for r in results if r is not None]

    def _run(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Forward (compiled when asked) -> logits and the routers' ``M x B`` weights per level.

        A compiled forward that fails is logged once and replaced by the eager model.
        """
        try:
            return self._forward_collect(self._forward, batch)
        except Exception as exc:
            if self._forward is self.model:
                raise
            LOG.warning("torch.compile failed (%s); running the model eagerly", exc)
            self._forward, self.compile_mode = self.model, "none"
            return self._forward_collect(self.model, batch)

    def _forward_collect(
        self, forward: Any, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not self._router_hooks:  # a model without .routers: ask it for its extras
            logits, extras = forward(batch, return_extras=True)
            router = extras.get("router_weights", {}) if isinstance(extras, dict) else {}
            levels = torch.stack(list(router.values())).unbind(-1) if router else ()
            return logits, list(levels)  # modality -> B x L  =>  per level M x B
        self._hooked.weights = []
        try:
            logits = forward(batch)
            return logits, self._hooked.weights
        finally:
            self._hooked.weights = None

    def _autocast(self) -> Any:
        """float16/bfloat16: ``torch.autocast`` on the device; float32: a no-op context."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _postprocess_batch(
        self, logits: torch.Tensor, boxes: Sequence[Letterbox]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``B x K x S x S`` logits -> per frame (labels, confidence) numpy at its input size.

        Frames sharing a letterbox are resized in one call (in bands of rows when large, see
        :mod:`.postprocess`). Labels and confidence are computed on the device, and only they (not
        K maps) are copied to the host, in one transfer each.
        """
        labels: list[np.ndarray] = []
        confidence: list[np.ndarray] = []
        j = 0
        while j < len(boxes):
            k = j + 1
            while k < len(boxes) and boxes[k] == boxes[j]:
                k += 1
            conf, ids = labels_and_confidence(logits[j:k], boxes[j])
            ids = ids.to(torch.uint8 if self.label_dtype == np.uint8 else torch.int32)
            ids_np = ids.cpu().numpy().astype(self.label_dtype, copy=False)
            conf_np = conf.cpu().numpy().astype(np.float32, copy=False)
            labels.extend(ids_np)
            confidence.extend(conf_np)
            j = k
        return labels, confidence

    def warmup(
        self,
        size_hw: tuple[int, int] = (64, 64),
        modality_sets: Sequence[Sequence[str]] | None = None,
    ) -> float:
        """Run blank frames so the first real frame does not pay for lazy init (or compiling).

        Args:
            size_hw: the blank frames' size (the model input is the same square whatever it is).
            modality_sets: the modality sets to run; default: all modalities, plus each single
                modality when the model is compiled (one graph per set, see the module docstring).
        Returns the seconds the warm-up took. On the CPU the blank frames run on a passing thread
        (``on_passing_thread``): the caller (the node's executor) is not the thread that will
        segment, and must not keep an OpenMP pool of its own. On CUDA they run on the caller's
        thread, where compiled CUDA graphs are recorded for the thread that warms up.

        Raises:
            SegmenterError: a warm-up forward gave NaN/Inf logits (naming the model's source):
                the model must not be declared ready, it would label every frame from NaNs.
        """
        start = time.perf_counter()
        blank = np.zeros((*size_hw, 3), dtype=np.uint8)
        if modality_sets is None:
            modality_sets = [self.modalities]
            if self.compile_mode != "none" and len(self.modalities) > 1:
                modality_sets += [(m,) for m in self.modalities]
        sets = [tuple(names) for names in modality_sets]

        def run_blank_frames() -> None:
            for names in sets:
                self({name: blank for name in names}, size_hw)

        self._require_finite = True
        try:
            if self.device.type == "cpu":
                on_passing_thread(run_blank_frames, "segmenter-warmup")
            else:
                run_blank_frames()
        finally:
            self._require_finite = False
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def describe(self) -> str:
        """One line for logs and diagnostics: device, dtype, size, classes, modalities."""
        compiled = "" if self.compile_mode == "none" else f" compile={self.compile_mode}"
        return (
            f"{self.device} {str(self.dtype).removeprefix('torch.')} S={self.image_size} "
            f"K={self.num_classes} modalities={','.join(self.modalities)}{compiled}"
        )

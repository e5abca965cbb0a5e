"""Device, dtype and compile choices for the Segmenter, and the host-to-device upload path.

Kept apart from :mod:`.segmenter` so the hot path's staging logic (pinned buffers,
non-blocking copies, CUDA events) is one small, separately testable piece.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch

from sam_moelora_ros.errors import SamMoeLoraError

LOG = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
"""Accepted ``dtype`` names -> torch dtypes."""

COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
"""Accepted ``compile`` values: ``none`` (eager) or a ``torch.compile`` mode."""

MAX_STAGING_BUFFERS = 16
"""Pinned staging buffers kept per Segmenter (one per modality and image shape); beyond this the
cache is cleared, so a stream of ever-changing sizes cannot grow pinned memory without bound."""


class SegmenterError(SamMoeLoraError):
    """A Segmenter could not be built or was given input it cannot segment.

    ``input_name`` says which of the Segmenter's inputs is at fault, so a caller that exposes
    them as settings can name the one to fix: ``"adapter"``, ``"sam_checkpoint"``, ``"device"``,
    or ``""`` (a frame, or not known).
    """

    def __init__(self, message: str, *, input_name: str = "") -> None:
        super().__init__(message)
        self.input_name = input_name


class DeviceError(SegmenterError, RuntimeError):
    """A device this machine cannot run on.

    Both a :class:`SegmenterError` (what the Segmenter's callers catch) and a ``RuntimeError``
    (what training's own device check raised before the two were merged into one).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, input_name="device")


def resolve_device(
    device: str | torch.device = "auto", local_rank: int | None = None
) -> torch.device:
    """The torch device to run on: the one implementation for inference and training.

    Args:
        device: ``"auto"`` (or ``""``): CUDA when available, else the CPU; ``"cpu"``,
            ``"cuda"``, ``"cuda:N"`` or a :class:`torch.device`: that device, checked to exist.
        local_rank: this process's rank on its machine, under ``torchrun`` (training). Given,
            it picks the GPU for ``"auto"`` and ``"cuda"`` (one process per GPU); an explicit
            ``"cuda:N"`` still wins. ``None`` (inference) leaves ``"auto"``/``"cuda"`` on the
            current CUDA device.

    Raises:
        DeviceError: the name is not a torch device, names a device type other than CPU or
            CUDA, names a CUDA device this machine lacks, or ``local_rank`` is negative.
    """
    if local_rank is not None and local_rank < 0:
        raise DeviceError(f"local_rank must be >= 0, got {local_rank}; torchrun sets LOCAL_RANK")
    if isinstance(device, torch.device):
        resolved = device
    elif device in ("", "auto"):
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            message = f"device {device!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:N]'"
            raise DeviceError(message) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {str(resolved)!r} requested but CUDA is not available on this machine; "
                "use 'auto' or 'cpu'"
            )
        if resolved.index is None and local_rank is not None:
            resolved = torch.device("cuda", local_rank)
        index = resolved.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {str(resolved)!r} requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist"
            )
    elif resolved.type != "cpu":
        raise DeviceError(f"device {str(resolved)!r} is not supported; use 'auto', 'cpu', 'cuda'")
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


def resolve_compile(mode: str | bool | None, device: torch.device) -> str:
    """``True``/``False``/``None`` or a name of :data:`COMPILE_MODES` -> the mode to use.

    ``reduce-overhead`` (CUDA graphs) becomes ``default`` on a CPU device.
    """
    if mode is None or mode is False:
        return "none"
    if mode is True:
        return "default"
    if mode not in COMPILE_MODES:
        raise SegmenterError(f"compile mode {mode!r} is not supported; use one of {COMPILE_MODES}")
    if mode == "reduce-overhead" and device.type != "cuda":
        LOG.info("compile mode 'reduce-overhead' uses CUDA graphs; using 'default' on %s", device)
        return "default"
    return mode


class Uploader:
    """Moves a frame's images to the device as uint8 (the bytes the sensor produced).

    CPU: a view of the array (no copy). CUDA: through a pinned staging buffer per (modality,
    shape, dtype) with a ``non_blocking`` copy; a CUDA event guards each buffer so the next frame
    cannot overwrite it while the previous copy is in flight. At most
    :data:`MAX_STAGING_BUFFERS` buffers are kept.
    """

    def __init__(self, device: torch.device, pin_memory: bool) -> None:
        self.device = device
        self.pin_memory = device.type == "cuda" and pin_memory
        self._staging: dict[tuple[str, tuple[int, ...], str], tuple[torch.Tensor, Any]] = {}

    def __call__(self, name: str, image: np.ndarray) -> torch.Tensor:
        """``H x W [x C]`` array -> ``1 x 3 x H x W`` tensor (its own dtype) on the device.

        Mono images are broadcast to 3 channels and RGBA loses alpha *after* the upload, so only
        the bytes the sensor produced cross the bus.
        """
        array = np.ascontiguousarray(image)
        with warnings.catch_warnings():  # message buffers are read-only; nothing writes to them
            warnings.simplefilter("ignore", UserWarning)
            host = torch.from_numpy(array)
        if self.device.type == "cuda":
            host = self._to_cuda(name, host)
        if host.ndim == 2:
            host = host.unsqueeze(-1)
        if host.shape[-1] == 1:
            host = host.expand(-1, -1, 3)
        elif host.shape[-1] == 4:
            host = host[..., :3]
        return host.permute(2, 0, 1).unsqueeze(0)

    def _to_cuda(self, name: str, host: torch.Tensor) -> torch.Tensor:
        if not self.pin_memory:
            return host.to(self.device)
        key = (name, tuple(host.shape), str(host.dtype))
        slot = self._staging.get(key)
        if slot is None:
            if len(self._staging) >= MAX_STAGING_BUFFERS:
                for _, event in self._staging.values():
                    event.synchronize()
                self._staging.clear()
            slot = (torch.empty(host.shape, dtype=host.dtype, pin_memory=True), torch.cuda.Event())
            self._staging[key] = slot
        buffer, event = slot
        event.synchronize()  # the previous copy out of this buffer has finished
        buffer.copy_(host)
        device_tensor = buffer.to(self.device, non_blocking=True)
        event.record(torch.cuda.current_stream(self.device))
        return device_tensor

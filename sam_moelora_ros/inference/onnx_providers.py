"""ONNX Runtime's providers for the exported model: which to ask for, their options, and the
TensorRT engine cache. Used by :mod:`.onnx_backend`; imports torch only to name the GPU.

Providers (``providers``, in priority order; short names ``cpu``, ``cuda``, ``tensorrt`` work):

* ``CPUExecutionProvider``; ``intra_op_num_threads`` = ``threads`` (0: ONNX Runtime's default,
  one per physical core), one inter-op thread, sequential execution, all graph optimisations,
  and no spinning: idle pool threads sleep at once, because each graph has its own pool and
  torch's pre/postprocessing threads run between the graphs. No weight prepacking: the graphs
  share ``weights.bin`` mapped once, where prepacking gave every session a private copy (set by
  :mod:`.onnx_backend`'s sessions; the measurements are in docs/deploy.md, "The ONNX Runtime
  backend").
* ``CUDAExecutionProvider`` (``onnxruntime-gpu``): on ``device_id``.
* ``TensorrtExecutionProvider`` (an ONNX Runtime build with TensorRT, e.g. on a Jetson): engines
  are built at the first run of each graph (the warm-up) and cached under
  ``engine_cache_dir/<model hash>-<GPU>-trt<TensorRT version>/`` (``trt_engine_cache_enable``,
  ``trt_engine_cache_path``, and the timing cache beside them), so a new export, another GPU or
  another TensorRT never loads a stale engine; the batch profile spans 1 to :data:`TRT_MAX_BATCH`.
  ``dtype="float16"`` turns on ``trt_fp16_enable`` (the graphs themselves are float32).

A provider this onnxruntime lacks, or one that fails to start (ONNX Runtime would silently run on
the CPU instead), is a :class:`~sam_moelora_ros.inference.device.SegmenterError` naming it and the
fix, unless ``allow_fallback`` was asked for: then it is dropped with a logged warning and the
session runs on what is left (the CPU at worst).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from sam_moelora_ros.inference.device import SegmenterError

LOG = logging.getLogger(__name__)

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}
"""Short provider names accepted besides ONNX Runtime's own."""
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
TRT_MAX_BATCH = 4
"""Largest batch of the TensorRT optimisation profile (larger batches rebuild the engine)."""
PRECISIONS = ("float32", "float16")


def default_engine_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sam_moelora_ros/tensorrt`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sam_moelora_ros" / "tensorrt"


def normalise_providers(names: Sequence[str]) -> list[str]:
    """Provider names with the short aliases expanded; duplicates dropped, order kept."""
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",") if part.strip()]
    out: list[str] = []
    for name in names:
        full = PROVIDER_ALIASES.get(name.lower(), name) if isinstance(name, str) else name
        if full not in out:
            out.append(full)
    if not out:
        raise SegmenterError(
            "no ONNX Runtime provider given; pass e.g. ['CPUExecutionProvider']",
            input_name="providers",
        )
    return out


def resolve_providers(
    requested: Sequence[str], available: Sequence[str], allow_fallback: bool
) -> list[str]:
    """The providers to ask ONNX Runtime for: ``requested`` checked against ``available``.

    Raises :class:`SegmenterError` for a provider this build lacks, unless ``allow_fallback``
    (then it is dropped, with a warning, and the CPU provider is kept as the last resort).
    """
    wanted = normalise_providers(requested)
    missing = [name for name in wanted if name not in available]
    if missing and not allow_fallback:
        hints = []
        if "CUDAExecutionProvider" in missing:
            hints.append("CUDA needs the onnxruntime-gpu package (and CUDA/cuDNN libraries)")
        if "TensorrtExecutionProvider" in missing:
            hints.append("TensorRT needs an onnxruntime build with TensorRT (e.g. JetPack's)")
        hint = ("; " + "; ".join(hints)) if hints else ""
        raise SegmenterError(
            f"ONNX Runtime provider(s) {missing} are not available in this onnxruntime "
            f"(available: {list(available)}){hint}; set the providers to available ones, or "
            "allow the fallback (model.provider_fallback: true) to run on what is available",
            input_name="providers",
        )
    if missing:
        LOG.warning(
            "ONNX Runtime provider(s) %s not available (available: %s); falling back",
            missing,
            list(available),
        )
    kept = [name for name in wanted if name in available]
    if allow_fallback and "CPUExecutionProvider" not in kept:
        kept.append("CPUExecutionProvider")
    return kept


def engine_cache_path(root: str | Path, model_hash: str, gpu: str, trt_version: str) -> Path:
    """``root/<model hash[:16]>-<gpu>-trt<version>``: one engine cache per export, GPU, TensorRT."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", gpu).strip("_") or "gpu"
    version = re.sub(r"[^A-Za-z0-9.]+", "_", trt_version).strip("_") or "unknown"
    return Path(root).expanduser() / f"{model_hash[:16]}-{slug}-trt{version}"


def gpu_identity(device_id: int = 0) -> str:
    """The GPU's name and compute capability (torch's view), else the board model, else 'gpu'."""
    if torch.cuda.is_available() and device_id < torch.cuda.device_count():
        major, minor = torch.cuda.get_device_capability(device_id)
        return f"{torch.cuda.get_device_name(device_id)} sm{major}{minor}"
    board = Path("/proc/device-tree/model")  # Jetson: e.g. "NVIDIA Jetson AGX Orin"
    if board.is_file():
        return board.read_text(errors="replace").strip("\x00\n ")
    return "gpu"


def tensorrt_version() -> str:
    """The TensorRT version: the ``tensorrt`` package, else ``libnvinfer``'s, else 'unknown'."""
    try:
        import tensorrt  # type: ignore[import-not-found]

        return str(tensorrt.__version__)
    except ImportError:
        pass
    for name in ("libnvinfer.so", "libnvinfer.so.10", "libnvinfer.so.8"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        code = int(lib.getInferLibVersion())  # e.g. 100300 (10.3.0) or 8602 (8.6.2)
        if code >= 10000:
            return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
        return f"{code // 1000}.{code // 100 % 10}.{code % 100}"
    return "unknown"


def provider_options(
    provider: str,
    *,
    device_id: int = 0,
    engine_cache: Path | None = None,
    fp16: bool = False,
    profile: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """ONNX Runtime options for one provider and one graph.

    ``profile``: the graph's batch-dynamic inputs -> their shape without the batch dimension
    (TensorRT's optimisation profile spans batch 1 to :data:`TRT_MAX_BATCH`, optimal at 1).
    """
    if provider == "TensorrtExecutionProvider":
        options: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": fp16}
        if engine_cache is not None:
            options.update(
                trt_engine_cache_enable=True,
                trt_engine_cache_path=str(engine_cache),
                trt_timing_cache_enable=True,
                trt_timing_cache_path=str(engine_cache),
            )
        if profile:

            def shapes(batch: int) -> str:
                return ",".join(
                    f"{name}:{'x'.join(str(d) for d in (batch, *dims))}"
                    for name, dims in profile.items()
                )

            options.update(
                trt_profile_min_shapes=shapes(1),
                trt_profile_opt_shapes=shapes(1),
                trt_profile_max_shapes=shapes(TRT_MAX_BATCH),
            )
        return options
    if provider == "CUDAExecutionProvider":
        return {"device_id": device_id}
    return {}

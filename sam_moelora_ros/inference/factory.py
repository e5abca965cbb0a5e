"""One way to get a Segmenter for either backend: what the node, replay and evaluation call.

* ``torch``: :meth:`Segmenter.from_files` on an adapter ``.safetensors`` (the default).
* ``onnxruntime``: :class:`~.onnx_backend.OnnxRuntimeSegmenter` on a folder written by
  ``python -m sam_moelora_ros.export`` (imported only when asked for, so the torch backend never
  needs onnxruntime).

Both return an object with the Segmenter's interface (``__call__``, ``segment_batch``, ``warmup``,
``describe``, ``modalities``, ``num_classes``, ``image_size``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sam_moelora_ros.inference.device import SegmenterError
from sam_moelora_ros.inference.segmenter import Segmenter

LOG = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime")
"""``model.backend`` values."""


def build_segmenter(
    backend: str = "torch",
    model: str | Path | None = None,
    sam_checkpoint: str | Path | None = None,
    *,
    device: str = "auto",
    dtype: str = "float32",
    merge_lora: bool = True,
    compile: str | bool = "none",
    providers: Sequence[str] | None = None,
    provider_fallback: bool = False,
    engine_cache_dir: str | Path | None = None,
    threads: int = 0,
) -> Segmenter:
    """A Segmenter for ``backend`` on ``model``.

    Args:
        backend: ``"torch"`` or ``"onnxruntime"``.
        model: torch: an adapter ``.safetensors`` (None or '': the shipped default model);
            onnxruntime: an exported folder (or its ``manifest.json``).
        sam_checkpoint: torch only: official SAM weights when the adapter lacks them.
        device, dtype: as for :class:`Segmenter`; onnxruntime takes ``float32`` (``float16``
            with TensorRT) and reads ``cuda:N`` as the GPU of its CUDA/TensorRT providers.
        merge_lora, compile: torch only (an export is always merged and needs no compiling).
        providers, provider_fallback, engine_cache_dir, threads: onnxruntime only (see
            :mod:`.onnx_backend`); ``providers`` None: the CPU provider.
    Raises:
        SegmenterError: an unknown backend, a model of the wrong kind for it, or whatever the
            backend refuses (the message says which input to fix).
    """
    if backend == "torch":
        return Segmenter.from_files(
            model or None,
            sam_checkpoint or None,
            device=device,
            dtype=dtype,
            merge_lora=merge_lora,
            compile=compile,
        )
    if backend != "onnxruntime":
        raise SegmenterError(
            f"unknown backend {backend!r}; use one of {list(BACKENDS)}", input_name="backend"
        )
    if not model:
        raise SegmenterError(
            "the onnxruntime backend runs an exported model folder, and none was given; export "
            "one (python -m sam_moelora_ros.export --adapter ADAPTER --out DIR; without "
            "--adapter it exports the shipped default model) and pass DIR as the model",
            input_name="adapter",
        )
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".safetensors":
        raise SegmenterError(
            f"{str(path)!r} is an adapter (torch backend); for onnxruntime export it first: "
            f"python -m sam_moelora_ros.export --adapter {path} --out DIR, and pass DIR",
            input_name="adapter",
        )
    if compile not in ("none", False):
        raise SegmenterError(
            f"compile={compile!r} applies to the torch backend; use 'none' with onnxruntime",
            input_name="compile",
        )
    if sam_checkpoint:
        LOG.warning("sam_checkpoint %s ignored: an export carries its encoder", sam_checkpoint)
    if not merge_lora:
        LOG.warning("merge_lora=False ignored: an export is always merged")
    from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeSegmenter
    from sam_moelora_ros.inference.onnx_providers import DEFAULT_PROVIDERS

    return OnnxRuntimeSegmenter(
        path,
        providers=list(providers) if providers else list(DEFAULT_PROVIDERS),
        allow_fallback=provider_fallback,
        engine_cache_dir=engine_cache_dir or None,
        device=device,
        dtype=dtype,
        threads=threads,
    )

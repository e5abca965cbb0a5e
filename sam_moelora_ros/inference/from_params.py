"""The Segmenter the node parameters ask for: one way to build the model, for the perception node,
its lifecycle variant and the replay tools. No rclpy.

Every ``model.*`` parameter of a :class:`~sam_moelora_ros.params.NodeConfig` is read here and
nowhere else (backend, adapter, SAM checkpoint, device, dtype, merge, compile, threads, ONNX
Runtime providers, fallback and engine cache), so a params file means the same model on the robot
and in ``replay_eval``. What the model cannot start with is a
:class:`~sam_moelora_ros.params.ParameterError` naming the parameter to fix: the node prints it as
its one start-up line (exit 2), and so does replay.
"""

from __future__ import annotations

from sam_moelora_ros.inference.default_model import default_adapter_path
from sam_moelora_ros.inference.device import SegmenterError
from sam_moelora_ros.inference.factory import build_segmenter
from sam_moelora_ros.inference.segmenter import Segmenter
from sam_moelora_ros.params import NodeConfig, ParameterError

__all__ = ["MODEL_PARAMETERS", "describe_source", "load_segmenter", "model_parameter_error"]

MODEL_PARAMETERS = {
    "sam_checkpoint": ("model.sam_checkpoint", "sam_checkpoint"),
    "device": ("model.device", "device"),
    "dtype": ("model.dtype", "dtype"),
    "compile": ("model.compile", "compile_mode"),
    "backend": ("model.backend", "backend"),
    "providers": ("model.providers", "providers"),
}
"""``SegmenterError.input_name`` -> (the parameter to name, its NodeConfig field); anything else
(the adapter, its weights, the warm-up) is ``model.adapter``."""


def model_parameter_error(cfg: NodeConfig, exc: SegmenterError) -> ParameterError:
    """The one line for a model that cannot start, naming the parameter to fix."""
    name, field = MODEL_PARAMETERS.get(exc.input_name, ("model.adapter", "adapter"))
    value = getattr(cfg, field)
    value = list(value) if isinstance(value, tuple) else value
    hint = ""
    if name == "model.adapter" and not cfg.adapter:
        hint = "; e.g. perception_node --ros-args -p model.adapter:=/path/to/adapter.safetensors"
    return ParameterError(name, value, f"{exc}{hint}")


def load_segmenter(cfg: NodeConfig) -> tuple[Segmenter, float]:
    """The Segmenter of ``cfg``'s ``model.*`` parameters, warmed up (a NaN/Inf forward is an
    error, not "ready"); with the warm-up's seconds. Whether the model takes the enabled sensors
    is the caller's policy (the node refuses one it lacks, replay leaves that sensor out).

    ``model.torch_threads`` > 0 sets torch's thread count for the process (ONNX Runtime: its
    sessions' intra-op threads).

    Raises:
        ParameterError: naming the ``model.*`` parameter to fix.
    """
    import torch

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    try:
        segmenter = build_segmenter(
            cfg.backend,
            cfg.adapter or None,
            cfg.sam_checkpoint or None,
            device=cfg.device,
            dtype=cfg.dtype,
            merge_lora=cfg.merge_lora,
            compile=cfg.compile_mode,
            providers=cfg.providers,
            provider_fallback=cfg.provider_fallback,
            engine_cache_dir=cfg.engine_cache_dir or None,
            threads=cfg.torch_threads,
        )
        warm = segmenter.warmup()
    except SegmenterError as exc:
        raise model_parameter_error(cfg, exc) from exc
    return segmenter, warm


def describe_source(cfg: NodeConfig) -> str:
    """What ``model.adapter`` loads, for a log line (the default model when it is empty)."""
    return cfg.adapter or f"{default_adapter_path()} (the shipped default model)"

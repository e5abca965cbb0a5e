"""The perception node's parameters: one table, one typed config, one validator. No rclpy here.

Why a table: the node declares every entry with its description (``ros2 param describe`` shows
it), ``config/perception.yaml`` documents the same names, and the tests check the two agree. Why a
pure module: start-up validation is the part users hit first ("which parameter is wrong?"), so it
is unit-tested without DDS, and every message names the parameter, the bad value and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam_moelora_ros import MODALITIES

QOS_PROFILES = ("sensor_data", "reliable")
"""``qos.profile`` values: ROS's ``qos_profile_sensor_data`` (best effort) or reliable."""
DEVICES_HINT = "'auto', 'cpu', 'cuda' or 'cuda:N'"
DTYPE_NAMES = ("float32", "float16", "bfloat16")
COMPILE_NAMES = ("none", "default", "reduce-overhead", "max-autotune")
"""``model.compile``: eager, or a ``torch.compile`` mode (``inference.COMPILE_MODES``; kept as a
literal so this module does not import torch)."""
EVENT_MESSAGE_TYPES = ("image", "cloud")
"""``sensors.event.message_type``: a rendered event frame (Image) or raw events (PointCloud2)."""
EVENT_REPRESENTATIONS = ("frame", "voxel")
"""``sensors.event.representation`` for event clouds (see ``sensors.events_to_representation``)."""

IDENTITY_EXTRINSIC = (
    1.0,
    0.0,
    0.0,
    0.0,
    0.0,
    1.0,
    0.0,
    0.0,
    0.0,
    0.0,
    1.0,
    0.0,
    0.0,
    0.0,
    0.0,
    1.0,
)

DEFAULT_TOPICS = {
    "rgb": "camera/image",
    "depth": "depth/image",
    "event": "event/image",
    "lidar": "lidar/points",
}
DEFAULT_TOLERANCE = {"rgb": 0.05, "depth": 0.05, "event": 0.05, "lidar": 0.1}
"""Seconds a sensor's stamp may differ from the anchor's and still join its frame."""
DEFAULT_MAX_WAIT = {"rgb": 0.05, "depth": 0.05, "event": 0.05, "lidar": 0.1}
"""Seconds a frame may wait for a sensor whose message for the anchor's time is still due."""
DEFAULT_STALE = {"rgb": 0.5, "depth": 0.5, "event": 0.5, "lidar": 1.0}
"""Seconds without a message after which a sensor counts as stale and is left out."""


class ParameterError(ValueError):
    """A node parameter has a value the node cannot run with (the message names it)."""

    def __init__(self, name: str, value: Any, problem: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"parameter '{name}' = {value!r}: {problem}")


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: its dotted name, default (fixes the type), help and mutability."""

    name: str
    default: Any
    description: str
    read_only: bool = True
    check: Callable[[Any], str | None] | None = None


def _positive(value: Any) -> str | None:
    return None if value > 0 and math.isfinite(value) else "must be a finite number > 0"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 and math.isfinite(value) else "must be a finite number >= 0"


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {list(options)}"

    return check


def _topic(value: Any) -> str | None:
    if not value or any(c.isspace() for c in value):
        return "must be a non-empty topic name without spaces"
    return None


def _unit_interval(value: Any) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be within [0, 1]"


def _device(value: Any) -> str | None:
    if value in ("auto", "cpu", "cuda"):
        return None
    if value.startswith("cuda:") and value[5:].isdigit():
        return None
    return f"must be {DEVICES_HINT}"


def _extrinsic(value: Any) -> str | None:
    try:
        extrinsic_matrix(value)
    except ValueError as exc:
        return str(exc)
    return None


def _sensor_specs(name: str) -> list[ParamSpec]:
    prefix = f"sensors.{name}"
    return [
        ParamSpec(f"{prefix}.enabled", True, f"Subscribe to the {name} sensor and use it."),
        ParamSpec(f"{prefix}.topic", DEFAULT_TOPICS[name], f"{name} input topic.", check=_topic),
        ParamSpec(
            f"{prefix}.tolerance",
            DEFAULT_TOLERANCE[name],
            f"Max |stamp - anchor stamp| (s) for a {name} message to join a frame.",
            check=_positive,
        ),
        ParamSpec(
            f"{prefix}.max_wait",
            DEFAULT_MAX_WAIT[name],
            f"Seconds an anchor message may wait for a {name} message at or after its stamp "
            "(0: use what is buffered, never wait).",
            check=_non_negative,
        ),
        ParamSpec(
            f"{prefix}.stale_timeout",
            DEFAULT_STALE[name],
            f"Seconds without a {name} message before it is reported stale and left out.",
            check=_positive,
        ),
    ]


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model.adapter",
        "",
        "Adapter .safetensors written by training/save_adapter. Empty: the model the package "
        "ships (sam_moelora_ros/models/default_tiny.safetensors) when installed.",
    ),
    ParamSpec(
        "model.sam_checkpoint",
        "",
        "Official SAM checkpoint (.pth/.pt) for the frozen encoder when the adapter does not "
        "embed the backbone. Empty: none.",
    ),
    ParamSpec("model.device", "auto", f"Torch device: {DEVICES_HINT}.", check=_device),
    ParamSpec(
        "model.dtype",
        "float32",
        f"Inference dtype: {list(DTYPE_NAMES)}.",
        check=_one_of(DTYPE_NAMES),
    ),
    ParamSpec("model.merge_lora", True, "Fold LoRA experts into the base weights at load time."),
    ParamSpec(
        "model.compile",
        "none",
        f"torch.compile the model: {list(COMPILE_NAMES)}; reduce-overhead adds CUDA graphs (GPU "
        "only, 'default' on a CPU). Compiles at warm-up; falls back to eager if compiling fails.",
        check=_one_of(COMPILE_NAMES),
    ),
    ParamSpec(
        "model.torch_threads",
        0,
        "CPU threads torch may use for inference (0: torch's default).",
        check=lambda v: None if v >= 0 else "must be >= 0",
    ),
    ParamSpec(
        "anchor",
        "rgb",
        "Sensor whose messages define frames (and the labels' header).",
        check=_one_of(MODALITIES),
    ),
    ParamSpec(
        "fallback_anchors",
        ["depth", "lidar", "event"],
        "Sensors that take over as anchor, in order, when the anchor is stale. Names of "
        "disabled sensors are ignored.",
    ),
    ParamSpec(
        "anchor_timeout",
        0.5,
        "Seconds of anchor silence after which the next live fallback anchor drives frames.",
        check=_positive,
    ),
    ParamSpec(
        "qos.profile",
        "sensor_data",
        "Input QoS: 'sensor_data' (best effort, like most drivers) or 'reliable'.",
        check=_one_of(QOS_PROFILES),
    ),
    ParamSpec(
        "qos.depth",
        5,
        "History depth of the input subscriptions.",
        check=lambda v: None if v >= 1 else "must be >= 1",
    ),
    *(spec for name in MODALITIES for spec in _sensor_specs(name)),
    ParamSpec(
        "sensors.event.message_type",
        "image",
        "Event input type: 'image' (a rendered event frame, sensor_msgs/Image) or 'cloud' "
        "(sensor_msgs/PointCloud2 with fields x, y, t, polarity).",
        check=_one_of(EVENT_MESSAGE_TYPES),
    ),
    ParamSpec(
        "sensors.event.representation",
        "frame",
        f"How an event cloud is rendered: {list(EVENT_REPRESENTATIONS)}.",
        check=_one_of(EVENT_REPRESENTATIONS),
    ),
    ParamSpec(
        "camera_info_topic",
        "camera/camera_info",
        "sensor_msgs/CameraInfo of the camera the labels are in (K, D and size for LiDAR "
        "projection and event clouds).",
        check=_topic,
    ),
    ParamSpec(
        "lidar.extrinsic",
        list(IDENTITY_EXTRINSIC),
        "T_cam_from_lidar: 16 numbers (4x4 row-major) or 7 (x y z qx qy qz qw).",
        check=_extrinsic,
    ),
    ParamSpec(
        "lidar.use_tf",
        False,
        "Look T_cam_from_lidar up in tf2 (cloud frame -> camera_info frame) instead; needs "
        "tf2_ros from the ROS install; falls back to lidar.extrinsic when the lookup fails.",
    ),
    ParamSpec(
        "output.color",
        True,
        "Publish ~/labels_color (rgb8 palette image).",
        read_only=False,
    ),
    ParamSpec(
        "output.color_alpha",
        0.5,
        "Palette opacity over the RGB image in ~/labels_color (1: palette only; used when the "
        "frame has RGB).",
        read_only=False,
        check=_unit_interval,
    ),
    ParamSpec("output.confidence", True, "Publish ~/confidence (32FC1).", read_only=False),
    ParamSpec(
        "output.palette_file",
        "",
        "YAML/JSON file with 'names' and/or 'colors' ([[r, g, b], ...]) per class. Empty: "
        "DELIVER's names and palette.",
    ),
    ParamSpec(
        "diagnostics.period",
        1.0,
        "Seconds between /diagnostics messages.",
        check=_positive,
    ),
    ParamSpec(
        "sync.poll_period",
        0.02,
        "Seconds between checks for frames whose late sensors timed out and for stale anchors.",
        check=_positive,
    ),
)
"""Every parameter of ``sam_moelora_perception``, in the order ``config/perception.yaml`` lists."""

SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}


@dataclass(frozen=True)
class SensorConfig:
    """One sensor's subscription and synchronisation settings."""

    name: str
    enabled: bool
    topic: str
    tolerance: float
    max_wait: float
    stale_timeout: float


@dataclass(frozen=True)
class NodeConfig:
    """The validated parameters of the node (see :data:`PARAMETERS` for each one's meaning)."""

    adapter: str
    sam_checkpoint: str
    device: str
    dtype: str
    merge_lora: bool
    torch_threads: int
    compile_mode: str
    anchor: str
    fallback_anchors: tuple[str, ...]
    anchor_timeout: float
    qos_profile: str
    qos_depth: int
    sensors: dict[str, SensorConfig]
    event_message_type: str
    event_representation: str
    camera_info_topic: str
    extrinsic: np.ndarray = field(repr=False)
    use_tf: bool
    color: bool
    color_alpha: float
    confidence: bool
    palette_file: str
    diagnostics_period: float
    poll_period: float

    @property
    def enabled(self) -> tuple[str, ...]:
        """Enabled sensors in canonical order."""
        return tuple(n for n in MODALITIES if self.sensors[n].enabled)


def extrinsic_matrix(values: Any) -> np.ndarray:
    """``lidar.extrinsic`` (16 row-major numbers, or x y z qx qy qz qw) -> 4x4 float64.

    Raises:
        ValueError: wrong length, non-finite numbers, a non-rigid 4x4 or a zero quaternion.
    """
    array = np.asarray(list(values), dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("must hold finite numbers")
    if array.size == 16:
        matrix = array.reshape(4, 4)
        rotation = matrix[:3, :3]
        if not np.allclose(matrix[3], (0, 0, 0, 1)) or not np.allclose(
            rotation @ rotation.T, np.eye(3), atol=1e-4
        ):
            raise ValueError("4x4 must be rigid: orthonormal rotation, last row 0 0 0 1")
        return matrix
    if array.size == 7:
        x, y, z, qx, qy, qz, qw = array
        norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
        if norm < 1e-9:
            raise ValueError("quaternion qx qy qz qw must not be zero")
        qx, qy, qz, qw = qx / norm, qy / norm, qz / norm, qw / norm
        matrix = np.eye(4)
        matrix[:3, :3] = [
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)],
        ]
        matrix[:3, 3] = (x, y, z)
        return matrix
    raise ValueError(f"needs 16 numbers (4x4 row-major) or 7 (x y z qx qy qz qw), got {array.size}")


def check_value(name: str, value: Any) -> None:
    """Check one parameter on its own (type and range); raise :class:`ParameterError`."""
    spec = SPECS.get(name)
    if spec is None:
        raise ParameterError(name, value, "is not a parameter of this node")
    expected = type(spec.default)
    ok_types: tuple[type, ...] = (float, int) if expected is float else (expected,)
    if expected is list:
        ok_types = (list, tuple)
    if not isinstance(value, ok_types) or (expected is not bool and isinstance(value, bool)):
        raise ParameterError(name, value, f"must be of type {expected.__name__}")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise ParameterError(name, value, problem)


def build_config(values: Mapping[str, Any]) -> NodeConfig:
    """Validate every parameter and their combinations; return the typed config.

    Args:
        values: dotted parameter name -> value; missing names take their defaults.
    Raises:
        ParameterError: naming the first invalid parameter.
    """
    merged = {spec.name: spec.default for spec in PARAMETERS}
    merged.update(values)
    for name, value in merged.items():
        check_value(name, value)
    sensors = {
        n: SensorConfig(
            name=n,
            enabled=bool(merged[f"sensors.{n}.enabled"]),
            topic=str(merged[f"sensors.{n}.topic"]),
            tolerance=float(merged[f"sensors.{n}.tolerance"]),
            max_wait=float(merged[f"sensors.{n}.max_wait"]),
            stale_timeout=float(merged[f"sensors.{n}.stale_timeout"]),
        )
        for n in MODALITIES
    }
    enabled = [n for n in MODALITIES if sensors[n].enabled]
    if not enabled:
        raise ParameterError(
            "sensors.rgb.enabled", False, "no sensor is enabled; enable at least one sensor"
        )
    anchor = str(merged["anchor"])
    if not sensors[anchor].enabled:
        raise ParameterError(
            "anchor", anchor, f"names a disabled sensor; enable sensors.{anchor} or pick {enabled}"
        )
    fallbacks: list[str] = []
    for name in merged["fallback_anchors"]:
        if name in ("", "none"):
            continue
        if name not in MODALITIES:
            raise ParameterError(
                "fallback_anchors",
                list(merged["fallback_anchors"]),
                f"{name!r} is not a sensor; use names from {list(MODALITIES)}",
            )
        if sensors[name].enabled and name != anchor and name not in fallbacks:
            fallbacks.append(name)
    topics = [sensors[n].topic for n in enabled]
    duplicated = sorted({t for t in topics if topics.count(t) > 1})
    if duplicated:
        first = next(n for n in enabled if sensors[n].topic == duplicated[0])
        raise ParameterError(
            f"sensors.{first}.topic", duplicated[0], "is used by more than one sensor"
        )
    return NodeConfig(
        adapter=str(merged["model.adapter"]),
        sam_checkpoint=str(merged["model.sam_checkpoint"]),
        device=str(merged["model.device"]),
        dtype=str(merged["model.dtype"]),
        merge_lora=bool(merged["model.merge_lora"]),
        torch_threads=int(merged["model.torch_threads"]),
        compile_mode=str(merged["model.compile"]),
        anchor=anchor,
        fallback_anchors=tuple(fallbacks),
        anchor_timeout=float(merged["anchor_timeout"]),
        qos_profile=str(merged["qos.profile"]),
        qos_depth=int(merged["qos.depth"]),
        sensors=sensors,
        event_message_type=str(merged["sensors.event.message_type"]),
        event_representation=str(merged["sensors.event.representation"]),
        camera_info_topic=str(merged["camera_info_topic"]),
        extrinsic=extrinsic_matrix(merged["lidar.extrinsic"]),
        use_tf=bool(merged["lidar.use_tf"]),
        color=bool(merged["output.color"]),
        color_alpha=float(merged["output.color_alpha"]),
        confidence=bool(merged["output.confidence"]),
        palette_file=str(merged["output.palette_file"]),
        diagnostics_period=float(merged["diagnostics.period"]),
        poll_period=float(merged["sync.poll_period"]),
    )


def check_model_modalities(config: NodeConfig, model_modalities: tuple[str, ...]) -> None:
    """Every enabled sensor must be a modality the loaded model was trained on."""
    for name in config.enabled:
        if name not in model_modalities:
            raise ParameterError(
                f"sensors.{name}.enabled",
                True,
                f"the model takes only {list(model_modalities)}; set sensors.{name}.enabled: "
                "false or load a model trained with this modality",
            )


def load_palette(path: str, num_classes: int) -> tuple[tuple[str, ...], np.ndarray]:
    """``output.palette_file`` -> (class names, ``num_classes x 3`` uint8 palette).

    Empty ``path``: DELIVER's names (or ``class_<i>``) and :func:`classes.palette_for`. Raises
    :class:`ParameterError` for unreadable files or a palette that does not cover every class.
    """
    import json

    import yaml

    from sam_moelora_ros.classes import DELIVER_CLASSES, palette_for

    names = tuple(
        DELIVER_CLASSES[i] if i < len(DELIVER_CLASSES) else f"class_{i}" for i in range(num_classes)
    )
    palette = palette_for(num_classes)
    if not path:
        return names, palette
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ParameterError("output.palette_file", path, f"cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError("output.palette_file", path, "must hold a mapping with names/colors")
    if "names" in data:
        file_names = tuple(str(n) for n in data["names"])
        if len(file_names) < num_classes:
            raise ParameterError(
                "output.palette_file",
                path,
                f"lists {len(file_names)} names but the model has {num_classes} classes",
            )
        names = file_names[:num_classes]
    if "colors" in data:
        colors = np.asarray(data["colors"])
        if colors.ndim != 2 or colors.shape[1] != 3 or len(colors) < num_classes:
            raise ParameterError(
                "output.palette_file",
                path,
                f"'colors' must be at least {num_classes} [r, g, b] triples",
            )
        if colors.min() < 0 or colors.max() > 255:
            raise ParameterError("output.palette_file", path, "colors must be within 0..255")
        palette = colors[:num_classes].astype(np.uint8)
    return names, palette

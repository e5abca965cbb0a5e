"""The perception node's parameter table: every name, default, description and check. No rclpy.

Why a table: the node declares every entry with its description (``ros2 param describe`` shows
it), ``config/perception.yaml`` documents the same names, and the tests check the two agree. Why a
pure module: start-up validation is the part users hit first ("which parameter is wrong?"), so it
is unit-tested without DDS, and every message names the parameter, the bad value and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix

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
"""The node's default input topics: relative names, so they resolve in the node's namespace and
are remapped like any driver's (launch file, ``--ros-args -r``). Deliberately not the replay's
``replay.pipeline.DEFAULT_TOPICS``: those are the absolute names the synthetic bags were recorded
under (``/camera/image_raw`` ...), which replay passes to the node as ``sensors.*.topic``."""
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

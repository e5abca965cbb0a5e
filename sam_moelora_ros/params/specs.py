"""The perception node's parameter table: every name, default, description and check. No rclpy.

Why a table: the node declares every entry with its description (``ros2 param describe`` shows
it), ``config/perception.yaml`` documents the same names, and the tests check the two agree. Why a
pure module: start-up validation is the part users hit first ("which parameter is wrong?"), so it
is unit-tested without DDS, and every message names the parameter, the bad value and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.params.ranges import LIMIT_DEFAULTS, range_check
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix

QOS_PROFILES = ("sensor_data", "reliable")
"""``qos.profile`` values: ROS's ``qos_profile_sensor_data`` (best effort) or reliable."""
DEVICES_HINT = "'auto', 'cpu', 'cuda' or 'cuda:N'"
DTYPE_NAMES = ("float32", "float16", "bfloat16")
COMPILE_NAMES = ("none", "default", "reduce-overhead", "max-autotune")
"""``model.compile``: eager, or a ``torch.compile`` mode (``inference.COMPILE_MODES``; kept as a
literal so this module does not import torch)."""
BACKEND_NAMES = ("torch", "onnxruntime")
"""``model.backend`` (``inference.BACKENDS``; a literal so this module does not import torch)."""
EVENT_MESSAGE_TYPES = ("image", "cloud")
"""Short names ``sensors.<s>.message_type`` takes: ``sensor_msgs/msg/Image``, ``PointCloud2``."""
MESSAGE_TYPE_HELP = {
    "rgb": "sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage (transport 'compressed')",
    "depth": "sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage ('compressedDepth')",
    "event": "sensor_msgs/msg/Image or CompressedImage (an event frame), sensor_msgs/msg/"
    "PointCloud2 (x, y, t, polarity), event_camera_msgs/msg/EventPacket or "
    "dvs_msgs/msg/EventArray",
    "lidar": "sensor_msgs/msg/PointCloud2",
}
"""What ``sensors.<s>.message_type`` may name per sensor (checked against the pipeline's
``SUPPORTED_TYPES`` when the node starts)."""
EVENT_REPRESENTATIONS = ("auto", "frame", "voxel")
"""``sensors.event.representation``: ``auto`` (the model's input encoding) or one that must match
it (see ``sensors.encodings``)."""

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


class ParameterError(SamMoeLoraError, ValueError):
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


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {list(options)}"

    return check


EXECUTOR_NAMES = ("events", "single_threaded")
"""``executor``'s values (``ros.startup.make_executor``)."""
SUBSTITUTIONS = ("node", "ns", "namespace")
"""The ``{...}`` substitutions rcl expands in topic names."""
MAX_QOS_DEPTH = 1000
"""``qos.depth`` bound: each queued message may be an image, and DDS preallocates per sample."""


def topic_name_problem(name: str) -> str | None:
    """Why ``name`` is not a ROS 2 topic name, or None (rcl's rules, checked without rclpy).

    rcl_validate_topic_name: letters, digits, ``_``, ``/``, ``~`` (first only, then ``/``) and
    balanced ``{substitution}``; no part starting with a digit; no trailing or repeated ``/``.
    Checked at start-up so a name like ``1bad`` is a parameter error, not a traceback from
    ``create_subscription``.
    """
    if not name:
        return "it is empty"
    if "//" in name:
        return "it repeats '/'"
    if name.endswith("/"):
        return "it ends with '/'"
    if "~" in name[1:]:
        return "'~' may only be its first character"
    plain = re.sub(r"\{([^{}]*)\}", "", name)
    if "{" in plain or "}" in plain:
        return "its curly braces are unbalanced"
    for sub in re.findall(r"\{([^{}]*)\}", name):
        if sub not in SUBSTITUTIONS:
            return f"{{{sub}}} is not a substitution (use {{node}}, {{ns}} or {{namespace}})"
    bad = sorted({c for c in plain if not (c.isascii() and (c.isalnum() or c in "_/~"))})
    if bad:
        return f"it contains {''.join(bad)!r} (use letters, digits, '_' and '/')"
    if any(part[:1].isdigit() for part in name.lstrip("~").split("/")):
        return "it (or a part of it after '/') starts with a digit"
    return None


def topic_check(value: Any) -> str | None:
    problem = topic_name_problem(value)
    return None if problem is None else f"is not a valid ROS 2 topic name: {problem}"


def _message_type(value: Any) -> str | None:
    if value == "auto" or value in EVENT_MESSAGE_TYPES:
        return None
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*/(msg/)?[A-Z][A-Za-z0-9]*", value):
        return None
    return "must be 'auto' or a message type name such as 'sensor_msgs/msg/CompressedImage'"


def _unit_interval(value: Any) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be within [0, 1]"


def _device(value: Any) -> str | None:
    if value in ("auto", "cpu", "cuda"):
        return None
    if value.startswith("cuda:") and value[5:].isdigit():
        return None
    return f"must be {DEVICES_HINT}"


def _provider_names(value: Any) -> str | None:
    if not value or any(not isinstance(v, str) or not v.strip() for v in value):
        return "must be a non-empty list of provider names, e.g. ['CPUExecutionProvider']"
    return None


def extrinsic_check(value: Any) -> str | None:
    try:
        extrinsic_matrix(value)
    except ValueError as exc:
        return str(exc)
    return None


def shared_topic(topics: Mapping[str, str]) -> tuple[str, str] | None:
    """``(sensor, topic)`` when two of ``topics`` (sensor -> topic, in sensor order) share one
    topic: the alphabetically first such topic and the first sensor on it; else None."""
    names = list(topics.values())
    duplicated = sorted({t for t in names if names.count(t) > 1})
    if not duplicated:
        return None
    return next(s for s, t in topics.items() if t == duplicated[0]), duplicated[0]


MAX_CAMERA_NAME = 32
"""Longest camera group name (it is a parameter prefix, a namespace and a /diagnostics name)."""
CAMERA_NAME = re.compile(rf"[A-Za-z][A-Za-z0-9_]{{0,{MAX_CAMERA_NAME - 1}}}")
"""A camera group's name: one ROS name token (it becomes a parameter prefix and a namespace)."""
MAX_CAMERAS = 16
"""Most camera groups one node takes (each holds its own decoders, synchroniser, publishers)."""


def camera_names_check(names: Any) -> str | None:
    """Why ``cameras`` is unusable, or None."""
    if len(names) > MAX_CAMERAS:
        return f"names {len(names)} cameras; one node takes at most {MAX_CAMERAS}"
    for name in names:
        if isinstance(name, str) and len(name) > MAX_CAMERA_NAME:
            return (
                f"{name[:40]!r}... is {len(name)} characters long; a camera name has at most "
                f"{MAX_CAMERA_NAME}"
            )
        if not isinstance(name, str) or not CAMERA_NAME.fullmatch(name):
            return (
                f"{name!r} is not a camera name: use letters, digits and '_', starting with a "
                "letter (it becomes a parameter prefix and the outputs' namespace)"
            )
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        return f"names {repeated[0]!r} more than once"
    return None


def _sensor_specs(name: str) -> list[ParamSpec]:
    prefix = f"sensors.{name}"
    return [
        ParamSpec(f"{prefix}.enabled", True, f"Subscribe to the {name} sensor and use it."),
        ParamSpec(
            f"{prefix}.topic", DEFAULT_TOPICS[name], f"{name} input topic.", check=topic_check
        ),
        ParamSpec(
            f"{prefix}.message_type",
            "auto",
            "Message type of the topic. 'auto' (default): the type its publishers advertise, "
            "subscribed once the first one appears, so raw and compressed transports work "
            f"without configuration. Or a type name: {MESSAGE_TYPE_HELP[name]} (subscribed at "
            "once, before any publisher). 'image' / 'cloud' are short for sensor_msgs/msg/Image "
            "/ PointCloud2.",
            check=_message_type,
        ),
        ParamSpec(
            f"{prefix}.tolerance",
            DEFAULT_TOLERANCE[name],
            f"Max |stamp - anchor stamp| (s) for a {name} message to join a frame.",
            check=range_check("tolerance"),
        ),
        ParamSpec(
            f"{prefix}.max_wait",
            DEFAULT_MAX_WAIT[name],
            f"Seconds an anchor message may wait for a {name} message at or after its stamp "
            "(0: use what is buffered, never wait).",
            check=range_check("max_wait"),
        ),
        ParamSpec(
            f"{prefix}.stale_timeout",
            DEFAULT_STALE[name],
            f"Seconds without a {name} message before it is reported stale and left out.",
            check=range_check("stale_timeout"),
        ),
    ]


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model.adapter",
        "",
        "Adapter .safetensors written by training/save_adapter. Empty: the model the package "
        "ships (sam_moelora_ros/models/default_tiny.safetensors) when installed. With "
        "model.backend onnxruntime: the folder python -m sam_moelora_ros.export wrote.",
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
        "CPU threads torch may use for inference (0: torch's default); with onnxruntime also "
        "the size of its intra-op thread pool.",
        check=range_check("model.torch_threads"),
    ),
    ParamSpec(
        "model.backend",
        "torch",
        f"Inference backend: {list(BACKEND_NAMES)}; onnxruntime runs an exported model folder "
        "(model.adapter) with model.providers.",
        check=_one_of(BACKEND_NAMES),
    ),
    ParamSpec(
        "model.providers",
        ["CPUExecutionProvider"],
        "onnxruntime: execution providers in priority order (CPUExecutionProvider, "
        "CUDAExecutionProvider, TensorrtExecutionProvider; or cpu, cuda, tensorrt).",
        check=_provider_names,
    ),
    ParamSpec(
        "model.provider_fallback",
        False,
        "onnxruntime: run on the providers that start (logged) instead of refusing to start "
        "when one of model.providers is missing or fails.",
    ),
    ParamSpec(
        "model.engine_cache_dir",
        "",
        "onnxruntime + TensorRT: engine cache root, one subfolder per model hash, GPU and "
        "TensorRT version. Empty: ~/.cache/sam_moelora_ros/tensorrt.",
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
        "executor",
        "events",
        f"The rclpy executor that runs the callbacks: {list(EXECUTOR_NAMES)}. events: rclpy's "
        "EventsExecutor (C++, about half the executor thread's CPU of single_threaded; where "
        "rclpy lacks it, as on Humble, single_threaded with a log line).",
        check=_one_of(EXECUTOR_NAMES),
    ),
    ParamSpec(
        "anchor_timeout",
        0.5,
        "Seconds of anchor silence after which the next live fallback anchor drives frames.",
        check=range_check("anchor_timeout"),
    ),
    ParamSpec(
        "cameras",
        [],
        "Camera groups sharing this node's model, e.g. [front, rear]: each has its own topics "
        "(cameras.<camera>.<sensor>.topic, default <camera>/ + sensors.<sensor>.topic), "
        "camera_info, LiDAR extrinsic and sensor list, and publishes under ~/<camera>/. "
        "Empty: one camera, the sensors.* topics, outputs under ~/.",
        check=camera_names_check,
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
        check=lambda v: None if 1 <= v <= MAX_QOS_DEPTH else f"must be in [1, {MAX_QOS_DEPTH}]",
    ),
    *(spec for name in MODALITIES for spec in _sensor_specs(name)),
    ParamSpec(
        "sensors.event.representation",
        "auto",
        f"How an event cloud or event packets are rendered: {list(EVENT_REPRESENTATIONS)}; "
        "'auto' takes the model's recorded input encoding, another value must match it.",
        check=_one_of(EVENT_REPRESENTATIONS),
    ),
    ParamSpec(
        "sensors.event.window",
        0.0,
        "Event packets (event_camera_msgs/EventPacket, dvs_msgs/EventArray): a frame's event "
        "image holds every event in the window of this many seconds ending at the anchor's "
        "stamp. 0: the model's recorded window (its input encoding); another value must match it.",
        check=range_check("sensors.event.window", zero_means_auto=True),
    ),
    ParamSpec(
        "sensors.event.scale_to_camera",
        False,
        "Event packets from a sensor of another resolution than the camera (same field of view "
        "and aspect ratio): render at the event sensor's size, resize to the camera's (nearest). "
        "False: such packets are rejected (events must be pixel-aligned with the camera).",
    ),
    ParamSpec(
        "camera_info_topic",
        "camera/camera_info",
        "sensor_msgs/CameraInfo of the camera the labels are in (K, D and size for LiDAR "
        "projection and event clouds).",
        check=topic_check,
    ),
    ParamSpec(
        "lidar.extrinsic",
        list(IDENTITY_EXTRINSIC),
        "T_cam_from_lidar: 16 numbers (4x4 row-major) or 7 (x y z qx qy qz qw).",
        check=extrinsic_check,
    ),
    ParamSpec(
        "lidar.use_tf",
        False,
        "Look T_cam_from_lidar up in the robot's transforms (cloud frame_id -> camera_info "
        "frame_id) instead: through tf2_ros when importable, else the node composes the "
        "/tf_static chain itself (needs tf2_msgs). The chain used is logged once; falls back "
        "to lidar.extrinsic while the lookup fails.",
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
        "output.labels_compressed",
        False,
        "Also publish ~/labels/compressed: the labels as a lossless PNG CompressedImage (format "
        "'mono8; png compressed ', as image_transport's compressed transport writes it), for "
        "bandwidth-limited links.",
        read_only=False,
    ),
    ParamSpec(
        "output.lidar_labelled",
        True,
        "Publish ~/lidar/labelled when LiDAR is enabled: the points of the frame's cloud that "
        "project into the image, in the LiDAR's frame and stamp, with their fields plus label "
        "(uint8) and confidence (float32) read at each point's pixel.",
    ),
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
        check=range_check("diagnostics.period"),
    ),
    ParamSpec(
        "sync.poll_period",
        0.02,
        "Seconds between checks for frames whose late sensors timed out and for stale anchors.",
        check=range_check("sync.poll_period"),
    ),
    *(
        ParamSpec(name, default, description, check=range_check(name))
        for name, (default, description) in LIMIT_DEFAULTS.items()
    ),
)
"""Every parameter of ``sam_moelora_perception``, in the order ``config/perception.yaml`` lists."""

SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}

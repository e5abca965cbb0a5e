"""Checks a bag's inputs once, before replay reads it: topic types, CameraInfo, event alignment.

Why: a topic of the wrong type, an unknown camera model or an event camera of another size than
the camera would otherwise be found per message (one rejection, or one traceback, per message,
and a report that quietly leaves the sensor out). Here each is one error naming the topic, what
is wrong and the fix, raised before the first frame (``replay_eval`` exits 2 with it). What the
checks learn about the inputs goes into metrics.json (``inputs``). No rclpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.params import NodeConfig
from sam_moelora_ros.pipeline.decode import BadMessage, check_aspect, decode_camera_info
from sam_moelora_ros.pipeline.kinds import SUPPORTED_TYPES, check_type

__all__ = ["ROLE_TYPES", "ReplayInputError", "check_topic_types", "preflight"]

ROLE_TYPES: dict[str, tuple[str, ...]] = {
    **SUPPORTED_TYPES,
    "camera_info": ("sensor_msgs/msg/CameraInfo",),
    "tf_static": ("tf2_msgs/msg/TFMessage",),
    "labels": ("sensor_msgs/msg/Image",),
    "condition": ("std_msgs/msg/String",),
}
"""Replay role -> the types it takes: the sensors' :data:`SUPPORTED_TYPES` plus the others."""

PACKET_TYPES = ("event_camera_msgs/msg/EventPacket", "dvs_msgs/msg/EventArray")


class ReplayInputError(SamMoeLoraError, ValueError):
    """A bag input replay cannot use as configured (the text names the topic and the fix)."""


def check_topic_types(reader: Any, topics: Mapping[str, str], roles: Iterable[str]) -> None:
    """Every ``role`` whose topic the bag holds has a type the role takes, else one error."""
    for role in roles:
        topic = topics[role]
        if topic in reader.topics:
            check_type(role, topic, reader.topics[topic], ROLE_TYPES)


def _first(reader: Any, topic: str) -> Any:
    for rec in reader.messages([topic], order="log"):
        if rec.msg is not None:
            return rec.msg
    return None


def _size_hw(msg: Any) -> tuple[int, int] | None:
    if msg is None:
        return None
    height, width = int(getattr(msg, "height", 0) or 0), int(getattr(msg, "width", 0) or 0)
    return (height, width) if height > 0 and width > 0 else None


def preflight(
    reader: Any, topics: Mapping[str, str], sensors: Mapping[str, str], cfg: NodeConfig
) -> dict[str, Any]:
    """Check the first CameraInfo and the event sensor's alignment; describe the inputs.

    Returns ``{"camera": ..., "event": ..., "lidar": ...}`` for metrics.json, with the first
    CameraInfo message under ``"camera_info_msg"`` (replay gives it to the decoders before the
    first message, as a node that already holds the camera's calibration). Raises
    :class:`ReplayInputError`.
    """
    out: dict[str, Any] = {}
    info_topic = topics["camera_info"]
    info = _first(reader, info_topic) if info_topic in reader.topics else None
    camera_hw = None
    if info is not None:
        try:
            camera = decode_camera_info(info)
        except BadMessage as exc:
            raise ReplayInputError(f"{info_topic}: {exc}") from exc
        camera_hw = (camera.height, camera.width)
        out["camera"] = {
            "frame_id": camera.frame_id,
            "size_wh": [camera.width, camera.height],
            "distortion_model": camera.distortion_model or "none",
        }
        out["camera_info_msg"] = info
    elif "rgb" in sensors:
        camera_hw = _size_hw(_first(reader, sensors["rgb"]))
    event_topic = sensors.get("event")
    if event_topic is not None and reader.topics[event_topic] in PACKET_TYPES:
        packet_hw = _size_hw(_first(reader, event_topic))
        out["event"] = {
            "type": reader.topics[event_topic],
            "sensor_size_wh": None if packet_hw is None else [packet_hw[1], packet_hw[0]],
            "window_s": float(cfg.encodings["event"].params.get("window", 0.0)),
            "scale_to_camera": cfg.event_scale_to_camera,
        }
        if packet_hw is not None and camera_hw is not None and packet_hw != camera_hw:
            where = f"{event_topic} ({packet_hw[1]}x{packet_hw[0]})"
            if not cfg.event_scale_to_camera:
                raise ReplayInputError(
                    f"event camera {where} is not the camera's size ({camera_hw[1]}x"
                    f"{camera_hw[0]}): events must be pixel-aligned with the camera; pass "
                    "--param sensors.event.scale_to_camera=true if both see the same field of view"
                )
            try:
                check_aspect(packet_hw, camera_hw, "event")
            except BadMessage as exc:
                raise ReplayInputError(f"{where}: {exc}") from exc
    lidar_topic = sensors.get("lidar")
    if lidar_topic is not None:
        cloud = _first(reader, lidar_topic)
        names = [str(f.name) for f in getattr(cloud, "fields", ())] if cloud is not None else []
        missing = [n for n in ("x", "y", "z") if n not in names]
        if cloud is not None and missing:
            raise ReplayInputError(
                f"lidar topic {lidar_topic}: the cloud has no field(s) {missing} (its fields: "
                f"{names}); the lidar role needs x, y, z"
            )
        out["lidar"] = {
            "frame_id": "" if cloud is None else str(cloud.header.frame_id),
            "fields": names,
            "channel_2": "intensity" if "intensity" in names else "range (no intensity field)",
        }
    return out

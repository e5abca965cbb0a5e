"""Which ROS message types each sensor takes, and how a message object says which kind it is.

Why a module of its own: the node (at topic discovery) and the replay tools (before reading a
bag) check a topic's type *once* against :data:`SUPPORTED_TYPES`, so a wrong topic is one clear
error instead of one rejection per message; and :class:`~.assembly.SensorDecoders` dispatches
each message on its *fields* (:func:`kind_of`), so rclpy messages, rosbags dataclasses and plain
namespaces share one path. The two agree: every type listed here has a kind the decoders take.
No rclpy.
"""

from __future__ import annotations

from typing import Any

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.params.config import canonical_type

__all__ = [
    "CLOUD",
    "CLOUD_TYPE",
    "COMPRESSED",
    "COMPRESSED_TYPE",
    "EVENT_ARRAY",
    "EVENT_ARRAY_TYPE",
    "EVENT_PACKET",
    "EVENT_PACKET_TYPE",
    "IMAGE",
    "IMAGE_TYPE",
    "KIND_OF_TYPE",
    "SUPPORTED_TYPES",
    "UnsupportedType",
    "check_type",
    "kind_of",
]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
EVENT_PACKET_TYPE = "event_camera_msgs/msg/EventPacket"
EVENT_ARRAY_TYPE = "dvs_msgs/msg/EventArray"

IMAGE, COMPRESSED, CLOUD = "image", "compressed", "cloud"
EVENT_PACKET, EVENT_ARRAY = "event_packet", "event_array"
"""Message kinds: Image, CompressedImage, PointCloud2, EventPacket, dvs EventArray."""

KIND_OF_TYPE: dict[str, str] = {
    IMAGE_TYPE: IMAGE,
    COMPRESSED_TYPE: COMPRESSED,
    CLOUD_TYPE: CLOUD,
    EVENT_PACKET_TYPE: EVENT_PACKET,
    EVENT_ARRAY_TYPE: EVENT_ARRAY,
}

SUPPORTED_TYPES: dict[str, tuple[str, ...]] = {
    "rgb": (IMAGE_TYPE, COMPRESSED_TYPE),
    "depth": (IMAGE_TYPE, COMPRESSED_TYPE),
    "event": (IMAGE_TYPE, COMPRESSED_TYPE, CLOUD_TYPE, EVENT_PACKET_TYPE, EVENT_ARRAY_TYPE),
    "lidar": (CLOUD_TYPE,),
}
"""Sensor -> the ROS 2 type names its decoder takes, preferred first (when a topic's publishers
advertise several). rgb: Image (any cv_bridge encoding) or CompressedImage (JPEG/PNG,
image_transport ``compressed``); depth: Image (16UC1 mm, 32FC1 m) or CompressedImage
(``compressedDepth`` PNG/RVL, or a 16-bit PNG); event: a rendered frame (Image/CompressedImage),
a PointCloud2 of x, y, t, polarity, event_camera_msgs/EventPacket (evt3, mono) or
dvs_msgs/EventArray; lidar: PointCloud2 with x, y, z (and ``intensity`` when present)."""


class UnsupportedType(SamMoeLoraError, ValueError):
    """A topic whose message type a sensor (or replay role) cannot take."""


def check_type(
    role: str, topic: str, type_name: str, supported: dict[str, tuple[str, ...]] | None = None
) -> str:
    """``type_name`` in ROS 2 form if ``role`` takes it, else :class:`UnsupportedType`.

    One line naming the topic, its type, the role and the accepted types (what the node logs at
    discovery and ``replay_eval`` prints before reading). ``pkg/Name`` (ROS 1 style) is read as
    ``pkg/msg/Name``. ``supported`` defaults to :data:`SUPPORTED_TYPES`.
    """
    table = SUPPORTED_TYPES if supported is None else supported
    accepted = table.get(role)
    if accepted is None:
        raise ValueError(f"unknown role {role!r} (known: {', '.join(table)})")
    name = canonical_type(type_name)
    if name not in accepted:
        raise UnsupportedType(
            f"topic {topic} has type {type_name}, which the {role} role cannot take; it takes "
            f"{', '.join(accepted)}"
        )
    return name


def kind_of(msg: Any) -> str | None:
    """The kind of a message object, from its fields (None: no kind the decoders take).

    CompressedImage has ``format``; PointCloud2 ``fields`` and ``point_step``; EventPacket
    ``events`` bytes with ``encoding`` and ``time_base``; dvs EventArray an ``events`` list;
    Image ``encoding``, ``height`` and ``data``.
    """
    if hasattr(msg, "format") and hasattr(msg, "data"):
        return COMPRESSED
    if hasattr(msg, "fields") and hasattr(msg, "point_step"):
        return CLOUD
    if hasattr(msg, "events"):
        if hasattr(msg, "encoding") and hasattr(msg, "time_base"):
            return EVENT_PACKET
        return EVENT_ARRAY
    if hasattr(msg, "encoding") and hasattr(msg, "height") and hasattr(msg, "data"):
        return IMAGE
    return None

"""Topic, frame and type names of the synthetic bags (node defaults and replay tools use them).

Kept in a tiny module of constants so that importing them pulls in neither the renderer nor
rosbags.
"""

from __future__ import annotations

CAMERA_TOPIC = "/camera/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"
DEPTH_TOPIC = "/depth/image_raw"
EVENT_TOPIC = "/event/image_raw"
LIDAR_TOPIC = "/lidar/points"
TF_STATIC_TOPIC = "/tf_static"
LABELS_TOPIC = "/ground_truth/labels"
CONDITION_TOPIC = "/synthetic/condition"

BASE_FRAME = "base_link"
CAMERA_FRAME = "camera_optical_frame"
"""RGB, registered depth and event frames all share the camera's optical frame."""
LIDAR_FRAME = "lidar_link"

TOPIC_TYPES: dict[str, str] = {
    TF_STATIC_TOPIC: "tf2_msgs/msg/TFMessage",
    CAMERA_TOPIC: "sensor_msgs/msg/Image",
    CAMERA_INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
    DEPTH_TOPIC: "sensor_msgs/msg/Image",
    EVENT_TOPIC: "sensor_msgs/msg/Image",
    LIDAR_TOPIC: "sensor_msgs/msg/PointCloud2",
    LABELS_TOPIC: "sensor_msgs/msg/Image",
    CONDITION_TOPIC: "std_msgs/msg/String",
}
"""Every topic a synthetic bag holds and its ROS 2 message type."""

MODALITY_TOPICS: dict[str, tuple[str, ...]] = {
    "rgb": (CAMERA_TOPIC,),
    "depth": (DEPTH_TOPIC,),
    "event": (EVENT_TOPIC,),
    "lidar": (LIDAR_TOPIC,),
}
"""Topics silenced by a ``--dropout <modality>@start:end`` window (CameraInfo keeps flowing)."""

BASE_STAMP_NS = 1_700_000_000_000_000_000
"""Bag clock origin (fixed, not wall time, so the same seed gives the same bag)."""


def parse_condition_tag(tag: str) -> tuple[str, str | None]:
    """Split a ``/synthetic/condition`` string ``"night"`` / ``"night+motionblur"``."""
    cond, _, failure = tag.partition("+")
    return cond, (failure or None)

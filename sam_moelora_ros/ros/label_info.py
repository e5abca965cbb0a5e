"""``~/label_info``: the model's class table as ``vision_msgs/msg/LabelInfo``, latched (rclpy side).

Why: a label image says "6", and a costmap or mapping node needs to know that 6 is "car". The ROS
convention (vision_msgs' LabelInfo, published beside the label image like a CameraInfo) is one
message per pipeline on a transient-local topic, so a node that starts later still receives it.
Its ``class_map`` is :func:`~sam_moelora_ros.pipeline.outputs.class_table` (``class_id`` = the
value in the label image, ``class_name`` from the model's adapter or ``output.palette_file``),
``threshold`` :data:`~sam_moelora_ros.pipeline.outputs.LABELS_THRESHOLD`.

vision_msgs is optional at run time: without it the node runs, logs once that it skips
``~/label_info``, and publishes everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sam_moelora_ros.pipeline.outputs import LABELS_THRESHOLD, class_table

__all__ = ["LATCHED_QOS", "label_info_message", "label_info_types"]

LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""Transient local: a subscriber that joins later (with transient-local durability) gets it."""

SKIPPED = (
    "vision_msgs is not importable: ~/label_info (the class table) is not published; install "
    "it (sudo apt install ros-$ROS_DISTRO-vision-msgs) to get it"
)


def label_info_types(log: Callable[[str], object]) -> tuple[Any, Any] | None:
    """``(LabelInfo, VisionClass)``, or None (``log`` is told what is skipped) without
    vision_msgs."""
    try:
        from vision_msgs.msg import LabelInfo, VisionClass
    except ImportError:
        log(SKIPPED)
        return None
    return LabelInfo, VisionClass


def label_info_message(
    types: tuple[Any, Any], class_names: Sequence[str], stamp: Any, frame_id: str = ""
) -> Any:
    """A LabelInfo of ``class_names`` (class_id = label value), threshold as the node uses."""
    label_info, VisionClass = types
    msg = label_info()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.class_map = [VisionClass(class_id=i, class_name=n) for i, n in class_table(class_names)]
    msg.threshold = float(LABELS_THRESHOLD)
    return msg

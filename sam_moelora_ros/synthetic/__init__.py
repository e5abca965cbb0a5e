"""Procedural multi-sensor street scenes: RGB, depth, events and LiDAR from one ray-cast geometry.

No public multi-modal dataset can be downloaded here, so the project makes its own: streets laid
out from a seed (``layout``, ``objects``), ray cast in numpy (``raycast``), shaded under DELIVER's
conditions (``shading``, ``conditions``), seen by four sensor models (``camera``,
``depth_sensor``, ``event_sensor``, ``lidar_sensor``) that share one calibrated rig
(``transforms``), and written in the DELIVER layout (``deliver``) and as rosbag2 (``rosbag``,
topic names in ``topics``). ``python -m sam_moelora_ros.synthetic --help`` is the CLI.

Importing this package pulls in numpy and OpenCV only (rosbags is imported by ``rosbag``).
"""

from __future__ import annotations

from sam_moelora_ros.synthetic.conditions import CONDITIONS, FAILURES
from sam_moelora_ros.synthetic.frames import Frame, GeneratorConfig, SequenceRenderer, SequenceSpec
from sam_moelora_ros.synthetic.primitives import SCENE_CLASSES
from sam_moelora_ros.synthetic.topics import (
    BASE_FRAME,
    CAMERA_FRAME,
    CAMERA_INFO_TOPIC,
    CAMERA_TOPIC,
    CONDITION_TOPIC,
    DEPTH_TOPIC,
    EVENT_TOPIC,
    LABELS_TOPIC,
    LIDAR_FRAME,
    LIDAR_TOPIC,
    TF_STATIC_TOPIC,
)
from sam_moelora_ros.synthetic.transforms import LidarConfig, Rig

__all__ = [
    "BASE_FRAME",
    "CAMERA_FRAME",
    "CAMERA_INFO_TOPIC",
    "CAMERA_TOPIC",
    "CONDITIONS",
    "CONDITION_TOPIC",
    "DEPTH_TOPIC",
    "EVENT_TOPIC",
    "FAILURES",
    "LABELS_TOPIC",
    "LIDAR_FRAME",
    "LIDAR_TOPIC",
    "SCENE_CLASSES",
    "TF_STATIC_TOPIC",
    "Frame",
    "GeneratorConfig",
    "LidarConfig",
    "Rig",
    "SequenceRenderer",
    "SequenceSpec",
]

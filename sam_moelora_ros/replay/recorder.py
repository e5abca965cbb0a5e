"""The live replay's recorder: the node's ``~/labels`` kept by header stamp. Imports rclpy.

Keyed by stamp (ns) because that is how recorded labels are matched to the bag's ground truth
and to the offline replay's labels; a later message with the same stamp replaces the earlier.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from rclpy.node import Node

from sam_moelora_ros.replay.player import RELIABLE
from sam_moelora_ros.ros.process import NODE_NAME


class Recorder:
    """Keep the node's ``~/labels`` messages by header stamp (ns) as numpy arrays."""

    def __init__(self, node: Node, namespace: str = f"/{NODE_NAME}") -> None:
        from sensor_msgs.msg import Image

        from sam_moelora_ros.sensors.image import image_to_numpy

        self._decode = image_to_numpy
        self.labels: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self.topic = f"{namespace}/labels"
        node.create_subscription(Image, self.topic, self._on_labels, RELIABLE)

    def _on_labels(self, msg: Any) -> None:
        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        with self._lock:
            self.labels[stamp] = np.array(self._decode(msg))

    def snapshot(self) -> dict[int, np.ndarray]:
        with self._lock:
            return dict(self.labels)

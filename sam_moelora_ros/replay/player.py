"""Our bag player: a rosbag2's messages published over DDS with their recorded timing (rclpy).

``ros2 bag play`` is not installable here, so :class:`BagPlayer` publishes the bag's raw CDR
bytes (``Publisher.publish(bytes)``, no conversion) in receive order, honouring relative timing
scaled by ``rate``; a topic recorded latched (``/tf_static``) is published latched (transient
local) when its message package is importable. A :class:`~.scenarios.Scenario` may drop or
corrupt sensor messages on the way, as the offline replay does.

Every type is published as recorded: ``sensor_msgs/CompressedImage`` (image_transport's
``compressed`` and ``compressedDepth`` topics), PointCloud2, Image, and
``event_camera_msgs/EventPacket`` where that package is importable (a ROS install); a topic
whose package is missing is listed in :attr:`BagPlayer.skipped` with how to install it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.bag import BagReader
from sam_moelora_ros.params.config import canonical_type
from sam_moelora_ros.replay.scenarios import CORRUPT, DROP, Scenario, corrupt_message
from sam_moelora_ros.ros.message_types import MessagePackageMissing
from sam_moelora_ros.ros.message_types import message_class as load_message_class

RELIABLE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE
)
"""Reliable with room for a burst: a replay must not lose what the bag holds."""
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""For topics recorded latched (``/tf_static``): late subscribers still get the message."""


def message_class(msgtype: str) -> type | None:
    """``sensor_msgs/msg/CompressedImage`` -> the rclpy class; None when its package is missing
    (:func:`~sam_moelora_ros.ros.message_types.message_class` says how to install it)."""
    try:
        return load_message_class(canonical_type(msgtype))
    except MessagePackageMissing:
        return None


class BagPlayer:
    """Publish a bag's topics from ``node`` with the recorded relative timing / ``rate``.

    ``roles`` maps sensor roles to topics (the replay's topic table): the scenario's drops and
    corruptions apply to those topics by role. Topics whose message package is not importable
    are listed in ``skipped`` instead of published.
    """

    def __init__(
        self,
        node: Node,
        reader: BagReader,
        topics: Sequence[str],
        rate: float = 1.0,
        scenario: Scenario | None = None,
        roles: Mapping[str, str] | None = None,
    ) -> None:
        self.node, self.reader, self.rate = node, reader, rate
        self.scenario = scenario or Scenario()
        self.role_of = {t: r for r, t in (roles or {}).items() if r in MODALITIES}
        self.pubs: dict[str, Any] = {}
        self.skipped: list[str] = []
        for topic in topics:
            msgtype = reader.topics[topic]
            try:
                cls = load_message_class(canonical_type(msgtype))
            except MessagePackageMissing as exc:
                self.skipped.append(f"{topic}: {exc}")
                continue
            latched = any(q.durability.name == "TRANSIENT_LOCAL" for q in reader.qos(topic))
            self.pubs[topic] = node.create_publisher(cls, topic, LATCHED if latched else RELIABLE)
        self.published = 0

    def wait_for_subscribers(
        self,
        topics: Sequence[str],
        timeout: float = 30.0,
        check: Callable[[], None] | None = None,
    ) -> None:
        """Until every topic in ``topics`` has a subscriber; ``check()`` may raise to stop early
        (the node died), so a start-up failure is reported at once, not as this time-out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            missing = [
                t for t in topics if t in self.pubs and self.pubs[t].get_subscription_count() == 0
            ]
            if not missing:
                return
            if check is not None:
                check()
            time.sleep(0.05)
        raise TimeoutError(f"no subscriber on {missing} after {timeout} s")

    def play(self) -> int:
        """Publish every record (receive order); returns the number published."""
        start_wall = time.monotonic()
        start_bag = self.reader.start_ns
        for rec in self.reader.messages(list(self.pubs), order="log"):
            due = start_wall + (rec.log_ns - start_bag) * 1e-9 / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data = rec.raw
            role = self.role_of.get(rec.topic)
            if role is not None:
                action = self.scenario.action(role, (rec.stamp_ns - start_bag) * 1e-9)
                if action == DROP:
                    continue
                if action == CORRUPT and rec.msg is not None:
                    data = bytes(
                        self.reader.typestore.serialize_cdr(corrupt_message(rec.msg), rec.msgtype)
                    )
            self.pubs[rec.topic].publish(data)
            self.published += 1
        return self.published

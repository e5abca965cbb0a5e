"""Live replay of a robot's bag: compressed transports played over DDS into the real node.

The bag is recorded as a RealSense + Ouster + Prophesee robot records it (test/replay/
robot_bag.py): JPEG ``compressed`` colour, ``compressedDepth`` PNG depth, an Ouster cloud,
EventPacket events and /tf_static. ``replay_live`` plays every type as recorded; the node, with
``message_type: auto``, subscribes with the types the player advertises and labels the frames.
Message packages an environment lacks (event_camera_msgs, tf2_msgs have no PyPI wheels; `make
venv` builds them) are not played, and the run says so with how to install them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))
from robot_bag import TOPICS, write_robot_bag

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]


def test_a_robot_bag_with_compressed_topics_plays_into_the_node(
    ros_env: dict[str, str], tiny_adapter: Path, tmp_path: Path
) -> None:
    from sam_moelora_ros.replay.live import run_live
    from sam_moelora_ros.replay.player import message_class

    assert message_class("sensor_msgs/msg/CompressedImage").__name__ == "CompressedImage"
    assert message_class("sensor_msgs/CompressedImage") is message_class(
        "sensor_msgs/msg/CompressedImage"
    )
    bag = write_robot_bag(tmp_path / "bag", frames=8)
    out = tmp_path / "live"
    recorded = run_live(
        bag.path,
        str(tiny_adapter),
        out,
        rate=0.5,
        env=ros_env,
        topics={role: topic for role, topic in TOPICS.items()},
        node_params={"model.torch_threads": 1, "fallback_anchors": ["none"]},
        settle_s=20.0,
        idle_s=3.0,
    )
    log = (out / "node.log").read_text()
    for role in ("rgb", "depth"):
        assert (
            f"sensor {role}: subscribed to {TOPICS[role]} as sensor_msgs/msg/CompressedImage "
            "(as advertised)"
        ) in log
    assert "rejected rgb message" not in log and "rejected depth message" not in log, log
    assert recorded and set(recorded) <= set(bag.stamps_ns)  # labels of the camera's frames
    not_played = json.loads((out / "live_metrics.json").read_text())["not_played"]
    if importlib.util.find_spec("event_camera_msgs") is None:
        (event,) = [item for item in not_played if item.startswith(TOPICS["event"])]
        assert "ros-$ROS_DISTRO-event-camera-msgs" in event
    else:
        assert f"sensor event: subscribed to {TOPICS['event']}" in log

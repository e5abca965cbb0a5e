"""Console script ``bag_play``: publish a rosbag2 into a running ROS graph. Imports rclpy.

Only plays (no node started, nothing recorded): every topic of the bag whose message package is
importable, with the recorded timing scaled by ``--rate``. Run it in a private network namespace
unless the graph is meant to be seen (docs/replay.md, "DDS settings").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import rclpy
from rclpy.node import Node

from sam_moelora_ros.bag import BagError, BagReader
from sam_moelora_ros.replay.player import BagPlayer
from sam_moelora_ros.ros.dds_profile import with_large_message_profile


def main(argv: Sequence[str] | None = None) -> int:
    """Publish every playable topic of the bag once; exit 0."""
    p = argparse.ArgumentParser(prog="bag_play", description="Play a rosbag2 over DDS.")
    p.add_argument("bag", type=Path)
    p.add_argument("--rate", type=float, default=1.0)
    args = p.parse_args(argv)
    os.environ.update(with_large_message_profile(os.environ))  # before the first participant
    rclpy.init()
    node = Node("bag_play")
    try:
        with BagReader(args.bag) as reader:
            player = BagPlayer(node, reader, list(reader.topics), args.rate)
            for item in player.skipped:
                node.get_logger().warning(f"not played: {item}")
            time.sleep(1.0)  # let subscribers discover the new publishers
            node.get_logger().info(f"published {player.play()} messages")
    except BagError as exc:  # a damaged or truncated bag: what was played stays played
        print(f"bag_play: error: {exc}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Live replay: our bag player publishing into the running node over DDS, and a recorder.

``ros2 bag play`` is not installable here, so :class:`BagPlayer` publishes the bag's raw CDR
bytes (``Publisher.publish(bytes)``, no conversion) in receive order, honouring relative timing
scaled by ``--rate``; ``/tf_static`` is published latched (transient local) when its message
package is importable. :class:`Recorder` keeps the node's ``~/labels`` by stamp. ``replay_live``
starts the node (``perception_node``) with the bag's topics and extrinsic, plays, records, and
scores what was recorded against the bag's ground truth. This module imports rclpy; run it in a
private network namespace (ENVIRONMENT.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sam_moelora_ros.bag import BagReader
from sam_moelora_ros.replay.pipeline import DEFAULT_TOPICS, bag_extrinsic
from sam_moelora_ros.replay.scenarios import CORRUPT, DROP, Scenario, corrupt_message

NODE = "/sam_moelora_perception"
RELIABLE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE
)
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
SENSOR_ROLES = ("rgb", "depth", "event", "lidar")


def message_class(msgtype: str) -> type | None:
    """``sensor_msgs/msg/Image`` -> the rclpy class, or None when the package is not installed."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        return None


class BagPlayer:
    """Publish a bag's topics from ``node`` with the recorded relative timing / ``rate``."""

    def __init__(
        self,
        node: Node,
        reader: BagReader,
        topics: Sequence[str],
        rate: float = 1.0,
        scenario: Scenario | None = None,
        roles: dict[str, str] | None = None,
    ) -> None:
        self.node, self.reader, self.rate = node, reader, rate
        self.scenario = scenario or Scenario()
        self.role_of = {t: r for r, t in (roles or {}).items() if r in SENSOR_ROLES}
        self.pubs: dict[str, Any] = {}
        self.skipped: list[str] = []
        for topic in topics:
            msgtype = reader.topics[topic]
            cls = message_class(msgtype)
            if cls is None:
                self.skipped.append(f"{topic} ({msgtype}: message package not installed)")
                continue
            latched = any(q.durability.name == "TRANSIENT_LOCAL" for q in reader.qos(topic))
            self.pubs[topic] = node.create_publisher(cls, topic, LATCHED if latched else RELIABLE)
        self.published = 0

    def wait_for_subscribers(self, topics: Sequence[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.pubs[t].get_subscription_count() > 0 for t in topics if t in self.pubs):
                return
            time.sleep(0.05)
        raise TimeoutError(f"no subscriber on some of {list(topics)} after {timeout} s")

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


class Recorder:
    """Keep the node's ``~/labels`` messages by header stamp (ns) as numpy arrays."""

    def __init__(self, node: Node, namespace: str = NODE) -> None:
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


def node_command(adapter: str, topics: dict[str, str], extrinsic: np.ndarray) -> list[str]:
    """``perception_node`` with the bag's topic names, the bag's extrinsic and reliable QoS."""
    params = {
        "model.adapter": adapter,
        "model.device": "cpu",
        "qos.profile": "reliable",
        "camera_info_topic": topics["camera_info"],
        "lidar.extrinsic": "[" + ",".join(f"{v:.12g}" for v in np.asarray(extrinsic).ravel()) + "]",
        **{f"sensors.{r}.topic": topics[r] for r in SENSOR_ROLES},
    }
    args = [item for k, v in params.items() for item in ("-p", f"{k}:={v}")]
    return [sys.executable, "-m", "sam_moelora_ros.node", "--ros-args", *args]


def score(bag: Path, recorded: dict[int, np.ndarray], labels_topic: str, k: int = 25) -> dict:
    """mIoU of recorded labels against the bag's ground truth (matched by stamp)."""
    from sam_moelora_ros.evaluation import ConfusionMatrix
    from sam_moelora_ros.sensors.image import image_to_numpy

    cm, matched = ConfusionMatrix(k), 0
    with BagReader(bag) as reader:
        for rec in reader.messages([labels_topic]):
            pred = recorded.get(rec.stamp_ns)
            if pred is not None and rec.msg is not None:
                cm.update(pred, np.asarray(image_to_numpy(rec.msg)))
                matched += 1
    return {
        "miou": cm.miou() if cm.total else None,
        "frames_recorded": len(recorded),
        "frames_evaluated": matched,
    }


def run_live(
    bag: Path,
    adapter: str,
    out: Path,
    *,
    rate: float = 1.0,
    env: dict | None = None,
    scenario: Scenario | None = None,
    settle_s: float = 5.0,
) -> dict[int, np.ndarray]:
    """Start the node, play ``bag`` into it, record its labels; write ``out/live_metrics.json``."""
    topics = dict(DEFAULT_TOPICS)
    with BagReader(bag) as reader:
        from sam_moelora_ros.node_params import build_config

        extrinsic = bag_extrinsic(reader, topics, build_config({}).extrinsic)
    proc = subprocess.Popen(
        node_command(adapter, topics, extrinsic),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("replay_live", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    try:
        recorder = Recorder(node)
        spin.start()
        with BagReader(bag) as reader:
            play = [
                t
                for r, t in topics.items()
                if r in (*SENSOR_ROLES, "camera_info", "tf_static") and t in reader.topics
            ]
            player = BagPlayer(node, reader, play, rate, scenario, topics)
            player.wait_for_subscribers([topics[r] for r in SENSOR_ROLES], timeout=120)
            deadline = time.monotonic() + 60
            while node.count_publishers(recorder.topic) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            player.play()
        time.sleep(settle_s)
        recorded = recorder.snapshot()
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        proc.send_signal(2)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    out.mkdir(parents=True, exist_ok=True)
    metrics = score(bag, recorded, topics["labels"])
    (out / "live_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return recorded


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``replay_live``: node + player + recorder, then the score."""
    p = argparse.ArgumentParser(prog="replay_live", description=__doc__)
    p.add_argument("--bag", type=Path)
    p.add_argument("--adapter", default="")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--drop", action="append", default=[])
    p.add_argument("--demo", action="store_true", help="generate the demo bag first")
    args = p.parse_args(argv)
    bag = args.bag
    if args.demo:
        from sam_moelora_ros.inference import default_adapter_path
        from sam_moelora_ros.synthetic.cli import main as synthesize

        if not (args.adapter or default_adapter_path()):
            print(
                "replay_live: the shipped default model is missing; pass --adapter", file=sys.stderr
            )
            return 2
        data = args.out / "data"
        if not (data / "bags" / "synthetic_train_seed7").exists():
            synthesize(
                [
                    "--out",
                    str(data),
                    "--frames",
                    "24",
                    "--seq-len",
                    "12",
                    "--seed",
                    "7",
                    "--size",
                    "256x128",
                    "--conditions",
                    "sun,night",
                    "--bag",
                    "--no-deliver",
                    "--no-progress",
                    "--dropout",
                    "lidar@0.3:0.8",
                ]
            )
        bag = data / "bags" / "synthetic_train_seed7"
    if bag is None:
        p.error("--bag is required (or --demo)")
    recorded = run_live(
        bag, args.adapter, args.out, rate=args.rate, scenario=Scenario.parse(drop=args.drop)
    )
    print(json.loads((args.out / "live_metrics.json").read_text()), f"({len(recorded)} frames)")
    return 0


def play_main(argv: Sequence[str] | None = None) -> int:
    """Console script ``bag_play``: publish a bag into a running graph."""
    p = argparse.ArgumentParser(prog="bag_play", description="Play a rosbag2 over DDS.")
    p.add_argument("bag", type=Path)
    p.add_argument("--rate", type=float, default=1.0)
    args = p.parse_args(argv)
    rclpy.init()
    node = Node("bag_play")
    try:
        with BagReader(args.bag) as reader:
            player = BagPlayer(node, reader, list(reader.topics), args.rate)
            for item in player.skipped:
                node.get_logger().warning(f"not played: {item}")
            time.sleep(1.0)
            node.get_logger().info(f"published {player.play()} messages")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

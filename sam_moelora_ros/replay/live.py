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
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import rclpy.executors
import yaml
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sam_moelora_ros.bag import BagReader
from sam_moelora_ros.dds_profile import ros_environment, with_large_message_profile
from sam_moelora_ros.node_params import SPECS, build_config
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


def node_parameters(
    adapter: str,
    topics: Mapping[str, str],
    extrinsic: np.ndarray,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The node's parameters for a live replay: the bag's topics and extrinsic, reliable QoS.

    Every value is coerced to the type of the parameter's declared default (``node_params``):
    rclpy refuses e.g. ``[1, 0, ...]`` (INTEGER_ARRAY) for ``lidar.extrinsic`` (DOUBLE_ARRAY),
    and that start-up failure is what made the first live runs wait for a node that had exited.
    """
    params: dict[str, Any] = {
        "model.adapter": adapter,
        "model.device": "cpu",
        "qos.profile": "reliable",
        "camera_info_topic": topics["camera_info"],
        "lidar.extrinsic": np.asarray(extrinsic, dtype=float).ravel().tolist(),
        **{f"sensors.{r}.topic": topics[r] for r in SENSOR_ROLES},
        **(overrides or {}),
    }
    return {name: _as_declared(name, value) for name, value in params.items()}


def _as_declared(name: str, value: Any) -> Any:
    spec = SPECS.get(name)
    if spec is None:
        raise ValueError(f"{name!r} is not a parameter of the node")
    default = spec.default
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, (list, tuple)) and default and isinstance(default[0], float):
        return [float(v) for v in value]
    if isinstance(default, (list, tuple)):
        return list(value)
    return type(default)(value)


def write_params_file(path: Path, params: Mapping[str, Any], node_name: str = NODE[1:]) -> Path:
    """A ROS 2 parameters YAML for ``--params-file``: no ``-p`` quoting; floats stay floats."""
    tree: dict[str, Any] = {}
    for name, value in params.items():
        *parents, leaf = name.split(".")
        level = tree
        for part in parents:
            level = level.setdefault(part, {})
        level[leaf] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({node_name: {"ros__parameters": tree}}, sort_keys=False))
    return path


def node_command(params_file: Path) -> list[str]:
    """``python -m sam_moelora_ros.node`` with only our parameters (node defaults otherwise,
    the same defaults the offline replay's ``build_config`` uses)."""
    return [
        sys.executable,
        "-m",
        "sam_moelora_ros.node",
        "--ros-args",
        "--params-file",
        str(params_file),
    ]


class NodeProcess:
    """The node subprocess with its output drained (a full pipe would block it) into a log file.

    :meth:`check` raises with the node's last lines as soon as it has exited, so a start-up
    error surfaces in seconds instead of as a subscriber time-out.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None, log: Path) -> None:
        self.tail: deque[str] = deque(maxlen=60)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            list(command),
            env=None if env is None else dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("w", encoding="utf-8") as sink:
            for line in self.proc.stdout:
                sink.write(line)
                sink.flush()
                self.tail.append(line.rstrip("\n"))

    def check(self) -> None:
        """Raise :class:`RuntimeError` (with the node's output) if the node has exited."""
        if self.proc.poll() is not None:
            self._reader.join(2)
            raise RuntimeError(
                f"the perception node exited with code {self.proc.returncode}; its output "
                f"({self.log}):\n" + "\n".join(self.tail)
            )

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(2)


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
    env: Mapping[str, str] | None = None,
    scenario: Scenario | None = None,
    node_params: Mapping[str, Any] | None = None,
    settle_s: float = 10.0,
    idle_s: float = 2.0,
    startup_timeout_s: float = 120.0,
) -> dict[int, np.ndarray]:
    """Start the node, play ``bag`` into it, record its labels; write ``out/live_metrics.json``.

    ``env``: the node's environment (None: this process's); the player uses the same DDS
    settings, and both get the shipped Fast DDS large-message profile unless ``env`` names one
    (:mod:`~sam_moelora_ros.dds_profile`). ``node_params``: node parameter overrides (dotted
    names). After the last message the recorder waits until no label arrived for ``idle_s`` (at
    most ``settle_s``). The node's output goes to ``out/node.log``.
    """
    topics = dict(DEFAULT_TOPICS)
    with BagReader(bag) as reader:
        extrinsic = bag_extrinsic(reader, topics, build_config({}).extrinsic)
    params = node_parameters(adapter, topics, extrinsic, node_params)
    params_file = write_params_file(out / "node_params.yaml", params)
    env = with_large_message_profile(os.environ if env is None else env)
    node_proc = NodeProcess(node_command(params_file), env, out / "node.log")
    domain = env.get("ROS_DOMAIN_ID")
    try:
        with ros_environment(env):
            recorded = _play_and_record(
                bag, topics, node_proc, rate, scenario, domain, settle_s, idle_s, startup_timeout_s
            )
    finally:
        node_proc.stop()
    metrics = score(bag, recorded, topics["labels"])
    (out / "live_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return recorded


def _play_and_record(
    bag: Path,
    topics: Mapping[str, str],
    node_proc: NodeProcess,
    rate: float,
    scenario: Scenario | None,
    domain: str | None,
    settle_s: float,
    idle_s: float,
    startup_timeout_s: float,
) -> dict[int, np.ndarray]:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(domain) if domain else None)
    node = Node("replay_live", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    try:
        recorder = Recorder(node)
        spin.start()
        with BagReader(bag) as reader:
            roles = (*SENSOR_ROLES, "camera_info", "tf_static")
            play = [t for r, t in topics.items() if r in roles and t in reader.topics]
            player = BagPlayer(node, reader, play, rate, scenario, topics)
            # camera_info too: the node subscribes to it (LiDAR projection) and the bag carries it
            # beside the first frames, which must not be lost to discovery.
            needed = [topics[r] for r in (*SENSOR_ROLES, "camera_info") if topics[r] in play]
            player.wait_for_subscribers(needed, startup_timeout_s, node_proc.check)
            _wait(lambda: node.count_publishers(recorder.topic) > 0, 30.0, node_proc.check)
            time.sleep(0.5)  # both sides of every match discovered (ENVIRONMENT.md)
            player.play()
        deadline = time.monotonic() + settle_s
        last_count, last_change = len(recorder.snapshot()), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_change < idle_s:
            time.sleep(0.05)
            count = len(recorder.snapshot())
            if count != last_count:
                last_count, last_change = count, time.monotonic()
        node_proc.check()
        return recorder.snapshot()
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _wait(predicate: Callable[[], bool], timeout: float, check: Callable[[], None]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s")
        time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``replay_live``: node + player + recorder, then the score."""
    p = argparse.ArgumentParser(prog="replay_live", description=__doc__)
    p.add_argument("--bag", type=Path)
    p.add_argument("--adapter", default="")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--drop", action="append", default=[])
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="node parameter override (YAML value), e.g. sensors.lidar.max_wait=0.2",
    )
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
    overrides = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            p.error(f"--param {item!r}: expected NAME=VALUE")
        overrides[name] = yaml.safe_load(value)
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # ENVIRONMENT.md: loopback only
    recorded = run_live(
        bag,
        args.adapter,
        args.out,
        rate=args.rate,
        env=env,
        scenario=Scenario.parse(drop=args.drop),
        node_params=overrides,
    )
    print(json.loads((args.out / "live_metrics.json").read_text()), f"({len(recorded)} frames)")
    return 0


def play_main(argv: Sequence[str] | None = None) -> int:
    """Console script ``bag_play``: publish a bag into a running graph."""
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
            time.sleep(1.0)
            node.get_logger().info(f"published {player.play()} messages")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

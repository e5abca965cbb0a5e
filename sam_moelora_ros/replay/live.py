"""Live replay: the real node in its own process, our bag player feeding it, a recorder (rclpy).

:func:`run_live` writes the node's parameters file (:mod:`.params_file`), starts the node under
the package's process supervisor (:class:`~sam_moelora_ros.ros.process.NodeProcess`), waits
until it subscribes to every sensor topic and to camera_info (so no message is lost to
discovery), plays the bag (:class:`~.player.BagPlayer`), records ``~/labels``
(:class:`~.recorder.Recorder`) and scores them (:func:`~.scoring.score`). The console script is
:mod:`.live_cli` (``replay_live``). Run it in a private network namespace (docs/replay.md, "DDS
settings").

Robot bags: ``topics`` maps roles to the bag's topics (``--topic rgb=/camera/.../compressed``);
every type is played as recorded (CompressedImage, compressedDepth, PointCloud2, EventPacket
where its package is importable) and the node subscribes with ``message_type: auto``, so it
takes whatever the bag holds. A topic of a type its role cannot take stops the run before the
node starts; topics the player cannot publish are listed in ``live_metrics.json``
(``not_played``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import rclpy.executors
from rclpy.node import Node

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.bag import BagReader
from sam_moelora_ros.params import build_config
from sam_moelora_ros.replay.inputs import check_topic_types
from sam_moelora_ros.replay.params_file import node_command, node_parameters, write_params_file
from sam_moelora_ros.replay.pipeline import DEFAULT_TOPICS, bag_extrinsic
from sam_moelora_ros.replay.player import BagPlayer
from sam_moelora_ros.replay.recorder import Recorder
from sam_moelora_ros.replay.scenarios import Scenario
from sam_moelora_ros.replay.scoring import score
from sam_moelora_ros.ros.dds_profile import ros_environment, with_large_message_profile
from sam_moelora_ros.ros.process import NodeProcess


def run_live(
    bag: Path,
    adapter: str,
    out: Path,
    *,
    rate: float = 1.0,
    env: Mapping[str, str] | None = None,
    scenario: Scenario | None = None,
    node_params: Mapping[str, Any] | None = None,
    topics: Mapping[str, str] | None = None,
    settle_s: float = 10.0,
    idle_s: float = 2.0,
    startup_timeout_s: float = 120.0,
) -> dict[int, np.ndarray]:
    """Start the node, play ``bag`` into it, record its labels; write ``out/live_metrics.json``.

    ``env``: the node's environment (None: this process's); the player uses the same DDS
    settings, and both get the shipped Fast DDS large-message profile unless ``env`` names one
    (:mod:`~sam_moelora_ros.ros.dds_profile`). ``node_params``: node parameter overrides (dotted
    names); ``topics``: role -> the bag's topic, over :data:`DEFAULT_TOPICS`. After the last
    message the recorder waits until no label arrived for ``idle_s`` (at most ``settle_s``). The
    node's output goes to ``out/node.log``.
    """
    topics = {**DEFAULT_TOPICS, **(topics or {})}
    with BagReader(bag) as reader:  # a wrong topic type: one error before the node starts
        check_topic_types(reader, topics, (*MODALITIES, "camera_info"))
        extrinsic = bag_extrinsic(reader, topics, build_config({}).extrinsic)
        has_labels = topics["labels"] in reader.topics
    params = node_parameters(adapter, topics, extrinsic, node_params)
    params_file = write_params_file(out / "node_params.yaml", params)
    env = with_large_message_profile(os.environ if env is None else env)
    node_proc = NodeProcess(node_command(params_file), env, log=out / "node.log")
    domain = env.get("ROS_DOMAIN_ID")
    try:
        with ros_environment(env):
            recorded, not_played = _play_and_record(
                bag, topics, node_proc, rate, scenario, domain, settle_s, idle_s, startup_timeout_s
            )
    finally:
        node_proc.stop()
    if has_labels:
        metrics = score(bag, recorded, topics["labels"])
    else:  # a robot's bag: nothing to score against
        metrics = {"miou": None, "frames_recorded": len(recorded), "frames_evaluated": 0}
    metrics["not_played"] = not_played
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
) -> tuple[dict[int, np.ndarray], list[str]]:
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
            roles = (*MODALITIES, "camera_info", "tf_static")
            play = [t for r, t in topics.items() if r in roles and t in reader.topics]
            player = BagPlayer(node, reader, play, rate, scenario, topics)
            for item in player.skipped:
                node.get_logger().warning(f"not played: {item}")
            # camera_info too: the node subscribes to it (LiDAR projection) and the bag carries it
            # beside the first frames, which must not be lost to discovery.
            needed = [topics[r] for r in (*MODALITIES, "camera_info") if topics[r] in play]
            player.wait_for_subscribers(needed, startup_timeout_s, node_proc.check)
            _wait(lambda: node.count_publishers(recorder.topic) > 0, 30.0, node_proc.check)
            time.sleep(0.5)  # let discovery finish on both sides of every match
            player.play()
        deadline = time.monotonic() + settle_s
        last_count, last_change = len(recorder.snapshot()), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_change < idle_s:
            time.sleep(0.05)
            count = len(recorder.snapshot())
            if count != last_count:
                last_count, last_change = count, time.monotonic()
        node_proc.check()
        return recorder.snapshot(), player.skipped
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

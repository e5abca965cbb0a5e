"""How ``replay_live`` starts the node, without DDS: its parameters file and its failure path.

The live replay's first failure was a node that exited at start-up (``lidar.extrinsic`` given as
``[1,0,...]``, an INTEGER_ARRAY, where the node declares a DOUBLE_ARRAY) while the player waited
120 s for it to subscribe. These pin the two fixes: values typed as the node declares them, and
a node that exits is reported at once with its output. Neither needs rclpy: the parameters file
is :mod:`~sam_moelora_ros.replay.params_file`, the supervisor :mod:`~sam_moelora_ros.ros.process`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from sam_moelora_ros.replay import params_file
from sam_moelora_ros.ros.process import NodeExited, NodeProcess

TOPICS = {
    "rgb": "/cam",
    "depth": "/depth",
    "event": "/event",
    "lidar": "/points",
    "camera_info": "/cam/info",
}


def test_parameters_file_keeps_the_declared_types(tmp_path: Path) -> None:
    params = params_file.node_parameters(
        "/m.safetensors",
        TOPICS,
        np.eye(4, dtype=np.int64),  # integer input must still become doubles
        {"sensors.lidar.max_wait": 1, "qos.depth": 7.0, "fallback_anchors": ("none",)},
    )
    path = params_file.write_params_file(tmp_path / "p.yaml", params)
    tree = yaml.safe_load(path.read_text())["sam_moelora_perception"]["ros__parameters"]
    extrinsic = tree["lidar"]["extrinsic"]
    assert len(extrinsic) == 16 and all(type(v) is float for v in extrinsic)
    assert type(tree["sensors"]["lidar"]["max_wait"]) is float
    assert tree["qos"] == {"profile": "reliable", "depth": 7}
    assert tree["sensors"]["rgb"]["topic"] == "/cam" and tree["camera_info_topic"] == "/cam/info"
    assert tree["fallback_anchors"] == ["none"]
    assert "1.0" in path.read_text()  # YAML floats, never bare integers


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="not a parameter"):
        params_file.node_parameters("", TOPICS, np.eye(4), {"sensors.lidar.maxwait": 1.0})


def test_node_command_uses_only_the_parameters_file(tmp_path: Path) -> None:
    command = params_file.node_command(tmp_path / "p.yaml")
    assert command[-3:] == ["--ros-args", "--params-file", str(tmp_path / "p.yaml")]
    assert "-p" not in command


def test_a_node_that_exits_is_reported_at_once_with_its_output(tmp_path: Path) -> None:
    script = "print('[FATAL] cannot start: parameter lidar.extrinsic'); raise SystemExit(2)"
    proc = NodeProcess([sys.executable, "-c", script], None, log=tmp_path / "node.log")
    deadline = time.monotonic() + 20
    with pytest.raises(NodeExited, match=r"exited with code 2(.|\n)*lidar.extrinsic"):
        while time.monotonic() < deadline:
            proc.check()
            time.sleep(0.05)
    proc.stop()
    assert "cannot start" in (tmp_path / "node.log").read_text()

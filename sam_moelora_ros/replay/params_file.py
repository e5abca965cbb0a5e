"""How ``replay_live`` configures the node it starts: a typed parameters file. No rclpy.

Why a file and why typed: the first live runs passed ``-p`` overrides and the node refused
``lidar.extrinsic:=[1, 0, ...]`` (an INTEGER_ARRAY where it declares a DOUBLE_ARRAY), exiting at
start-up while the player waited for it. So every value is coerced to the type of the parameter's
declared default, written as YAML (floats stay floats, no shell quoting), and the node is started
with only ``--params-file`` (node defaults otherwise, the same defaults the offline replay's
``build_config`` uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.params import SPECS
from sam_moelora_ros.ros.process import NODE_NAME
from sam_moelora_ros.ros.process import node_command as _node_command


def node_parameters(
    adapter: str,
    topics: Mapping[str, str],
    extrinsic: np.ndarray,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The node's parameters for a live replay: the bag's topics and extrinsic, reliable QoS.

    ``topics`` maps roles (``rgb`` ... ``lidar``, ``camera_info``) to the bag's topics;
    ``overrides`` are dotted node parameter names. Unknown names raise :class:`ValueError`.
    """
    params: dict[str, Any] = {
        "model.adapter": adapter,
        "model.device": "cpu",
        "qos.profile": "reliable",
        "camera_info_topic": topics["camera_info"],
        "lidar.extrinsic": np.asarray(extrinsic, dtype=float).ravel().tolist(),
        **{f"sensors.{r}.topic": topics[r] for r in MODALITIES},
        **(overrides or {}),
    }
    return {name: _as_declared(name, value) for name, value in params.items()}


def _as_declared(name: str, value: Any) -> Any:
    """``value`` as the type of ``name``'s declared default (rclpy refuses any other type)."""
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


def write_params_file(path: Path, params: Mapping[str, Any], node_name: str = NODE_NAME) -> Path:
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
    """``python -m sam_moelora_ros.ros.node --ros-args --params-file FILE``, nothing else."""
    return _node_command(["--params-file", str(params_file)])

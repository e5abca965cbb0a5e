"""The RViz 2 config names topics the node really subscribes and publishes (also `colcon test`).

The Foxglove layout is checked against a real labels bag in test/replay/test_replay_foxglove.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sam_moelora_ros.params.specs import DEFAULT_TOPICS
from sam_moelora_ros.pipeline.worker import LABELLED_CLOUD, OUTPUT_KEYS
from sam_moelora_ros.ros.process import NODE_NAME
from sam_moelora_ros.synthetic.topics import BASE_FRAME

ROOT = Path(__file__).resolve().parents[1]
RVIZ = ROOT / "rviz" / "perception.rviz"
pytestmark = pytest.mark.colcon


def displays(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every display, groups (``rviz_default_plugins/Group``) flattened."""
    for item in items:
        yield item
        yield from displays(item.get("Displays", []))


def topics_by_class(config: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """display class (``Image``, ``PointCloud2``) -> topic -> its Topic block (QoS + Value)."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for d in displays(config["Visualization Manager"]["Displays"]):
        if d.get("Enabled", True) and isinstance(d.get("Topic"), dict):
            kind = d["Class"].removeprefix("rviz_default_plugins/")
            table.setdefault(kind, {})[d["Topic"]["Value"]] = d["Topic"]
    return table


@pytest.fixture(scope="module")
def rviz() -> dict[str, Any]:
    config = yaml.safe_load(RVIZ.read_text())
    assert isinstance(config, dict)
    return config


def test_rviz_shows_the_node_outputs_and_its_default_inputs(rviz: dict[str, Any]) -> None:
    table = topics_by_class(rviz)
    outputs = {f"/{NODE_NAME}/{key}" for key in OUTPUT_KEYS}  # the node's ~/<key> publishers
    camera, lidar = f"/{DEFAULT_TOPICS['rgb']}", f"/{DEFAULT_TOPICS['lidar']}"
    assert set(table["Image"]) == {
        camera,
        f"/{NODE_NAME}/labels_color",
        f"/{NODE_NAME}/confidence",
    }
    assert set(table["Image"]) - {camera} <= outputs
    assert set(table["PointCloud2"]) == {lidar, f"/{NODE_NAME}/{LABELLED_CLOUD}"}
    assert set(table) == {"Image", "PointCloud2"}, "a display on a topic the node does not use"
    # Inputs: best effort matches drivers that publish either way (a reliable subscription would
    # not match a best-effort camera); the node's outputs are reliable, so either policy matches.
    assert table["Image"][camera]["Reliability Policy"] == "Best Effort"
    assert table["PointCloud2"][lidar]["Reliability Policy"] == "Best Effort"


def test_rviz_fixed_frame_is_base_link(rviz: dict[str, Any]) -> None:
    manager = rviz["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == BASE_FRAME == "base_link"
    classes = {d["Class"] for d in displays(manager["Displays"])}
    assert all(c.startswith("rviz_default_plugins/") for c in classes), "RViz 2 plugin names"

"""The shipped Foxglove layout shows topics a replay's labels bag really holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sam_moelora_ros.bag import BagReader
from sam_moelora_ros.replay.cli import evaluate_bag

LAYOUT = Path(__file__).resolve().parents[2] / "foxglove" / "labels_bag.json"
PANEL_TYPES = {"Image": "sensor_msgs/msg/Image", "3D": "sensor_msgs/msg/PointCloud2"}
"""Panel kind -> the message type its topics must carry (raw images; clouds in the 3D panel)."""


def layout_topics(layout: dict[str, Any]) -> dict[str, set[str]]:
    """Panel kind -> the topics its panels name (image topic, calibration, 3D topics)."""
    table: dict[str, set[str]] = {}
    for panel_id, config in layout["configById"].items():
        kind = panel_id.split("!")[0]
        mode = config.get("imageMode", {})
        names = set(config.get("topics", {}))
        if kind == "Image":
            names |= {mode["imageTopic"]}
        table.setdefault(kind, set()).update(names)
        if mode.get("calibrationTopic"):
            table.setdefault("calibration", set()).add(mode["calibrationTopic"])
    return table


def panels_in_tree(node: Any) -> set[str]:
    if isinstance(node, str):
        return {node}
    return panels_in_tree(node["first"]) | panels_in_tree(node["second"])


@pytest.fixture(scope="module")
def labels_bag(replay_bag: Path, tmp_path_factory: pytest.TempPathFactory, segmenter) -> Path:
    out = tmp_path_factory.mktemp("foxglove")
    evaluate_bag(
        replay_bag,
        out,
        segmenter=segmenter,
        output_bag=True,
        max_frames=2,
        overlays=False,
        progress=False,
    )
    return out / "labels_bag"


def test_foxglove_layout_names_topics_of_the_labels_bag(labels_bag: Path) -> None:
    layout = json.loads(LAYOUT.read_text())
    assert panels_in_tree(layout["layout"]) == set(layout["configById"])
    with BagReader(labels_bag) as reader:
        types, counts = reader.topics, reader.counts
    table = layout_topics(layout)
    assert {"/sam_moelora_perception/labels_color", "/sam_moelora_perception/confidence"} <= (
        table["Image"]
    )
    for kind, msgtype in PANEL_TYPES.items():
        for topic in table[kind]:
            assert types.get(topic) == msgtype, f"{kind} panel: {topic} is {types.get(topic)}"
            assert counts[topic] > 0, f"{topic} has no message in the labels bag"
    for topic in table.get("calibration", set()):
        assert types.get(topic) == "sensor_msgs/msg/CameraInfo"
    # A 3D panel's display frame must be reachable: unset (Foxglove then takes the clouds' own
    # frame), the clouds' frame, or any frame when the bag carries the static transforms.
    with BagReader(labels_bag) as reader:
        frames = {rec.msg.header.frame_id for rec in reader.messages(sorted(table["3D"]))}
    for panel_id, config in layout["configById"].items():
        follow = config.get("followTf")
        if panel_id.startswith("3D!") and follow is not None and "/tf_static" not in types:
            assert follow in frames, f"{panel_id} follows {follow}: no TF to it in the bag"

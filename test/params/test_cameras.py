"""Several cameras on one model: the ``cameras`` parameter and each group's view (no DDS)."""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.params import ParameterError, build_config, check_value
from sam_moelora_ros.params.cameras import camera_specs, camera_topic


def test_without_cameras_the_node_has_one_unnamed_view_of_itself() -> None:
    config = build_config({})
    assert config.cameras == () and config.camera_views() == [("", config)]


def test_group_topics_default_to_the_shared_ones_under_the_cameras_name() -> None:
    config = build_config({"cameras": ["front", "rear"], "sensors.rgb.topic": "/image_raw"})
    views = dict(config.camera_views())
    assert list(views) == ["front", "rear"]
    rear = views["rear"]
    assert rear.sensors["rgb"].topic == "/rear/image_raw"  # absolute stays absolute
    assert rear.sensors["lidar"].topic == "rear/lidar/points"
    assert rear.camera_info_topic == "rear/camera/camera_info"
    assert rear.cameras == () and rear.enabled == config.enabled
    assert camera_topic("left", "~/x") == "~/left/x"


def test_a_group_overrides_its_topics_sensors_and_extrinsic() -> None:
    shifted = [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0]  # x y z qx qy qz qw
    config = build_config(
        {
            "cameras": ["front", "rear"],
            "cameras.front.lidar.topic": "/ouster/points",  # one LiDAR, two cameras
            "cameras.rear.lidar.topic": "/ouster/points",
            "cameras.rear.sensors": ["lidar", "rgb"],
            "cameras.rear.lidar.extrinsic": shifted,
        }
    )
    front, rear = (view for _, view in config.camera_views())
    assert front.sensors["lidar"].topic == rear.sensors["lidar"].topic == "/ouster/points"
    assert rear.enabled == ("rgb", "lidar")  # canonical order, whatever the list's
    assert rear.fallback_anchors == ("lidar",)
    assert rear.extrinsic[2, 3] == 0.5 and np.array_equal(front.extrinsic, np.eye(4))


def test_a_group_without_the_anchor_takes_the_first_fallback_it_has() -> None:
    config = build_config({"cameras": ["thermal"], "cameras.thermal.sensors": ["event", "depth"]})
    ((_, view),) = config.camera_views()
    assert (view.anchor, view.fallback_anchors) == ("depth", ("event",))


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"cameras": ["front", "front"]}, r"'cameras' = \['front', 'front'\]: names 'front' more"),
        ({"cameras": ["2nd"]}, r"'cameras' = \['2nd'\]: '2nd' is not a camera name"),
        ({"cameras": ["front"], "cameras.rear.rgb.topic": "x"}, r"'rear' is not in cameras"),
        ({"cameras": ["front"], "cameras.front.rgb.topc": "x"}, r"is not a parameter of this"),
        ({"cameras": ["front"], "cameras.front.sensors": ["radar"]}, r"non-empty list of sensor"),
        ({"cameras": ["front"], "cameras.front.sensors": []}, r"non-empty list of sensors"),
        ({"cameras": ["a"], "cameras.a.depth.topic": "1x"}, r"'cameras.a.depth.topic' = '1x'"),
        ({"cameras": ["a"], "cameras.a.lidar.extrinsic": [1.0]}, r"a.lidar.extrinsic'.*got 1"),
        (
            {"cameras": ["a"], "sensors.event.enabled": False, "cameras.a.sensors": ["event"]},
            r"'cameras.a.sensors' = \['event'\]: 'event' is disabled for the node",
        ),
        (
            {"cameras": ["a"], "cameras.a.depth.topic": "a/camera/image"},
            r"'cameras.a.rgb.topic' = 'a/camera/image': is used by more than one sensor",
        ),
    ],
)
def test_invalid_camera_parameters_name_the_parameter(values: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        build_config(values)


def test_declared_camera_parameters_are_typed_and_checked() -> None:
    from sam_moelora_ros.params import PARAMETERS

    shared = {spec.name: spec.default for spec in PARAMETERS}
    shared["sensors.event.enabled"] = False
    specs = {spec.name: spec for spec in camera_specs("left", shared)}
    assert specs["cameras.left.sensors"].default == ["rgb", "depth", "lidar"]
    assert specs["cameras.left.rgb.topic"].default == "left/camera/image"
    assert len(specs["cameras.left.lidar.extrinsic"].default) == 16
    assert all(spec.description for spec in specs.values())
    check_value("cameras.left.rgb.topic", "/x")
    with pytest.raises(ParameterError, match="must be of type str"):
        check_value("cameras.left.rgb.topic", 3)


def test_the_readme_example_builds() -> None:
    """The README's two-camera params file (dotted group keys beside the ``cameras`` list)."""
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Several cameras, one model") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    tree = yaml.safe_load(block.group(1))["sam_moelora_perception"]["ros__parameters"]

    def flatten(node: dict, prefix: str = "") -> dict:
        out: dict = {}
        for key, value in node.items():
            name = f"{prefix}{key}"
            out.update(flatten(value, f"{name}.") if isinstance(value, dict) else {name: value})
        return out

    views = dict(build_config(flatten(tree)).camera_views())
    assert views["rear"].enabled == ("rgb", "lidar")
    assert views["rear"].sensors["rgb"].topic == "/rear_cam/image_raw"
    assert views["front"].sensors["lidar"].topic == views["rear"].sensors["lidar"].topic
    assert views["front"].sensors["rgb"].topic == "front/camera/image"

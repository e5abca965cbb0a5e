"""Node parameters without DDS: defaults, validation messages, the YAML and the launch file."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sam_moelora_ros.params import (
    PARAMETERS,
    ParameterError,
    build_config,
    check_model_modalities,
    check_value,
    load_palette,
)
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix

REPO = Path(__file__).resolve().parents[2]


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


@pytest.mark.colcon
def test_yaml_lists_exactly_the_declared_parameters_and_is_valid() -> None:
    data = yaml.safe_load((REPO / "config" / "perception.yaml").read_text())
    params = flatten(data["sam_moelora_perception"]["ros__parameters"])
    assert set(params) == {spec.name for spec in PARAMETERS}
    for spec in PARAMETERS:  # same types as the declared defaults (ROS rejects mismatches)
        assert type(params[spec.name]) is type(spec.default), spec.name
        assert spec.description
    config = build_config(params)
    assert config.anchor == "rgb" and config.enabled == ("rgb", "depth", "event", "lidar")


def test_defaults_build() -> None:
    config = build_config({})
    assert config.fallback_anchors == ("depth", "lidar", "event")
    np.testing.assert_array_equal(config.extrinsic, np.eye(4))
    assert config.qos_profile == "sensor_data"


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"sensors.rgb.tolerance": -0.1}, r"'sensors.rgb.tolerance' = -0.1: must be within"),
        ({"sensors.lidar.stale_timeout": float("nan")}, r"'sensors.lidar.stale_timeout'"),
        ({"sensors.depth.max_wait": -1.0}, r"'sensors.depth.max_wait'.*within \[0, 10\]"),
        ({"anchor": "radar"}, r"'anchor' = 'radar': must be one of"),
        ({"qos.profile": "fast"}, r"'qos.profile' = 'fast'"),
        ({"qos.depth": 0}, r"'qos.depth' = 0: must be in \[1, 1000\]"),
        ({"qos.depth": 3_000_000_000}, r"'qos.depth' = 3000000000: must be in \[1, 1000\]"),
        ({"model.device": "gpu"}, r"'model.device' = 'gpu'"),
        ({"model.dtype": "int8"}, r"'model.dtype' = 'int8'"),
        ({"output.color_alpha": 1.5}, r"'output.color_alpha' = 1.5: must be within"),
        ({"sensors.rgb.topic": ""}, r"'sensors.rgb.topic' = '': is not a valid ROS 2 topic"),
        ({"sensors.rgb.topic": "1bad"}, r"'sensors.rgb.topic' = '1bad': .*starts with a digit"),
        ({"camera_info_topic": "cam info"}, r"'camera_info_topic' = 'cam info': .*contains ' '"),
        ({"sensors.event.message_type": "audio"}, r"'sensors.event.message_type'"),
        ({"lidar.extrinsic": [1.0] * 5}, r"'lidar.extrinsic'.*got 5"),
        ({"fallback_anchors": ["sonar"]}, r"'fallback_anchors'.*'sonar' is not a sensor"),
        ({"sensors.rgb.enabled": False}, r"'anchor' = 'rgb': names a disabled sensor"),
        ({"sensors.depth.topic": "camera/image"}, r"topic' = 'camera/image': is used by more"),
        ({"diagnostics.period": "1"}, r"'diagnostics.period' = '1': must be of type float"),
        ({"output.color": 1}, r"'output.color' = 1: must be of type bool"),
    ],
)
def test_invalid_values_name_the_parameter(values: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        build_config(values)


TOPIC_NAMES = [
    *["camera/image", "/camera/image_raw", "~", "~/labels", "~a", "_a", "a__b", "{node}/x"],
    *["{namespace}", "1bad", "a/1b", "/a//b", "a/", "/", "a~", "{no de}", "{a"],
    *["a}", "a b", "a-b", "a.b", "{1x}/a", "{foo}/x", "kamera/bild\u00e4", ""],
]


@pytest.mark.parametrize("name", TOPIC_NAMES)
def test_topic_names_follow_rcl(name: str) -> None:
    """The pure check agrees with rcl itself: validate, expand in a namespace, validate again."""
    rclpy_names = pytest.importorskip("rclpy.expand_topic_name")
    from rclpy.validate_full_topic_name import validate_full_topic_name
    from rclpy.validate_topic_name import validate_topic_name

    from sam_moelora_ros.params.specs import topic_name_problem

    try:
        validate_topic_name(name)
        validate_full_topic_name(rclpy_names.expand_topic_name(name, "perception", "/robot"))
        rcl_accepts = True
    except Exception:  # rclpy raises InvalidTopicNameException or ValueError (substitution)
        rcl_accepts = False
    assert (topic_name_problem(name) is None) == rcl_accepts, topic_name_problem(name)


def test_no_sensor_enabled() -> None:
    values = {f"sensors.{n}.enabled": False for n in ("rgb", "depth", "event", "lidar")}
    with pytest.raises(ParameterError, match="no sensor is enabled"):
        build_config(values)


def test_fallbacks_skip_disabled_sensors_and_the_anchor() -> None:
    config = build_config(
        {"sensors.depth.enabled": False, "fallback_anchors": ["rgb", "depth", "lidar", "none"]}
    )
    assert config.fallback_anchors == ("lidar",)


def test_integers_are_accepted_for_floats() -> None:
    check_value("sensors.rgb.tolerance", 1)
    with pytest.raises(ParameterError, match="not a parameter"):
        check_value("sensors.radar.topic", "x")


def test_extrinsic_forms_agree() -> None:
    # 90 degrees about z, then a translation.
    quat = extrinsic_matrix([1.0, 2.0, 3.0, 0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)])
    expected = np.array([[0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]], float)
    np.testing.assert_allclose(quat, expected, atol=1e-12)
    np.testing.assert_allclose(extrinsic_matrix(expected.ravel()), expected)
    with pytest.raises(ValueError, match="rigid"):
        extrinsic_matrix([2.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="must not be zero"):
        extrinsic_matrix([0, 0, 0, 0, 0, 0, 0])


def test_model_modalities_must_cover_enabled_sensors() -> None:
    config = build_config({})
    check_model_modalities(config, ("rgb", "depth", "event", "lidar"))
    with pytest.raises(ParameterError, match=r"'sensors.lidar.enabled'.*takes only"):
        check_model_modalities(config, ("rgb", "depth", "event"))


def test_palette_default_and_file(tmp_path: Path) -> None:
    names, palette = load_palette("", 30)
    assert names[0] == "Building" and names[29] == "class_29" and palette.shape == (30, 3)
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"names": ["a", "b"], "colors": [[1, 2, 3], [4, 5, 6]]}))
    names, palette = load_palette(str(path), 2)
    assert names == ("a", "b") and palette.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ParameterError, match="lists 2 names but the model has 3"):
        load_palette(str(path), 3)
    yaml_path = tmp_path / "p.yaml"
    yaml_path.write_text("colors: [[0, 0, 300]]\n")
    with pytest.raises(ParameterError, match="within 0..255"):
        load_palette(str(yaml_path), 1)
    with pytest.raises(ParameterError, match="cannot be read"):
        load_palette(str(tmp_path / "missing.yaml"), 1)


@pytest.mark.colcon
def test_launch_file_structure() -> None:
    """launch/launch_ros are not installable here: check the file by its syntax tree."""
    source = (REPO / "launch" / "perception.launch.py").read_text()
    tree = ast.parse(source)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    imports = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert ("launch_ros.actions", "Node") in imports
    assert ("launch.actions", "DeclareLaunchArgument") in imports
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    node_call = next(c for c in calls if getattr(c.func, "id", None) == "Node")
    assert {k.arg: ast.literal_eval(k.value) for k in node_call.keywords if k.arg} == {
        "executable": "perception_node"
    }
    # the rest comes from node_options(), which the lifecycle launch file shares
    assert [ast.unparse(k.value) for k in node_call.keywords if k.arg is None] == ["node_options()"]
    options = next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "node_options"
    )
    returned = next(n for n in ast.walk(options) if isinstance(n, ast.Return))
    assert isinstance(returned.value, ast.Dict)
    kwargs = {
        ast.literal_eval(k): v
        for k, v in zip(returned.value.keys, returned.value.values, strict=True)
        if k is not None
    }
    package = next(
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PACKAGE"
    )
    assert ast.unparse(kwargs["package"]) == "PACKAGE"
    assert ast.literal_eval(package.value) == "sam_moelora_ros"
    assert ast.literal_eval(kwargs["name"]) == "sam_moelora_perception"
    assert "parameters" in kwargs and "remappings" in kwargs
    remaps = next(
        n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "REMAPPINGS"
    )
    table = ast.literal_eval(remaps.value)
    topics = {topic for _, topic, _ in table}
    data = yaml.safe_load((REPO / "config" / "perception.yaml").read_text())
    params = flatten(data["sam_moelora_perception"]["ros__parameters"])
    for name in ("rgb", "depth", "event", "lidar"):
        assert params[f"sensors.{name}.topic"] in topics, name
    assert params["camera_info_topic"] in topics
    assert "params_file" in source and "perception.yaml" in source
    # the node gets the large-message Fast DDS profile, in its distribution's spelling
    assert "additional_env" in kwargs and "fastdds_large_messages.xml" in source
    assert ("sam_moelora_ros.ros.dds_profile", "profile_env_var") in imports
    assert "profile_env_var" in ast.unparse(kwargs["additional_env"])


@pytest.mark.colcon
def test_console_script_is_registered() -> None:
    setup = (REPO / "setup.py").read_text()
    assert '"perception_node = sam_moelora_ros.ros.node:main"' in setup

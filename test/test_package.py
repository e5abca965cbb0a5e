"""Package metadata a ROS 2 workspace relies on (also run by `colcon test`)."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.colcon


def test_package_xml_is_format_3_ament_python_with_the_runtime_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "sam_moelora_ros"
    assert root.findtext("export/build_type") == "ament_python"
    depends = {e.text for e in root.findall("exec_depend")}
    for name in ("rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "diagnostic_msgs"):
        assert name in depends
    assert {"python3-numpy", "python3-opencv"} <= depends


def test_setup_installs_scripts_under_lib_and_share_files():
    cfg = (ROOT / "setup.cfg").read_text()
    assert "install_scripts=$base/lib/sam_moelora_ros" in cfg
    assert "script_dir=$base/lib/sam_moelora_ros" in cfg
    assert (ROOT / "resource" / "sam_moelora_ros").is_file()
    text = ast.unparse(ast.parse((ROOT / "setup.py").read_text()))
    assert "PACKAGE = 'sam_moelora_ros'" in text
    assert "f'share/{PACKAGE}/launch', glob('launch/*.py')" in text
    assert "f'share/{PACKAGE}/config'" in text


def test_ros_wheels_stay_out_of_the_runtime_requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    runtime = [line for line in lines if line.strip() and not line.startswith("#")]
    for line in runtime:
        assert not line.startswith(("ros-", "rclpy")), f"ROS wheel in runtime requirements: {line}"
        assert "==" in line, f"unpinned runtime requirement: {line}"
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "ros-rclpy" in dev


def test_version_agrees_between_package_xml_setup_and_module():
    import sam_moelora_ros

    version = ET.parse(ROOT / "package.xml").getroot().findtext("version")
    assert sam_moelora_ros.__version__ == version
    assert f'version="{version}"' in (ROOT / "setup.py").read_text()


def test_training_is_a_subpackage_through_a_symlink_not_package_dir():
    """`colcon build --symlink-install` (setup.py develop) cannot map a subpackage to another
    folder: sam_moelora_ros/training is a symlink to the root's training/ instead."""
    link = ROOT / "sam_moelora_ros" / "training"
    assert link.is_symlink(), "sam_moelora_ros/training must be a symlink to ../training"
    assert link.readlink() == Path("..") / "training"
    assert link.resolve() == (ROOT / "training").resolve()
    text = ast.unparse(ast.parse((ROOT / "setup.py").read_text()))
    assert "package_dir" not in text
    assert "'develop': DevelopWithScriptsExecutable" in text


def _launch_call(tree: ast.AST, name: str, first_arg: str) -> ast.Call:
    return next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == name
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == first_arg
    )


def _node_options(tree: ast.Module) -> dict[str, ast.expr]:
    """The keyword arguments both launch files give their node (``node_options()``'s dict)."""
    func = next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "node_options"
    )
    returned = next(n for n in ast.walk(func) if isinstance(n, ast.Return))
    assert isinstance(returned.value, ast.Dict)
    return {
        ast.literal_eval(k): v
        for k, v in zip(returned.value.keys, returned.value.values, strict=True)
        if k
    }


def test_launch_file_passes_use_sim_time_to_the_node():
    """launch_ros is not installable here: read the launch file's syntax tree."""
    tree = ast.parse((ROOT / "launch" / "perception.launch.py").read_text())
    declared = _launch_call(tree, "DeclareLaunchArgument", "use_sim_time")
    defaults = {k.arg: k.value for k in declared.keywords}
    assert ast.literal_eval(defaults["default_value"]) == "false"
    options = _node_options(tree)
    parameters = options["parameters"]
    assert isinstance(parameters, ast.List)
    # the params file first, then use_sim_time, so the launch argument wins over the file
    assert ast.unparse(parameters.elts[0]) == "LaunchConfiguration('params_file')"
    override = parameters.elts[-1]
    assert isinstance(override, ast.Dict) and len(override.keys) == 1
    assert ast.literal_eval(override.keys[0]) == "use_sim_time"
    value = override.values[0]
    assert ast.unparse(value) == (
        "ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)"
    )

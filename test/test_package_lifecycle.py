"""The managed node is installed and launched as users expect (no ROS graph needed)."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_lifecycle_console_script_sits_beside_perception_node() -> None:
    setup = (ROOT / "setup.py").read_text()
    assert '"perception_node = sam_moelora_ros.ros.node:main"' in setup
    assert '"perception_lifecycle_node = sam_moelora_ros.ros.lifecycle_node:main"' in setup


def test_lifecycle_msgs_is_an_exec_depend() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert "lifecycle_msgs" in {e.text for e in root.findall("exec_depend")}


def test_the_lifecycle_launch_file_starts_the_lifecycle_node_with_the_plain_arguments() -> None:
    source = (ROOT / "launch" / "perception_lifecycle.launch.py").read_text()
    tree = ast.parse(source)
    calls = {
        node.func.id: node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    lifecycle = calls["LifecycleNode"]
    keywords = {k.arg: k.value for k in lifecycle.keywords}
    assert ast.literal_eval(keywords["executable"]) == "perception_lifecycle_node"
    # name, parameters (use_sim_time included), remappings: the plain launch file's node_options
    options = next(k.value for k in lifecycle.keywords if k.arg is None)
    assert ast.unparse(options) == "plain.node_options()"
    assert "perception.launch.py" in source  # its arguments are the plain launch file's
    assert "TRANSITION_CONFIGURE" in source and "TRANSITION_ACTIVATE" in source


def test_the_lifecycle_node_module_exposes_main() -> None:
    from sam_moelora_ros.ros import lifecycle_node, perception_core

    assert callable(lifecycle_node.main)
    assert issubclass(lifecycle_node.PerceptionLifecycleNode, perception_core.PerceptionCore)

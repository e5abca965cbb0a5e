"""The robot install: lower-bound requirements beside the distro, scripts run by PATH's python.

A robot has ROS 2, NumPy and OpenCV from its distribution and a venv (``--system-site-packages``)
for torch; CI has exact pins (requirements.txt). `make colcon` checks the installed scripts
themselves (.ci/colcon_check.sh); these tests check the files that produce them.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
FROM_THE_DISTRIBUTION = {"opencv-python-headless"}
"""CI pins these; on a robot they come from the distribution (python3-opencv) and pip must not."""


def requirements(name: str) -> dict[str, Requirement]:
    reqs = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            reqs[canonicalize_name(req.name)] = req
    return reqs


def test_scripts_are_run_by_the_python3_on_path() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg.get("build_scripts", "executable") == "/usr/bin/env python3"
    assert cfg.get("install", "install_scripts") == "$base/lib/sam_moelora_ros"


def test_robot_requirements_are_lower_bounds_of_every_ci_pin() -> None:
    robot, ci = requirements("requirements-robot.txt"), requirements("requirements.txt")
    assert set(robot) == set(ci) - FROM_THE_DISTRIBUTION
    for name, req in robot.items():
        ops = {spec.operator for spec in req.specifier}
        assert ">=" in ops and "==" not in ops and "~=" not in ops, f"{req}: a lower bound only"
        (pin,) = (Version(s.version) for s in ci[name].specifier if s.operator == "==")
        (low,) = (Version(s.version) for s in req.specifier if s.operator == ">=")
        assert low <= pin, f"CI tests {name}=={pin}, below the robot's lower bound in {req}"
        if name != "numpy":  # the one upper bound: see the next test
            assert ops == {">="}, f"{req}: a lower bound only"


def test_robot_requirements_leave_numpy_and_opencv_to_the_distribution() -> None:
    robot = requirements("requirements-robot.txt")
    assert not [n for n in robot if "opencv" in n]
    numpy = robot["numpy"]
    # the NumPy of Ubuntu 24.04 (Jazzy, Kilted) is accepted as it is; NumPy 2 never gets in
    assert numpy.specifier.contains("1.26.4") and not numpy.specifier.contains("2.0.0")
    text = (ROOT / "requirements-robot.txt").read_text()
    assert not re.search(r"^\s*(ros-|rclpy)", text, re.MULTILINE), "ROS comes from the distro"

"""One parameter checked on its own (type and range), a shared one or a camera group's. No rclpy.

Beside :mod:`.specs` (the shared table) and :mod:`.cameras` (the per-camera table, which is built
from :mod:`.specs`' checks) rather than in either, so that neither table imports the other back.
"""

from __future__ import annotations

from typing import Any

from sam_moelora_ros.params.cameras import camera_parameter
from sam_moelora_ros.params.specs import SPECS, ParameterError


def check_value(name: str, value: Any) -> None:
    """Check one parameter on its own (type and range); raise :class:`ParameterError`."""
    spec = SPECS.get(name)
    if spec is None:
        spec = camera_parameter(name)
    if spec is None:
        raise ParameterError(name, value, "is not a parameter of this node")
    expected = type(spec.default)
    ok_types: tuple[type, ...] = (float, int) if expected is float else (expected,)
    if expected is list:
        ok_types = (list, tuple)
    if not isinstance(value, ok_types) or (expected is not bool and isinstance(value, bool)):
        raise ParameterError(name, value, f"must be of type {expected.__name__}")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise ParameterError(name, value, problem)

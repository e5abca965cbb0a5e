"""Every numeric parameter is ranged, at start-up (build_config) and on set (check_value).

The values are the red team's: each was accepted before and then overflowed, starved the node
or failed somewhere that named another parameter.
"""

from __future__ import annotations

from typing import Any

import pytest

from sam_moelora_ros.params import PARAMETERS, ParameterError, build_config, check_value
from sam_moelora_ros.params.cameras import undeclared_camera_parameters
from sam_moelora_ros.sensors.limits import Limits


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sensors.event.window", 1e12),
        ("sensors.event.window", 1e-10),
        ("diagnostics.period", 1e-9),
        ("model.torch_threads", 100000),
        ("model.torch_threads", -1),
        ("sync.poll_period", 1e-9),
        ("anchor_timeout", 1e9),
        ("sensors.rgb.tolerance", 1e6),
        ("sensors.lidar.max_wait", 1e6),
        ("sensors.depth.stale_timeout", float("inf")),
        ("limits.max_image_pixels", 0),
        ("limits.max_points", 2**40),
        ("limits.max_events", -5),
    ],
)
def test_out_of_range_values_are_one_error_naming_the_parameter(name: str, value: Any) -> None:
    with pytest.raises(ParameterError, match=rf"^parameter '{name}' = .*must be within \[") as a:
        build_config({name: value})
    with pytest.raises(ParameterError) as b:  # on set: the same check, the same line
        check_value(name, value)
    assert str(a.value) == str(b.value) and "\n" not in str(a.value)


def test_every_number_has_a_range() -> None:
    """No numeric parameter is left with a bare '> 0' (1e12 and 1e-10 both pass that)."""
    for spec in PARAMETERS:
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert spec.check is not None, spec.name
            assert spec.check(1e300) is not None, spec.name  # no parameter takes 1e300


def test_limits_reach_the_config_with_their_defaults() -> None:
    assert build_config({}).limits == Limits()
    cfg = build_config({"limits.max_points": 10, "limits.max_events": 20})
    assert cfg.limits == Limits(max_points=10, max_events=20)
    assert cfg.camera_views()[0][1].limits == cfg.limits


def test_a_300_character_camera_name_is_refused() -> None:
    name = "front" + "x" * 295
    with pytest.raises(ParameterError, match=r"'cameras' = .*is 300 characters long.*at most 32"):
        build_config({"cameras": [name]})
    assert build_config({"cameras": ["f" * 32]}).cameras[0].name == "f" * 32


def test_a_typo_d_camera_group_reaches_the_check() -> None:
    """The node declares groups only for listed cameras; what it was given besides is passed on."""
    given = {
        "cameras": ["front", "rear"],
        "cameras.front.rgb.topic": "front/image",
        "cameras.raer.rgb.topic": "rear/image",
        "sensors.rgb.topic": "image",
    }
    declared = ["cameras", "cameras.front.rgb.topic", "sensors.rgb.topic"]
    stray = undeclared_camera_parameters(given, declared)
    assert stray == {"cameras.raer.rgb.topic": "rear/image"}
    with pytest.raises(
        ParameterError, match=r"'cameras.raer.rgb.topic' = 'rear/image': camera 'raer' is not in"
    ):
        build_config({"cameras": ["front", "rear"], **stray})

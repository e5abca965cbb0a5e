"""DELIVER's weather/lighting conditions and sensor-failure cases as parameter sets.

Conditions change the light and the medium (what every camera-like sensor sees); failures change
one sensor (what DELIVER's "motionblur", "overexposure", "underexposure", "lidarjitter" and
"eventlowres" splits contain). The numbers are chosen so that ``night`` and ``fog`` make RGB alone
ambiguous for part of the scene (dark or fogged-out regions), while depth and LiDAR are barely
affected, which is exactly the situation the mixture of experts has to learn to route around.
"""

from __future__ import annotations

from dataclasses import dataclass

CONDITIONS: tuple[str, ...] = ("cloud", "fog", "night", "rain", "sun")
"""DELIVER's condition directory names."""

FAILURES: tuple[str, ...] = (
    "motionblur",
    "overexposure",
    "underexposure",
    "lidarjitter",
    "eventlowres",
)
"""DELIVER's sensor-failure case names (they appear in the sequence directory name)."""


@dataclass(frozen=True)
class Condition:
    """Light, medium and sensor-noise parameters of one condition (linear radiance units)."""

    name: str
    sun: float
    sky: float
    sky_zenith: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    clouds: float
    fog_visibility: float
    fog_colour: tuple[float, float, float]
    night: bool
    exposure: float
    read_noise: float
    shot_noise: float
    saturation: float
    rain: float
    event_noise_hz: float
    lidar_backscatter: float
    depth_invalid: float


CONDITION_PARAMS: dict[str, Condition] = {
    "sun": Condition(
        "sun",
        3.0,
        0.9,
        (0.25, 0.45, 0.9),
        (0.7, 0.8, 0.95),
        0.15,
        float("inf"),
        (0.8, 0.8, 0.8),
        False,
        0.55,
        0.004,
        0.01,
        1.0,
        0.0,
        0.1,
        0.0,
        0.003,
    ),
    "cloud": Condition(
        "cloud",
        0.5,
        1.3,
        (0.55, 0.58, 0.62),
        (0.75, 0.76, 0.78),
        0.8,
        float("inf"),
        (0.8, 0.8, 0.8),
        False,
        0.75,
        0.006,
        0.012,
        0.8,
        0.0,
        0.15,
        0.0,
        0.003,
    ),
    "night": Condition(
        "night",
        0.0,
        0.012,
        (0.01, 0.012, 0.03),
        (0.03, 0.03, 0.04),
        0.3,
        float("inf"),
        (0.1, 0.1, 0.1),
        True,
        1.0,
        0.03,
        0.05,
        0.45,
        0.0,
        2.0,
        0.0,
        0.003,
    ),
    "fog": Condition(
        "fog",
        0.3,
        1.2,
        (0.7, 0.72, 0.74),
        (0.78, 0.79, 0.8),
        1.0,
        45.0,
        (0.78, 0.79, 0.8),
        False,
        0.7,
        0.006,
        0.012,
        0.7,
        0.0,
        0.3,
        0.015,
        0.01,
    ),
    "rain": Condition(
        "rain",
        0.15,
        0.75,
        (0.35, 0.37, 0.4),
        (0.5, 0.52, 0.55),
        1.0,
        220.0,
        (0.5, 0.52, 0.55),
        False,
        0.9,
        0.01,
        0.02,
        0.65,
        1.0,
        0.5,
        0.004,
        0.03,
    ),
}
"""Parameters per condition name (see :class:`Condition` for the fields)."""


@dataclass(frozen=True)
class Failure:
    """Sensor-failure switches applied on top of a condition."""

    motion_blur_px: float = 0.0
    exposure_gain: float = 1.0
    lidar_jitter_m: float = 0.0
    event_scale: float = 1.0


def failure_params(name: str | None) -> Failure:
    """Map a DELIVER failure name (or None / "none") to its :class:`Failure` switches."""
    if name in (None, "", "none"):
        return Failure()
    table = {
        "motionblur": Failure(motion_blur_px=0.045),
        "overexposure": Failure(exposure_gain=5.0),
        "underexposure": Failure(exposure_gain=0.12),
        "lidarjitter": Failure(lidar_jitter_m=0.15),
        "eventlowres": Failure(event_scale=0.5),
    }
    if name not in table:
        raise ValueError(f"unknown failure {name!r}; choose from none, {', '.join(FAILURES)}")
    return table[name]


def condition_params(name: str) -> Condition:
    """Look a condition up by its DELIVER name, with an error listing the valid names."""
    if name not in CONDITION_PARAMS:
        raise ValueError(f"unknown condition {name!r}; choose from {', '.join(CONDITIONS)}")
    return CONDITION_PARAMS[name]

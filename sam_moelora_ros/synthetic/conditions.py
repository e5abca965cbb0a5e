"""DELIVER's weather/lighting conditions and sensor-failure cases as parameter sets.

Conditions change the light and the medium (what every camera-like sensor sees); failures change
one sensor (what DELIVER's "motionblur", "overexposure", "underexposure", "lidarjitter" and
"eventlowres" splits contain). The numbers are chosen so that ``night`` and ``fog`` make RGB alone
ambiguous for part of the scene (dark or fogged-out regions), while the other sensors degrade in
their own, physically different ways (see each sensor module), which is exactly the situation the
mixture of experts has to learn to route around.

Fog's meteorological visibility ``V`` is drawn per sequence from ``fog_visibility_range`` (see
:func:`sequence_condition`); Koschmieder's law gives the extinction coefficient ``beta = 3 / V``
(the distance at which contrast falls to about 5 %). The range is 15-60 m (dense fog): with the
earlier 30-150 m most sequences left the near street scene visible to RGB, so RGB-only lost only
about 4 mIoU from sun to fog and fusion had little to add there; at 15-60 m a car 30 m away keeps
at most exp(-3 * 30 / 60) = 22 % of its contrast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

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
    """Light, medium and sensor-noise parameters of one condition (linear radiance units).

    ``exposure`` is the brightness gain from rendered radiance to the normalised camera signal;
    ``read_noise`` is the camera's read noise in electrons and ``light_scale`` the physical
    illuminance per rendered radiance unit (night scenes are far darker than their rendered,
    already-dim values); ``exposure_s`` is the exposure time and ``blur_samples`` how many
    sub-times of it are rendered (motion blur, night only). ``depth_range`` caps the depth
    camera's working range (active stereo in the dark); ``fog_backscatter_m`` scales LiDAR
    backscatter with the fog's extinction coefficient.
    """

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
    light_scale: float
    saturation: float
    rain: float
    event_noise_hz: float
    lidar_backscatter: float
    depth_invalid: float
    exposure_s: float = 1.0 / 500.0
    blur_samples: int = 1
    depth_range: float = float("inf")
    fog_visibility_range: tuple[float, float] | None = None
    fog_backscatter_m: float = 0.0


INF = float("inf")

CONDITION_PARAMS: dict[str, Condition] = {
    "sun": Condition(
        "sun", 3.0, 0.9, (0.25, 0.45, 0.9), (0.7, 0.8, 0.95), 0.15, INF, (0.8, 0.8, 0.8),
        night=False, exposure=0.55, read_noise=3.0, light_scale=1.0, saturation=1.0, rain=0.0,
        event_noise_hz=0.1, lidar_backscatter=0.0, depth_invalid=0.003,
    ),
    "cloud": Condition(
        "cloud", 0.5, 1.3, (0.55, 0.58, 0.62), (0.75, 0.76, 0.78), 0.8, INF, (0.8, 0.8, 0.8),
        night=False, exposure=0.75, read_noise=3.0, light_scale=0.3, saturation=0.8, rain=0.0,
        event_noise_hz=0.15, lidar_backscatter=0.0, depth_invalid=0.003, exposure_s=1 / 250,
    ),
    "night": Condition(
        "night", 0.0, 0.012, (0.01, 0.012, 0.03), (0.03, 0.03, 0.04), 0.3, INF, (0.1, 0.1, 0.1),
        night=True, exposure=0.8, read_noise=3.0, light_scale=0.003, saturation=0.45, rain=0.0,
        event_noise_hz=2.0, lidar_backscatter=0.0, depth_invalid=0.003, exposure_s=1 / 25,
        blur_samples=3, depth_range=11.0,
    ),
    "fog": Condition(
        "fog", 0.3, 1.2, (0.7, 0.72, 0.74), (0.78, 0.79, 0.8), 1.0, 30.0, (0.78, 0.79, 0.8),
        night=False, exposure=0.7, read_noise=3.0, light_scale=0.3, saturation=0.7, rain=0.0,
        event_noise_hz=0.3, lidar_backscatter=0.0, depth_invalid=0.01, exposure_s=1 / 250,
        fog_visibility_range=(15.0, 60.0), fog_backscatter_m=0.2,
    ),
    "rain": Condition(
        "rain", 0.15, 0.75, (0.35, 0.37, 0.4), (0.5, 0.52, 0.55), 1.0, 220.0, (0.5, 0.52, 0.55),
        night=False, exposure=0.9, read_noise=3.0, light_scale=0.2, saturation=0.65, rain=1.0,
        event_noise_hz=0.5, lidar_backscatter=0.004, depth_invalid=0.03, exposure_s=1 / 250,
    ),
}  # fmt: skip
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


def sequence_condition(name: str, seed: int) -> Condition:
    """The condition of one sequence: fog gets its own visibility, log-uniform in its range.

    The draw uses its own generator seeded from the sequence seed, so the same seed gives the
    same visibility (and bytes) and the other random streams are untouched.
    """
    cond = condition_params(name)
    if cond.fog_visibility_range is None:
        return cond
    lo, hi = cond.fog_visibility_range
    u = np.random.default_rng([seed, 2]).uniform(np.log(lo), np.log(hi))
    return replace(cond, fog_visibility=float(np.exp(u)))

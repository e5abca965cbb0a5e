"""Depth camera model: metric z-depth from the RGB camera's rays, noise growing with range.

The depth camera is registered to the RGB camera (DELIVER aligns every modality to RGB), so it
reuses the camera's ray cast: depth is the hit distance projected on the optical axis (REP 118
z-depth, not Euclidean range). Noise follows the stereo triangulation error
sigma_z = z^2 * sigma_d / (f * b) (disparity error sigma_d, focal length f, baseline b), here
``noise_a + noise_b * z^2`` with ``noise_b`` = sigma_d / (f b). It models an active stereo
camera: in the dark the passive stereo texture is gone and only the IR projector's few metres
remain (``Condition.depth_range``), and fog scatters both the projector and the ambient light,
so the range falls to about ``fog_range_factor`` x the visibility. Both cut-offs are soft (a
random per-pixel limit between ``1 -/+ range_softness`` of the range). Pixels beyond the range,
on sky, or randomly dropped (more in rain and fog) are invalid (NaN here; 0 in 16UC1 and NaN in
32FC1 once encoded by ``sensors.meters_to_depth``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam_moelora_ros.synthetic.conditions import Condition


@dataclass(frozen=True)
class DepthConfig:
    """Working range and noise coefficients (sigma = ``noise_a + noise_b * z**2`` metres).

    ``fog_range_factor`` times the fog visibility bounds the range in fog; ``range_softness`` is
    the relative width of the soft fall-off of a condition-limited range.
    """

    max_range: float = 60.0
    min_range: float = 0.3
    noise_a: float = 0.005
    noise_b: float = 0.0004
    fog_range_factor: float = 0.5
    range_softness: float = 0.15


def working_range(cond: Condition, config: DepthConfig = DepthConfig()) -> float:
    """Nominal maximum range (metres) under ``cond``: darkness and fog shorten it."""
    limit = min(config.max_range, cond.depth_range)
    if np.isfinite(cond.fog_visibility):
        limit = min(limit, config.fog_range_factor * cond.fog_visibility)
    return float(limit)


def render_depth(
    t: np.ndarray,
    cos_axis: np.ndarray,
    cond: Condition,
    rng: np.random.Generator,
    config: DepthConfig = DepthConfig(),
) -> np.ndarray:
    """(H, W) float32 metres, NaN invalid, from hit distances ``t`` and ray/axis cosines."""
    z = t * cos_axis
    valid = np.isfinite(z) & (z >= config.min_range) & (z <= config.max_range)
    limit = working_range(cond, config)
    if limit < config.max_range:  # soft, random fall-off of a condition-limited range
        soft = config.range_softness
        valid &= z <= limit * (1.0 + soft * rng.uniform(-1.0, 1.0, z.shape))
    sigma = config.noise_a + config.noise_b * np.where(valid, z, 0.0) ** 2
    noisy = z + rng.standard_normal(z.shape) * sigma
    valid &= rng.random(z.shape) >= cond.depth_invalid
    return np.where(valid, noisy, np.nan).astype(np.float32)

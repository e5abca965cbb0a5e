"""Depth camera model: metric z-depth from the RGB camera's rays, noise growing with range.

The depth camera is registered to the RGB camera (DELIVER aligns every modality to RGB), so it
reuses the camera's ray cast: depth is the hit distance projected on the optical axis (REP 118
z-depth, not Euclidean range). Noise follows a stereo-like model, sigma = a + b * z^2; pixels
beyond the working range, on sky, or randomly dropped (more in rain and fog) are invalid (NaN
here; 0 in 16UC1 and NaN in 32FC1 once encoded by ``sensors.meters_to_depth``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam_moelora_ros.synthetic.conditions import Condition


@dataclass(frozen=True)
class DepthConfig:
    """Working range and noise coefficients (sigma = ``noise_a + noise_b * z**2`` metres)."""

    max_range: float = 60.0
    min_range: float = 0.3
    noise_a: float = 0.005
    noise_b: float = 0.0004


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
    sigma = config.noise_a + config.noise_b * np.where(valid, z, 0.0) ** 2
    noisy = z + rng.standard_normal(z.shape) * sigma
    valid &= rng.random(z.shape) >= cond.depth_invalid
    return np.where(valid, noisy, np.nan).astype(np.float32)

"""Spinning LiDAR model: returns, intensity, ring, range noise, dropouts and weather.

The sweep is cast from the LiDAR's own mounting pose (one pose per sweep: no rolling-shutter
motion distortion, a documented simplification). Intensity is the class reflectivity times the
incidence cosine, scaled to 0..255 like Velodyne drivers; weak returns (dark, far, grazing) drop
out. Fog follows Hahner et al. 2021 ("Fog Simulation on Real LiDAR Point Clouds for 3D Object
Detection in Adverse Weather"): the two-way path attenuates the hard-target return by
exp(-2 beta r) (beta = 3 / V, Koschmieder), so far returns are lost, and the fog itself returns
light close to the sensor (backscatter, a few metres), whose probability grows with beta and
which replaces the hard target when that one is weak. Rain follows Goodin et al. 2019 /
Hahner et al. 2022 in spirit: drops remove returns and add spurious near points. DELIVER's
"lidarjitter" failure adds per-point position noise. Points are in the LiDAR frame, as a driver
publishes them.
"""

from __future__ import annotations

import numpy as np

from sam_moelora_ros.synthetic.conditions import Condition, Failure
from sam_moelora_ros.synthetic.raycast import Hits
from sam_moelora_ros.synthetic.transforms import LidarConfig

FOG_BACKSCATTER_SCALE_M = 1.0
"""Mean extra range (beyond ``min_range``) of fog backscatter returns: a few metres at most."""

POINT_DTYPE = np.dtype(
    [
        ("x", np.float32),
        ("y", np.float32),
        ("z", np.float32),
        ("intensity", np.float32),
        ("ring", np.uint16),
    ]
)
"""Structured dtype of one return (fields and order of the published PointCloud2)."""


def lidar_points(
    hits: Hits,
    dirs_lidar: np.ndarray,
    world_dirs: np.ndarray,
    config: LidarConfig,
    cond: Condition,
    failure: Failure,
    rng: np.random.Generator,
) -> np.ndarray:
    """Structured (N,) returns of one sweep; ``dirs_lidar`` (rings, cols, 3) in the LiDAR frame."""
    rings, cols = dirs_lidar.shape[:2]
    d = dirs_lidar.reshape(-1, 3)
    r = hits.t.copy()
    ring = np.repeat(np.arange(rings, dtype=np.uint16), cols)
    cos_inc = np.abs((hits.normal * world_dirs.reshape(-1, 3)).sum(axis=1))
    power = hits.reflectivity * np.clip(cos_inc, 0.05, 1.0)
    intensity = np.clip(power * 255.0 * (1.0 + 0.05 * rng.standard_normal(len(r))), 0, 255)
    ok = np.isfinite(r) & (r >= config.min_range) & (r <= config.max_range)
    trans = np.ones(len(r))
    if np.isfinite(cond.fog_visibility):
        trans = np.exp(-2.0 * 3.0 / cond.fog_visibility * np.where(ok, r, 0.0))
        power = power * trans
    detect = power * (30.0 / np.maximum(np.where(ok, r, 1.0), 1.0)) ** 2 > 0.02
    ok &= detect & (rng.random(len(r)) >= config.dropout + 0.02 * cond.rain)
    r = r + rng.standard_normal(len(r)) * config.range_noise_m
    spurious = rng.random(len(r)) < cond.lidar_backscatter  # rain clutter, 1..12 m
    r = np.where(spurious & (~ok | (rng.random(len(r)) < 0.5)), rng.uniform(1.0, 12.0, len(r)), r)
    intensity = np.where(spurious, rng.uniform(0.0, 8.0, len(r)), intensity)
    ok |= spurious
    p_fog = fog_backscatter_probability(cond)
    if p_fog > 0:  # fog backscatter: near range, wins over weak (attenuated) hard targets
        fog = rng.random(len(r)) < p_fog
        fog &= ~ok | (rng.random(len(r)) < 1.0 - trans)
        near = config.min_range + rng.gamma(2.0, FOG_BACKSCATTER_SCALE_M / 2.0, len(r))
        r = np.where(fog, near, r)
        intensity = np.where(fog, rng.uniform(0.0, 8.0, len(r)), intensity)
        ok |= fog
    xyz = d[ok] * r[ok, None]
    if failure.lidar_jitter_m > 0:
        xyz = xyz + rng.standard_normal(xyz.shape) * failure.lidar_jitter_m
    out = np.zeros(int(ok.sum()), dtype=POINT_DTYPE)
    out["x"], out["y"], out["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    out["intensity"] = intensity[ok]
    out["ring"] = ring[ok]
    return out


def fog_backscatter_probability(cond: Condition) -> float:
    """Per-beam probability of a fog backscatter return: 1 - exp(-beta * fog_backscatter_m)."""
    if not np.isfinite(cond.fog_visibility) or cond.fog_backscatter_m <= 0:
        return 0.0
    return float(1.0 - np.exp(-3.0 / cond.fog_visibility * cond.fog_backscatter_m))

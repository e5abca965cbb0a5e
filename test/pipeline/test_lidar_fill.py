"""The LiDAR image's hole fill (depth and intensity), against a per-pixel reference.

decode_lidar takes the intensity path of ``lidar_to_network_image`` for every cloud with an
``intensity`` field, as the synthetic generator does for the training images; its fill must
pick, for every hole, the nearest measured pixel of its window, ties to the first window offset
in row-major order, and take that pixel's intensity. The reference below does exactly that,
one pixel at a time.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.sensors.representation import lidar_to_network_image


def reference_fill(depth: np.ndarray, intensity: np.ndarray, r: int):
    h, w = depth.shape
    valid = np.isfinite(depth) & (depth > 0)
    out_d = np.where(valid, depth, np.nan).astype(np.float32)
    out_i = np.where(valid, intensity, 0.0).astype(np.float32)
    for y in range(h):
        for x in range(w):
            if valid[y, x]:
                continue
            best = None
            for dy in range(-r, r + 1):  # row-major window order
                for dx in range(-r, r + 1):
                    yy, xx = y + dy, x + dx
                    if not (0 <= yy < h and 0 <= xx < w and valid[yy, xx]):
                        continue
                    if best is None or depth[yy, xx] < depth[best]:
                        best = (yy, xx)
            if best is not None:
                out_d[y, x], out_i[y, x] = depth[best], intensity[best]
    return out_d, out_i


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_fill_takes_the_nearest_neighbours_depth_and_intensity(radius: int) -> None:
    rng = np.random.default_rng(radius)
    for _ in range(20):
        h, w = rng.integers(1, 14, 2)
        depth = np.full((h, w), np.nan, np.float32)
        measured = rng.random((h, w)) < rng.uniform(0.05, 0.6)
        depth[measured] = rng.integers(1, 5, measured.sum()) * 2.5  # many ties
        depth[rng.random((h, w)) < 0.05] = -1.0  # invalid too
        intensity = rng.uniform(0, 300, (h, w)).astype(np.float32)
        intensity[rng.random((h, w)) < 0.1] = np.nan
        d, i = reference_fill(depth, intensity, radius)
        expected = lidar_to_network_image(d, i, fill_radius=0)
        np.testing.assert_array_equal(
            lidar_to_network_image(depth, intensity, fill_radius=radius), expected
        )


def test_a_fill_radius_beyond_the_key_is_refused() -> None:
    depth = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="at most 127"):
        lidar_to_network_image(depth, depth, fill_radius=128)

"""Projection against a hand-computed pinhole case and OpenCV's distortion model; REP 118 depth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sam_moelora_ros.sensors import (
    depth_to_meters,
    meters_to_depth,
    numpy_to_image,
    project_point_indices,
    project_points,
    valid_depth_mask,
)
from sam_moelora_ros.sensors.depth import depth_msg_to_meters

K = np.array([[100.0, 0.0, 50.0], [0.0, 200.0, 40.0], [0.0, 0.0, 1.0]])
SIZE = (80, 100)
# LiDAR x forward, y left, z up -> camera x right, y down, z forward; LiDAR 0.2 m behind.
T = np.array(
    [[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.2], [0.0, 0.0, 0.0, 1.0]]
)


def test_hand_computed_pinhole_projection() -> None:
    # LiDAR (9.8, -1, -0.5) -> camera (1, 0.5, 10): u = 100 * 0.1 + 50 = 60, v = 200 * 0.05 + 40
    depth, mask = project_points(np.array([[9.8, -1.0, -0.5]]), K, T, SIZE)
    assert depth.shape == SIZE and depth.dtype == np.float32 and mask.dtype == bool
    assert mask.sum() == 1 and mask[50, 60]
    assert depth[50, 60] == pytest.approx(10.0)
    assert np.isnan(depth[~mask]).all()


def test_pixel_rounding_follows_pixel_centres() -> None:
    # camera point (0.0449, 0, 1) -> u = 54.49 -> column 54; (0.0902, 0, 2) -> u = 54.51 -> 55
    pts_cam = np.array([[0.0449, 0.0, 1.0], [0.0902, 0.0, 2.0]])
    _, mask = project_points(pts_cam, K.reshape(-1), np.eye(4), SIZE)
    assert mask[40, 54] and mask[40, 55] and mask.sum() == 2


def test_nearest_point_wins_whatever_the_order() -> None:
    pts = np.array([[1.0, 0.5, 10.0], [0.5, 0.25, 5.0], [2.0, 1.0, 20.0]])  # same pixel
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        depth, mask = project_points(pts[order], K, np.eye(4), SIZE)
        assert mask.sum() == 1 and depth[50, 60] == pytest.approx(5.0)
        idx = project_point_indices(pts[order], K, np.eye(4), SIZE)
        assert order[idx[50, 60]] == 1 and (idx >= 0).sum() == 1


def test_behind_outside_and_nan_points_are_dropped() -> None:
    pts = np.array(
        [[0.0, 0.0, -5.0], [0.0, 0.0, 0.0], [100.0, 0.0, 1.0], [np.nan, 0.0, 1.0], [0, 0, 1]]
    )
    depth, mask = project_points(pts, K, np.eye(4), SIZE)
    assert mask.sum() == 1 and depth[40, 50] == 1.0


def test_plumb_bob_matches_opencv_project_points() -> None:
    rng = np.random.default_rng(0)
    pts = np.column_stack(
        [rng.uniform(-3, 3, 200), rng.uniform(-2, 2, 200), rng.uniform(2, 9, 200)]
    )
    D = np.array([-0.28, 0.07, 0.001, -0.0005, 0.01])
    size = (400, 500)
    k = np.array([[300.0, 0.0, 250.0], [0.0, 310.0, 200.0], [0.0, 0.0, 1.0]])
    uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), k, D)
    uv = uv.reshape(-1, 2)
    idx = project_point_indices(pts, k, np.eye(4), size, D=D)
    for row, col in zip(*np.nonzero(idx >= 0), strict=True):
        u, v = uv[idx[row, col]]
        assert col == np.floor(u + 0.5) and row == np.floor(v + 0.5)
    inside = (np.floor(uv + 0.5) >= 0).all(1) & (np.floor(uv[:, 0] + 0.5) < 500)
    inside &= np.floor(uv[:, 1] + 0.5) < 400
    assert (idx >= 0).sum() == len({tuple(p) for p in np.floor(uv[inside] + 0.5).astype(int)})


def test_projection_input_errors() -> None:
    with pytest.raises(ValueError, match=r"xyz must be N x 3, got shape \(4,\)"):
        project_points(np.zeros(4), K, np.eye(4), SIZE)
    with pytest.raises(ValueError, match="K must be 3 x 3"):
        project_points(np.zeros((1, 3)), np.eye(2), np.eye(4), SIZE)
    with pytest.raises(ValueError, match=r"D must hold 4, 5 \(plumb_bob\) or 8"):
        project_points(np.ones((1, 3)), K, np.eye(4), SIZE, D=[0.1, 0.2])


def test_depth_16uc1_millimetres() -> None:
    mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    depth = depth_to_meters(mm, "16UC1")
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, [[np.nan, 1.0], [1.5, 65.535]], rtol=1e-6)
    assert valid_depth_mask(depth).tolist() == [[False, True], [True, True]]


def test_depth_32fc1_metres_invalid_values() -> None:
    m = np.array([[0.0, np.nan, np.inf, -np.inf, -1.0, 2.5]], dtype=np.float32)
    depth = depth_to_meters(m, "32FC1")
    assert np.isnan(depth[0, :5]).all() and depth[0, 5] == 2.5
    assert m[0, 5] == 2.5 and m[0, 0] == 0.0  # input untouched


def test_depth_errors_and_inverse() -> None:
    with pytest.raises(ValueError, match=r"'rgb8' is not a REP 118 depth encoding; use one of"):
        depth_to_meters(np.zeros((2, 2), np.uint8), "rgb8")
    with pytest.raises(ValueError, match=r"'16UC1' needs uint16 data, got float32"):
        depth_to_meters(np.zeros((2, 2), np.float32), "16UC1")
    d = np.array([[np.nan, 1.2344, 70.0]], dtype=np.float32)
    assert meters_to_depth(d, "16UC1").tolist() == [[0, 1234, 0]]  # 70 m does not fit
    msg = numpy_to_image(meters_to_depth(d, "32FC1"), "32FC1", is_bigendian=True)
    back = depth_msg_to_meters(msg)
    assert np.isnan(back[0, 0]) and back[0, 2] == 70.0


def test_an_empty_cloud_projects_to_an_empty_image() -> None:
    depth, mask = project_points(np.zeros((0, 3), np.float32), K, np.eye(4), (8, 10))
    assert depth.shape == (8, 10) and np.isnan(depth).all() and not mask.any()
    assert (project_point_indices(np.zeros((0, 3)), K, np.eye(4), (8, 10)) == -1).all()


@pytest.mark.parametrize("edge", ["right", "bottom"])
def test_points_on_the_last_pixel_edge_never_wrap_into_the_next_row(edge: str) -> None:
    # float32 points whose u (or v) + 0.5 rounds to within an ulp of the image width (height):
    # they belong to the last column (row) or to nothing, never to column 0 of the next row.
    h, w = 80, 100
    rng = np.random.default_rng(0)
    n = 20_000
    z = rng.uniform(1, 50, n)
    u = (
        rng.uniform(w - 0.5 - 1e-4, w - 0.5 + 1e-4, n)
        if edge == "right"
        else rng.uniform(0, w - 1, n)
    )
    v = (
        rng.uniform(h - 0.5 - 1e-4, h - 0.5 + 1e-4, n)
        if edge == "bottom"
        else rng.uniform(0, h - 1, n)
    )
    xyz = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], 1)
    _, mask = project_points(xyz.astype(np.float32), K, np.eye(4), (h, w))
    if edge == "right":
        assert mask[:, w - 1].any() and not mask[:, : w - 1].any()
    else:
        assert mask[h - 1].any() and not mask[: h - 1].any()


def test_points_at_equal_depth_in_one_pixel_go_to_the_lower_index() -> None:
    # three points on one ray at the same depth, one nearer point elsewhere: ties are decided
    # by the point index, as the synthetic generator's training images were made
    pts = np.array([[3.0, 0.0, 30.0], [1.0, 0.5, 10.0], [1.0, 0.5, 10.0], [1.0, 0.5, 10.0]])
    idx = project_point_indices(pts, K, np.eye(4), SIZE)
    assert idx[50, 60] == 1 and (idx >= 0).sum() == 2
    idx = project_point_indices(pts[[0, 3, 2, 1]], K, np.eye(4), SIZE)
    assert idx[50, 60] == 1

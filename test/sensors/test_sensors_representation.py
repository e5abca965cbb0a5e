"""Network-input images: hand-computed values for depth, LiDAR, event frames and event streams."""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.sensors import (
    depth_to_network_image,
    event_frame_to_network_image,
    events_to_representation,
    lidar_to_network_image,
    numpy_to_image,
)
from sam_moelora_ros.sensors.events import (
    _robust_count_scale,
    _robust_scale,
    event_counts,
    events_to_voxel_grid,
)

NAN = np.nan


def test_depth_image_scaling_and_invalid() -> None:
    depth = np.array([[0.0, NAN, np.inf, 40.0], [80.0, 200.0, 0.2, -1.0]], dtype=np.float32)
    img = depth_to_network_image(depth, max_range=80.0)
    assert img.shape == (2, 4, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
    # 1 + round(254 * d / 80): 40 m -> 128, 80 m -> 255, 200 m saturates, 0.2 m -> 2
    expected = np.array([[0, 0, 0, 128], [255, 255, 2, 0]], dtype=np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(img[:, :, c], expected)


def test_depth_image_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"H x W, got shape \(2, 2, 2\)"):
        depth_to_network_image(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="max_value must be > 0, got 0"):
        depth_to_network_image(np.zeros((2, 2), np.float32), max_range=0)


def test_lidar_image_without_fill_matches_depth_scaling() -> None:
    sparse = np.full((3, 3), NAN, dtype=np.float32)
    sparse[1, 1] = 40.0
    img = lidar_to_network_image(sparse, fill_radius=0)
    assert img[1, 1].tolist() == [128, 128, 128]
    assert img.sum() == 3 * 128


def test_lidar_nearest_fill_takes_depth_and_intensity_of_nearest_neighbour() -> None:
    sparse = np.full((3, 4), NAN, dtype=np.float32)
    inten = np.zeros((3, 4), dtype=np.float32)
    sparse[0, 0], inten[0, 0] = 80.0, 255.0  # far, bright
    sparse[2, 2], inten[2, 2] = 40.0, 0.0  # near, dark
    img = lidar_to_network_image(sparse, inten, max_range=80.0, fill_radius=1)
    # (1, 1) sees both points in its 3x3 window: the nearer one (40 m, intensity 0 -> 1) wins.
    assert img[1, 1].tolist() == [128, 128, 1]
    # (0, 1) only sees the far point.
    assert img[0, 1].tolist() == [255, 255, 255]
    # measured pixels are unchanged, (0, 3) sees nothing.
    assert img[0, 0].tolist() == [255, 255, 255]
    assert img[0, 3].tolist() == [0, 0, 0]


def test_lidar_shape_mismatch_is_reported() -> None:
    with pytest.raises(ValueError, match=r"intensity shape \(2, 2\) must match .* \(3, 3\)"):
        lidar_to_network_image(np.zeros((3, 3), np.float32), np.zeros((2, 2), np.float32))


def test_event_frame_image_dtypes_and_channels() -> None:
    mono = np.array([[0, 255]], dtype=np.uint8)
    assert event_frame_to_network_image(mono).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    u16 = np.array([[0, 65535]], dtype=np.uint16)
    assert event_frame_to_network_image(u16)[0, 1].tolist() == [255, 255, 255]
    f = np.array([[0.5, NAN]], dtype=np.float32)
    assert event_frame_to_network_image(f)[:, :, 0].tolist() == [[128, 0]]
    bgra = np.array([[[10, 20, 30, 255]]], dtype=np.uint8)
    assert event_frame_to_network_image(bgra, encoding="bgra8").tolist() == [[[30, 20, 10]]]


def test_event_frame_image_from_message_swaps_bgr() -> None:
    bgr = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)  # blue, red
    msg = numpy_to_image(bgr, "bgr8")
    img = event_frame_to_network_image(msg)
    assert img.tolist() == [[[0, 0, 255], [255, 0, 0]]]


def test_event_counts_hand_counted() -> None:
    x = np.array([0, 0, 1, 2, 2, 2, 5, -1])
    y = np.array([0, 0, 0, 1, 1, 1, 0, 0])
    p = np.array([1, 0, 1, 1, 1, -1, 1, 1])  # last two are outside a 2 x 3 image
    pos, neg = event_counts(x, y, p, (2, 3))
    assert pos.tolist() == [[1, 1, 0], [0, 0, 2]]
    assert neg.tolist() == [[1, 0, 0], [0, 0, 1]]


def test_event_frame_representation_hand_counted() -> None:
    x = np.array([0, 0, 0, 1, 2])
    y = np.array([0, 0, 0, 0, 1])
    t = np.arange(5)
    p = np.array([True, True, False, False, True])
    img = events_to_representation(x, y, t, p, (2, 3), kind="frame", max_count=3)
    # pixel (0,0): 2 positive, 1 negative, 3 total -> 170, 85, 255
    assert img[0, 0].tolist() == [170, 85, 255]
    assert img[0, 1].tolist() == [0, 85, 85]
    assert img[1, 2].tolist() == [85, 0, 85]
    assert img[1, 0].tolist() == [0, 0, 0]
    # robust scale: the 99th percentile of totals {3, 1, 1} is ~3, so (0,0) is full.
    auto = events_to_representation(x, y, t, p, (2, 3), kind="frame")
    assert auto[0, 0, 2] == 255


def test_voxel_grid_bilinear_in_time() -> None:
    # three events at one pixel, t = 0, 0.5, 1 over bins=3 -> tn = 0, 1, 2
    x = np.zeros(4, dtype=np.int64)
    y = np.zeros(4, dtype=np.int64)
    t = np.array([0.0, 0.5, 1.0, 0.25])
    p = np.array([1, 1, -1, 1])
    grid = events_to_voxel_grid(x, y, t, p, (1, 2), bins=3)
    # t = 0.25 -> tn = 0.5: half into bin 0, half into bin 1
    np.testing.assert_allclose(grid[:, 0, 0], [1.5, 1.5, -1.0])
    assert np.all(grid[:, 0, 1] == 0)


def test_voxel_representation_centred_at_128() -> None:
    x = np.array([0, 0, 0])
    y = np.array([0, 0, 0])
    t = np.array([0, 5, 10], dtype=np.int64)  # integer nanoseconds work too
    p = np.array([1, 1, 0])
    img = events_to_representation(x, y, t, p, (1, 2), kind="voxel", max_count=1.0)
    assert img.shape == (1, 2, 3)
    assert img[0, 0].tolist() == [255, 255, 1]
    assert img[0, 1].tolist() == [128, 128, 128]


def test_event_representation_errors() -> None:
    one = np.zeros(1)
    with pytest.raises(ValueError, match="bins must be 3, got 5"):
        events_to_representation(one, one, one, one, (2, 2), kind="voxel", bins=5)
    with pytest.raises(ValueError, match="unknown event representation kind 'histogram'"):
        events_to_representation(one, one, one, one, (2, 2), kind="histogram")
    with pytest.raises(ValueError, match="equal lengths, got x=1, y=1, t=1, p=2"):
        events_to_representation(one, one, one, np.zeros(2), (2, 2))


def test_empty_stream_gives_blank_images() -> None:
    e = np.zeros(0)
    assert events_to_representation(e, e, e, e, (2, 2)).sum() == 0
    assert np.all(events_to_representation(e, e, e, e, (2, 2), kind="voxel") == 128)


@pytest.mark.parametrize("radius", [1, 2])
def test_lidar_fill_paths_agree_on_range(radius: int) -> None:
    rng = np.random.default_rng(1)
    sparse = np.full((30, 40), NAN, dtype=np.float32)
    idx = rng.integers(0, sparse.size, 120)
    sparse.flat[idx] = rng.uniform(1, 70, idx.size)
    fast = lidar_to_network_image(sparse, fill_radius=radius)  # OpenCV min filter
    slow = lidar_to_network_image(sparse, np.zeros_like(sparse), fill_radius=radius)
    np.testing.assert_array_equal(fast[:, :, 0], slow[:, :, 0])
    np.testing.assert_array_equal(fast[:, :, 2], fast[:, :, 0])


def test_robust_count_scale_is_numpys_99th_percentile() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):  # sizes and rates where the interpolation weight varies
        n = int(rng.integers(1, 3000))
        total = rng.poisson(rng.uniform(0.05, 30.0), n).astype(np.int64)
        nonzero = total[total > 0]
        want = max(float(np.percentile(nonzero, 99)), 1.0) if nonzero.size else 1.0
        assert _robust_count_scale(total) == want, n


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0, 0, 0], 1.0), ([0, 7, 0], 7.0), ([3, 3, 3], 3.0), ([0, 1, 1], 1.0)],
)
def test_robust_count_scale_edge_cases(values: list[int], expected: float) -> None:
    assert _robust_count_scale(np.array(values)) == expected


def _frame_by_definition(x, y, p, size, scale=None) -> np.ndarray:
    """The docstring's formula, event by event (slow, obviously right)."""
    h, w = size
    pos = np.zeros(size, np.int64)
    neg = np.zeros(size, np.int64)
    for xi, yi, pi in zip(x, y, p, strict=True):
        c, r = int(np.rint(xi)), int(np.rint(yi))
        if 0 <= c < w and 0 <= r < h:
            (pos if pi > 0 else neg)[r, c] += 1
    total = pos + neg
    nz = total[total > 0]
    s = scale or (max(float(np.percentile(nz, 99)), 1.0) if nz.size else 1.0)
    return np.stack(
        [np.rint(np.minimum(c, s) * (255.0 / s)).astype(np.uint8) for c in (pos, neg, total)], -1
    )


@pytest.mark.parametrize(
    ("dtype", "scale"), [(np.uint16, None), (np.int32, None), (np.float32, None), (np.int64, 2.5)]
)
def test_event_frame_matches_its_definition(dtype, scale) -> None:
    rng = np.random.default_rng(3)
    n, size = 3000, (12, 17)
    x = rng.integers(0, 17, n).astype(dtype)
    y = rng.integers(0, 12, n).astype(dtype)
    if np.dtype(dtype).kind in "if":  # signed and float streams may hold off-image events
        x[:40] -= 30
        y[40:80] += 50
    if np.dtype(dtype).kind == "f":
        x += rng.uniform(-0.45, 0.45, n).astype(dtype)
    p = rng.integers(0, 2, n).astype(np.int8) * 2 - 1
    got = events_to_representation(x, y, np.arange(n), p, size, max_count=scale)
    np.testing.assert_array_equal(got, _frame_by_definition(x, y, p, size, scale))


def test_event_coordinates_that_do_not_fit_int32_are_dropped_not_wrapped() -> None:
    # 2**32 + 1 would wrap to column 1 in a 32-bit index
    x = np.array([1, 2**32 + 1, 2], dtype=np.uint64)
    y = np.zeros(3, dtype=np.uint64)
    p = np.ones(3, dtype=np.int8)
    pos, neg = event_counts(x, y, p, (1, 3))
    assert pos.tolist() == [[0, 1, 1]] and neg.sum() == 0


def test_nan_event_coordinates_are_dropped() -> None:
    x = np.array([0.0, np.nan, 1.0])
    y = np.array([0.0, 0.0, np.nan])
    pos, _ = event_counts(x, y, np.ones(3), (1, 2))
    assert pos.tolist() == [[1, 0]]


def test_voxel_grid_of_epoch_nanosecond_stamps_is_that_of_the_offsets() -> None:
    # ns since the epoch do not fit a float64 exactly (steps of 256 ns near 1.7e18); the
    # stream's own window is what the grid depends on, to the nanosecond.
    rng = np.random.default_rng(5)
    n = 5000
    x = rng.integers(0, 20, n)
    y = rng.integers(0, 10, n)
    offsets = np.sort(rng.integers(0, 50_000_000, n)).astype(np.int64)
    p = rng.integers(0, 2, n)
    epoch = np.int64(1_764_000_000_123_456_789)
    a = events_to_voxel_grid(x, y, offsets, p, (10, 20))
    b = events_to_voxel_grid(x, y, offsets + epoch, p, (10, 20))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [1, 2, 3, 150, 4321])
def test_robust_scale_is_numpys_99th_percentile(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(0, 3, n).astype(np.float32)
    values[rng.random(n) < 0.3] = 0
    nz = np.abs(values[values != 0])
    want = max(float(np.percentile(nz, 99)), 1.0) if nz.size else 1.0
    assert _robust_scale(values) == want

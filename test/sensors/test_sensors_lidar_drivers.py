"""PointCloud2 as LiDAR drivers publish it, packed byte by byte with ``struct``.

Layouts (the drivers' point types): Ouster (ouster-ros ``Point``, 48-byte EIGEN-aligned),
Velodyne (ROS 2 packed XYZIRT, ROS 1 PCL-aligned), Livox (livox_ros_driver2
``LivoxPointXyzrtlt``, packed 26 bytes) and Hesai (HesaiLidar_ROS_2.0, packed 26 bytes).
Organised clouds mark "no return" as (0, 0, 0) and may still claim ``is_dense``.
"""

from __future__ import annotations

import math
import struct
from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros.sensors.lidar import (
    FLOAT32,
    FLOAT64,
    UINT8,
    UINT16,
    UINT32,
    lidar_returns,
    read_points,
    read_points_numpy,
)
from sam_moelora_ros.sensors.projection import project_points


def field(name: str, offset: int, datatype: int) -> SimpleNamespace:
    return SimpleNamespace(name=name, offset=offset, datatype=datatype, count=1)


OUSTER = (
    [
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
        field("z", 8, FLOAT32),
        field("intensity", 16, FLOAT32),
        field("t", 20, UINT32),
        field("reflectivity", 24, UINT16),
        field("ring", 26, UINT8),
        field("ambient", 28, UINT16),
        field("range", 32, UINT32),
    ],
    "fff4xfIHBxH2xI12x",
)
VELODYNE_ROS2 = (
    [
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
        field("z", 8, FLOAT32),
        field("intensity", 12, FLOAT32),
        field("ring", 16, UINT16),
        field("time", 18, FLOAT32),
    ],
    "ffffHf",
)
VELODYNE_PCL = (
    [
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
        field("z", 8, FLOAT32),
        field("intensity", 16, FLOAT32),
        field("ring", 20, UINT16),
        field("time", 24, FLOAT32),
    ],
    "fff4xfH2xf4x",
)
LIVOX = (
    [
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
        field("z", 8, FLOAT32),
        field("intensity", 12, FLOAT32),
        field("tag", 16, UINT8),
        field("line", 17, UINT8),
        field("timestamp", 18, FLOAT64),
    ],
    "ffffBBd",
)
HESAI = (
    [
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
        field("z", 8, FLOAT32),
        field("intensity", 12, FLOAT32),
        field("ring", 16, UINT16),
        field("timestamp", 18, FLOAT64),
    ],
    "ffffHd",
)
LAYOUTS = {
    "ouster": OUSTER,
    "velodyne_ros2": VELODYNE_ROS2,
    "velodyne_pcl": VELODYNE_PCL,
    "livox": LIVOX,
    "hesai": HESAI,
}
SIZES = {"ouster": 48, "velodyne_ros2": 22, "velodyne_pcl": 32, "livox": 26, "hesai": 26}


def point_values(layout: str, i: int, xyz: tuple[float, float, float]) -> tuple:
    extra = {
        "ouster": (float(i), 1000 * i, i % 65536, i % 128, 7 * i % 65536, 1000 + i),
        "velodyne_ros2": (float(i), i % 32, i * 1e-5),
        "velodyne_pcl": (float(i), i % 32, i * 1e-5),
        "livox": (float(i), i % 4, i % 6, 1.7e9 + i * 1e-6),
        "hesai": (float(i), i % 64, 1.7e9 + i * 1e-6),
    }[layout]
    return (*xyz, *extra)


def build_cloud(layout: str, big: bool, height: int, width: int, row_pad: int):
    fields, fmt = LAYOUTS[layout]
    fmt = (">" if big else "<") + fmt
    step = struct.calcsize(fmt)
    assert step == SIZES[layout]
    rng = np.random.default_rng(1)
    rows, expected = [], []
    for r in range(height):
        row = b""
        for c in range(width):
            i = r * width + c
            xyz = tuple(float(v) for v in np.float32(rng.uniform(-30, 30, 3)))
            if i % 5 == 1:
                xyz = (0.0, 0.0, 0.0)  # no return
            elif i % 7 == 3:
                xyz = (math.nan, math.nan, math.nan)
            elif i % 11 == 4:
                xyz = (xyz[0], math.inf, xyz[2])
            values = point_values(layout, i, xyz)
            row += struct.pack(fmt, *values)
            expected.append(values)
        rows.append(row + b"\xaa" * row_pad)  # junk row padding must be skipped
    cloud = SimpleNamespace(
        height=height,
        width=width,
        fields=fields,
        is_bigendian=big,
        point_step=step,
        row_step=width * step + row_pad,
        data=b"".join(rows),
        is_dense=True,
    )
    return cloud, expected


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_driver_layouts_read_field_by_field(layout: str, big: bool) -> None:
    cloud, expected = build_cloud(layout, big, height=4, width=8, row_pad=6)
    points = read_points(cloud)
    assert points.shape == (4, 8)
    names = [f.name for f in LAYOUTS[layout][0]]
    flat = points.reshape(-1)
    for j, name in enumerate(names):
        want = np.array([e[j] for e in expected], dtype=flat.dtype[name])
        np.testing.assert_array_equal(flat[name], want)


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_lidar_returns_drop_no_return_and_non_finite_despite_is_dense(
    layout: str, big: bool
) -> None:
    cloud, expected = build_cloud(layout, big, height=3, width=10, row_pad=2)
    assert cloud.is_dense  # the driver claims it, but the cloud holds NaN, Inf and zeros
    xyz, index = lidar_returns(cloud)
    want = [
        i
        for i, e in enumerate(expected)
        if all(math.isfinite(v) for v in e[:3]) and e[:3] != (0.0, 0.0, 0.0)
    ]
    assert index.tolist() == want and xyz.dtype == np.float32
    np.testing.assert_array_equal(xyz, np.array([expected[i][:3] for i in want], np.float32))
    # sensor_msgs_py semantics stay: skip_nans trusts is_dense
    assert read_points_numpy(cloud, ["x", "y", "z"], skip_nans=True).shape == (30, 3)


def test_ouster_mixed_fields_in_one_call() -> None:
    cloud, expected = build_cloud("ouster", False, height=2, width=6, row_pad=0)
    got, index = lidar_returns(cloud, ("x", "y", "z", "intensity", "ring", "range"))
    ring = np.array([expected[i][6] for i in index], np.float32)
    np.testing.assert_array_equal(got[:, 4], ring)
    np.testing.assert_array_equal(got[:, 5], np.array([expected[i][8] for i in index], np.float32))
    with pytest.raises(ValueError, match="pass dtype="):
        read_points_numpy(cloud, ["x", "ring"])
    mixed = read_points_numpy(cloud, ["x", "ring", "t"], dtype=np.float64)
    assert mixed.dtype == np.float64 and mixed[:, 2].tolist() == [1000.0 * i for i in range(12)]
    with pytest.raises(ValueError, match=r"no field\(s\) \['rgb'\]"):
        lidar_returns(cloud, ("x", "y", "z", "rgb"))


def test_no_return_point_never_reaches_the_image() -> None:
    # The LiDAR sits 1 m behind the camera, so its origin (0, 0, 0) would land mid-image.
    k = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    t = np.eye(4)
    t[2, 3] = 1.0
    xyz = np.array([[0, 0, 0], [0.5, 0.0, 4.0]], dtype=np.float32)
    depth, mask = project_points(xyz, k, t, (48, 64))
    assert mask.sum() == 1 and depth[24, 42] == pytest.approx(5.0)

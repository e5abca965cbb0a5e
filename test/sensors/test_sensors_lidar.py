"""PointCloud2 codec against sensor_msgs_py ``point_cloud2``'s documented behaviour.

Clouds are packed by hand with ``struct`` (explicit byte order, padding inside points and at
row ends), so reading is checked against the message layout, not against ``create_cloud``.
"""

from __future__ import annotations

import math
import struct
from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros.sensors import (
    FLOAT32,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    UINT8,
    UINT16,
    UINT32,
    create_cloud,
    make_fields,
    read_points,
    read_points_numpy,
)


def field(name: str, offset: int, datatype: int, count: int = 1) -> SimpleNamespace:
    return SimpleNamespace(name=name, offset=offset, datatype=datatype, count=count)


# One field of every datatype, with padding between fields and at the end of the point.
ALL_TYPES = [
    field("i8", 0, INT8),
    field("u8", 1, UINT8),
    field("i16", 2, INT16),
    field("u16", 4, UINT16),
    field("i32", 8, INT32),
    field("u32", 12, UINT32),
    field("f32", 16, FLOAT32),
    field("f64", 24, FLOAT64),
]
ALL_FORMAT = "bBhH2xiIf4xd8x"  # 40 bytes, offsets as above
POINTS = [
    (-128, 255, -32768, 65535, -(2**31), 2**32 - 1, 1.5, -2.25),
    (1, 2, 3, 4, 5, 6, -0.5, 1e300),
    (-1, 0, -2, 9, -3, 7, float("nan"), 3.0),
]


def packed_cloud(
    big: bool, height: int = 1, row_pad: int = 0, is_dense: bool = False
) -> SimpleNamespace:
    fmt = (">" if big else "<") + ALL_FORMAT
    point_step = struct.calcsize(fmt)
    width = len(POINTS) // height
    rows = []
    for r in range(height):
        row = b"".join(struct.pack(fmt, *p) for p in POINTS[r * width : (r + 1) * width])
        rows.append(row + b"\x55" * row_pad)
    return SimpleNamespace(
        height=height,
        width=width,
        fields=ALL_TYPES,
        is_bigendian=big,
        point_step=point_step,
        row_step=point_step * width + row_pad,
        data=b"".join(rows),
        is_dense=is_dense,
    )


def assert_points_equal(points: np.ndarray, expected: list[tuple]) -> None:
    names = [f.name for f in ALL_TYPES]
    for got, want in zip(points.reshape(-1).tolist(), expected, strict=True):
        for name, g, w in zip(names, got, want, strict=True):
            assert (math.isnan(g) and math.isnan(w)) or g == w, (name, g, w)


@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_all_eight_datatypes_at_their_offsets(big: bool) -> None:
    points = read_points(packed_cloud(big))
    assert points.shape == (3,)
    assert points.dtype.itemsize == 40 and points.dtype.isnative
    assert [points.dtype[n].isnative for n in points.dtype.names] == [True] * 8
    assert points.dtype["f64"] == np.float64 and points.dtype["u16"] == np.uint16
    assert_points_equal(points, POINTS)


@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_organised_cloud_is_h_by_w_with_row_padding(big: bool) -> None:
    points_list = POINTS * 2  # 6 points as 2 rows x 3 columns
    fmt = (">" if big else "<") + ALL_FORMAT
    data = b"".join(
        b"".join(struct.pack(fmt, *p) for p in points_list[r * 3 : r * 3 + 3]) + b"\0" * 8
        for r in range(2)
    )
    cloud = SimpleNamespace(
        height=2, width=3, fields=ALL_TYPES, is_bigendian=big, point_step=40,
        row_step=128, data=data, is_dense=False,
    )  # fmt: skip
    points = read_points(cloud)
    assert points.shape == (2, 3)  # (H, W), not sensor_msgs_py's (W, H)
    assert points[1, 0]["i32"] == POINTS[0][4]
    assert points[0, 2]["u8"] == POINTS[2][1]
    assert read_points(cloud, reshape_organized=False).shape == (6,)


def test_native_unpadded_cloud_is_read_without_copy() -> None:
    cloud = packed_cloud(big=False)
    cloud.data = np.frombuffer(cloud.data, np.uint8).copy()
    assert np.shares_memory(read_points(cloud), cloud.data)


def test_count_greater_than_one_is_expanded() -> None:
    fields = [field("xyz", 0, FLOAT32, 3), field("rgb", 12, UINT8, 3), field("gone", 15, INT8, 0)]
    data = struct.pack("<3f3B", 1.0, 2.0, 3.0, 10, 20, 30) + b"\0"
    cloud = SimpleNamespace(
        height=1, width=1, fields=fields, is_bigendian=False, point_step=16, row_step=16,
        data=data, is_dense=True,
    )  # fmt: skip
    points = read_points(cloud)
    assert points.dtype.names == ("xyz_0", "xyz_1", "xyz_2", "rgb_0", "rgb_1", "rgb_2")
    assert points[0].tolist() == (1.0, 2.0, 3.0, 10, 20, 30)
    np.testing.assert_array_equal(read_points_numpy(cloud, ["rgb_2", "rgb_0"]), [[30, 10]])


def test_field_selection_and_skip_nans() -> None:
    cloud = packed_cloud(big=False)
    sel = read_points(cloud, field_names=["f32", "u8"])
    assert sel.dtype.names == ("f32", "u8")
    kept = read_points(cloud, field_names=["f32"], skip_nans=True)
    assert kept["f32"].tolist() == [1.5, -0.5]
    assert read_points(cloud, field_names=["u8"], skip_nans=True).shape == (3,)  # no float field
    # is_dense clouds are trusted, as in sensor_msgs_py
    assert read_points(packed_cloud(False, is_dense=True), skip_nans=True).shape == (3,)


def test_skip_nans_flattens_an_organised_cloud() -> None:
    cloud = create_cloud(
        None, make_fields([("x", FLOAT32)]), np.array([[(1.0,), (np.nan,)], [(2.0,), (3.0,)]],
        dtype=[("x", "f4")]),
    )  # fmt: skip
    assert cloud.height == 2 and cloud.width == 2 and cloud.is_dense is False
    assert read_points(cloud, skip_nans=True)["x"].tolist() == [1.0, 2.0, 3.0]


def test_layout_errors_name_field_and_numbers() -> None:
    cloud = packed_cloud(big=False)
    with pytest.raises(ValueError, match=r"no field\(s\) \['z'\]; its fields are \['i8'"):
        read_points(cloud, field_names=["z"])
    bad = SimpleNamespace(**{**vars(cloud), "fields": [field("w", 0, 9)]})
    with pytest.raises(ValueError, match=r"PointField 'w' has datatype 9"):
        read_points(bad)
    bad = SimpleNamespace(**{**vars(cloud), "fields": [field("far", 36, FLOAT64)]})
    with pytest.raises(ValueError, match=r"'far' \(offset 36, count 1\) ends at byte 44, beyond "):
        read_points(bad)
    bad = SimpleNamespace(**{**vars(cloud), "data": cloud.data[:-1]})
    with pytest.raises(ValueError, match=r"data holds 119 bytes but height 1 x row_step 120"):
        read_points(bad)
    bad = SimpleNamespace(**{**vars(cloud), "row_step": 100})
    with pytest.raises(ValueError, match=r"row_step 100 is smaller than width 3 x point_step 40"):
        read_points(bad)


def test_make_fields_packs_offsets() -> None:
    spec = [("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32), ("intensity", FLOAT32)]
    fields = make_fields([*spec, ("ring", UINT16), ("t", FLOAT64, 2)])
    assert [(f.name, f.offset, f.datatype, f.count) for f in fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("intensity", 12, 7, 1),
        ("ring", 16, 4, 1), ("t", 18, 8, 2),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="field 'q': datatype 0"):
        make_fields([("q", 0)])


@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_create_cloud_matches_hand_packed_bytes(big: bool) -> None:
    cloud = create_cloud(None, ALL_TYPES, POINTS, point_step=40, is_bigendian=big)
    hand = packed_cloud(big)
    assert (cloud.point_step, cloud.row_step, cloud.height, cloud.width) == (40, 120, 1, 3)
    assert cloud.is_bigendian is big and cloud.is_dense is False
    ours = np.frombuffer(cloud.data.tobytes(), np.uint8).reshape(3, 40)
    theirs = np.frombuffer(hand.data, np.uint8).reshape(3, 40)
    np.testing.assert_array_equal(ours, theirs)  # struct pads with zeros, so do we
    assert_points_equal(read_points(cloud), POINTS)


def test_create_cloud_from_arrays() -> None:
    fields = make_fields([("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32), ("ring", UINT16)])
    structured = np.zeros(4, dtype=[("ring", "u2"), ("z", "f8"), ("x", "f4"), ("y", "f4")])
    structured["x"] = [1, 2, 3, 4]
    structured["ring"] = [7, 7, 8, 8]
    cloud = create_cloud(None, fields, structured)
    assert cloud.point_step == 14 and cloud.is_dense is True
    pts = read_points(cloud)
    assert pts["x"].tolist() == [1, 2, 3, 4] and pts["ring"].tolist() == [7, 7, 8, 8]
    xyz = np.arange(12, dtype=np.float32).reshape(4, 3)
    cloud = create_cloud(None, make_fields([("x", 7), ("y", 7), ("z", 7)]), xyz)
    np.testing.assert_array_equal(read_points_numpy(cloud), xyz)
    with pytest.raises(ValueError, match=r"points lack field\(s\) \['y', 'z'\]"):
        create_cloud(None, fields, np.zeros(2, dtype=[("x", "f4"), ("ring", "u2")]))
    with pytest.raises(ValueError, match="plain points array has 2 columns, fields describe 4"):
        create_cloud(None, fields, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="read_points_numpy needs fields of one dtype"):
        read_points_numpy(create_cloud(None, fields, structured))

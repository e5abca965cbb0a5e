"""One code path: the codecs build and read real rclpy and rosbags messages, through CDR.

rclpy messages are serialised with ``rclpy.serialization`` and read back by rosbags (and the
other way round), which is exactly what happens between a robot and a bag.
"""

from __future__ import annotations

import array
from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros.sensors import (
    FLOAT32,
    UINT16,
    create_cloud,
    image_to_numpy,
    make_fields,
    numpy_to_image,
    read_points,
)

rclpy_serialization = pytest.importorskip("rclpy.serialization")
sensor_msgs = pytest.importorskip("sensor_msgs.msg")
std_msgs = pytest.importorskip("std_msgs.msg")
typesys = pytest.importorskip("rosbags.typesys")

TS = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
RB_IMAGE = TS.types["sensor_msgs/msg/Image"]
RB_CLOUD = TS.types["sensor_msgs/msg/PointCloud2"]
RB_FIELD = TS.types["sensor_msgs/msg/PointField"]
SPEC = [("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32), ("intensity", FLOAT32), ("ring", UINT16)]

IMAGES = [
    ("rgb8", np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)),
    ("16UC1", (np.arange(24, dtype=np.uint16) * 2731).reshape(4, 6)),
    ("32FC1", np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)),
    ("yuv422", np.arange(4 * 6 * 2, dtype=np.uint8).reshape(4, 6, 2)),
]


def cloud_points() -> np.ndarray:
    pts = np.zeros((2, 3), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4"),
                                  ("ring", "u2")])  # fmt: skip
    pts["x"] = np.arange(6).reshape(2, 3)
    pts["ring"] = [[0, 0, 0], [1, 1, 1]]
    pts["z"][1, 2] = np.nan
    return pts


def rclpy_header() -> object:
    h = std_msgs.Header()
    h.stamp.sec, h.stamp.nanosec, h.frame_id = 12, 345, "cam"
    return h


@pytest.mark.parametrize(("encoding", "arr"), IMAGES, ids=[i[0] for i in IMAGES])
@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_image_through_rclpy_cdr_and_rosbags(encoding: str, arr: np.ndarray, big: bool) -> None:
    msg = numpy_to_image(arr, encoding, sensor_msgs.Image, rclpy_header(), is_bigendian=big)
    assert isinstance(msg, sensor_msgs.Image) and isinstance(msg.data, array.array)
    assert msg.header.frame_id == "cam"
    np.testing.assert_array_equal(image_to_numpy(msg, raw=True), arr)
    raw = rclpy_serialization.serialize_message(msg)
    back = rclpy_serialization.deserialize_message(raw, sensor_msgs.Image)
    np.testing.assert_array_equal(image_to_numpy(back, raw=True), arr)
    rb = TS.deserialize_cdr(raw, "sensor_msgs/msg/Image")
    assert rb.header.stamp.sec == 12 and rb.header.stamp.nanosec == 345
    np.testing.assert_array_equal(image_to_numpy(rb, raw=True), arr)


@pytest.mark.parametrize("typestore", [None, TS], ids=["derived", "given"])
def test_image_as_rosbags_message_and_back_to_rclpy(typestore: object) -> None:
    arr = IMAGES[0][1]
    msg = numpy_to_image(arr, "rgb8", RB_IMAGE, typestore=typestore)
    assert isinstance(msg, RB_IMAGE) and isinstance(msg.data, np.ndarray)
    assert msg.data.dtype == np.uint8 and msg.header.frame_id == ""
    raw = TS.serialize_cdr(msg, "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(
        image_to_numpy(TS.deserialize_cdr(raw, "sensor_msgs/msg/Image")), arr
    )
    rcl = rclpy_serialization.deserialize_message(bytes(raw), sensor_msgs.Image)
    np.testing.assert_array_equal(image_to_numpy(rcl), arr)
    # a header of another flavour is converted, not rejected
    msg = numpy_to_image(arr, "rgb8", RB_IMAGE, rclpy_header())
    assert msg.header.frame_id == "cam" and msg.header.stamp.nanosec == 345
    msg = numpy_to_image(arr, "rgb8", sensor_msgs.Image, msg.header)
    assert msg.header.stamp.sec == 12


def test_plain_message_does_not_alias_the_input() -> None:
    arr = np.zeros((2, 2), np.uint8)
    msg = numpy_to_image(arr, "mono8", header=SimpleNamespace(frame_id="x"))
    arr[0, 0] = 9
    assert image_to_numpy(msg)[0, 0] == 0 and msg.header.frame_id == "x"


def test_cloud_through_rclpy_cdr_and_rosbags() -> None:
    fields = make_fields(SPEC, sensor_msgs.PointCloud2)
    assert all(isinstance(f, sensor_msgs.PointField) for f in fields)
    pts = cloud_points()
    msg = create_cloud(rclpy_header(), fields, pts, sensor_msgs.PointCloud2)
    assert (msg.height, msg.width, msg.point_step, msg.is_dense) == (2, 3, 18, False)
    raw = rclpy_serialization.serialize_message(msg)
    for back in (
        rclpy_serialization.deserialize_message(raw, sensor_msgs.PointCloud2),
        TS.deserialize_cdr(raw, "sensor_msgs/msg/PointCloud2"),
    ):
        got = read_points(back)
        assert got.shape == (2, 3)
        np.testing.assert_array_equal(got["x"], pts["x"])
        np.testing.assert_array_equal(got["ring"], pts["ring"])
        assert np.isnan(got["z"][1, 2])
        assert read_points(back, skip_nans=True).shape == (5,)


@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_cloud_as_rosbags_message(big: bool) -> None:
    fields = make_fields(SPEC, RB_FIELD)
    assert all(isinstance(f, RB_FIELD) for f in fields)
    assert all(isinstance(f, RB_FIELD) for f in make_fields(SPEC, RB_CLOUD))
    pts = cloud_points().reshape(-1)
    plain_fields = make_fields(SPEC)  # converted to the rosbags PointField by create_cloud
    msg = create_cloud(None, plain_fields, pts, RB_CLOUD, is_bigendian=big)
    assert isinstance(msg, RB_CLOUD) and msg.is_bigendian is big
    raw = TS.serialize_cdr(msg, "sensor_msgs/msg/PointCloud2")
    rcl = rclpy_serialization.deserialize_message(bytes(raw), sensor_msgs.PointCloud2)
    np.testing.assert_array_equal(read_points(rcl)["intensity"], pts["intensity"])
    np.testing.assert_array_equal(
        read_points(TS.deserialize_cdr(raw, "sensor_msgs/msg/PointCloud2"))["x"], pts["x"]
    )


def test_event_cloud_to_representation() -> None:
    from sam_moelora_ros.sensors import events_from_cloud, events_to_representation

    fields = make_fields([("x", UINT16), ("y", UINT16), ("t", 8), ("polarity", 1)])
    pts = [(0, 0, 0.0, 1), (0, 0, 0.1, 1), (1, 1, 0.2, -1)]
    cloud = create_cloud(None, fields, pts, sensor_msgs.PointCloud2)
    x, y, t, p = events_from_cloud(cloud)
    img = events_to_representation(x, y, t, p, (2, 2), max_count=2)
    assert img[0, 0].tolist() == [255, 0, 255] and img[1, 1].tolist() == [0, 128, 128]
    with pytest.raises(ValueError, match=r"no field for 'p' \(tried \['polarity', 'p', 'pol'\]\)"):
        events_from_cloud(create_cloud(None, fields[:3], [(0, 0, 0.0)]))

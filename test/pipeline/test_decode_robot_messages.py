"""The node's decoders on messages as real drivers publish them (rosbags CDR round trips).

CompressedImage through image_transport's ``compressed`` / ``compressedDepth`` formats, CameraInfo
with each distortion model, and Ouster-style organised clouds with no-return points: each is
compared with the same content arriving the plain way (Image, xyz cloud), so the result is
what the node already did, not a number written into the test.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from sam_moelora_ros.pipeline.decode import (
    BadMessage,
    decode_camera_info,
    decode_depth,
    decode_event_image,
    decode_lidar,
    decode_rgb,
)
from sam_moelora_ros.sensors.compressed import encode_compressed_depth, encode_compressed_image
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.lidar import FLOAT32, create_cloud, make_fields
from sam_moelora_ros.sensors.messages import plain_header

TS = get_typestore(Stores.ROS2_HUMBLE)
COMPRESSED = TS.types["sensor_msgs/msg/CompressedImage"]
CLOUD = TS.types["sensor_msgs/msg/PointCloud2"]
HDR = plain_header(7, 0, "camera_color_optical_frame")
H, W = 48, 64


def cdr(msg: Any) -> Any:
    """The message as a bag or DDS delivers it: serialised, then read back."""
    name = msg.__msgtype__
    return TS.deserialize_cdr(TS.serialize_cdr(msg, name), name)


def picture() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([xx * 4, yy * 5, 255 - xx * 4], axis=-1).astype(np.uint8)


def depth_mm() -> np.ndarray:
    rng = np.random.default_rng(4)
    depth = rng.integers(300, 9000, (H, W)).astype(np.uint16)
    depth[:4, :4] = 0  # holes
    return depth


def test_jpeg_colour_is_rgb_like_the_raw_image() -> None:
    rgb = picture()
    raw = decode_rgb(numpy_to_image(rgb, "rgb8", header=HDR), (H, W)).image
    msg = cdr(encode_compressed_image(rgb, "rgb8", "jpeg", header=HDR, msg_type=COMPRESSED))
    assert msg.format == "rgb8; jpeg compressed bgr8"
    decoded = decode_rgb(msg, (H, W))
    assert decoded.image.shape == (H, W, 3) and decoded.header.frame_id == HDR.frame_id
    assert np.abs(decoded.image.astype(int) - raw.astype(int)).mean() < 3.0  # JPEG, not swapped
    png = cdr(encode_compressed_image(rgb, "bgr8", "png", header=HDR, msg_type=COMPRESSED))
    np.testing.assert_array_equal(decode_rgb(png).image, rgb[:, :, ::-1])  # bgr8 picture: R<->B


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_compressed_depth_equals_the_raw_16uc1_image(codec: str) -> None:
    mm = depth_mm()
    raw = decode_depth(numpy_to_image(mm, "16UC1", header=HDR)).image
    msg = cdr(encode_compressed_depth(mm, "16UC1", codec, header=HDR, msg_type=COMPRESSED))
    assert msg.format == f"16UC1; compressedDepth {codec}"
    np.testing.assert_array_equal(decode_depth(msg, (H, W)).image, raw)


def test_32fc1_compressed_depth_and_plain_16_bit_png() -> None:
    metres = (depth_mm().astype(np.float32) / 1000.0).astype(np.float32)
    metres[metres == 0] = np.nan
    raw = decode_depth(numpy_to_image(metres, "32FC1", header=HDR)).image
    msg = cdr(encode_compressed_depth(metres, "32FC1", "png", header=HDR, msg_type=COMPRESSED))
    inverse = decode_depth(msg).image  # quantised inverse depth: within a grey level
    assert np.abs(inverse.astype(int) - raw.astype(int)).max() <= 1
    ok, buf = cv2.imencode(".png", depth_mm())
    assert ok
    png = cdr(COMPRESSED(header=TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=7, nanosec=0), frame_id="d"),
        format="16UC1; png compressed 16UC1", data=buf.reshape(-1)))  # fmt: skip
    expected = decode_depth(numpy_to_image(depth_mm(), "16UC1", header=HDR)).image
    np.testing.assert_array_equal(decode_depth(png).image, expected)


def test_wrong_stream_on_a_topic_is_a_clear_rejection() -> None:
    depth = cdr(encode_compressed_depth(depth_mm(), header=HDR, msg_type=COMPRESSED))
    with pytest.raises(BadMessage, match="compressedDepth depth image; remap the rgb topic"):
        decode_rgb(depth)
    colour = cdr(encode_compressed_image(picture(), "rgb8", "jpeg", msg_type=COMPRESSED))
    with pytest.raises(BadMessage, match="decodes to 'rgb8'.*colour image on the depth topic"):
        decode_depth(colour)
    broken = cdr(COMPRESSED(header=colour.header, format="jpeg", data=colour.data[:40]))
    with pytest.raises(BadMessage, match="rgb image: .*cut off"):
        decode_rgb(broken)


def test_compressed_event_frame() -> None:
    frame = np.zeros((H, W, 3), np.uint8)
    frame[10:20, 5:9, 0] = 255
    msg = cdr(encode_compressed_image(frame, "rgb8", "png", header=HDR, msg_type=COMPRESSED))
    np.testing.assert_array_equal(decode_event_image(msg).image, frame)


def camera_info(model: str, d: list[float], f: float = 50.0) -> Any:
    k = [f, 0.0, W / 2 - 0.5, 0.0, f, H / 2 - 0.5, 0.0, 0.0, 1.0]
    info = TS.types["sensor_msgs/msg/CameraInfo"](
        header=TS.types["std_msgs/msg/Header"](
            stamp=TS.types["builtin_interfaces/msg/Time"](sec=7, nanosec=0), frame_id="cam"
        ),
        height=H, width=W, distortion_model=model, d=np.array(d, np.float64),
        k=np.array(k), r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=TS.types["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False),
    )  # fmt: skip
    return cdr(info)


def xyz_cloud(points: np.ndarray, intensity: np.ndarray | None = None) -> Any:
    spec = [("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32)]
    cols = [points.astype(np.float32)]
    if intensity is not None:
        spec.append(("intensity", FLOAT32))
        cols.append(intensity.astype(np.float32)[:, None])
    return create_cloud(HDR, make_fields(spec), np.concatenate(cols, axis=1))


@pytest.mark.parametrize(
    ("model", "d"),
    [
        ("equidistant", [0.1, -0.05, 0.01, -0.002]),
        ("rational_polynomial", [0.4, -0.1, 0.001, 0.002, 0.01, 0.1, -0.02, 0.005]),
        ("plumb_bob", [-0.3, 0.05, 0.001, -0.001, 0.0]),
    ],
)
def test_lidar_is_projected_with_the_camera_model(model: str, d: list[float]) -> None:
    camera = decode_camera_info(camera_info(model, d, f=20.0))
    assert camera.distortion_model == model and camera.D is not None
    point = np.array([[3.0, -1.6, 4.0]])
    image = decode_lidar(xyz_cloud(point), camera, np.eye(4)).image
    pinhole = np.floor(camera.K[:2, :2] @ (point[0, :2] / point[0, 2]) + camera.K[:2, 2] + 0.5)
    if model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(
            point[None], np.zeros(3), np.zeros(3), camera.K, np.array(d)
        )
    else:
        uv, _ = cv2.projectPoints(point, np.zeros(3), np.zeros(3), camera.K, np.array(d))
    col, row = np.floor(uv.reshape(2) + 0.5).astype(int)
    assert np.abs(np.array([col, row]) - pinhole).max() >= 2  # the model moves the point
    assert (image[row - 1 : row + 2, col - 1 : col + 2, 0] > 0).all()  # its 3x3 fill, centred
    assert (image[:, :, 0] > 0).sum() == 9


def test_unknown_camera_model_is_an_error_not_a_fallback() -> None:
    with pytest.raises(BadMessage, match="camera_info: distortion_model 'fisheye624' is not sup"):
        decode_camera_info(camera_info("fisheye624", [0.1] * 12))
    with pytest.raises(BadMessage, match="'equidistant' takes 4 coefficients, d holds 5"):
        decode_camera_info(camera_info("equidistant", [0.1] * 5))


def ouster_like(points: np.ndarray, intensity: np.ndarray, *, big: bool, pad: int) -> Any:
    """An organised 2 x N cloud: row 0 the returns, row 1 no-return (0, 0, 0) and NaN points,
    ``is_dense`` true as the drivers claim, ring/uint16 between, rows padded by ``pad`` bytes."""
    n = points.shape[0]
    dtype = np.dtype(
        {"names": ["x", "y", "z", "intensity", "ring"],
         "formats": [">f4" if big else "<f4"] * 4 + [">u2" if big else "<u2"],
         "offsets": [0, 4, 8, 16, 26], "itemsize": 48}
    )  # fmt: skip
    grid = np.zeros((2, n), dtype)
    grid["x"][0], grid["y"][0], grid["z"][0] = points.T
    grid["intensity"][0] = intensity
    grid["x"][1, ::2] = np.nan
    data = np.zeros((2, n * 48 + pad), np.uint8)
    data[:, : n * 48] = grid.view(np.uint8).reshape(2, -1)
    fields = [
        TS.types["sensor_msgs/msg/PointField"](name=k, offset=o, datatype=t, count=1)
        for k, o, t in [
            ("x", 0, 7),
            ("y", 4, 7),
            ("z", 8, 7),
            ("intensity", 16, 7),
            ("ring", 26, 4),
        ]
    ]
    return cdr(CLOUD(header=TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=7, nanosec=0), frame_id="os_lidar"),
        height=2, width=n, fields=fields, is_bigendian=big, point_step=48,
        row_step=n * 48 + pad, data=data.reshape(-1), is_dense=True))  # fmt: skip


@pytest.mark.parametrize("big", [False, True])
def test_organised_driver_cloud_equals_its_returns_alone(big: bool) -> None:
    rng = np.random.default_rng(1)
    n = 200
    points = np.stack([rng.uniform(-3, 3, n), rng.uniform(-2, 2, n), rng.uniform(2, 30, n)], axis=1)
    intensity = rng.uniform(0, 300, n)
    camera = decode_camera_info(camera_info("plumb_bob", [0.0] * 5))
    clean = decode_lidar(xyz_cloud(points, intensity), camera, np.eye(4)).image
    driver = decode_lidar(ouster_like(points, intensity, big=big, pad=16), camera, np.eye(4))
    np.testing.assert_array_equal(driver.image, clean)  # (0, 0, 0) and NaN never projected
    assert (clean[:, :, 2] != clean[:, :, 0]).any()  # channel 2 is the intensity
    assert (clean[:, :, 2] == 255).any()  # intensities above 255 saturate


def test_cloud_without_intensity_repeats_the_range_and_empty_returns_are_rejected() -> None:
    camera = decode_camera_info(camera_info("plumb_bob", [0.0] * 5))
    image = decode_lidar(xyz_cloud(np.array([[0.0, 0.0, 5.0]])), camera, np.eye(4)).image
    np.testing.assert_array_equal(image[:, :, 2], image[:, :, 0])
    nothing = ouster_like(np.zeros((4, 3)), np.zeros(4), big=False, pad=0)
    with pytest.raises(BadMessage, match="no finite point that is a return"):
        decode_lidar(nothing, camera, np.eye(4))

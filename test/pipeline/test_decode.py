"""Message decoding/encoding of the node on plain (field-only) messages: no rclpy, no DDS."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros.pipeline.decode import (
    BadMessage,
    decode_camera_info,
    decode_depth,
    decode_event_cloud,
    decode_event_image,
    decode_lidar,
    decode_rgb,
    stamp_seconds,
    to_rgb8,
)
from sam_moelora_ros.pipeline.outputs import colorize, encode_outputs
from sam_moelora_ros.sensors.image import image_to_numpy, numpy_to_image
from sam_moelora_ros.sensors.lidar import create_cloud, make_fields
from sam_moelora_ros.sensors.messages import plain_header

HDR = plain_header(12, 500_000_000, "camera")


def image(array: np.ndarray, encoding: str) -> SimpleNamespace:
    return numpy_to_image(array, encoding, header=HDR)


def camera(h: int = 48, w: int = 64, fx: float = 40.0) -> SimpleNamespace:
    return SimpleNamespace(
        height=h,
        width=w,
        k=[fx, 0.0, w / 2, 0.0, fx, h / 2, 0.0, 0.0, 1.0],
        d=[0.0] * 5,
        distortion_model="plumb_bob",
        header=HDR,
    )


def test_stamp_seconds() -> None:
    assert stamp_seconds(HDR) == pytest.approx(12.5)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_rgb_channel_orders_become_rgb(encoding: str) -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    alpha = np.full((4, 6, 1), 255, np.uint8)
    source = {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[..., ::-1], alpha], axis=2),
    }[encoding]
    decoded = decode_rgb(image(np.ascontiguousarray(source), encoding))
    assert decoded.image.shape == (4, 6, 3)
    assert decoded.image[0, 0].tolist() == [200, 0, 0]
    assert decoded.header is HDR


def test_mono_and_16_bit() -> None:
    assert to_rgb8(np.full((2, 2), 7, np.uint8), "mono8").shape == (2, 2, 3)
    # 16 -> 8 bit rounds v * 255 / 65535 (the dataset readers' rule): 0xFF00 = 254.007 -> 254
    # (a shift gave 255), 129 = 0.502 -> 1 (shift and floor gave 0), 65535 -> 255.
    values = np.array([[0xFF00, 129, 65535]], np.uint16)
    wide = to_rgb8(np.repeat(values[:, :, None], 3, axis=2), "rgb16")
    assert wide.dtype == np.uint8 and wide[0, :, 0].tolist() == [254, 1, 255]
    with pytest.raises(BadMessage, match="not a colour/mono encoding"):
        to_rgb8(np.zeros((2, 2), np.float32), "32FC1")
    with pytest.raises(BadMessage, match="not a colour/mono encoding"):
        to_rgb8(np.zeros((2, 2), np.uint8), "nv12")  # the codec does not convert nv12
    with pytest.raises(BadMessage, match="float32 is not 8 or 16 bit"):
        to_rgb8(np.zeros((2, 2, 3), np.float32), "8UC3")


@pytest.mark.parametrize("encoding", ["yuv422", "yuyv", "nv21", "bayer_rggb16", "bgra16"])
def test_camera_formats_follow_the_codecs_channel_order(encoding: str) -> None:
    """The codec says which formats it turns into RGB; the rgb decoder asks it (no own list)."""
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red, so a wrong channel order shows
    wide = encoding.endswith("16")
    source = rgb.astype(np.uint16) * 257 if wide else rgb
    if encoding == "bgra16":
        source = np.concatenate([source[..., ::-1], np.full((4, 6, 1), 65535, np.uint16)], 2)
    decoded = decode_rgb(image(np.ascontiguousarray(source), encoding)).image
    assert decoded[1:3, 1:5, 0].min() > 150 and decoded[1:3, 1:5, 1:].max() < 60


def test_rgb_rejects_truncated_and_mismatched() -> None:
    msg = image(np.zeros((4, 6, 3), np.uint8), "rgb8")
    msg.data = msg.data[:10]
    with pytest.raises(BadMessage, match="truncated"):
        decode_rgb(msg)
    with pytest.raises(BadMessage, match="size mismatch"):
        decode_rgb(image(np.zeros((4, 6, 3), np.uint8), "rgb8"), (10, 6))
    empty = image(np.zeros((4, 6, 3), np.uint8), "rgb8")
    empty.height = 0
    with pytest.raises(BadMessage, match="empty"):
        decode_rgb(empty)


def test_depth_mm_and_m_agree() -> None:
    mm = decode_depth(image(np.full((4, 6), 2000, np.uint16), "16UC1"))
    m = decode_depth(image(np.full((4, 6), 2.0, np.float32), "32FC1"))
    np.testing.assert_array_equal(mm.image, m.image)
    assert mm.image.shape == (4, 6, 3) and mm.image.min() > 0


def test_depth_rejections() -> None:
    with pytest.raises(BadMessage, match="no valid pixel"):
        decode_depth(image(np.full((4, 6), np.nan, np.float32), "32FC1"))
    with pytest.raises(BadMessage, match="not one of"):
        decode_depth(image(np.zeros((4, 6, 3), np.uint8), "rgb8"))
    with pytest.raises(BadMessage, match="size mismatch"):
        decode_depth(image(np.ones((4, 20), np.float32), "32FC1"), (4, 6))


def test_event_image_and_cloud() -> None:
    frame = decode_event_image(image(np.full((4, 6), 255, np.uint8), "mono8"))
    assert frame.image.shape == (4, 6, 3)
    points = np.zeros(3, dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<f8"), ("polarity", "u1")])
    points["x"], points["y"], points["polarity"] = [0, 1, 5], [0, 2, 3], [1, 0, 1]
    fields = make_fields([("x", 4), ("y", 4), ("t", 8), ("polarity", 2)])
    cloud = create_cloud(HDR, fields, points)
    decoded = decode_event_cloud(cloud, (4, 6))
    assert decoded.image.shape == (4, 6, 3) and decoded.image[0, 0, 0] > 0
    assert decoded.outside == 0
    points["x"][2] = 6  # one column beyond the 6-pixel-wide image: dropped, and counted
    assert decode_event_cloud(create_cloud(HDR, fields, points), (4, 6)).outside == 1
    with pytest.raises(BadMessage, match="before the image size is known"):
        decode_event_cloud(cloud, None)
    empty = create_cloud(HDR, fields, points[:0])
    with pytest.raises(BadMessage, match="empty"):
        decode_event_cloud(empty, (4, 6))


def xyz_cloud(points: np.ndarray) -> SimpleNamespace:
    fields = make_fields([("x", 7), ("y", 7), ("z", 7)])
    return create_cloud(plain_header(12, 0, "lidar"), fields, points.astype(np.float32))


def test_lidar_projects_into_the_camera() -> None:
    cam = decode_camera_info(camera())
    points = np.array([[0.0, 0.0, 5.0], [1.0, 0.5, 10.0], [0.0, 0.0, -5.0]])
    decoded = decode_lidar(xyz_cloud(points), cam, np.eye(4))
    assert decoded.image.shape == (48, 64, 3)
    assert decoded.image[24, 32, 0] > 0  # the point straight ahead
    assert decoded.header.frame_id == "lidar"


def test_lidar_rejections() -> None:
    cam = decode_camera_info(camera())
    ahead = xyz_cloud(np.array([[0.0, 0.0, 5.0]]))
    with pytest.raises(BadMessage, match="no camera_info"):
        decode_lidar(ahead, None, np.eye(4))
    with pytest.raises(BadMessage, match="empty"):
        decode_lidar(xyz_cloud(np.zeros((0, 3))), cam, np.eye(4))
    with pytest.raises(BadMessage, match="no finite point"):
        decode_lidar(xyz_cloud(np.full((5, 3), np.nan)), cam, np.eye(4))
    behind = np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(BadMessage, match="check lidar.extrinsic"):
        decode_lidar(ahead, cam, behind)


def test_camera_info_rejections() -> None:
    with pytest.raises(BadMessage, match="focal length"):
        decode_camera_info(camera(fx=0.0))
    with pytest.raises(BadMessage, match="no image size"):
        decode_camera_info(camera(h=0))
    assert decode_camera_info(camera()).D is None  # all-zero distortion is skipped


def test_colorize_and_blend() -> None:
    palette = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    labels = np.array([[0, 1], [1, 5]], np.uint8)
    color = colorize(labels, palette, None, 0.5)
    assert color[0, 0].tolist() == [255, 0, 0] and color[1, 1].tolist() == [0, 0, 0]
    rgb = np.full((2, 2, 3), 100, np.uint8)
    blended = colorize(labels, palette, rgb, 0.5)
    assert blended[0, 0].tolist() == [178, 50, 50]


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.77])
def test_colorize_blend_is_the_per_pixel_formula(alpha: float) -> None:
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (25, 3), dtype=np.uint8)
    labels = rng.integers(0, 25, (30, 40)).astype(np.uint8)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    color = palette[labels].astype(np.float32)
    want = np.clip(np.rint(alpha * color + (1.0 - alpha) * rgb.astype(np.float32)), 0, 255)
    np.testing.assert_array_equal(colorize(labels, palette, rgb, alpha), want.astype(np.uint8))


def test_encode_outputs_round_trip() -> None:
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    conf = np.full((3, 4), 0.5, np.float32)
    out = encode_outputs(labels, HDR, None, color=np.zeros((3, 4, 3), np.uint8), confidence=conf)
    assert out["labels"].encoding == "mono8" and out["labels_color"].encoding == "rgb8"
    assert out["confidence"].encoding == "32FC1"
    np.testing.assert_array_equal(image_to_numpy(out["labels"]), labels)
    np.testing.assert_array_equal(image_to_numpy(out["confidence"]), conf)
    wide = encode_outputs(labels.astype(np.uint16) + 300, HDR, None)
    assert wide["labels"].encoding == "16UC1" and set(wide) == {"labels"}


def test_encode_outputs_can_leave_the_labels_out() -> None:
    """The node publishes the labels first and encodes the optional outputs afterwards."""
    labels = np.zeros((3, 4), np.uint8)
    conf = np.ones((3, 4), np.float32)
    out = encode_outputs(labels, HDR, None, confidence=conf, include_labels=False)
    assert set(out) == {"confidence"}

"""CompressedImage codecs against OpenCV's own encoders and image_transport's format strings.

Every message here holds bytes made by ``cv2.imencode`` (or by our encoders, checked against
it), and decoded pixels are compared with ``cv2.imdecode`` of the same bytes: the codec's job is
the format string, the channel order and the compressedDepth header, which the tests spell out.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sam_moelora_ros.sensors.compressed import (
    CompressedImageError,
    decode_compressed,
    decode_compressed_depth,
    decode_compressed_image,
    encode_compressed_depth,
    encode_compressed_image,
)


def smooth_image(h: int = 48, w: int = 64, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    """A gradient with a distinct ramp per channel (JPEG keeps it close, so orders are visible)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    top = np.iinfo(dtype).max
    planes = [(xx / w), (yy / h), 1 - xx / w, (xx + yy) / (w + h)][:channels]
    arr = np.stack([np.rint(p * top) for p in planes], axis=-1).astype(dtype)
    return arr[..., 0] if channels == 1 else arr


def msg(fmt: str, data: np.ndarray | bytes) -> SimpleNamespace:
    return SimpleNamespace(format=fmt, data=bytes(data))


def imencode(ext: str, image: np.ndarray, *params: int) -> np.ndarray:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.reshape(-1)


@pytest.mark.parametrize("codec", ["jpeg", "png"])
def test_rgb8_comes_back_rgb_from_bgr_bytes(codec: str) -> None:
    rgb = smooth_image()
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    data = imencode(".jpg" if codec == "jpeg" else ".png", bgr)
    image, encoding = decode_compressed_image(msg(f"rgb8; {codec} compressed bgr8", data))
    expected = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert encoding == "rgb8" and image.dtype == np.uint8
    np.testing.assert_array_equal(image, expected)
    if codec == "png":
        np.testing.assert_array_equal(image, rgb)


def test_bgr8_is_returned_as_stored() -> None:
    bgr = smooth_image()
    data = imencode(".png", bgr)
    image, encoding = decode_compressed_image(msg("bgr8; png compressed bgr8", data))
    assert encoding == "bgr8"
    np.testing.assert_array_equal(image, bgr)


def test_rgb_target_bytes_are_reordered_to_the_original() -> None:
    # A publisher that wrote RGB bytes ("... compressed rgb8") for a bgr8 original.
    rgb = smooth_image()
    data = imencode(".png", rgb)  # OpenCV writes the array as is: channel 0 = R
    image, encoding = decode_compressed_image(msg("bgr8; png compressed rgb8", data))
    assert encoding == "bgr8"
    np.testing.assert_array_equal(image, rgb[..., ::-1])


@pytest.mark.parametrize(
    ("fmt", "ext"),
    [
        ("mono8; jpeg compressed mono8", ".jpg"),
        ("mono8; jpeg compressed ", ".jpg"),
        ("mono8; png compressed mono8", ".png"),
    ],
)
def test_mono8_formats(fmt: str, ext: str) -> None:
    gray = smooth_image(channels=1)
    data = imencode(ext, gray)
    image, encoding = decode_compressed_image(msg(fmt, data))
    assert encoding == "mono8" and image.shape == gray.shape
    np.testing.assert_array_equal(image, cv2.imdecode(data, cv2.IMREAD_UNCHANGED))


@pytest.mark.parametrize(
    ("image", "ext", "expected"),
    [
        (smooth_image(), ".jpg", "bgr8"),
        (smooth_image(channels=1), ".jpg", "mono8"),
        (smooth_image(channels=4), ".png", "bgra8"),
        (smooth_image(channels=1, dtype=np.uint16), ".png", "mono16"),
    ],
)
@pytest.mark.parametrize("word", ["jpeg", "png"])
def test_plain_codec_formats_give_opencv_order(
    image: np.ndarray, ext: str, expected: str, word: str
) -> None:
    # Older publishers write only "jpeg" / "png"; the data decides, OpenCV's order is kept.
    data = imencode(ext, image)
    out, encoding = decode_compressed_image(msg(word, data))
    assert encoding == expected
    np.testing.assert_array_equal(out, cv2.imdecode(data, cv2.IMREAD_UNCHANGED))


def test_sixteen_bit_png_depth_and_colour() -> None:
    depth = smooth_image(channels=1, dtype=np.uint16)
    for fmt in ("16UC1; png compressed ", "mono16; png compressed mono16"):
        out, encoding = decode_compressed_image(msg(fmt, imencode(".png", depth)))
        assert encoding == fmt.split(";")[0] and out.dtype == np.uint16
        np.testing.assert_array_equal(out, depth)
    rgb16 = smooth_image(dtype=np.uint16)
    data = imencode(".png", np.ascontiguousarray(rgb16[..., ::-1]))
    out, encoding = decode_compressed_image(msg("rgb16; png compressed bgr16", data))
    assert encoding == "rgb16"
    np.testing.assert_array_equal(out, rgb16)


def test_rgba_from_a_jpeg_gains_opaque_alpha() -> None:
    rgb = smooth_image()
    data = imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]))
    out, encoding = decode_compressed_image(msg("rgba8; jpeg compressed bgr8", data))
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert encoding == "rgba8" and out.shape == (*rgb.shape[:2], 4)
    np.testing.assert_array_equal(out[..., :3], decoded[..., ::-1])
    assert (out[..., 3] == 255).all()


def test_sixteen_bit_original_through_jpeg_reports_eight_bits() -> None:
    data = imencode(".jpg", smooth_image())
    out, encoding = decode_compressed_image(msg("rgb16; jpeg compressed bgr8", data))
    assert encoding == "rgb8" and out.dtype == np.uint8


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16"])
def test_encoder_round_trip_png_is_exact(encoding: str) -> None:
    channels = {"rgb": 3, "bgr": 3, "rgba": 4, "bgra": 4, "mono": 1}[encoding.rstrip("0123456789")]
    dtype = np.uint16 if encoding.endswith("16") else np.uint8
    image = smooth_image(channels=channels, dtype=dtype)
    m = encode_compressed_image(image, encoding, "png")
    target = {3: "bgr", 4: "bgra"}.get(channels)
    bits = 8 * np.dtype(dtype).itemsize
    assert m.format == f"{encoding}; png compressed {f'{target}{bits}' if target else encoding}"
    out, got = decode_compressed_image(m)
    assert got == encoding
    np.testing.assert_array_equal(out, image)


def test_encoder_jpeg_matches_opencv_bytes() -> None:
    rgb = smooth_image()
    m = encode_compressed_image(rgb, "rgb8", "jpeg", quality=80)
    assert m.format == "rgb8; jpeg compressed bgr8"
    expected = imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), cv2.IMWRITE_JPEG_QUALITY, 80)
    np.testing.assert_array_equal(np.asarray(m.data), expected)
    out, _ = decode_compressed_image(m)
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 12  # lossy, but close on a ramp


def test_rosbags_and_rclpy_messages() -> None:
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    cls = store.types["sensor_msgs/msg/CompressedImage"]
    rgb = smooth_image()
    m = encode_compressed_image(rgb, "rgb8", "png", msg_type=cls)
    back = store.deserialize_cdr(store.serialize_cdr(m, cls.__msgtype__), cls.__msgtype__)
    np.testing.assert_array_equal(decode_compressed(back)[0], rgb)
    rclpy_cls = pytest.importorskip("sensor_msgs.msg").CompressedImage
    m2 = encode_compressed_image(rgb, "rgb8", "png", msg_type=rclpy_cls)
    assert isinstance(m2, rclpy_cls)
    np.testing.assert_array_equal(decode_compressed(m2)[0], rgb)


@pytest.mark.parametrize(
    ("fmt", "match"),
    [
        ("tiff", "no codec named"),
        ("rgb8; qoi compressed bgr8", "unknown codec 'qoi'"),
        ("", "no codec named"),
        ("rgb9; jpeg compressed bgr8", "'rgb9' is not supported"),
        ("rgb8; jpeg packed bgr8", "expected 'compressed'"),
        ("16UC1; compressedDepth png", "use decode_compressed_depth"),
    ],
)
def test_unknown_formats_name_the_supported_ones(fmt: str, match: str) -> None:
    data = imencode(".jpg", smooth_image())
    with pytest.raises(CompressedImageError, match=match) as info:
        decode_compressed_image(msg(fmt, data))
    assert "Supported formats:" in str(info.value) and "compressedDepth rvl" in str(info.value)


def test_bad_data_and_channel_mismatch_are_errors() -> None:
    with pytest.raises(CompressedImageError, match="JPEG is cut off"):
        decode_compressed_image(msg("rgb8; jpeg compressed bgr8", b"\xff\xd8\xff\x00\x01"))
    with pytest.raises(CompressedImageError, match="data is empty"):
        decode_compressed_image(msg("jpeg", b""))
    colour = imencode(".png", smooth_image())
    with pytest.raises(CompressedImageError, match="'mono8' is mono"):
        decode_compressed_image(msg("mono8; png compressed ", colour))
    gray = imencode(".png", smooth_image(channels=1))
    with pytest.raises(CompressedImageError, match="not what 'bgr8' holds"):
        decode_compressed_image(msg("rgb8; png compressed bgr8", gray))


# --- compressedDepth --------------------------------------------------------------------


def depth_metres(h: int = 30, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(3)
    d = rng.uniform(0.3, 12.0, (h, w)).astype(np.float32)
    d[0, :5] = np.nan
    d[1, :3] = 0.0
    return d


def plugin_quantise(depth: np.ndarray, depth_max: float = 10.0, q: float = 100.0):
    """The publisher's float32 arithmetic, written out (compressed_depth_image_transport)."""
    a = np.float32(np.float32(q) * (np.float32(q) + np.float32(1)))
    b = np.float32(np.float32(1) - a / np.float32(depth_max))
    inv = np.zeros(depth.shape, np.uint16)
    ok = depth < np.float32(depth_max)  # NaN and 0 (inf after the division) fail below
    with np.errstate(divide="ignore", invalid="ignore"):
        value = a / depth + b
    ok &= np.isfinite(value) & (value >= 1) & (value < 65536)
    inv[ok] = value[ok].astype(np.uint16)  # C++ float -> unsigned short truncates
    return inv, a, b


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_32fc1_decodes_as_the_plugin_does(codec: str) -> None:
    depth = depth_metres()
    inv, a, b = plugin_quantise(depth)
    if codec == "png":
        payload = imencode(".png", inv).tobytes()
    else:
        from sam_moelora_ros.sensors.rvl import rvl_encode

        payload = struct.pack("<II", inv.shape[1], inv.shape[0]) + rvl_encode(inv)
    data = struct.pack("<iff", 0, a, b) + payload
    out, encoding = decode_compressed_depth(msg(f"32FC1; compressedDepth {codec}", data))
    assert encoding == "32FC1" and out.dtype == np.float32
    with np.errstate(divide="ignore"):
        expected = a / (inv.astype(np.float32) - b)
    expected[inv == 0] = np.nan
    np.testing.assert_array_equal(out, expected)  # NaN positions equal too
    valid = np.isfinite(depth) & (depth > 0) & (depth < 10)
    assert np.isnan(out[~valid]).all()
    # One quantisation step of inverse depth: about d^2 / A metres.
    assert (np.abs(out[valid] - depth[valid]) <= depth[valid] ** 2 / a * 1.01 + 1e-6).all()


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_encoder_matches_the_plugin_bytes(codec: str) -> None:
    depth = depth_metres()
    m = encode_compressed_depth(depth, "32FC1", codec)
    assert m.format == f"32FC1; compressedDepth {codec}"
    raw = np.asarray(m.data).tobytes()
    inv, a, b = plugin_quantise(depth)
    assert raw[:12] == struct.pack("<iff", 0, a, b)
    if codec == "png":
        np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(raw[12:], np.uint8), -1), inv)
    else:
        assert struct.unpack("<II", raw[12:20]) == (40, 30)
    np.testing.assert_array_equal(decode_compressed(m)[0], decode_compressed(m)[0])


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_16uc1_round_trip_with_depth_max(codec: str) -> None:
    mm = np.random.default_rng(4).integers(0, 15000, (30, 40)).astype(np.uint16)
    m = encode_compressed_depth(mm, "16UC1", codec, depth_max=10.0)
    raw = np.asarray(m.data).tobytes()
    assert raw[:12] == struct.pack("<iff", 0, 0.0, 0.0)  # the header is written, zeroed
    out, encoding = decode_compressed_depth(m)
    assert encoding == "16UC1" and out.dtype == np.uint16
    np.testing.assert_array_equal(out, np.where(mm > 10000, 0, mm))


def test_bare_compressed_depth_means_png() -> None:
    mm = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100
    data = struct.pack("<iff", 0, 0.0, 0.0) + imencode(".png", mm).tobytes()
    out, _ = decode_compressed(msg("16UC1; compressedDepth", data))
    np.testing.assert_array_equal(out, mm)


@pytest.mark.parametrize(
    ("fmt", "data", "match"),
    [
        ("16UC1; compressedDepth zstd", b"x" * 20, "unknown compressedDepth codec 'zstd'"),
        ("rgb8; compressedDepth png", b"x" * 20, "cannot be compressedDepth"),
        ("16UC1; compressedDepth png", b"x" * 12, "no room for the 12-byte ConfigHeader"),
        ("16UC1; compressedDepth png", b"\0" * 12 + b"\xff\xd8\xffjpeg", "is not a PNG"),
        (
            "16UC1; compressedDepth rvl",
            b"\0" * 12 + struct.pack("<II", 4, 0) + b"\0" * 4,
            "impossible size 4 x 0",
        ),
        (
            "16UC1; compressedDepth rvl",
            b"\0" * 12 + struct.pack("<II", 100, 100) + b"\0" * 8,
            "decodes to 0 pixels where the image has 10000",
        ),
    ],
)
def test_depth_errors(fmt: str, data: bytes, match: str) -> None:
    with pytest.raises(CompressedImageError, match=match):
        decode_compressed_depth(msg(fmt, data))

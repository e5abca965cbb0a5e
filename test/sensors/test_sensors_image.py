"""Image codec against cv_bridge's documented behaviour (passthrough decoding, cv2_to_imgmsg).

Messages are built by hand from bytes (both byte orders, padded rows), so the decoder is checked
against the ``sensor_msgs/Image`` layout, not against our own encoder.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros.sensors import encoding_info, image_to_numpy, numpy_to_image

GENERIC_DEPTHS = {"8U": "u1", "8S": "i1", "16U": "u2", "16S": "i2", "32S": "i4", "32F": "f4"}
GENERIC_DEPTHS["64F"] = "f8"
PLAIN = [
    ("rgb8", "u1", 3),
    ("rgba8", "u1", 4),
    ("rgb16", "u2", 3),
    ("rgba16", "u2", 4),
    ("bgr8", "u1", 3),
    ("bgra8", "u1", 4),
    ("bgr16", "u2", 3),
    ("bgra16", "u2", 4),
    ("mono8", "u1", 1),
    ("mono16", "u2", 1),
] + [(f"{d}C{c}", t, c) for d, t in GENERIC_DEPTHS.items() for c in (1, 2, 3, 4)]
PLAIN += [(d, t, 1) for d, t in GENERIC_DEPTHS.items()]  # bare depth = one channel


def sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Distinct values that exercise every byte (negative for signed, fractions for float)."""
    n = int(np.prod(shape))
    dt = np.dtype(dtype)
    if dt.kind == "f":
        vals = (np.arange(n) - n / 2) * 1.25
    elif dt.kind == "i":
        vals = (np.arange(n) - n // 2) * (3 if dt.itemsize == 1 else 1001)
    else:
        vals = np.arange(n) * (7 if dt.itemsize == 1 else 4099)
    info = np.iinfo(dt) if dt.kind in "iu" else None
    if info is not None:
        vals = np.clip(vals, info.min, info.max)
    return vals.astype(dt).reshape(shape)


def hand_message(
    expected: np.ndarray, encoding: str, big: bool, pad: int = 0, rows: int | None = None
) -> SimpleNamespace:
    """A message whose bytes are laid out row by row with ``pad`` filler bytes per row."""
    stored = expected.astype(expected.dtype.newbyteorder(">" if big else "<"))
    n_rows = stored.shape[0]
    row_bytes = stored[0].tobytes()
    step = len(row_bytes) + pad
    data = b"".join(stored[r].tobytes() + b"\xaa" * pad for r in range(n_rows))
    return SimpleNamespace(
        height=n_rows if rows is None else rows,
        width=stored.shape[1],
        encoding=encoding,
        is_bigendian=int(big),
        step=step,
        data=data,
    )


@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize(("encoding", "dtype", "channels"), PLAIN, ids=[p[0] for p in PLAIN])
def test_decode_every_plain_encoding(
    encoding: str, dtype: str, channels: int, big: bool, pad: int
) -> None:
    shape = (3, 4) if channels == 1 else (3, 4, channels)
    expected = sample(dtype, shape)
    out = image_to_numpy(hand_message(expected, encoding, big, pad))
    assert out.shape == shape
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, expected)
    # cv2_to_imgmsg direction: same bytes for the unpadded, host-order case
    msg = numpy_to_image(expected, encoding, is_bigendian=big)
    assert msg.step == 4 * channels * np.dtype(dtype).itemsize
    assert msg.is_bigendian == int(big)
    if pad == 0:
        assert msg.data.tobytes() == hand_message(expected, encoding, big).data


def test_native_little_endian_decoding_is_a_view() -> None:
    expected = sample("u2", (4, 6, 3))
    msg = hand_message(expected, "rgb16", big=False, pad=2)
    data = np.frombuffer(msg.data, np.uint8).copy()
    msg.data = data
    out = image_to_numpy(msg)
    assert np.shares_memory(out, data)
    big = hand_message(expected, "rgb16", big=True)
    assert not np.shares_memory(image_to_numpy(big), np.frombuffer(big.data, np.uint8))


def test_list_data_from_plain_objects_is_accepted() -> None:
    msg = SimpleNamespace(height=1, width=2, encoding="mono8", is_bigendian=0, step=2, data=[1, 2])
    assert image_to_numpy(msg).tolist() == [[1, 2]]


# A Bayer mosaic of a uniform colour must demosaic back to that colour (away from the border).
BAYER_COLOUR = {"r": 200, "g": 100, "b": 40}


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_patterns_demosaic_to_rgb(pattern: str, bits: int) -> None:
    dtype = "u1" if bits == 8 else "u2"
    scale = 1 if bits == 8 else 256
    mosaic = np.empty((8, 8), dtype=dtype)
    for i, colour in enumerate(pattern):  # the pattern names the top-left 2x2 block
        dy, dx = divmod(i, 2)
        mosaic[dy::2, dx::2] = BAYER_COLOUR[colour] * scale
    for big in (False, True):
        msg = hand_message(mosaic, f"bayer_{pattern}{bits}", big, pad=3)
        rgb = image_to_numpy(msg)
        assert rgb.shape == (8, 8, 3) and rgb.dtype == np.dtype(dtype)
        inner = rgb[2:-2, 2:-2].reshape(-1, 3).astype(int) // scale
        assert np.all(np.abs(inner - [200, 100, 40]) <= 1), inner[:2]
        np.testing.assert_array_equal(image_to_numpy(msg, raw=True), mosaic)
    # and our encoder mosaics RGB back to the same raw bytes
    flat_rgb = np.empty((8, 8, 3), dtype=dtype)
    flat_rgb[:] = np.array([200, 100, 40]) * scale
    again = numpy_to_image(flat_rgb, f"bayer_{pattern}{bits}")
    np.testing.assert_array_equal(image_to_numpy(again, raw=True), mosaic)


@pytest.mark.parametrize(
    ("encoding", "layout"),
    [("yuv422", "UYVY"), ("uyvy", "UYVY"), ("yuv422_yuy2", "YUYV"), ("yuyv", "YUYV")],
)
def test_yuv422_byte_order(encoding: str, layout: str) -> None:
    # Two pixels sharing neutral chroma: Y0 = 50 (dark), Y1 = 200 (bright), U = V = 128 (grey).
    byte = {"U": 128, "V": 128, "Y0": 50, "Y1": 200}
    order = ["U", "Y0", "V", "Y1"] if layout == "UYVY" else ["Y0", "U", "Y1", "V"]
    row = bytes(byte[k] for k in order) * 2  # width 4
    msg = SimpleNamespace(
        height=2, width=4, encoding=encoding, is_bigendian=0, step=10, data=(row + b"\0\0") * 2
    )
    rgb = image_to_numpy(msg)
    assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8
    assert np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2])  # grey
    # BT.601 limited range: 1.164 * (Y - 16)
    assert abs(int(rgb[0, 0, 0]) - round(1.164 * 34)) <= 1
    assert abs(int(rgb[0, 1, 0]) - round(1.164 * 184)) <= 1
    assert image_to_numpy(msg, raw=True).shape == (2, 4, 2)


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2", "nv21"])
def test_yuv_encode_decode_is_close(encoding: str) -> None:
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[:, :2] = (200, 30, 30)  # constant over 2x2 chroma blocks
    rgb[:, 2:4] = (20, 180, 60)
    rgb[:, 4:] = (90, 90, 220)
    out = image_to_numpy(numpy_to_image(rgb, encoding))
    assert np.abs(out.astype(int) - rgb).max() <= 3


def test_nv21_layout() -> None:
    h, w = 4, 4
    data = bytes([100] * (h * w)) + bytes([128] * (h * w // 2))  # grey Y = 100
    msg = SimpleNamespace(height=h, width=w, encoding="nv21", is_bigendian=0, step=w, data=data)
    rgb = image_to_numpy(msg)
    assert rgb.shape == (4, 4, 3)
    assert np.all(np.abs(rgb.astype(int) - round(1.164 * 84)) <= 1)
    assert image_to_numpy(msg, raw=True).shape == (6, 4)


def test_round_trip_every_encoding_through_numpy_to_image() -> None:
    for encoding, dtype, channels in PLAIN:
        arr = sample(dtype, (5, 3) if channels == 1 else (5, 3, channels))
        for big in (None, False, True):
            back = image_to_numpy(numpy_to_image(arr, encoding, is_bigendian=big))
            np.testing.assert_array_equal(back, arr, err_msg=encoding)
    raw = sample("u1", (2, 4, 2))
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(raw, "yuv422"), raw=True), raw)


def test_encoding_info() -> None:
    assert encoding_info("bgra16") == (np.dtype("u2"), 4)
    assert encoding_info("32FC7") == (np.dtype("f4"), 7)


def test_unknown_encoding_is_named() -> None:
    msg = SimpleNamespace(height=1, width=1, encoding="rgb9", is_bigendian=0, step=3, data=b"abc")
    with pytest.raises(ValueError, match=r"Image encoding 'rgb9' is not supported"):
        image_to_numpy(msg)


def test_step_smaller_than_row_is_named() -> None:
    msg = SimpleNamespace(height=2, width=4, encoding="rgb8", is_bigendian=0, step=10, data=b"")
    with pytest.raises(ValueError, match=r"step 10 is smaller .* width 4 x 3 channel\(s\) x 1"):
        image_to_numpy(msg)


def test_truncated_data_is_named() -> None:
    msg = SimpleNamespace(
        height=3, width=4, encoding="16UC1", is_bigendian=0, step=8, data=bytes(20)
    )
    with pytest.raises(ValueError, match=r"data holds 20 bytes but 3 rows x step 8 need 24"):
        image_to_numpy(msg)


def test_encoder_rejects_mismatched_dtype_and_shape() -> None:
    with pytest.raises(ValueError, match=r"'rgb8' needs a H x W x 3 array of dtype uint8, got"):
        numpy_to_image(np.zeros((2, 2, 3), np.float32), "rgb8")
    with pytest.raises(ValueError, match=r"'mono16' needs a H x W array"):
        numpy_to_image(np.zeros((2, 2, 3), np.uint16), "mono16")


def test_empty_image() -> None:
    msg = numpy_to_image(np.zeros((0, 4, 3), np.uint8), "rgb8")
    assert image_to_numpy(msg).shape == (0, 4, 3)

"""The one rule per conversion: 16 -> 8 bit, channel count and order, and the codec's own lists."""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.sensors.image import (
    _NAMED,
    converts_to_rgb,
    decoded_channel_order,
    encoding_info,
    image_to_numpy,
    numpy_to_image,
)
from sam_moelora_ros.sensors.network_input import (
    event_frame_to_network_image,
    to_network_image,
    to_three_channels,
    to_uint8,
)


def test_16_bit_goes_to_the_nearest_of_256_levels() -> None:
    every = np.arange(65536, dtype=np.uint16)
    out = to_uint8(every).astype(np.float64)
    assert np.abs(out - every / 257.0).max() <= 0.5  # 65535 / 255 = 257 per level
    assert out[0] == 0 and out[-1] == 255 and (np.diff(out) >= 0).all()
    assert to_uint8(np.array([129, 0xFF00], np.uint16)).tolist() == [1, 254]


def test_8_bit_is_untouched_and_other_dtypes_are_refused() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_uint8(image) is image
    for dtype in (np.float32, np.int16, np.uint32):
        with pytest.raises(ValueError, match=f"{np.dtype(dtype)} is not 8 or 16 bit"):
            to_uint8(np.zeros((2, 2), dtype))


def test_channel_count_rules() -> None:
    grey = np.arange(6, dtype=np.uint16).reshape(2, 3)
    for one in (grey, grey[:, :, None]):
        out = to_three_channels(one)
        assert out.shape == (2, 3, 3) and out.dtype == np.uint16 and out.flags.c_contiguous
        assert all((out[:, :, c] == grey).all() for c in range(3))
    two = np.stack([grey, grey + 10], axis=2)
    assert to_three_channels(two)[1, 2].tolist() == [5, 15, 0]  # a zero third channel
    rgba = np.array([[[1, 2, 3, 4]]], np.uint8)
    assert to_three_channels(rgba).tolist() == [[[1, 2, 3]]]  # alpha dropped
    assert to_three_channels(rgba, "bgr").tolist() == [[[3, 2, 1]]]  # BGRA read as RGB
    with pytest.raises(ValueError, match=r"H x W x 1..4 image, got shape \(2, 2, 5\)"):
        to_three_channels(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match="channel order must be 'rgb' or 'bgr'"):
        to_three_channels(rgba, "rgba")  # type: ignore[arg-type]


def test_network_image_is_bit_rule_then_channel_rule() -> None:
    bgr16 = np.array([[[0, 129, 65535]]], np.uint16)
    assert to_network_image(bgr16, "bgr").tolist() == [[[255, 1, 0]]]


@pytest.mark.parametrize("encoding", sorted(_NAMED))
def test_codec_lists_match_what_the_codec_does(encoding: str) -> None:
    """``converts_to_rgb`` is true exactly where decoding changes the stored channel count."""
    dtype, channels = encoding_info(encoding)
    rows = 6 if encoding == "nv21" else 4  # nv21 stores H * 3/2 rows
    stored = np.zeros((rows, 6, channels) if channels > 1 else (rows, 6), dtype)
    decoded = image_to_numpy(numpy_to_image(stored, encoding))
    decoded_channels = decoded.shape[2] if decoded.ndim == 3 else 1
    assert converts_to_rgb(encoding) == (decoded_channels != channels)
    if converts_to_rgb(encoding):
        assert decoded_channels == 3 and decoded_channel_order(encoding) == "rgb"
    assert (decoded_channel_order(encoding) == "bgr") == encoding.startswith("bgr")


def test_event_frame_uses_the_same_rules() -> None:
    u16 = np.array([[129, 0xFF00]], np.uint16)  # the 16-bit rule, not a floor or a shift
    np.testing.assert_array_equal(event_frame_to_network_image(u16), to_network_image(u16))
    bgra = np.array([[[10, 20, 30, 255]]], np.uint8)
    msg = numpy_to_image(bgra, "bgra8")
    assert event_frame_to_network_image(msg).tolist() == [[[30, 20, 10]]]
    with pytest.raises(ValueError, match=r"event frame: .*got shape \(1, 1, 6\)"):
        event_frame_to_network_image(np.zeros((1, 1, 6), np.uint8))

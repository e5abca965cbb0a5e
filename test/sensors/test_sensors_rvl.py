"""RVL against a hand-worked stream and a line-by-line port of ``RvlCodec::DecompressRVL``.

The reference below follows the C++ of compressed_depth_image_transport's ``rvl_codec.cpp`` one
nibble at a time (tiny images only); the library decodes vectorised, so the two share no code.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.sensors.rvl import RvlError, rvl_decode, rvl_encode


def reference_decompress(data: bytes, num_pixels: int) -> np.ndarray:
    words = [int(w) for w in np.frombuffer(data, "<u4")]
    state = {"i": 0, "word": 0, "left": 0}

    def decode_vle() -> int:
        value, bits = 0, 29
        while True:
            if state["left"] == 0:
                state["word"], state["i"], state["left"] = words[state["i"]], state["i"] + 1, 8
            nibble = state["word"] & 0xF0000000
            value |= ((nibble << 1) & 0xFFFFFFFF) >> bits
            state["word"] = (state["word"] << 4) & 0xFFFFFFFF
            state["left"] -= 1
            bits -= 3
            if not nibble & 0x80000000:
                return value

    out: list[int] = []
    previous, todo = 0, num_pixels
    while todo:
        zeros = decode_vle()
        todo -= zeros
        out += [0] * zeros
        nonzeros = decode_vle()
        todo -= nonzeros
        for _ in range(nonzeros):
            positive = decode_vle()
            previous = (previous + ((positive >> 1) ^ -(positive & 1))) & 0xFFFF
            out.append(previous)
    return np.array(out, dtype=np.uint16)


def test_hand_worked_stream() -> None:
    # [0, 0, 5, 5, 0]: zeros 2, nonzeros 2, deltas +5 (zigzag 10 = nibbles A 1), 0; zeros 1,
    # nonzeros 0 -> nibbles 2 2 A 1 0 1 0 + one pad nibble = word 0x22A10100, little-endian.
    image = np.array([0, 0, 5, 5, 0], dtype=np.uint16)
    data = bytes([0x00, 0x01, 0xA1, 0x22])
    assert rvl_encode(image) == data
    np.testing.assert_array_equal(rvl_decode(data, 5), image)
    np.testing.assert_array_equal(reference_decompress(data, 5), image)


@pytest.mark.parametrize("seed", range(12))
def test_random_images_agree_with_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 30, 2)
    image = rng.integers(0, 65536, (h, w)).astype(np.uint16)
    image[rng.random((h, w)) < rng.random()] = 0
    if seed == 0:
        image[:] = 0  # one zero run, no non-zero pixel
    if seed == 1:
        image[image == 0] = 7  # no zero pixel: an empty first zero run
    data = rvl_encode(image)
    np.testing.assert_array_equal(reference_decompress(data, image.size), image.reshape(-1))
    np.testing.assert_array_equal(rvl_decode(data, image.size), image.reshape(-1))


def test_large_deltas_wrap_like_uint16() -> None:
    image = np.array([65535, 1, 65535, 2, 40000], dtype=np.uint16)
    data = rvl_encode(image)
    np.testing.assert_array_equal(rvl_decode(data, 5), reference_decompress(data, 5))
    np.testing.assert_array_equal(rvl_decode(data, 5), image)


def test_depth_sized_image_round_trip() -> None:
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[0:480, 0:640]
    image = (800 + xx + 2 * yy).astype(np.uint16)
    image[rng.random(image.shape) < 0.1] = 0
    np.testing.assert_array_equal(rvl_decode(rvl_encode(image), image.size), image.reshape(-1))


def test_truncated_and_oversized_streams_are_errors() -> None:
    image = np.arange(1, 200, dtype=np.uint16)
    data = rvl_encode(image)
    with pytest.raises(RvlError, match="truncated or corrupt"):
        rvl_decode(data, image.size + 5)
    with pytest.raises(RvlError, match="truncated or corrupt"):
        rvl_decode(data, image.size - 5)
    with pytest.raises(RvlError, match="truncated"):
        rvl_decode(data[: len(data) // 2], image.size)
    with pytest.raises(RvlError, match="no complete run"):
        rvl_decode(b"", 10)

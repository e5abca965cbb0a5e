"""JPEG / PNG headers read without decoding: the declared size, and whether the data can hold it.

Why: OpenCV allocates the full image a header declares before it reads a pixel, and fills what
the data lacks with grey (libjpeg's "premature end of data segment" is only a warning). So the
size is read here first (a JPEG's SOFn segment, a PNG's IHDR chunk: a few bytes), checked
against the budget (``limits.py``), and the stream is checked for what a complete one must have:

- JPEG: an SOS, then an EOI after it (a stream cut short has none: ``FF D9`` cannot occur inside
  entropy-coded data, where ``FF`` is always followed by ``00`` or a restart marker), and, for
  Huffman-coded JPEGs (SOF0/1/2, what cameras write), at least the entropy-coded bytes the
  declared blocks need: every 8x8 block costs a sequential JPEG at least 2 bits (a DC code and
  an EOB, each at least one bit), a progressive one at least 1 bit (its DC code). That is a
  lower bound no valid stream breaks; a header declaring 640x480 around a 16x16 image breaks it.
  Arithmetic-coded and lossless JPEGs get the size and EOI checks only.
- PNG: the IHDR, an IEND chunk (complete stream), and IDAT bytes of at least 1/1100 of the
  declared raw size (deflate cannot compress better than about 1032:1).

After decoding, callers compare the decoded size with the declared one (:func:`check_decoded`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sam_moelora_ros.errors import SamMoeLoraError

from .limits import Limits

__all__ = ["ImageHeader", "ImageHeaderError", "check_decoded", "read_header"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SOF_HUFFMAN = {0xC0: 2, 0xC1: 2, 0xC2: 1}
"""Huffman SOF markers and the fewest entropy-coded bits each 8x8 block costs."""
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}
DEFLATE_MAX_RATIO = 1100
"""Above deflate's best ratio (about 1032:1): a PNG's IDAT holds at least raw / this bytes."""
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class ImageHeaderError(SamMoeLoraError, ValueError):
    """A JPEG / PNG stream whose header is missing, cut off, or declares more than it holds."""


class ImageHeader(NamedTuple):
    """What a header declares: ``codec`` ('jpeg' / 'png'), ``height``, ``width``."""

    codec: str
    height: int
    width: int


def _be16(buf: bytes, at: int) -> int:
    return buf[at] << 8 | buf[at + 1]


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _jpeg_blocks(seg: bytes, height: int, width: int) -> int:
    """8x8 blocks of every component (non-interleaved count: a lower bound of what is coded)."""
    n = seg[5]
    comps = [(seg[7 + 3 * i] >> 4, seg[7 + 3 * i] & 15) for i in range(n) if 8 + 3 * i < len(seg)]
    if not comps:
        return 0
    hmax = max(h for h, _ in comps) or 1
    vmax = max(v for _, v in comps) or 1
    blocks = 0
    for h, v in comps:
        blocks += _ceil(_ceil(width * h, hmax), 8) * _ceil(_ceil(height * v, vmax), 8)
    return blocks


def _jpeg(buf: bytes, limits: Limits | None) -> ImageHeader:
    i, size, sof, sof_seg = 2, len(buf), 0, b""
    height = width = 0
    while True:
        while i < size and buf[i] != 0xFF:
            i += 1  # tolerate garbage between segments, as libjpeg does (with a warning)
        while i < size and buf[i] == 0xFF:
            i += 1  # fill bytes
        if i >= size:
            raise ImageHeaderError(f"JPEG ends after {size} bytes without a start of scan")
        marker = buf[i]
        i += 1
        if marker in _STANDALONE:
            continue
        if marker == 0xD9:
            raise ImageHeaderError("JPEG ends (EOI) before its start of scan")
        if i + 2 > size:
            raise ImageHeaderError(f"JPEG is cut off inside the 0xFF{marker:02X} segment")
        length = _be16(buf, i)
        if length < 2 or i + length > size:
            raise ImageHeaderError(
                f"JPEG segment 0xFF{marker:02X} declares {length} bytes, the data has "
                f"{size - i}: the stream is cut off or corrupt"
            )
        seg = buf[i + 2 : i + length]
        if marker in _SOF:
            if len(seg) < 6:
                raise ImageHeaderError("JPEG frame header (SOF) is too short")
            sof, sof_seg = marker, seg
            height, width = _be16(seg, 1), _be16(seg, 3)
        i += length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
    if not sof:
        raise ImageHeaderError("JPEG has no frame header (SOF) before its start of scan")
    if height == 0 or width == 0:
        raise ImageHeaderError(f"JPEG frame header declares an empty image {width}x{height}")
    if limits is not None:
        limits.check_image("JPEG header", height, width)
    eoi = buf.rfind(b"\xff\xd9", i)
    if eoi < 0:
        raise ImageHeaderError(
            f"JPEG of {width}x{height} has no end-of-image marker after its scan: the stream "
            f"is cut off ({size} bytes)"
        )
    bits = _SOF_HUFFMAN.get(sof)
    if bits is not None:
        blocks = _jpeg_blocks(sof_seg, height, width)
        need = _ceil(blocks * bits, 8)
        if eoi - i < need:
            raise ImageHeaderError(
                f"JPEG header declares {width}x{height} ({blocks} blocks, at least {need} "
                f"coded bytes) but its scan holds {eoi - i} bytes: the header does not describe "
                "this data"
            )
    return ImageHeader("jpeg", height, width)


def _png(buf: bytes, limits: Limits | None) -> ImageHeader:
    if len(buf) < 33 or buf[12:16] != b"IHDR":
        raise ImageHeaderError(f"PNG of {len(buf)} bytes has no IHDR chunk")
    width = int.from_bytes(buf[16:20], "big")
    height = int.from_bytes(buf[20:24], "big")
    depth, colour = buf[24], buf[25]
    if height == 0 or width == 0:
        raise ImageHeaderError(f"PNG IHDR declares an empty image {width}x{height}")
    if limits is not None:
        limits.check_image("PNG header", height, width)
    at, idat, ended = 8, 0, False
    while at + 8 <= len(buf):
        length = int.from_bytes(buf[at : at + 4], "big")
        kind = buf[at + 4 : at + 8]
        if kind == b"IDAT":
            idat += length
        if kind == b"IEND":
            ended = True
            break
        at += 12 + length
    if not ended:
        raise ImageHeaderError(
            f"PNG of {width}x{height} has no IEND chunk: the stream is cut off ({len(buf)} bytes)"
        )
    raw = height * (1 + (width * _PNG_CHANNELS.get(colour, 1) * max(depth, 1) + 7) // 8)
    if idat * DEFLATE_MAX_RATIO < raw:
        raise ImageHeaderError(
            f"PNG IHDR declares {width}x{height} ({raw} raw bytes) but its IDAT holds {idat} "
            "bytes, fewer than deflate can pack that into: the header does not describe this data"
        )
    return ImageHeader("png", height, width)


def read_header(data: bytes | np.ndarray, limits: Limits | None = None) -> ImageHeader:
    """The JPEG / PNG header of ``data`` and the completeness checks (module docstring).

    ``limits``: the declared size is checked against ``max_image_pixels`` as soon as it is
    read (a :class:`~.limits.LimitError`), before the stream checks.
    """
    buf = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    if buf[:2] == b"\xff\xd8":
        return _jpeg(buf, limits)
    if buf[:8] == _PNG_MAGIC:
        return _png(buf, limits)
    raise ImageHeaderError(f"data is neither JPEG nor PNG (first bytes {buf[:8]!r})")


def check_decoded(header: ImageHeader, image: np.ndarray) -> None:
    """Refuse a decoded image whose size is not the one its header declared."""
    got = (int(image.shape[0]), int(image.shape[1]))
    if got != (header.height, header.width):
        raise ImageHeaderError(
            f"{header.codec.upper()} decoded to {got[1]}x{got[0]} but its header declares "
            f"{header.width}x{header.height}"
        )

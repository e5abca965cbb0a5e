"""``sensor_msgs/Image`` fields <-> numpy, for every encoding cv_bridge handles.

Works on message *fields* (``height, width, encoding, is_bigendian, step, data``), so rclpy
messages, rosbags dataclasses and plain objects all go through the same code.

Behaviour follows cv_bridge's ``imgmsg_to_cv2(msg, "passthrough")`` / ``cv2_to_imgmsg``
(channel order as stored: ``bgr8`` stays BGR), except that camera formats a network cannot use
as stored are converted to RGB unless ``raw=True``:

- ``yuv422`` (= ``uyvy``, bytes U Y0 V Y1) and ``yuv422_yuy2`` (= ``yuyv``, bytes Y0 U Y1 V):
  ``H x W x 3`` RGB (BT.601, via OpenCV as cv_bridge does); raw: ``H x W x 2`` uint8.
- ``nv21`` (Y plane, then interleaved V U at half resolution): RGB; raw: ``(H*3/2) x W``.
- ``bayer_{rggb,bggr,gbrg,grbg}{8,16}``: demosaiced to RGB of the same dtype (the pattern
  names the top-left 2x2 block); raw: ``H x W``.

Generic encodings ``(8U|8S|16U|16S|32S|32F|64F)C<n>`` (and the bare depth, meaning C1) are
accepted with any ``n >= 1`` as cv_bridge does.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np

from .limits import DEFAULT_LIMITS, Limits
from .messages import build_message, message_bytes

__all__ = [
    "converts_to_rgb",
    "decoded_channel_order",
    "encoding_info",
    "image_to_numpy",
    "numpy_to_image",
]

_NAMED: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "rgba8": ("u1", 4),
    "rgb16": ("u2", 3),
    "rgba16": ("u2", 4),
    "bgr8": ("u1", 3),
    "bgra8": ("u1", 4),
    "bgr16": ("u2", 3),
    "bgra16": ("u2", 4),
    "mono8": ("u1", 1),
    "mono16": ("u2", 1),
    "yuv422": ("u1", 2),
    "uyvy": ("u1", 2),
    "yuv422_yuy2": ("u1", 2),
    "yuyv": ("u1", 2),
    "nv21": ("u1", 1),
}
_BAYER_PATTERNS = ("rggb", "bggr", "gbrg", "grbg")
for _pattern in _BAYER_PATTERNS:
    _NAMED[f"bayer_{_pattern}8"] = ("u1", 1)
    _NAMED[f"bayer_{_pattern}16"] = ("u2", 1)

_GENERIC = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)(?:C(\d+))?$")
_DEPTHS = {"8U": "u1", "8S": "i1", "16U": "u2", "16S": "i2", "32S": "i4", "32F": "f4", "64F": "f8"}

_UYVY = ("yuv422", "uyvy")
_YUYV = ("yuv422_yuy2", "yuyv")
_TO_RGB = frozenset(
    (*_UYVY, *_YUYV, "nv21", *(f"bayer_{p}{b}" for p in _BAYER_PATTERNS for b in (8, 16)))
)
"""Encodings ``image_to_numpy`` converts to RGB (the codec's own list; nobody else keeps one)."""
_BGR = frozenset(("bgr8", "bgra8", "bgr16", "bgra16"))
# OpenCV names Bayer patterns by the 2x2 block starting at (1, 1); the newer aliases name the
# top-left block like ROS does. Fall back to the old names on older OpenCV builds.
_OLD_BAYER_NAME = {"rggb": "BG", "bggr": "RG", "gbrg": "GR", "grbg": "GB"}


def _bayer_code(pattern: str) -> int:
    new = getattr(cv2, f"COLOR_Bayer{pattern.upper()}2RGB", None)
    return int(
        new if new is not None else getattr(cv2, f"COLOR_Bayer{_OLD_BAYER_NAME[pattern]}2RGB")
    )


def converts_to_rgb(encoding: str) -> bool:
    """True when ``image_to_numpy`` turns this camera format (YUV 4:2:2, NV21, Bayer) into RGB.

    Callers that accept colour images ask here instead of keeping their own list of prefixes,
    so a format added to the codec is accepted everywhere at once.
    """
    return encoding in _TO_RGB


def decoded_channel_order(encoding: str) -> Literal["rgb", "bgr"]:
    """``"bgr"`` when ``image_to_numpy`` returns this encoding in BGR(A) order, else ``"rgb"``.

    cv_bridge's passthrough keeps ``bgr8`` as stored; everything converted (see
    :func:`converts_to_rgb`), mono and generic encodings come out RGB (or single-channel).
    """
    return "bgr" if encoding in _BGR else "rgb"


def encoding_info(encoding: str) -> tuple[np.dtype, int]:
    """``(numpy dtype (native), channels as stored)`` of an image encoding, or ValueError."""
    if encoding in _NAMED:
        char, channels = _NAMED[encoding]
        return np.dtype(char), channels
    m = _GENERIC.match(encoding)
    if m is not None:
        channels = int(m.group(2)) if m.group(2) is not None else 1
        if channels >= 1:
            return np.dtype(_DEPTHS[m.group(1)]), channels
    raise ValueError(
        f"Image encoding {encoding!r} is not supported; known: {', '.join(sorted(_NAMED))} and "
        f"(8U|8S|16U|16S|32S|32F|64F)C<n>"
    )


class _Layout(NamedTuple):
    encoding: str
    height: int
    width: int
    step: int
    dtype: np.dtype
    channels: int
    rows: int
    needed: int
    buf: np.ndarray


def _layout(msg: Any, limits: Limits) -> _Layout:
    """An Image message's fields checked against each other and the budget; nothing decoded."""
    encoding = str(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype, channels = encoding_info(encoding)
    if height < 0 or width < 0:
        raise ValueError(f"Image height {height} / width {width} must not be negative")
    if height and width:
        limits.check_image("Image", height, width)
    nv21 = encoding == "nv21"
    if nv21 and (height % 2 or width % 2):
        raise ValueError(f"nv21 needs an even height and width, got {height} x {width}")
    rows = height * 3 // 2 if nv21 else height
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(
            f"Image step {step} is smaller than one row of encoding {encoding!r}: width {width} "
            f"x {channels} channel(s) x {dtype.itemsize} byte(s) = {row_bytes} bytes"
        )
    buf = message_bytes(msg.data)
    needed = rows * step
    if buf.size < needed:
        raise ValueError(
            f"Image data holds {buf.size} bytes but {rows} rows x step {step} need {needed} "
            f"(encoding {encoding!r}, {height} x {width}); the message is truncated"
        )
    return _Layout(encoding, height, width, step, dtype, channels, rows, needed, buf)


def image_size(msg: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[int, int]:
    """``(height, width)`` of an Image message whose fields :func:`image_to_numpy` would accept.

    Why: the node checks a message on arrival without decoding it (the decode happens only for
    the frames it segments); this raises the same ValueError / LimitError the decode would for
    an unknown encoding, a short ``step``, truncated data or a size over the budget.
    """
    layout = _layout(msg, limits)
    return layout.height, layout.width


def image_to_numpy(msg: Any, *, raw: bool = False, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode an Image message (any object with its fields) into a native-endian array.

    Returns ``H x W`` for one channel, ``H x W x C`` otherwise (see the module docstring for
    YUV / Bayer / NV21). Little-endian data on a little-endian host, and 8-bit data always, come
    back as a *view* of ``msg.data`` (read-only when ``data`` is ``bytes``; call ``.copy()`` to
    own it); byte-swapped, unaligned (odd ``step``) and converted data are new arrays. Row
    padding (``step`` larger than a row) is skipped by strides. Raises ValueError naming the
    field and the numbers for an unknown encoding, a ``step`` smaller than a row, or ``data``
    shorter than ``height * step``; :class:`~.limits.LimitError` for a ``height x width`` over
    ``limits.max_image_pixels`` (checked first: conversions allocate at that size).
    """
    encoding, _, width, step, dtype, channels, rows, needed, buf = _layout(msg, limits)
    nv21 = encoding == "nv21"
    stored = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    arr = np.ndarray(
        shape=(rows, width, channels),
        dtype=stored,
        buffer=buf[:needed] if needed else np.zeros(1, np.uint8),
        strides=(step, channels * dtype.itemsize, dtype.itemsize),
    )
    if not stored.isnative:
        arr = arr.astype(dtype)
    elif not arr.flags.aligned or step % dtype.itemsize:
        # An odd step (or buffer offset) leaves elements unaligned; OpenCV and torch misread or
        # reject such views, so pay for one copy in this rare case.
        arr = np.ascontiguousarray(arr)
    if encoding in _UYVY or encoding in _YUYV:
        if raw:
            return arr
        if width % 2:
            raise ValueError(f"{encoding} needs an even width, got {width}")
        code = cv2.COLOR_YUV2RGB_UYVY if encoding in _UYVY else cv2.COLOR_YUV2RGB_YUY2
        return cv2.cvtColor(arr, code)
    if channels == 1:
        arr = arr[:, :, 0]
    if raw:
        return arr
    if nv21:
        return cv2.cvtColor(arr, cv2.COLOR_YUV2RGB_NV21)
    if encoding.startswith("bayer_"):
        return cv2.cvtColor(arr, _bayer_code(encoding[6:10]))
    return arr


def _bt601_limited(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB (uint8) -> Y, U (Cb), V (Cr) as float, BT.601 limited range (what OpenCV decodes)."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return y, u, v


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _rgb_to_yuv422(rgb: np.ndarray, uyvy: bool) -> np.ndarray:
    """RGB ``H x W x 3`` uint8 -> packed 4:2:2 ``H x W x 2`` (chroma averaged per pixel pair)."""
    h, w = rgb.shape[:2]
    if w % 2:
        raise ValueError(f"4:2:2 encodings need an even width, got {w}")
    y, u, v = _bt601_limited(rgb)
    u2 = (u[:, 0::2] + u[:, 1::2]) / 2.0
    v2 = (v[:, 0::2] + v[:, 1::2]) / 2.0
    out = np.empty((h, w, 2), dtype=np.uint8)
    luma, chroma = (1, 0) if uyvy else (0, 1)
    out[:, :, luma] = _u8(y)
    out[:, 0::2, chroma] = _u8(u2)
    out[:, 1::2, chroma] = _u8(v2)
    return out


def _rgb_to_nv21(rgb: np.ndarray) -> np.ndarray:
    """RGB ``H x W x 3`` uint8 -> NV21 ``(H*3/2) x W`` (chroma averaged over 2x2 blocks)."""
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"nv21 needs an even height and width, got {h} x {w}")
    y, u, v = _bt601_limited(rgb)

    def pool(c: np.ndarray) -> np.ndarray:
        return (c[0::2, 0::2] + c[0::2, 1::2] + c[1::2, 0::2] + c[1::2, 1::2]) / 4.0

    out = np.empty((h * 3 // 2, w), dtype=np.uint8)
    out[:h] = _u8(y)
    out[h:, 0::2] = _u8(pool(v))
    out[h:, 1::2] = _u8(pool(u))
    return out


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """RGB ``H x W x 3`` -> Bayer ``H x W``: each site keeps the colour its filter passes."""
    out = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    for i, colour in enumerate(pattern):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(colour)]
    return out


def numpy_to_image(
    array: np.ndarray,
    encoding: str,
    msg_type: Any = None,
    header: Any = None,
    *,
    typestore: Any = None,
    is_bigendian: bool | None = None,
) -> Any:
    """Encode an array as an Image message; the inverse of ``image_to_numpy``.

    ``array``: ``H x W`` / ``H x W x C`` of exactly the encoding's dtype (no silent casts, as
    cv_bridge). For ``yuv422``/``yuv422_yuy2`` either the raw ``H x W x 2`` or an RGB ``H x W x 3``
    uint8 (encoded, chroma subsampled, so lossy); for ``bayer_*`` the raw ``H x W`` or RGB
    (mosaiced); for ``nv21`` the raw ``(H*3/2) x W`` or RGB. ``msg_type``: None (plain
    namespace), an rclpy class or a rosbags class; see ``messages.py``, which also explains
    ``typestore``. ``is_bigendian``: None writes host order; True/False forces one.
    Rows are packed (``step = W * C * itemsize``).
    """
    arr = np.asarray(array)
    dtype, channels = encoding_info(encoding)
    rgb_in = arr.ndim == 3 and arr.shape[2] == 3
    if encoding in _UYVY or encoding in _YUYV:
        if rgb_in and arr.dtype == np.uint8:
            arr = _rgb_to_yuv422(arr, encoding in _UYVY)
    elif encoding.startswith("bayer_") and rgb_in and arr.dtype.newbyteorder("=") == dtype:
        arr = _mosaic(arr, encoding[6:10])
    elif encoding == "nv21" and rgb_in and arr.dtype == np.uint8:
        arr = _rgb_to_nv21(arr)
    if channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    shape_ok = (arr.ndim == 2) if channels == 1 else (arr.ndim == 3 and arr.shape[2] == channels)
    if not shape_ok or arr.dtype.newbyteorder("=") != dtype:
        want = "H x W" if channels == 1 else f"H x W x {channels}"
        raise ValueError(
            f"encoding {encoding!r} needs a {want} array of dtype {dtype}, got shape "
            f"{arr.shape} dtype {arr.dtype}"
        )
    rows, width = arr.shape[:2]
    height = rows
    if encoding == "nv21":
        if rows % 3 or width % 2:
            raise ValueError(f"raw nv21 needs (H*3/2) x W with even H and W, got {arr.shape}")
        height = rows * 2 // 3
    big = sys.byteorder == "big" if is_bigendian is None else bool(is_bigendian)
    target = dtype.newbyteorder(">" if big else "<")
    payload = np.ascontiguousarray(arr.astype(target, copy=False))
    fields = {
        "height": int(height),
        "width": int(width),
        "encoding": encoding,
        "is_bigendian": int(big),
        "step": int(width * channels * dtype.itemsize),
    }
    return build_message(msg_type, header, fields, payload, typestore=typestore)

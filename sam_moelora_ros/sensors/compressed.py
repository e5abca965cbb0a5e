"""``sensor_msgs/CompressedImage`` (JPEG, PNG, compressedDepth PNG / RVL) <-> numpy, via OpenCV.

Why: robots record and stream cameras through image_transport's ``compressed`` and
``compressedDepth`` transports, not raw Images. This module reads the message *fields*
(``format``, ``data``), so rclpy, rosbags and plain messages share one path, and it follows
image_transport_plugins (``compressed_image_transport``, ``compressed_depth_image_transport``):

- ``format`` ``"<encoding>; <jpeg|png> compressed <target>"`` (e.g. ``"rgb8; jpeg compressed
  bgr8"``): the data holds the image converted to ``target`` (OpenCV stores BGR), the first
  token names the original encoding. Decoding returns the array in the *original* channel order
  (``rgb8`` -> RGB), at the bit depth the data holds (``"rgb16; jpeg compressed bgr8"`` gives
  ``rgb8``). Older publishers write plain ``"jpeg"`` / ``"png"``: OpenCV's order is returned
  (``bgr8``, ``bgra8``, ``mono8``, or the 16-bit forms).
- ``"<16UC1|mono16|32FC1>; compressedDepth <png|rvl>"`` (bare ``compressedDepth`` = png): a
  12-byte ``ConfigHeader`` (int32 format, float32 depthParam[2]), then a 16-bit PNG or an RVL
  stream (``uint32 cols, rows`` + words, see ``rvl.py``). 16-bit depth comes back as stored
  (millimetres); ``32FC1`` was stored as quantised inverse depth and is decoded exactly as the
  plugin does, in float32: ``depth = depthParam[0] / (value - depthParam[1])``, value 0 -> NaN.

Sizes are checked before anything is allocated (``image_header.py``, ``limits.py``): the
JPEG/PNG header's width x height and RVL's ``cols x rows`` must be within
``limits.max_image_pixels``, a stream cut short or whose header does not describe its data is
refused, and so is a decoded image whose size differs from its header. Nothing is filled grey.

Errors are :class:`CompressedImageError` (a ValueError) naming the format and the fix.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from sam_moelora_ros.errors import SamMoeLoraError

from .image import encoding_info
from .image_header import ImageHeaderError, check_decoded, read_header
from .limits import DEFAULT_LIMITS, LimitError, Limits
from .messages import build_message, message_bytes
from .rvl import RvlError, rvl_decode, rvl_encode

__all__ = [
    "SUPPORTED_FORMATS",
    "CompressedImageError",
    "decode_compressed",
    "decode_compressed_depth",
    "decode_compressed_image",
    "encode_compressed_depth",
    "encode_compressed_image",
]

SUPPORTED_FORMATS = (
    "'<encoding>; jpeg compressed <target>'",
    "'<encoding>; png compressed <target>'",
    "'jpeg'",
    "'png'",
    "'16UC1; compressedDepth png'",
    "'32FC1; compressedDepth png'",
    "'16UC1; compressedDepth rvl'",
    "'32FC1; compressedDepth rvl'",
)
_CODECS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
_DEPTH_CODECS = ("png", "rvl")
_HEADER = struct.Struct("<iff")  # compressed_depth_image_transport ConfigHeader: 12 bytes
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RVL_MAX_BYTES_PER_PIXEL = 4
"""RVL's worst case: a zero run, a non-zero run and a 6-nibble delta per pixel (8 nibbles)."""
# Channel order of the named colour / mono encodings (bayer and generic ones are kept as is).
_ORDERS = {"rgb": "rgb", "rgba": "rgba", "bgr": "bgr", "bgra": "bgra", "mono": "l"}


class CompressedImageError(SamMoeLoraError, ValueError):
    """A CompressedImage whose format is unknown or whose data does not decode."""


def _fail(fmt: str, problem: str) -> CompressedImageError:
    return CompressedImageError(
        f"CompressedImage format {fmt!r}: {problem}. Supported formats: "
        f"{', '.join(SUPPORTED_FORMATS)}"
    )


def _order(encoding: str) -> str | None:
    """Channel letters of a named colour / mono encoding (``"rgb"``, ``"l"``), else None."""
    stem = encoding.rstrip("0123456789")
    return _ORDERS.get(stem) if stem != encoding else None


def _parse(fmt: str) -> tuple[str | None, str, str | None]:
    """``(original encoding or None, codec, target encoding or None)`` of an image format."""
    head, sep, rest = fmt.partition(";")
    if not sep:
        codec = _CODECS.get(head.strip().lower())
        if codec is None:
            raise _fail(fmt, "no codec named (expected 'jpeg' or 'png', or '<encoding>; ...')")
        return None, codec, None
    original = head.strip()
    tokens = rest.split()
    if not tokens or tokens[0].lower() not in _CODECS:
        raise _fail(fmt, f"unknown codec {tokens[0] if tokens else ''!r} after ';'")
    if len(tokens) > 1 and tokens[1] != "compressed":
        raise _fail(fmt, f"expected 'compressed' after the codec, got {tokens[1]!r}")
    if len(tokens) > 3:
        raise _fail(fmt, f"unexpected words after the target encoding: {tokens[3:]}")
    target = tokens[2] if len(tokens) > 2 else None
    for name in (original, target):
        if name is not None:
            try:
                encoding_info(name)
            except ValueError as exc:
                raise _fail(fmt, f"{exc}") from None
    return original, _CODECS[tokens[0].lower()], target


def _checked_header(data: np.ndarray, fmt: str, limits: Limits) -> Any:
    """A JPEG/PNG stream's header (``image_header.read_header``), checked against ``limits``."""
    if data.size == 0:
        raise _fail(fmt, "data is empty")
    try:
        return read_header(data, limits)
    except (ImageHeaderError, LimitError) as exc:
        raise _fail(fmt, str(exc)) from None


def _imdecode(data: np.ndarray, fmt: str, limits: Limits) -> np.ndarray:
    """Header read and checked against the budget first, then decoded, then size-checked."""
    header = _checked_header(data, fmt, limits)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise _fail(
            fmt,
            f"OpenCV cannot decode the {data.size} data bytes (first bytes "
            f"{bytes(data[:8])!r}); the data is not a JPEG/PNG stream or is cut off",
        )
    try:
        check_decoded(header, image)
    except ImageHeaderError as exc:
        raise _fail(fmt, str(exc)) from None
    return image


def _name(order: str, dtype: np.dtype) -> str:
    bits = 8 * dtype.itemsize
    return f"mono{bits}" if order == "l" else f"{order}{bits}"


def decode_compressed_image(msg: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[np.ndarray, str]:
    """Decode a JPEG / PNG CompressedImage into ``(array, encoding)``.

    ``array``: ``H x W`` (one channel) or ``H x W x C``, in the channel order of the format's
    first token (``"rgb8; jpeg compressed bgr8"`` -> RGB, encoding ``"rgb8"``); ``encoding``
    names exactly what ``array`` holds. A colour original decoded from a 3-channel JPEG gains an
    opaque alpha if the original had one (as the plugin's ``cvtColor(BGR2RGBA)``).
    """
    fmt = str(msg.format)
    if "compressedDepth" in fmt:
        raise _fail(fmt, "this is a compressedDepth image: use decode_compressed_depth")
    original, _, target = _parse(fmt)
    image = _imdecode(message_bytes(msg.data), fmt, limits)
    channels = 1 if image.ndim == 2 else image.shape[2]
    stored = {1: "l", 3: "bgr", 4: "bgra"}.get(channels)
    if target is not None and _order(target) is not None:
        stored = _order(target)
    if stored is None or (target is not None and len(stored) != channels):
        raise _fail(fmt, f"data decodes to {channels} channel(s), not what {target!r} holds")
    if original is None:
        return image, _name(stored, image.dtype)
    want = _order(original)
    if want is None:  # bayer / generic encodings: stored as is, must match exactly
        dtype, n = encoding_info(original)
        if n != channels or dtype != image.dtype:
            raise _fail(
                fmt, f"data decodes to {channels} x {image.dtype}, {original!r} is {n} x {dtype}"
            )
        return image, original
    if (want == "l") != (stored == "l"):
        raise _fail(
            fmt,
            f"data decodes to {channels} channel(s) but {original!r} is "
            f"{'mono' if want == 'l' else 'colour'}",
        )
    if want == stored:
        return image, _name(want, image.dtype)
    if len(want) == len(stored) == 3 and want == stored[::-1]:  # rgb <-> bgr
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), _name(want, image.dtype)
    top = np.iinfo(image.dtype).max
    planes = [
        image[..., stored.index(c)] if c in stored else np.full(image.shape[:2], top, image.dtype)
        for c in want
    ]
    return np.ascontiguousarray(np.stack(planes, axis=-1)), _name(want, image.dtype)


def _depth_format(fmt: str) -> tuple[str, str]:
    """``(original encoding, 'png' | 'rvl')`` of a compressedDepth format."""
    head, _, rest = fmt.partition(";")
    original = head.strip()
    tokens = rest.split()
    if not tokens or tokens[0] != "compressedDepth":
        raise _fail(fmt, "expected '<encoding>; compressedDepth [png|rvl]'")
    codec = tokens[1].lower() if len(tokens) > 1 else "png"  # older publishers: png only
    if codec not in _DEPTH_CODECS or len(tokens) > 2:
        raise _fail(fmt, f"unknown compressedDepth codec {' '.join(tokens[1:])!r}")
    try:
        dtype, channels = encoding_info(original)
    except ValueError as exc:
        raise _fail(fmt, str(exc)) from None
    if channels != 1 or (dtype.itemsize, dtype.kind) not in ((2, "u"), (4, "f")):
        raise _fail(
            fmt,
            f"{original!r} cannot be compressedDepth; it takes 16-bit unsigned "
            "(16UC1, mono16) or 32FC1 single-channel depth",
        )
    return original, codec


def decode_compressed_depth(msg: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[np.ndarray, str]:
    """Decode a ``compressedDepth`` CompressedImage into ``(H x W array, original encoding)``.

    16-bit depth: uint16 as stored (REP 118 millimetres, 0 = no return). ``32FC1``: float32
    metres, NaN where the quantised inverse depth is 0 (no return or beyond ``depth_max``).
    """
    fmt = str(msg.format)
    original, codec = _depth_format(fmt)
    data = message_bytes(msg.data)
    if data.size <= _HEADER.size:
        raise _fail(fmt, f"data holds {data.size} bytes, no room for the 12-byte ConfigHeader")
    kind, quant_a, quant_b = _HEADER.unpack_from(data[: _HEADER.size].tobytes())
    payload = data[_HEADER.size :]
    if codec == "png":
        if payload[:8].tobytes() != _PNG_MAGIC:
            raise _fail(
                fmt,
                f"data after the 12-byte header is not a PNG (starts {payload[:8].tobytes()!r})",
            )
        image = _imdecode(payload, fmt, limits)
    else:
        rows, cols = _rvl_size(payload, fmt, limits)
        most = RVL_MAX_BYTES_PER_PIXEL * cols * rows + 16
        if payload.size - 8 > most:
            raise _fail(
                fmt,
                f"RVL stream of {payload.size - 8} bytes is longer than a {cols}x{rows} image "
                f"can need ({most}): the size prefix does not describe this data",
            )
        try:
            image = rvl_decode(payload[8:], cols * rows).reshape(rows, cols)
        except RvlError as exc:
            raise _fail(fmt, str(exc)) from None
    if image.ndim != 2 or image.dtype != np.uint16:
        raise _fail(
            fmt, f"data decodes to {image.shape} {image.dtype}, expected 16-bit single-channel"
        )
    if encoding_info(original)[0].itemsize == 2:
        return image, original
    if kind != 0:  # compressed_depth_image_transport's INV_DEPTH
        raise _fail(fmt, f"ConfigHeader format {kind} is not INV_DEPTH (0) for 32FC1 depth")
    a, b = np.float32(quant_a), np.float32(quant_b)
    with np.errstate(divide="ignore"):
        depth = a / (image.astype(np.float32) - b)
    depth[image == 0] = np.nan
    return depth, original


def decode_compressed(msg: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[np.ndarray, str]:
    """Either decoder, chosen by ``msg.format``: ``compressedDepth`` or JPEG / PNG."""
    if "compressedDepth" in str(msg.format):
        return decode_compressed_depth(msg, limits)
    return decode_compressed_image(msg, limits)


def _message(msg_type: Any, header: Any, fmt: str, data: np.ndarray, typestore: Any) -> Any:
    return build_message(msg_type, header, {"format": fmt}, data, typestore=typestore)


def encode_compressed_image(
    image: np.ndarray,
    encoding: str,
    codec: str = "jpeg",
    *,
    quality: int = 95,
    png_level: int = 3,
    header: Any = None,
    msg_type: Any = None,
    typestore: Any = None,
) -> Any:
    """A CompressedImage as image_transport's ``compressed`` publisher writes it.

    ``image`` in ``encoding``'s channel order; colour images are converted to ``bgr8`` / ``bgra8``
    (``bgr16``/``bgra16`` for 16-bit PNG) and the format reads ``"<encoding>; <codec>
    compressed <target>"``; mono images keep their encoding as the target. ``msg_type``: None,
    an rclpy or a rosbags CompressedImage class (see ``messages.py``).
    """
    if codec not in ("jpeg", "png"):
        raise CompressedImageError(f"codec must be 'jpeg' or 'png', got {codec!r}")
    dtype, channels = encoding_info(encoding)
    arr = np.asarray(image)
    if arr.dtype != dtype or (arr.shape[2] if arr.ndim == 3 else 1) != channels:
        raise CompressedImageError(
            f"image {arr.shape} {arr.dtype} does not hold {encoding!r} ({channels} x {dtype})"
        )
    if codec == "jpeg" and dtype != np.uint8:
        raise CompressedImageError(f"JPEG holds 8-bit images only; {encoding!r} is {dtype}")
    order = _order(encoding)
    if order is None or order == "l":
        target, stored = encoding, arr
    else:
        target_order = "bgr" if codec == "jpeg" or len(order) == 3 else "bgra"
        target = _name(target_order, dtype)
        planes = [arr[..., order.index(c)] for c in target_order]
        stored = np.ascontiguousarray(np.stack(planes, axis=-1))
    params = (
        [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        if codec == "jpeg"
        else [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)]
    )
    ok, buf = cv2.imencode(".jpg" if codec == "jpeg" else ".png", stored, params)
    if not ok:
        raise CompressedImageError(f"OpenCV could not encode {encoding!r} as {codec}")
    fmt = f"{encoding}; {codec} compressed {target}"
    return _message(msg_type, header, fmt, buf.reshape(-1), typestore)


def encode_compressed_depth(
    depth: np.ndarray,
    encoding: str = "16UC1",
    codec: str = "png",
    *,
    depth_max: float = 10.0,
    depth_quantization: float = 100.0,
    png_level: int = 9,
    header: Any = None,
    msg_type: Any = None,
    typestore: Any = None,
) -> Any:
    """A CompressedImage as ``compressed_depth_image_transport`` writes it (its defaults).

    ``16UC1``/``mono16``: uint16 millimetres; values above ``depth_max`` metres become 0.
    ``32FC1``: float32 metres quantised to inverse depth in float32 arithmetic with
    ``A = q (q + 1)``, ``B = 1 - A / depth_max`` (``q = depth_quantization``):
    ``value = trunc(A / depth + B)`` where ``depth < depth_max``, else 0; values the plugin's
    uint16 cast cannot hold (depth <= 0 or closer than ``A / 65535``) are stored as 0 too.
    """
    original, codec = _depth_format(f"{encoding}; compressedDepth {codec}")
    arr = np.asarray(depth)
    kind, quant_a, quant_b = 0, 0.0, 0.0
    if encoding_info(original)[0].itemsize == 2:
        if arr.dtype != np.uint16 or arr.ndim != 2:
            raise CompressedImageError(f"{original} depth must be H x W uint16, got {arr.dtype}")
        stored = np.where(arr > np.uint16(min(int(depth_max * 1000.0), 65535)), 0, arr)
        stored = stored.astype(np.uint16)
    else:
        if arr.dtype != np.float32 or arr.ndim != 2:
            raise CompressedImageError(f"32FC1 depth must be H x W float32, got {arr.dtype}")
        q = np.float32(depth_quantization)
        quant_a = np.float32(q * (q + np.float32(1.0)))
        quant_b = np.float32(np.float32(1.0) - quant_a / np.float32(depth_max))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = quant_a / arr + quant_b
            ok = (arr < np.float32(depth_max)) & (value >= 1.0) & (value < 65536.0)
        stored = np.where(ok, value, 0).astype(np.uint16)
    if codec == "png":
        good, buf = cv2.imencode(".png", stored, [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
        if not good:
            raise CompressedImageError("OpenCV could not encode the depth PNG")
        payload = buf.reshape(-1).tobytes()
    else:
        rows, cols = stored.shape
        payload = struct.pack("<II", cols, rows) + rvl_encode(stored)
    data = _HEADER.pack(kind, float(quant_a), float(quant_b)) + payload
    fmt = f"{original}; compressedDepth {codec}"
    return _message(msg_type, header, fmt, np.frombuffer(data, np.uint8), typestore)


def _rvl_size(payload: np.ndarray, fmt: str, limits: Limits) -> tuple[int, int]:
    """``(rows, cols)`` from an RVL stream's 8-byte prefix, checked against ``limits``."""
    if payload.size < 8:
        raise _fail(fmt, "RVL data lacks its 8-byte cols/rows prefix")
    cols, rows = struct.unpack_from("<II", payload[:8].tobytes())
    if cols == 0 or rows == 0:
        raise _fail(fmt, f"RVL image reports an impossible size {cols} x {rows}")
    try:
        limits.check_image("RVL header", rows, cols)
    except LimitError as exc:
        raise _fail(fmt, str(exc)) from None
    return int(rows), int(cols)


def compressed_size(msg: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[int, int]:
    """``(height, width)`` a CompressedImage declares, its format and header checked, not decoded.

    Why: the node checks a message on arrival and decodes it only for the frames it segments.
    This reads what the decoders read first (the format string, a JPEG's SOF / a PNG's IHDR with
    the stream checks of ``image_header``, RVL's size prefix) and raises the same
    :class:`CompressedImageError` for a bad format, a cut-off or lying header, or a size over
    ``limits.max_image_pixels``.
    """
    fmt = str(msg.format)
    data = message_bytes(msg.data)
    if "compressedDepth" in fmt:
        _, codec = _depth_format(fmt)
        if data.size <= _HEADER.size:
            raise _fail(fmt, f"data holds {data.size} bytes, no room for the 12-byte ConfigHeader")
        payload = data[_HEADER.size :]
        if codec == "rvl":
            return _rvl_size(payload, fmt, limits)
        data = payload
    else:
        _parse(fmt)
    header = _checked_header(data, fmt, limits)
    return header.height, header.width

"""Depth images in REP 118 form: float32 metres, NaN where there is no valid measurement.

REP 118 allows two encodings: ``16UC1`` in millimetres (0 = no return) and ``32FC1`` in metres
(NaN = no return, -Inf = too close, +Inf = too far). The network has no use for the difference
between kinds of invalid, so all of them become NaN; the valid mask is ``np.isfinite(depth)``.
``mono16`` (some drivers) is read as millimetres and ``64FC1`` as metres.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["depth_msg_to_meters", "depth_to_meters", "meters_to_depth", "valid_depth_mask"]

_MILLIMETRES = ("16UC1", "mono16")
_METRES = ("32FC1", "64FC1")


def depth_to_meters(array: np.ndarray, encoding: str) -> np.ndarray:
    """``H x W`` depth in ``encoding`` -> ``H x W`` float32 metres, invalid (0, NaN, +-Inf) = NaN.

    Negative float values are physically impossible and are treated as invalid too.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise ValueError(f"depth image must be H x W, got shape {arr.shape}")
    if encoding in _MILLIMETRES:
        if arr.dtype.kind != "u" or arr.dtype.itemsize != 2:
            raise ValueError(f"depth encoding {encoding!r} needs uint16 data, got {arr.dtype}")
        metres = arr.astype(np.float32) * np.float32(0.001)
        metres[arr == 0] = np.nan
        return metres
    if encoding in _METRES:
        if arr.dtype.kind != "f":
            raise ValueError(f"depth encoding {encoding!r} needs float data, got {arr.dtype}")
        metres = arr.astype(np.float32)  # a copy: the message buffer is never modified
        metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
        return metres
    raise ValueError(
        f"depth encoding {encoding!r} is not a REP 118 depth encoding; use one of "
        f"{', '.join(_MILLIMETRES + _METRES)}"
    )


def depth_msg_to_meters(msg: Any) -> np.ndarray:
    """Decode a depth Image message (any flavour) straight to float32 metres."""
    from .image import image_to_numpy

    return depth_to_meters(image_to_numpy(msg), str(msg.encoding))


def valid_depth_mask(depth_m: np.ndarray) -> np.ndarray:
    """``H x W`` bool: True where ``depth_to_meters`` output holds a measurement."""
    return np.isfinite(depth_m)


def meters_to_depth(depth_m: np.ndarray, encoding: str = "16UC1") -> np.ndarray:
    """Float metres -> an array for ``numpy_to_image(..., encoding)``; the inverse direction.

    ``16UC1``: rounded millimetres, invalid -> 0; depths beyond 65.535 m cannot be stored and
    become 0 (invalid) rather than a wrong saturated value. ``32FC1``: float32, invalid -> NaN.
    """
    d = np.asarray(depth_m, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0)
    if encoding == "16UC1":
        mm = np.rint(np.where(valid, d, 0.0) * 1000.0)
        mm[(mm > 65535) | ~valid] = 0
        return mm.astype(np.uint16)
    if encoding == "32FC1":
        return np.where(valid, d, np.nan).astype(np.float32)
    raise ValueError(f"meters_to_depth writes '16UC1' or '32FC1', got {encoding!r}")

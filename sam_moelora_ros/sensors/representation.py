"""Network-input images: every non-RGB modality as an ``H x W x 3 uint8`` image.

Why one module: the synthetic-scene generator writes DELIVER-layout PNGs with exactly these
functions, and the node calls them on live messages, so training data and robot input go through
one code path. The bit-depth and channel rules they share with camera images (and the
event-frame conversion, re-exported here for existing importers) live in ``network_input.py``.
The model divides by 255 later; nothing here is per-frame normalised except the event
representations (whose scale depends on the window length, see ``events.py``).

Conventions shared by every function here:

- Output: ``H x W x 3`` ``uint8``, C-contiguous, at the camera's size (the input's ``H x W``).
- ``0`` means *invalid / no measurement* in depth and LiDAR images; a valid measurement is
  mapped into ``1..255`` so that it can never be confused with a hole.
- Metric values are scaled linearly against a fixed ``max_range`` (not per image), so the same
  distance gives the same grey level in every frame and in every dataset split.
"""

from __future__ import annotations

import cv2
import numpy as np

from .events import events_to_representation
from .network_input import event_frame_to_network_image, to_three_channels

__all__ = [
    "depth_to_network_image",
    "event_frame_to_network_image",
    "events_to_representation",
    "lidar_to_network_image",
    "scale_valid_to_uint8",
]


def scale_valid_to_uint8(values: np.ndarray, max_value: float) -> np.ndarray:
    """Scale non-negative metric values into ``1..255`` and invalid ones to ``0``.

    ``values``: any shape, float. Valid = finite and ``> 0`` (REP 118: 0, NaN and +-Inf are
    invalid). A valid ``v`` becomes ``1 + round(254 * min(v, max_value) / max_value)``: linear,
    saturating at ``max_value``, so near is dark and far is bright, and ``0`` stays "no data".
    Returns ``uint8`` of the same shape.
    """
    if not max_value > 0:
        raise ValueError(f"max_value must be > 0, got {max_value}")
    v = np.asarray(values, dtype=np.float32)
    valid = np.isfinite(v) & (v > 0)
    scaled = np.minimum(np.where(valid, v, 0.0), max_value) * np.float32(254.0 / max_value)
    out = np.rint(scaled).astype(np.uint8) + np.uint8(1)
    out[~valid] = 0
    return out


def depth_to_network_image(depth_m: np.ndarray, max_range: float = 80.0) -> np.ndarray:
    """A metric depth image as the network's 3-channel input.

    ``depth_m``: ``H x W`` float metres (``depth_to_meters`` output; NaN/0/Inf = invalid).
    Returns ``H x W x 3`` uint8 with all three channels equal (DELIVER style):
    ``1 + round(254 * min(d, max_range) / max_range)`` for valid depth, ``0`` where invalid.
    With the default 80 m, one grey level is ~0.31 m.
    """
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ValueError(f"depth_m must be H x W, got shape {depth_m.shape}")
    return to_three_channels(scale_valid_to_uint8(depth_m, max_range))


def _nearest_fill(
    depth: np.ndarray, intensity: np.ndarray | None, radius: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fill holes with the nearest (smallest depth) valid neighbour within ``radius`` pixels.

    Only pixels that are invalid in ``depth`` are filled; measured pixels never change. A loop
    over the ``(2r+1)^2`` window offsets (not over pixels or points) keeps it vectorised; ties
    go to the first offset in row-major order, so the result is deterministic.
    """
    h, w = depth.shape
    inf = np.float32(np.inf)
    d = np.array(depth, dtype=np.float32)  # a copy, changed in place from here on
    hole = ~((d > 0) & (d < inf))  # NaN compares False: a hole too
    d[hole] = inf
    if intensity is None:  # depth only: a min filter (OpenCV erode) is the same and ~20x faster
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), dtype=np.uint8)
        eroded = cv2.erode(d, kernel, borderType=cv2.BORDER_REPLICATE)  # replicate: no new values
        np.copyto(d, eroded, where=hole)  # measured pixels never change
        d[d == inf] = np.nan
        return d, None
    pad_d = np.pad(d, radius, constant_values=inf)
    pad_i = None if intensity is None else np.pad(intensity.astype(np.float32), radius)
    best_d = np.full((h, w), inf, dtype=np.float32)
    best_i = None if intensity is None else np.zeros((h, w), dtype=np.float32)
    better = np.empty((h, w), dtype=bool)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            cand = pad_d[dy : dy + h, dx : dx + w]
            np.less(cand, best_d, out=better)
            np.copyto(best_d, cand, where=better)  # in place: no temporaries per offset
            if best_i is not None and pad_i is not None:
                np.copyto(best_i, pad_i[dy : dy + h, dx : dx + w], where=better)
    hole = ~np.isfinite(d)
    filled_d = np.where(hole, best_d, d)
    filled_d[~np.isfinite(filled_d)] = np.nan
    filled_i = None
    if intensity is not None and best_i is not None:
        filled_i = np.where(hole, best_i, intensity.astype(np.float32))
    return filled_d, filled_i


def lidar_to_network_image(
    sparse_depth_m: np.ndarray,
    intensity: np.ndarray | None = None,
    max_range: float = 80.0,
    *,
    fill_radius: int = 1,
    max_intensity: float = 255.0,
) -> np.ndarray:
    """A projected LiDAR scan as a 3-channel range image.

    ``sparse_depth_m``: ``H x W`` float metres, NaN where no point landed (``project_points``
    output). ``intensity``: optional ``H x W`` float, the winning point's intensity per pixel.

    Densification: holes are filled from the nearest valid neighbour within ``fill_radius``
    pixels (default 1, i.e. a 3x3 window; 0 disables), taking that neighbour's depth *and*
    intensity, so a sparse scan becomes less speckled without inventing far-away values.

    Channels: 0 and 1 = range, scaled like ``depth_to_network_image``
    (``1 + round(254 * min(d, max_range) / max_range)``); 2 = intensity scaled as
    ``1 + round(254 * min(i, max_intensity) / max_intensity)`` (a return with intensity 0 is
    still 1), or the range again when ``intensity`` is None. Pixels without any point: 0 in all
    channels. Returns ``H x W x 3`` uint8.
    """
    depth = np.asarray(sparse_depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"sparse_depth_m must be H x W, got shape {depth.shape}")
    inten = None
    if intensity is not None:
        inten = np.asarray(intensity, dtype=np.float32)
        if inten.shape != depth.shape:
            raise ValueError(
                f"intensity shape {inten.shape} must match sparse_depth_m shape {depth.shape}"
            )
    if fill_radius < 0:
        raise ValueError(f"fill_radius must be >= 0, got {fill_radius}")
    if fill_radius > 0:
        depth, inten = _nearest_fill(depth, inten, fill_radius)
    rng = scale_valid_to_uint8(depth, max_range)
    if inten is None:
        return cv2.merge([rng, rng, rng])  # one interleaving pass (3 strided numpy writes: 10x)
    if not max_intensity > 0:
        raise ValueError(f"max_intensity must be > 0, got {max_intensity}")
    i = np.clip(np.nan_to_num(inten, nan=0.0), 0.0, max_intensity)
    ich = np.rint(i * np.float32(254.0 / max_intensity)).astype(np.uint8) + np.uint8(1)
    return cv2.merge([rng, rng, np.where(rng > 0, ich, 0).astype(np.uint8)])

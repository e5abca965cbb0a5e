"""Event-camera streams -> the 3-channel image the network takes.

Two representations, both vectorised with ``np.bincount`` (no Python loop over events; 1 M
events take a few tens of milliseconds):

- ``kind="frame"``: a polarity event frame, positive and negative counts in separate channels
  (as DELIVER's event images).
- ``kind="voxel"``: a signed, time-binned voxel grid (Zhu et al. 2019 / E2VID), one time bin per
  channel, centred at 128.

Event streams come as four equally long 1-D arrays ``x, y, t, p`` (pixel column, pixel row,
timestamp in any unit, polarity), e.g. from an event ``PointCloud2`` via ``events_from_cloud``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "event_counts",
    "events_from_cloud",
    "events_to_representation",
    "events_to_voxel_grid",
]

_ROBUST_PERCENTILE = 99.0


def _pixel_index(
    x: np.ndarray, y: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Linear pixel index ``y * W + x`` of in-image events, and the keep mask.

    Float coordinates are rounded to the nearest pixel centre; events outside the image are
    dropped (the mask says which were kept).
    """
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be (H, W) with H, W > 0, got {size}")
    xs = np.asarray(x)
    ys = np.asarray(y)
    if np.issubdtype(xs.dtype, np.floating):
        xs = np.rint(xs)
    if np.issubdtype(ys.dtype, np.floating):
        ys = np.rint(ys)
    xi = xs.astype(np.int64, copy=False)
    yi = ys.astype(np.int64, copy=False)
    keep = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    if not keep.all():
        xi, yi = xi[keep], yi[keep]
    return yi * w + xi, keep


def _check_lengths(**arrays: np.ndarray) -> int:
    lengths = {name: np.asarray(a).reshape(-1).shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"event arrays must have equal lengths, got {detail}")
    return next(iter(lengths.values()))


def event_counts(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel positive and negative event counts, each ``H x W`` int64.

    Polarity: ``p > 0`` is positive (accepts bool, {0, 1} and {-1, +1}); anything else negative.
    """
    _check_lengths(x=x, y=y, p=p)
    h, w = int(size[0]), int(size[1])
    lin, keep = _pixel_index(np.ravel(x), np.ravel(y), size)
    polarity = np.asarray(p).reshape(-1)
    positive = (polarity if keep.all() else polarity[keep]) > 0
    # One bincount over (pixel, polarity) pairs instead of two over masked copies.
    counts = np.bincount(lin * 2 + positive, minlength=2 * h * w).reshape(h, w, 2)
    return counts[..., 1], counts[..., 0]


def events_to_voxel_grid(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    size: tuple[int, int],
    bins: int = 3,
    t_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """A signed voxel grid, ``bins x H x W`` float32.

    Timestamps are normalised to ``tn = (bins - 1) * (t - t0) / (t1 - t0)`` with
    ``(t0, t1) = t_range`` or the stream's min/max (all in bin 0 when ``t1 == t0``). Each event
    adds its polarity (+1 / -1) to the two nearest bins with linear weights ``1 - frac`` and
    ``frac`` (``frac = tn - floor(tn)``), so the grid keeps sub-bin timing. Events whose ``tn``
    falls outside ``[0, bins - 1]`` (only possible with an explicit ``t_range``) are dropped.
    """
    n_events = _check_lengths(x=x, y=y, t=t, p=p)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    h, w = int(size[0]), int(size[1])
    grid = np.zeros(bins * h * w, dtype=np.float64)
    if n_events == 0:
        return grid.reshape(bins, h, w).astype(np.float32)
    lin, keep = _pixel_index(np.ravel(x), np.ravel(y), size)
    tt = np.asarray(t).reshape(-1)[keep].astype(np.float64)
    sign = np.where(np.asarray(p).reshape(-1)[keep] > 0, 1.0, -1.0)
    if tt.size == 0:
        return grid.reshape(bins, h, w).astype(np.float32)
    if t_range is None:
        t0, t1 = float(tt.min()), float(tt.max())
    else:
        t0, t1 = float(t_range[0]), float(t_range[1])
    span = t1 - t0
    tn = np.zeros_like(tt) if span <= 0 else (bins - 1) * (tt - t0) / span
    inside = (tn >= 0) & (tn <= bins - 1)
    if not inside.all():
        tn, lin, sign = tn[inside], lin[inside], sign[inside]
    lower = np.floor(tn).astype(np.int64)
    frac = tn - lower
    n = h * w
    grid += np.bincount(lower * n + lin, weights=sign * (1.0 - frac), minlength=bins * n)
    upper = lower + 1
    has_upper = upper < bins
    grid += np.bincount(
        upper[has_upper] * n + lin[has_upper],
        weights=(sign * frac)[has_upper],
        minlength=bins * n,
    )
    return grid.reshape(bins, h, w).astype(np.float32)


def _robust_scale(values: np.ndarray) -> float:
    """The 99th percentile of the non-zero magnitudes (at least 1): the value mapped to full."""
    nz = np.abs(values[values != 0])
    if nz.size == 0:
        return 1.0
    return max(float(np.percentile(nz, _ROBUST_PERCENTILE)), 1.0)


def events_to_representation(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    size: tuple[int, int],
    kind: str = "frame",
    bins: int = 3,
    *,
    max_count: float | None = None,
    t_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """An event stream as the network's ``H x W x 3`` uint8 input.

    ``x, y, t, p``: 1-D arrays of equal length N (column, row, timestamp, polarity). ``size``:
    ``(H, W)`` of the camera. Out-of-image events are dropped; float coordinates are rounded.

    ``kind="frame"`` (``t`` unused): channel 0 = positive-event count, channel 1 =
    negative-event count, channel 2 = all events (positive + negative) per pixel. Each count
    ``c`` becomes ``round(255 * min(c, s) / s)``; a pixel without events is 0.

    ``kind="voxel"`` (needs ``bins == 3``, one bin per channel, oldest first): the signed grid of
    ``events_to_voxel_grid`` mapped as ``round(128 + 127 * clip(v / s, -1, 1))``, so no net
    events = 128, net positive brighter, net negative darker (1..255).

    The scale ``s`` is ``max_count`` when given (fixed, e.g. for a fixed window length), else the
    99th percentile of the non-zero per-pixel values (total counts for the frame, ``|v|`` for the
    voxel grid), at least 1, so a few hot pixels do not darken the whole image.
    """
    h, w = int(size[0]), int(size[1])
    if max_count is not None and not max_count > 0:
        raise ValueError(f"max_count must be > 0, got {max_count}")
    if kind == "frame":
        _check_lengths(x=x, y=y, t=t, p=p)
        pos, neg = event_counts(x, y, p, (h, w))
        total = pos + neg
        s = float(max_count) if max_count is not None else _robust_scale(total)
        out = np.empty((h, w, 3), dtype=np.uint8)
        for c, counts in enumerate((pos, neg, total)):
            out[:, :, c] = np.rint(np.minimum(counts, s) * (255.0 / s)).astype(np.uint8)
        return out
    if kind == "voxel":
        if bins != 3:
            raise ValueError(
                f"kind='voxel' maps one time bin per channel of a 3-channel image, so bins must "
                f"be 3, got {bins}; use events_to_voxel_grid for other bin counts"
            )
        grid = events_to_voxel_grid(x, y, t, p, (h, w), bins=bins, t_range=t_range)
        s = float(max_count) if max_count is not None else _robust_scale(grid)
        img = np.rint(128.0 + 127.0 * np.clip(grid / s, -1.0, 1.0)).astype(np.uint8)
        return np.ascontiguousarray(np.moveaxis(img, 0, -1))
    raise ValueError(f"unknown event representation kind {kind!r}; known: 'frame', 'voxel'")


_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "x": ("x",),
    "y": ("y",),
    "t": ("t", "ts", "timestamp", "time"),
    "p": ("polarity", "p", "pol"),
}


def events_from_cloud(cloud: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x, y, t, p`` arrays from an event ``PointCloud2`` (fields x, y, t, polarity).

    Accepts the common aliases ``ts``/``timestamp``/``time`` for t and ``p``/``pol`` for the
    polarity. Each returned array is 1-D, in the cloud's field dtype (native-endian).
    """
    from .lidar import read_points

    points = read_points(cloud, reshape_organized=False)
    names = points.dtype.names or ()
    found: list[np.ndarray] = []
    for key, aliases in _FIELD_ALIASES.items():
        name = next((a for a in aliases if a in names), None)
        if name is None:
            raise ValueError(
                f"event cloud has no field for {key!r} (tried {list(aliases)}); "
                f"its fields are {list(names)}"
            )
        found.append(np.ascontiguousarray(points[name]))
    return found[0], found[1], found[2], found[3]

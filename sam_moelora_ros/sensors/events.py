"""Event-camera streams -> the 3-channel image the network takes.

Two representations, both vectorised with ``np.bincount`` (no Python loop over events; 1 M
events at 640x480 take 5-6 ms as a frame and 20-30 ms as a voxel grid on a 2-core CPU):

- ``kind="frame"``: a polarity event frame, positive and negative counts in separate channels
  (as DELIVER's event images).
- ``kind="voxel"``: a signed, time-binned voxel grid (Zhu et al. 2019 / E2VID), one time bin per
  channel, centred at 128.

Event streams come as four equally long 1-D arrays ``x, y, t, p`` (pixel column, pixel row,
timestamp in any unit, polarity), e.g. from an event ``PointCloud2`` via ``events_from_cloud``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

__all__ = [
    "event_counts",
    "events_from_cloud",
    "events_to_representation",
    "events_to_voxel_grid",
]

_ROBUST_PERCENTILE = 99.0
_SIGNS = np.array([-1.0, 1.0])
"""Event weight by ``p > 0`` (as a 0/1 index)."""


def _pixel_index(
    x: np.ndarray, y: np.ndarray, size: tuple[int, int], stride: int = 1
) -> tuple[np.ndarray, np.ndarray | None]:
    """Linear pixel index ``(y * W + x) * stride`` of in-image events, and the keep mask.

    Float coordinates are rounded to the nearest pixel centre; events outside the image are
    dropped and the mask says which were kept (None: all were, the common case, found with a
    min/max scan instead of four comparisons per event). The index is int32 whenever
    ``stride * H * W`` fits, which halves the memory traffic of the arithmetic.
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
    keep = None
    if xs.size and not (
        _non_negative(xs) and xs.max() < w and _non_negative(ys) and ys.max() < h
    ):  # NaN compares False: also masked
        keep = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        xs, ys = xs[keep], ys[keep]
    dtype = np.int32 if stride * h * w < 2**31 else np.int64
    index = ys.astype(dtype)  # in range now, so no cast can wrap
    index *= stride * w
    column = xs if np.can_cast(xs.dtype, dtype) else xs.astype(dtype)  # no copy of uint16 x
    for _ in range(stride):  # x * stride by additions: no temporary array
        index += column
    return index, keep


def _non_negative(values: np.ndarray) -> bool:
    """All values >= 0 (unsigned types without a scan; NaN counts as negative)."""
    return values.dtype.kind == "u" or bool(values.min() >= 0)


def _kept(values: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    return values if keep is None else values[keep]


def _check_lengths(**arrays: np.ndarray) -> int:
    lengths = {name: np.asarray(a).reshape(-1).shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"event arrays must have equal lengths, got {detail}")
    return next(iter(lengths.values()))


def _signed_counts(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """``H x W x 2`` int64 counts: ``[..., 0]`` positive (``p > 0``), ``[..., 1]`` the others.

    One ``bincount`` over (pixel, polarity) pairs: 1 M events in about 2 ms.
    """
    h, w = int(size[0]), int(size[1])
    index, keep = _pixel_index(np.ravel(x), np.ravel(y), size, stride=2)
    index += _kept(np.asarray(p).reshape(-1), keep) <= 0  # bool: 0 positive, 1 negative
    return np.bincount(index, minlength=2 * h * w).reshape(h, w, 2)


def event_counts(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel positive and negative event counts, each ``H x W`` int64.

    Polarity: ``p > 0`` is positive (accepts bool, {0, 1} and {-1, +1}); anything else negative.
    """
    _check_lengths(x=x, y=y, p=p)
    counts = _signed_counts(x, y, p, size)
    return counts[..., 0], counts[..., 1]


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
    if lin.size == 0:
        return grid.reshape(bins, h, w).astype(np.float32)
    times = _kept(np.asarray(t).reshape(-1), keep)
    positive = _kept(np.asarray(p).reshape(-1), keep) > 0
    # Integer stamps (e.g. ns since the epoch) of the stream's own window are offset in
    # integers first: exact, and the float64 that follows holds the window, not 1.7e18.
    integral = t_range is None and times.dtype.kind in "iu"
    if t_range is None:
        t0, t1 = times.min(), times.max()
        span = float(t1 - t0)
    else:
        t0, t1 = float(t_range[0]), float(t_range[1])
        span = t1 - t0
    if span <= 0:
        tn = np.zeros(times.shape, dtype=np.float64)
    else:
        tn = (times - t0).astype(np.float64) if integral else times.astype(np.float64) - t0
        tn *= bins - 1
        tn /= span
    if t_range is not None:
        inside = (tn >= 0) & (tn <= bins - 1)
        if not inside.all():
            tn, lin, positive = tn[inside], lin[inside], positive[inside]
    floor = np.floor(tn)
    lower = floor.astype(np.int64)
    upper_weight = np.subtract(tn, floor, out=tn)  # frac = tn - floor(tn), signed below
    lower_weight = np.take(_SIGNS, positive.view(np.uint8))  # +1 / -1 (np.where: 4x slower)
    upper_weight *= lower_weight  # sign * frac
    lower_weight -= upper_weight  # sign * (1 - frac) = sign - sign * frac
    n = h * w
    index = lower * n
    index += lin
    grid += np.bincount(index, weights=lower_weight, minlength=bins * n)
    # The upper bin: only an event exactly at the last bin has none, and its upper weight is
    # 0, so pointing it back at its own bin adds nothing and spares masking every array.
    np.add(index, n, out=index, where=lower < bins - 1)
    grid += np.bincount(index, weights=upper_weight, minlength=bins * n)
    return grid.reshape(bins, h, w).astype(np.float32)


def _robust_count_scale(total: np.ndarray) -> float:
    """:func:`_robust_scale` of non-negative integer counts, from their histogram.

    Counts take few values, so the k-th smallest non-zero count is a search in the histogram's
    cumulative sum instead of a partition of every pixel.
    """
    hist = np.bincount(total.reshape(-1))
    hist[0] = 0
    cumulative = np.cumsum(hist)

    def kth_smallest(lo: int, hi: int) -> tuple[float, float]:
        lo_v, hi_v = np.searchsorted(cumulative, [lo, hi], side="right")
        return float(lo_v), float(hi_v)

    return _scale_at_percentile(int(cumulative[-1]), kth_smallest)


def _count_table(scale: float, largest: int) -> np.ndarray:
    """``round(255 * min(c, scale) / scale)`` as uint8 for every count ``c`` that matters.

    Counts at or above ``ceil(scale)`` all map to 255, so the table stops there (or at the
    largest count present); ``np.take(table, counts, mode="clip")`` then clips the counts to it
    and can write straight into a (strided) channel of the output image.
    """
    top = min(int(np.ceil(scale)), largest)
    return np.rint(np.minimum(np.arange(top + 1), scale) * (255.0 / scale)).astype(np.uint8)


def _robust_scale(values: np.ndarray) -> float:
    """The 99th percentile of the non-zero magnitudes (at least 1): the value mapped to full.

    On one ``np.partition`` (the value above the k-th smallest is the minimum of the ~1 % beyond
    it): half the time of ``np.percentile``, the same value.
    """
    nz = np.abs(values[values != 0])

    def kth_smallest(lo: int, hi: int) -> tuple[Any, Any]:
        part = np.partition(nz, lo)
        return part[lo], (part[hi:].min() if hi > lo else part[lo])

    return _scale_at_percentile(nz.size, kth_smallest)


def _scale_at_percentile(n: int, kth_smallest: Callable[[int, int], tuple[Any, Any]]) -> float:
    """``max(np.percentile(sorted_values, 99), 1)`` from the two order statistics it needs.

    numpy's default "linear" method, its arithmetic replicated so the value is bit-identical:
    virtual index ``(n - 1) q``, then ``a + (b - a) g`` (or ``b - (b - a)(1 - g)`` for
    ``g >= 0.5``) in the values' own type with ``g`` a Python float. ``kth_smallest(lo, hi)``
    returns the ``lo``-th and ``hi``-th smallest of the ``n`` values (0-based). No values: 1.
    """
    if n == 0:
        return 1.0
    virtual = (n - 1) * (_ROBUST_PERCENTILE / 100.0)
    below = int(np.floor(virtual))
    gamma = virtual - below
    a, b = kth_smallest(below, min(below + 1, n - 1))
    diff = b - a
    value = b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma
    return max(float(value), 1.0)


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
        counts = _signed_counts(x, y, p, (h, w))  # channels 0, 1 = positive, negative
        total = counts[..., 0] + counts[..., 1]
        s = float(max_count) if max_count is not None else _robust_count_scale(total)
        table = _count_table(s, int(total.max(initial=0)))  # total >= either polarity
        out = np.empty((h, w, 3), dtype=np.uint8)
        for c, channel in enumerate((counts[..., 0], counts[..., 1], total)):
            np.take(table, channel, out=out[:, :, c], mode="clip")
        return out
    if kind == "voxel":
        if bins != 3:
            raise ValueError(
                f"kind='voxel' maps one time bin per channel of a 3-channel image, so bins must "
                f"be 3, got {bins}; use events_to_voxel_grid for other bin counts"
            )
        grid = events_to_voxel_grid(x, y, t, p, (h, w), bins=bins, t_range=t_range)
        s = float(max_count) if max_count is not None else _robust_scale(grid)
        grid /= np.float32(s)  # in place on the fresh grid: round(128 + 127 * clip(v / s))
        np.clip(grid, -1.0, 1.0, out=grid)
        grid *= np.float32(127.0)
        grid += np.float32(128.0)
        np.rint(grid, out=grid)
        return cv2.merge(list(grid.astype(np.uint8)))  # bins x H x W -> H x W x bins
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

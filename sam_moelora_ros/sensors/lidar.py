"""``sensor_msgs/PointCloud2`` fields <-> numpy structured arrays (sensor_msgs_py semantics).

Like ``sensor_msgs_py.point_cloud2``: fields are read at their offsets with padding skipped by a
structured dtype of ``itemsize = point_step``; a field with ``count > 1`` becomes ``name_0 ..
name_{count-1}`` (``count == 0`` gives no column); ``skip_nans`` drops points with a NaN in any
selected float field and is ignored when ``is_dense`` is true; reading is zero-copy where the
buffer allows it. Deliberate differences: organised clouds (``height > 1``) come back as
``(H, W)`` like images (sensor_msgs_py reshapes to ``(W, H)``, its issue #236), ``row_step``
padding is honoured, big-endian clouds are byte-swapped to native order, and bad layouts raise
ValueError instead of failing an assert.

Drivers' clouds (the layouts the tests build byte by byte): Ouster (``point_step`` 48: x y z
float32 at 0 4 8, intensity float32 16, t uint32 20, reflectivity uint16 24, ring uint8/uint16
26, ambient uint16 28, range uint32 32), Velodyne (x y z intensity float32, ring uint16, time
float32: packed in ROS 2, PCL-aligned at 0 4 8 16 20 24 in ROS 1), Livox (x y z intensity
float32, tag line uint8, timestamp float64 at 18; ``point_step`` 26) and Hesai (x y z intensity
float32, ring uint16, timestamp float64 at 18). Such clouds are organised, fixed-size and mark
"no return" as a point at exactly (0, 0, 0), often with ``is_dense`` true; :func:`lidar_returns`
drops those and every non-finite point, trusting no ``is_dense``.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .limits import DEFAULT_LIMITS, Limits
from .messages import build_message, message_bytes, message_flavour, rosbags_field_type

__all__ = [
    "FLOAT32",
    "FLOAT64",
    "INT8",
    "INT16",
    "INT32",
    "UINT8",
    "UINT16",
    "UINT32",
    "create_cloud",
    "dtype_from_fields",
    "lidar_returns",
    "make_fields",
    "read_points",
    "read_points_numpy",
]

# sensor_msgs/PointField datatype constants.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = 1, 2, 3, 4, 5, 6, 7, 8
DATATYPES: dict[int, np.dtype] = {
    INT8: np.dtype("i1"),
    UINT8: np.dtype("u1"),
    INT16: np.dtype("i2"),
    UINT16: np.dtype("u2"),
    INT32: np.dtype("i4"),
    UINT32: np.dtype("u4"),
    FLOAT32: np.dtype("f4"),
    FLOAT64: np.dtype("f8"),
}
_BYTE_ORDERS: dict[str, Literal["<", ">", "="]] = {"<": "<", ">": ">", "=": "="}


MAX_FIELD_COLUMNS = 4096
"""At most this many columns (a field of ``count`` n is n columns): PCL's widest descriptor,
VFH, has 308; a hostile ``count`` of 2^32 - 1 must not build a name per element."""


def _check_layout(fields: Sequence[Any], point_step: int | None) -> None:
    """Every field known, inside ``point_step``, named once and not overlapping another.

    Checked from the numbers alone, before any column is made.
    """
    spans: list[tuple[int, int, str]] = []
    columns = 0
    names: set[str] = set()
    for f in fields:
        name, offset, datatype, count = str(f.name), int(f.offset), int(f.datatype), int(f.count)
        if datatype not in DATATYPES:
            raise ValueError(
                f"PointField {name!r} has datatype {datatype}; valid datatypes are 1 (INT8) .. "
                f"8 (FLOAT64)"
            )
        if offset < 0 or count < 0:
            raise ValueError(f"PointField {name!r} has offset {offset} / count {count} below 0")
        if name in names:
            raise ValueError(f"PointField {name!r} is listed twice")
        names.add(name)
        end = offset + DATATYPES[datatype].itemsize * count
        if point_step is not None and end > point_step:
            raise ValueError(
                f"PointField {name!r} (offset {offset}, count {count}) ends "
                f"at byte {end}, beyond point_step {point_step}"
            )
        columns += max(count, 0)
        if columns > MAX_FIELD_COLUMNS:
            raise ValueError(
                f"PointCloud2 fields declare more than {MAX_FIELD_COLUMNS} columns (field "
                f"{name!r} has count {count}); the layout is corrupt"
            )
        if count:
            spans.append((offset, end, name))
    spans.sort()
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(
                f"PointFields {first!r} and {second!r} overlap (bytes {start}..{end - 1} are in "
                "both); the layout is corrupt"
            )


def dtype_from_fields(
    fields: Sequence[Any], point_step: int | None = None, byteorder: str = "="
) -> np.dtype:
    """Structured dtype for PointField-like objects (``name, offset, datatype, count``).

    ``point_step`` becomes the itemsize (padding included); None packs to the end of the last
    field. ``byteorder``: ``"<"``, ``">"`` or ``"="``. Raises ValueError naming the field for an
    unknown datatype, a field that does not fit in ``point_step``, a name listed twice or two
    fields that overlap (checked before any column is made).
    """
    _check_layout(fields, point_step)
    names: list[str] = []
    formats: list[np.dtype] = []
    offsets: list[int] = []
    end = 0
    for f in fields:
        name, offset, datatype, count = str(f.name), int(f.offset), int(f.datatype), int(f.count)
        base = DATATYPES[datatype].newbyteorder(_BYTE_ORDERS[byteorder])
        sub = [name] if count == 1 else [f"{name}_{i}" for i in range(count)]
        for i, sub_name in enumerate(sub):
            names.append(sub_name)
            formats.append(base)
            offsets.append(offset + i * base.itemsize)
        end = max(end, offset + base.itemsize * max(count, 0))
    itemsize = end if point_step is None else int(point_step)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})


def _check_size(cloud: Any, limits: Limits) -> None:
    """``width x height`` within the budget and exactly what ``row_step`` and ``data`` hold."""
    height, width = int(cloud.height), int(cloud.width)
    point_step, row_step = int(cloud.point_step), int(cloud.row_step)
    if height < 0 or width < 0 or point_step < 0 or row_step < 0:
        raise ValueError(
            f"PointCloud2 height {height}, width {width}, point_step {point_step} and row_step "
            f"{row_step} must not be negative"
        )
    limits.check_points(f"PointCloud2 ({width}x{height})", height * width)
    if height * width == 0:
        return
    if row_step < width * point_step:
        raise ValueError(
            f"PointCloud2 row_step {row_step} is smaller than width {width} x point_step "
            f"{point_step} = {width * point_step}"
        )
    size = message_bytes(cloud.data).size
    needed = height * row_step
    if size < needed:
        raise ValueError(
            f"PointCloud2 data holds {size} bytes but height {height} x row_step {row_step} "
            f"need {needed}; the message is truncated"
        )
    if size > needed:
        raise ValueError(
            f"PointCloud2 data holds {size} bytes but width x height = {width} x {height} points "
            f"of row_step {row_step} make {needed}: the declared size does not describe the data"
        )


def read_points(
    cloud: Any,
    field_names: Iterable[str] | None = None,
    skip_nans: bool = False,
    *,
    reshape_organized: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> np.ndarray:
    """Read a PointCloud2 (any object with its fields) as a native-endian structured array.

    Shape: ``(H, W)`` for an organised cloud (``height > 1``) when ``reshape_organized``, else
    ``(H * W,)``; with ``skip_nans`` (and ``is_dense`` false) always 1-D, since dropping points
    breaks the grid. ``field_names`` selects (and orders) columns; count > 1 fields are named
    ``name_0 ..``. The result is a view of ``cloud.data`` when the cloud is native-endian and
    rows are unpadded (read-only for ``bytes`` data). Checked first, before anything is
    allocated: ``width x height`` within ``limits.max_points`` (a :class:`~.limits.LimitError`),
    ``data`` exactly ``height x row_step`` bytes, the fields inside ``point_step`` and apart.
    """
    _check_size(cloud, limits)
    height, width = int(cloud.height), int(cloud.width)
    point_step, row_step = int(cloud.point_step), int(cloud.row_step)
    big = bool(cloud.is_bigendian)
    dtype = dtype_from_fields(list(cloud.fields), point_step, ">" if big else "<")
    buf = message_bytes(cloud.data)
    needed = height * row_step
    if needed == 0 or width * height == 0:
        points = np.zeros((height, width), dtype=dtype)
    else:
        points = np.ndarray(
            shape=(height, width), dtype=dtype, buffer=buf[:needed], strides=(row_step, point_step)
        )
    if not dtype.isnative:
        points = points.astype(dtype.newbyteorder("="))
    if field_names is not None:
        wanted = list(field_names)
        missing = [n for n in wanted if n not in (points.dtype.names or ())]
        if missing:
            raise ValueError(
                f"PointCloud2 has no field(s) {missing}; its fields are {list(points.dtype.names)}"
            )
        points = points[wanted]
    if skip_nans and not bool(getattr(cloud, "is_dense", False)):
        keep = np.ones(points.shape, dtype=bool)
        for name in points.dtype.names or ():
            if points.dtype[name].kind == "f":
                keep &= ~np.isnan(points[name])
        return points[keep]
    if height > 1 and reshape_organized:
        return points
    return points.reshape(-1)


def read_points_numpy(
    cloud: Any,
    field_names: Iterable[str] | None = None,
    skip_nans: bool = False,
    *,
    dtype: npt.DTypeLike | None = None,
) -> np.ndarray:
    """``N x K`` plain array of the selected fields, flattened.

    The sensor_msgs_py helper of the same name; e.g. ``read_points_numpy(c, ["x", "y", "z"],
    skip_nans=True)`` gives the float32 ``N x 3`` xyz that ``project_points`` takes. Fields of
    mixed types (Ouster's float32 xyz with uint16 ring) need ``dtype=`` to say what to cast them
    to; without it all selected fields must share one dtype, as in sensor_msgs_py.
    """
    points = read_points(cloud, field_names, skip_nans, reshape_organized=False)
    names = list(points.dtype.names or ())
    kinds = {points.dtype[n] for n in names}
    if dtype is None and len(kinds) != 1:
        detail = ", ".join(f"{n}: {points.dtype[n]}" for n in names)
        raise ValueError(
            f"read_points_numpy needs fields of one dtype, got {detail}; pass dtype= (e.g. "
            "np.float32) to cast them"
        )
    out = np.empty((points.shape[0], len(names)), dtype=kinds.pop() if dtype is None else dtype)
    for i, name in enumerate(names):
        out[:, i] = points[name]
    return out


def lidar_returns(
    cloud: Any,
    field_names: Sequence[str] = ("x", "y", "z"),
    *,
    dtype: npt.DTypeLike = np.float32,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[np.ndarray, np.ndarray]:
    """The points that are real returns: ``(N x K array of field_names, flat grid index)``.

    Dropped, whatever ``is_dense`` claims: points with a non-finite x, y or z, and points at
    exactly (0, 0, 0), which organised drivers (Ouster, Hesai, Livox) write for "no return".
    The index is ``row * width + column`` in the cloud, so per-point fields read later (or an
    organised image) line up. Fields are cast to ``dtype``; e.g. ``lidar_returns(c, ("x", "y",
    "z", "intensity", "ring"))`` reads Ouster's mixed float32 / uint16 fields in one call.
    Float x, y, z are also checked against ``is_bigendian`` (:func:`check_byte_order`).
    """
    points = read_points(cloud, reshape_organized=False, limits=limits)
    names = points.dtype.names or ()
    wanted = list(field_names)
    missing = [n for n in ("x", "y", "z", *wanted) if n not in names]
    if missing:
        raise ValueError(
            f"PointCloud2 has no field(s) {sorted(set(missing))}; its fields are {list(names)}"
        )
    x, y, z = points["x"], points["y"], points["z"]
    check_byte_order(cloud, np.concatenate([a[:BYTE_ORDER_SAMPLE] for a in (x, y, z)]))
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
        keep &= (x != 0) | (y != 0) | (z != 0)
    index = np.flatnonzero(keep)
    out = np.empty((index.size, len(wanted)), dtype=dtype)
    for i, name in enumerate(wanted):
        out[:, i] = points[name][index]
    return out, index


BYTE_ORDER_SAMPLE = 4096
"""Points whose x, y, z :func:`check_byte_order` looks at (the first ones: enough, and cheap)."""


def _plausible(values: np.ndarray) -> float:
    """Fraction of coordinates that look like metres: finite, 1e-4 <= |v| <= 1e5."""
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.abs(values.astype(np.float64))
        return float(np.mean(np.isfinite(size) & (size >= 1e-4) & (size <= 1e5)))


def check_byte_order(cloud: Any, xyz: np.ndarray) -> None:
    """Refuse a cloud whose float coordinates read as metres only with the other byte order.

    What is inferred: ``is_bigendian`` cannot be checked for integer fields or a cloud of
    zeros; for float coordinates, a wrong flag turns metres into denormals and 1e20-sized
    numbers. So among the non-zero sampled coordinates (``xyz``, read in the declared order):
    if fewer than half look like metres and at least 90 % would after swapping the bytes,
    the flag is wrong. NaN (no return) counts for neither order; fewer than 16 values: no
    verdict.
    """
    if xyz.dtype.kind != "f":
        return
    values = xyz[xyz != 0]
    if values.size < 16:
        return
    swapped = values.byteswap()
    if _plausible(values) < 0.5 and _plausible(swapped) >= 0.9:
        flag = bool(cloud.is_bigendian)
        raise ValueError(
            f"PointCloud2 is_bigendian is {flag} but its x, y, z read as metres only in "
            f"{'little' if flag else 'big'}-endian order; the publisher sets the flag wrong"
        )


def _pointfield_class(msg_type: Any, typestore: Any) -> Any:
    """The PointField class matching a PointField or PointCloud2 class of any flavour."""
    flavour = message_flavour(msg_type)
    if flavour == "plain":
        return None
    name = getattr(msg_type, "__msgtype__", "") or getattr(msg_type, "__name__", "")
    if flavour == "rosbags":
        if name.endswith("PointField"):
            return msg_type
        if typestore is not None:
            return typestore.types["sensor_msgs/msg/PointField"]
        return rosbags_field_type(msg_type, "fields")
    if name.endswith("PointField"):
        return msg_type
    package = sys.modules[msg_type.__module__.rsplit(".", 1)[0]]
    return package.PointField


def _convert_field(f: Any, cls: Any) -> Any:
    if cls is None or isinstance(f, cls):
        return f
    values = {
        "name": str(f.name),
        "offset": int(f.offset),
        "datatype": int(f.datatype),
        "count": int(f.count),
    }
    if message_flavour(cls) == "rosbags":
        return cls(**values)
    pf = cls()
    for key, value in values.items():
        setattr(pf, key, value)
    return pf


def make_fields(
    spec: Sequence[tuple[str, int] | tuple[str, int, int]],
    msg_type: Any = None,
    *,
    typestore: Any = None,
) -> list[Any]:
    """PointFields with packed offsets from ``[(name, datatype) or (name, datatype, count)]``.

    ``msg_type``: None (plain namespaces), or a PointField / PointCloud2 class of rclpy or
    rosbags; the PointField class of that flavour is used. E.g.
    ``make_fields([("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32), ("ring", UINT16)])`` gives
    offsets 0, 4, 8, 12 (packed, no alignment padding, as sensor_msgs_py's helpers do).
    """
    from types import SimpleNamespace

    cls = _pointfield_class(msg_type, typestore)
    out: list[Any] = []
    offset = 0
    for entry in spec:
        name, datatype = str(entry[0]), int(entry[1])
        count = int(entry[2]) if len(entry) > 2 else 1
        if datatype not in DATATYPES:
            raise ValueError(f"field {name!r}: datatype {datatype} is not 1 (INT8) .. 8 (FLOAT64)")
        plain = SimpleNamespace(name=name, offset=offset, datatype=datatype, count=count)
        out.append(_convert_field(plain, cls))
        offset += DATATYPES[datatype].itemsize * count
    return out


def _to_structured(points: Any, dtype: np.dtype) -> np.ndarray:
    """Points (structured array, plain ``N x K`` array or list of tuples) -> ``dtype`` array."""
    if isinstance(points, np.ndarray) and points.dtype.names is not None:
        missing = [n for n in dtype.names or () if n not in points.dtype.names]
        if missing:
            raise ValueError(
                f"points lack field(s) {missing} named in fields; points have "
                f"{list(points.dtype.names)}"
            )
        out = np.zeros(points.shape, dtype=dtype)
        for name in dtype.names or ():
            out[name] = points[name]
        return out
    if isinstance(points, np.ndarray):
        k = len(dtype.names or ())
        if points.shape[-1] != k:
            raise ValueError(
                f"plain points array has {points.shape[-1]} columns, fields describe {k}"
            )
        out = np.zeros(points.shape[:-1], dtype=dtype)
        for i, name in enumerate(dtype.names or ()):
            out[name] = points[..., i]
        return out
    return np.array([tuple(p) for p in points], dtype=dtype)


def create_cloud(
    header: Any,
    fields: Sequence[Any],
    points: Any,
    msg_type: Any = None,
    *,
    typestore: Any = None,
    point_step: int | None = None,
    is_bigendian: bool | None = None,
    is_dense: bool | None = None,
) -> Any:
    """Build a PointCloud2 from PointField-like ``fields`` and ``points``.

    ``points``: a structured array (names as in ``fields``; an ``(H, W)`` array gives an
    organised cloud of height H), an ``N x K`` / ``H x W x K`` plain array with one column per
    (expanded) field, or a list of tuples. ``msg_type``: None, rclpy or rosbags PointCloud2 class
    (see ``messages.py``); ``fields`` are converted to that flavour's PointField. ``point_step``:
    None packs to the last field's end; larger values add padding. ``is_bigendian``: None = host
    order. ``is_dense``: None computes it (True iff no float field holds a NaN).
    """
    big = sys.byteorder == "big" if is_bigendian is None else bool(is_bigendian)
    native = dtype_from_fields(list(fields), point_step)
    arr = _to_structured(points, native)
    if arr.ndim > 2:
        raise ValueError(f"points must be 1-D or (H, W), got shape {arr.shape}")
    height, width = (1, arr.shape[0]) if arr.ndim == 1 else arr.shape
    if is_dense is None:
        is_dense = True
        for name in native.names or ():
            if native[name].kind == "f" and np.isnan(arr[name]).any():
                is_dense = False
                break
    # Field by field into a zeroed array: padding bytes are 0, so equal clouds are equal bytes.
    stored = np.zeros(arr.shape, dtype=native.newbyteorder(">" if big else "<"))
    for name in native.names or ():
        stored[name] = arr[name]
    cls = _pointfield_class(msg_type, typestore) if msg_type is not None else None
    msg_fields = [_convert_field(f, cls) for f in fields]
    values = {
        "height": int(height),
        "width": int(width),
        "fields": msg_fields,
        "is_bigendian": big,
        "point_step": int(native.itemsize),
        "row_step": int(native.itemsize * width),
        "is_dense": bool(is_dense),
    }
    return build_message(msg_type, header, values, stored.view(np.uint8), typestore=typestore)

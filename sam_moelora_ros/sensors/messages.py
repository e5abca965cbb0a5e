"""Building messages of whichever flavour the caller uses: plain, rclpy or rosbags.

Why: the codecs must produce rclpy messages on a robot, rosbags dataclasses in bag tools and
plain objects in tests, through one code path. Three flavours are recognised:

- ``msg_type=None``: a ``types.SimpleNamespace`` holding the message's fields; ``data`` is a
  1-D ``uint8`` numpy array, the header a namespace with ``stamp.sec``, ``stamp.nanosec`` and
  ``frame_id``.
- rclpy classes (they have ``get_fields_and_field_types``): constructed empty, then fields set.
  ``data`` is handed over as an ``array.array('B')`` filled by ``frombytes`` from the numpy
  buffer: rclpy's setter stores an ``array.array`` as is, while anything else is converted
  element by element (bench/bench_codecs.py measures the difference).
- rosbags dataclasses (``dataclasses.is_dataclass`` with ``__msgtype__``): every field is a
  constructor keyword, ``data`` a ``uint8`` numpy array. A missing header is built from the
  ``std_msgs/msg/Header`` class of the same typestore: ``typestore=`` when given, otherwise the
  class the message's own ``header`` annotation names (so no typestore is needed in practice).

Any other class is constructed without arguments and its attributes set.
"""

from __future__ import annotations

import array
import dataclasses
import sys
import typing
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["build_message", "message_flavour", "plain_header"]


def message_flavour(msg_type: Any) -> str:
    """``"plain"``, ``"rclpy"``, ``"rosbags"`` or ``"other"`` for a message class (or None)."""
    if msg_type is None:
        return "plain"
    if hasattr(msg_type, "get_fields_and_field_types"):
        return "rclpy"
    if dataclasses.is_dataclass(msg_type) and hasattr(msg_type, "__msgtype__"):
        return "rosbags"
    return "other"


def plain_header(sec: int = 0, nanosec: int = 0, frame_id: str = "") -> SimpleNamespace:
    """A header as a plain namespace: ``stamp.sec``, ``stamp.nanosec``, ``frame_id``."""
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id)


def _header_parts(header: Any) -> tuple[int, int, str]:
    stamp = getattr(header, "stamp", None)
    sec = int(getattr(stamp, "sec", 0)) if stamp is not None else 0
    nanosec = int(getattr(stamp, "nanosec", 0)) if stamp is not None else 0
    return sec, nanosec, str(getattr(header, "frame_id", ""))


def rosbags_field_type(msg_type: Any, field: str, typestore: Any = None) -> Any:
    """The rosbags class of ``msg_type.<field>`` (a list's element class for ``list[...]``).

    Resolved from the dataclass annotations in the module that generated ``msg_type``, which
    belongs to the same typestore; ``typestore`` is not needed for that and is only a fallback.
    """
    try:
        hint = typing.get_type_hints(msg_type)[field]
    except Exception:  # annotations that do not evaluate: fall back to the module namespace
        raw = msg_type.__annotations__[field]
        name = raw.split("[", 1)[-1].rstrip("]") if "[" in raw else raw
        hint = getattr(sys.modules[msg_type.__module__], name)
    args = typing.get_args(hint)
    return args[0] if args else hint


def _rosbags_header(msg_type: Any, header: Any, typestore: Any) -> Any:
    if typestore is not None:
        header_cls = typestore.types["std_msgs/msg/Header"]
    else:
        header_cls = rosbags_field_type(msg_type, "header")
    if header is not None and isinstance(header, header_cls):
        return header
    time_cls = rosbags_field_type(header_cls, "stamp", typestore)
    sec, nanosec, frame_id = _header_parts(header)
    return header_cls(stamp=time_cls(sec=sec, nanosec=nanosec), frame_id=frame_id)


def _as_uint8(data: np.ndarray | bytes) -> np.ndarray:
    """A 1-D contiguous uint8 view of ``data`` (a copy only if it is not contiguous)."""
    arr = np.ascontiguousarray(data) if isinstance(data, np.ndarray) else np.frombuffer(data, "u1")
    return arr.reshape(-1).view(np.uint8)


def _rclpy_data(data: np.ndarray) -> array.array:
    """``array.array('B')`` holding ``data``'s bytes: one memcpy, the fastest form rclpy keeps."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(data).data.cast("B"))
    return out


def _set_rclpy_header(msg: Any, header: Any) -> None:
    if header is None:
        return
    try:
        msg.header = header
    except (AssertionError, TypeError):  # a header of another flavour: copy its parts
        sec, nanosec, frame_id = _header_parts(header)
        msg.header.stamp.sec = sec
        msg.header.stamp.nanosec = nanosec
        msg.header.frame_id = frame_id


def build_message(
    msg_type: Any,
    header: Any,
    fields: dict[str, Any],
    data: np.ndarray,
    *,
    typestore: Any = None,
    convert_list: typing.Callable[[Any], Any] | None = None,
) -> Any:
    """Construct a message of ``msg_type``'s flavour from ``fields`` plus ``header`` and ``data``.

    ``data``: the payload as a numpy array (its bytes are used; contiguous copies are made only
    when needed). ``convert_list``: optional hook to convert list-valued fields (PointFields) to
    the flavour's own classes; it receives the field value and returns the converted one.
    """
    flavour = message_flavour(msg_type)
    payload = _as_uint8(data)
    if convert_list is not None:
        fields = {k: convert_list(v) if isinstance(v, list) else v for k, v in fields.items()}
    # Plain and rosbags messages keep the array they are given: hand them an owned copy, so a
    # message never aliases the caller's array (cv_bridge copies too).
    if flavour == "plain":
        hdr = header if header is not None else plain_header()
        return SimpleNamespace(header=hdr, **fields, data=payload.copy())
    if flavour == "rosbags":
        hdr = _rosbags_header(msg_type, header, typestore)
        return msg_type(header=hdr, **fields, data=payload.copy())
    msg = msg_type()
    for key, value in fields.items():
        setattr(msg, key, value)
    if flavour == "rclpy":
        _set_rclpy_header(msg, header)
        msg.data = _rclpy_data(payload)
    else:
        if header is not None:
            msg.header = header
        msg.data = payload
    return msg


def message_bytes(data: Any) -> np.ndarray:
    """A message's ``data`` field as a 1-D uint8 array, without a copy where possible.

    rclpy gives ``array.array('B')`` or bytes, rosbags a uint8 ndarray, plain objects any of
    these or a list; contiguous buffers are viewed, not copied.
    """
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)

"""Event-camera messages as drivers publish them -> ``x, y, t, p`` arrays, and a time window.

Why: real event cameras (ros-event-camera's ``metavision_driver`` / ``libcaer_driver``) publish
``event_camera_msgs/msg/EventPacket`` (``header, height, width, seq, time_base, encoding,
is_bigendian, events: uint8[]``) of about a millisecond each, and ROS 1 datasets carry
``dvs_msgs/EventArray``. The network wants the events of one time window per camera frame.

Encodings (event_camera_msgs' README and event_camera_codecs):

- ``evt3``: raw Prophesee EVT 3.0 (``evt3.py``). ``time_base`` is unused (0); the header stamp is
  the host time of the packet's first data. Sensor time comes from decoding the stream, so the
  decoder keeps its registers per topic (:class:`EventPacketDecoder`).
- ``mono``: one little-endian 64-bit word per event: bits 0-31 ``dt`` (ns), 32-47 ``x``, 48-62
  ``y``, bit 63 polarity (1 = ON). Sensor time = ``time_base + dt``; "the best estimate ROS
  time" = ``header.stamp + dt``.

Times come back as int64 nanoseconds. ``time_reference="header"`` (default) gives ROS time:
``mono`` ``stamp + dt``; ``evt3`` ``stamp + (t - t0)`` with ``t0`` the sensor time of the
packet's first event (the stamp marks the packet's first data). ``"sensor"`` gives the camera's
own clock (``evt3``: microseconds x 1000 with 24-bit wraps unrolled; ``mono``: ``time_base + dt``).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from sam_moelora_ros.errors import SamMoeLoraError

from .evt3 import Evt3Error, Evt3State, decode_evt3
from .limits import DEFAULT_LIMITS, LimitError, Limits
from .messages import message_bytes

__all__ = [
    "ENCODINGS",
    "EventPacketDecoder",
    "EventPacketError",
    "Events",
    "Triggers",
    "decode_event_packet",
    "encode_mono",
    "events_from_dvs_array",
    "events_from_dvs_ros1",
    "inside_sensor",
]

ENCODINGS = ("evt3", "mono")
TimeReference = Literal["header", "sensor"]


class EventPacketError(SamMoeLoraError, ValueError):
    """An event message that cannot be decoded (unknown encoding, bad length, corrupt data)."""


class Events(NamedTuple):
    """Equally long 1-D arrays: column ``x``, row ``y`` (uint16), ``t`` int64 ns, ``p`` uint8."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray

    @staticmethod
    def empty() -> Events:
        u16 = np.zeros(0, np.uint16)
        return Events(u16, u16.copy(), np.zeros(0, np.int64), np.zeros(0, np.uint8))

    @staticmethod
    def concatenate(parts: list[Events]) -> Events:
        if not parts:
            return Events.empty()
        if len(parts) == 1:
            return parts[0]
        return Events(*(np.concatenate([getattr(e, f) for e in parts]) for f in Events._fields))


class Triggers(NamedTuple):
    """External trigger edges (EVT 3.0 EXT_TRIGGER): time ns, trigger id, edge (1 = rising)."""

    t: np.ndarray
    id: np.ndarray
    edge: np.ndarray


def _stamp_ns(msg: Any) -> int:
    stamp = msg.header.stamp
    nanosec = getattr(stamp, "nanosec", None)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nsec if nanosec is None else nanosec)


def inside_sensor(events: Events, width: int, height: int) -> tuple[Events, int]:
    """Events within the sensor's ``width x height`` (0: no check) and how many were outside."""
    if width <= 0 or height <= 0 or not events.x.size:
        return events, 0
    if int(events.x.max()) < width and int(events.y.max()) < height:
        return events, 0
    keep = np.flatnonzero((events.x < width) & (events.y < height))
    return Events(*(a.take(keep) for a in events)), int(events.x.size - keep.size)


def _budget(what: str, count: int, limits: Limits) -> None:
    try:
        limits.check_events(what, count)
    except LimitError as exc:
        raise EventPacketError(str(exc)) from None


def _decode_mono(msg: Any, reference: TimeReference, limits: Limits) -> Events:
    raw = message_bytes(msg.events)
    if raw.size % 8:
        raise EventPacketError(f"mono EventPacket holds {raw.size} bytes, not whole 8-byte events")
    _budget("mono EventPacket", raw.size // 8, limits)
    words = raw.view(">u8" if bool(msg.is_bigendian) else "<u8")
    base = _stamp_ns(msg) if reference == "header" else int(msg.time_base)
    t = (words & 0xFFFFFFFF).astype(np.int64)
    t += base
    x = ((words >> 32) & 0xFFFF).astype(np.uint16)
    y = ((words >> 48) & 0x7FFF).astype(np.uint16)
    return Events(x, y, t, (words >> 63).astype(np.uint8))


def encode_mono(
    x: np.ndarray, y: np.ndarray, dt_ns: np.ndarray, p: np.ndarray, *, big_endian: bool = False
) -> bytes:
    """``mono`` bytes for events with ``dt_ns`` (0 .. 2^32 - 1) after the packet's time base."""
    xs, ys, dt = (np.asarray(a, np.int64) for a in (x, y, dt_ns))
    if xs.size and (dt.min() < 0 or dt.max() >= 2**32 or xs.max() > 0xFFFF or ys.max() > 0x7FFF):
        raise EventPacketError("mono holds dt in 0..2^32-1 ns, x < 2^16 and y < 2^15")
    word = dt.astype(np.uint64) | xs.astype(np.uint64) << np.uint64(32)
    word |= ys.astype(np.uint64) << np.uint64(48)
    word |= (np.asarray(p) != 0).astype(np.uint64) << np.uint64(63)
    return word.astype(">u8" if big_endian else "<u8").tobytes()


class EventPacketDecoder:
    """Decodes one topic's EventPacket stream, keeping the EVT 3.0 registers between packets.

    Use one decoder per topic and feed packets in order. A gap in ``seq`` (a lost packet) drops
    the registers that the lost words may have changed: events are dropped until the next
    TIME_HIGH + TIME_LOW (the 24-bit wrap count is kept); ``lost_packets`` counts the gaps.
    EVT 3.0 events outside the packet's ``width x height`` are dropped (as the codec does) and
    counted: ``outside_events`` in all, ``last_outside`` in the last packet (``mono`` is
    returned as stored; :func:`inside_sensor` filters and counts it). ``limits.max_events``
    bounds the events of one packet, counted before they are made.
    """

    def __init__(
        self, time_reference: TimeReference = "header", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        if time_reference not in ("header", "sensor"):
            raise EventPacketError(
                f"time_reference must be 'header' or 'sensor', got {time_reference!r}"
            )
        self.time_reference: TimeReference = time_reference
        self.limits = limits
        self.lost_packets = 0
        self.outside_events = 0
        self.last_outside = 0
        self._state = Evt3State()
        self._seq: int | None = None

    def reset(self) -> None:
        """Forget the stream (e.g. after a bag seek)."""
        self._state, self._seq = Evt3State(), None

    def decode(self, msg: Any) -> Events:
        """Events of one packet (see the module docstring for the time reference)."""
        return self.decode_with_triggers(msg)[0]

    def decode_with_triggers(self, msg: Any) -> tuple[Events, Triggers]:
        """Events and external triggers (``mono`` packets carry none) of one packet."""
        encoding = str(msg.encoding)
        seq = int(getattr(msg, "seq", 0))
        if self._seq is not None and seq != self._seq + 1:
            self.lost_packets += 1
            st = self._state
            self._state = Evt3State(time_high=st.time_high, time_low=st.time_low)
        self._seq = seq
        no_triggers = Triggers(np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.uint8))
        self.last_outside = 0
        if encoding == "mono":
            return _decode_mono(msg, self.time_reference, self.limits), no_triggers
        if encoding != "evt3":
            raise EventPacketError(
                f"EventPacket encoding {encoding!r} is not supported; supported: "
                f"{', '.join(ENCODINGS)} (libcaer_cmp / evt2 need event_camera_codecs)"
            )
        try:
            d, self._state = decode_evt3(
                message_bytes(msg.events),
                self._state,
                width=int(msg.width),
                height=int(msg.height),
                big_endian=bool(msg.is_bigendian),
                max_events=self.limits.max_events,
            )
        except Evt3Error as exc:
            raise EventPacketError(f"EventPacket seq {seq}: {exc}") from exc
        self.last_outside = d.outside
        self.outside_events += d.outside
        t, trig_t = d.t_us * 1000, d.trigger_t_us * 1000
        if self.time_reference == "header":
            firsts = [a[0] for a in (t, trig_t) if a.size]
            if firsts:
                offset = _stamp_ns(msg) - int(min(firsts))
                t += offset
                trig_t += offset
        return Events(d.x, d.y, t, d.p), Triggers(trig_t, d.trigger_id, d.trigger_edge)


def decode_event_packet(
    msg: Any, time_reference: TimeReference = "header", limits: Limits = DEFAULT_LIMITS
) -> Events:
    """One EventPacket on its own (a fresh decoder: EVT 3.0 starts at its first valid time)."""
    return EventPacketDecoder(time_reference, limits).decode(msg)


_DVS_ROS1 = np.dtype([("x", "<u2"), ("y", "<u2"), ("sec", "<u4"), ("nsec", "<u4"), ("p", "u1")])


def _dvs_events(records: np.ndarray) -> Events:
    t = records["sec"].astype(np.int64) * 1_000_000_000 + records["nsec"]
    return Events(
        records["x"].astype(np.uint16),
        records["y"].astype(np.uint16),
        t,
        (records["p"] != 0).astype(np.uint8),
    )


def events_from_dvs_array(msg: Any, limits: Limits = DEFAULT_LIMITS) -> Events:
    """``dvs_msgs/EventArray`` fields (``events[]`` of ``x, y, ts, polarity``) -> Events.

    The message holds one object per event, so reading it is one Python step per event (about
    1 us each); for large ROS 1 bags read the raw bytes with :func:`events_from_dvs_ros1`.
    More events than ``limits.max_events`` are refused before any is read.
    """
    _budget("dvs EventArray", len(msg.events), limits)
    events = list(msg.events)
    if not events:
        return Events.empty()
    nano = "nanosec" if hasattr(events[0].ts, "nanosec") else "nsec"
    records = np.fromiter(
        ((e.x, e.y, e.ts.sec, getattr(e.ts, nano), bool(e.polarity)) for e in events),
        dtype=_DVS_ROS1,
        count=len(events),
    )
    return _dvs_events(records)


def events_from_dvs_ros1(
    raw: bytes | np.ndarray, limits: Limits = DEFAULT_LIMITS
) -> tuple[int, str, Events]:
    """``(stamp ns, frame_id, events)`` from a ROS 1 serialised ``dvs_msgs/EventArray``.

    ROS 1 serialisation is packed little-endian: header (``uint32 seq``, ``time stamp``,
    ``string frame_id``), ``uint32 height, width``, ``uint32`` count, then 13 bytes per event
    (``uint16 x, y``, ``time ts``, ``bool polarity``): read with one structured view.
    """
    buf = np.frombuffer(raw, np.uint8) if not isinstance(raw, np.ndarray) else raw.view(np.uint8)
    head = buf[:16].view("<u4") if buf.size >= 16 else None
    if head is None:
        raise EventPacketError(f"dvs EventArray of {buf.size} bytes is shorter than its header")
    frame_len = int(head[3])
    at = 16 + frame_len
    if buf.size < at + 12:
        raise EventPacketError("dvs EventArray is truncated inside its header")
    frame_id = buf[16:at].tobytes().decode("utf-8", errors="replace")
    count = int(buf[at + 8 : at + 12].view("<u4")[0])
    _budget("dvs EventArray", count, limits)
    body = buf[at + 12 :]
    if body.size != count * _DVS_ROS1.itemsize:
        raise EventPacketError(
            f"dvs EventArray says {count} events ({count * 13} bytes) but holds {body.size} "
            "bytes; is this ROS 1 data (ROS 2 CDR is aligned differently)?"
        )
    stamp = int(head[1]) * 1_000_000_000 + int(head[2])
    return stamp, frame_id, _dvs_events(body.view(_DVS_ROS1))

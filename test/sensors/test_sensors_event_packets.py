"""EventPacket (evt3, mono), dvs_msgs/EventArray and the event time window.

``mono`` words are packed by hand with ``struct`` from event_camera_msgs' bit table; ROS 1
``dvs_msgs/EventArray`` bytes come from rosbags' own ROS 1 serialiser, and EventPackets make a
CDR round trip through a rosbags typestore, so every decoder reads real message bytes.
"""

from __future__ import annotations

import itertools
import struct
from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros.sensors.event_packets import (
    EventPacketDecoder,
    EventPacketError,
    Events,
    decode_event_packet,
    encode_mono,
    events_from_dvs_array,
    events_from_dvs_ros1,
)
from sam_moelora_ros.sensors.event_window import EventWindow
from sam_moelora_ros.sensors.evt3 import encode_evt3

EVENT_PACKET = """std_msgs/Header header
uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""
SEC = 1_000_000_000


def header(ns: int) -> SimpleNamespace:
    return SimpleNamespace(stamp=SimpleNamespace(sec=ns // SEC, nanosec=ns % SEC), frame_id="ev")


def packet(
    encoding: str, data: bytes, stamp_ns: int, seq: int = 0, time_base: int = 0, big: bool = False
) -> SimpleNamespace:
    return SimpleNamespace(
        header=header(stamp_ns),
        height=480,
        width=640,
        seq=seq,
        time_base=time_base,
        encoding=encoding,
        is_bigendian=big,
        events=data,
    )


def as_tuples(e: Events) -> list[tuple[int, int, int, int]]:
    return list(zip(e.x.tolist(), e.y.tolist(), e.t.tolist(), e.p.tolist(), strict=True))


def test_mono_bit_layout_by_hand() -> None:
    # bits 0-31 dt, 32-47 x, 48-62 y, 63 polarity (event_camera_msgs README)
    raw = b"".join(
        struct.pack("<Q", dt | x << 32 | y << 48 | p << 63)
        for dt, x, y, p in [(0, 639, 479, 1), (12345, 0, 32767, 0), (2**32 - 1, 65535, 1, 1)]
    )
    msg = packet("mono", raw, stamp_ns=5 * SEC + 7, time_base=777)
    assert as_tuples(decode_event_packet(msg)) == [
        (639, 479, 5 * SEC + 7, 1),
        (0, 32767, 5 * SEC + 7 + 12345, 0),
        (65535, 1, 5 * SEC + 7 + 2**32 - 1, 1),
    ]
    sensor = decode_event_packet(msg, time_reference="sensor")
    assert sensor.t.tolist() == [777, 777 + 12345, 777 + 2**32 - 1]
    assert encode_mono([639, 0, 65535], [479, 32767, 1], [0, 12345, 2**32 - 1], [1, 0, 1]) == raw
    big = b"".join(struct.pack(">Q", int(w)) for w in np.frombuffer(raw, "<u8"))
    assert as_tuples(decode_event_packet(packet("mono", big, 0, big=True)))[1] == (
        0,
        32767,
        12345,
        0,
    )


def test_evt3_packets_are_stamped_at_their_first_event() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    x, y, p = rng.integers(0, 640, n), rng.integers(0, 480, n), rng.integers(0, 2, n)
    t_us = np.sort(rng.integers(1_000_000, 1_010_000, n))  # 10 ms of sensor time
    data = np.frombuffer(encode_evt3(x, y, t_us, p), np.uint8)
    # Cut into ~1 ms packets at word boundaries; stamp each at its first event's time + 50 ms.
    decoder, sensor_decoder = EventPacketDecoder(), EventPacketDecoder("sensor")
    cuts = np.linspace(0, data.size // 2, 11).astype(int) * 2
    got, sensor = [], []
    for seq, (a, b) in enumerate(itertools.pairwise(cuts)):
        first = sensor_decoder.decode(packet("evt3", data[a:b].tobytes(), 0, seq))
        sensor.append(first)
        stamp = int(first.t[0]) + 50_000_000 if first.t.size else 0
        got.append(decoder.decode(packet("evt3", data[a:b].tobytes(), stamp, seq)))
    allsensor = Events.concatenate(sensor)
    assert sorted(as_tuples(allsensor)) == sorted(
        zip(x.tolist(), y.tolist(), (t_us * 1000).tolist(), p.tolist(), strict=True)
    )
    ros = Events.concatenate(got)
    np.testing.assert_array_equal(ros.t, allsensor.t + 50_000_000)
    assert decoder.lost_packets == 0


def test_evt3_seq_gap_waits_for_a_new_valid_time() -> None:
    a = encode_evt3([1, 2], [3, 3], [100, 100], [1, 1], vector=None)  # 0x8000 0x6064 0x0003 ...
    b = np.array([0x2005, 0x6070, 0x2006], "<u2").tobytes()  # no TIME_HIGH
    c = np.array([0x8000, 0x6080, 0x0004, 0x2007], "<u2").tobytes()
    dec = EventPacketDecoder("sensor")
    assert dec.decode(packet("evt3", a, 0, seq=1)).x.tolist() == [1, 2]
    assert dec.decode(packet("evt3", b, 0, seq=3)).x.size == 0  # seq 2 was lost
    assert dec.lost_packets == 1
    out = dec.decode(packet("evt3", c, 0, seq=4))
    assert as_tuples(out) == [(7, 4, 0x80 * 1000, 0)]
    dec2 = EventPacketDecoder("sensor")  # without a gap, b decodes with the carried registers
    dec2.decode(packet("evt3", a, 0, seq=1))
    assert as_tuples(dec2.decode(packet("evt3", b, 0, seq=2))) == [
        (5, 3, 100_000, 0),
        (6, 3, 0x70 * 1000, 0),
    ]


def test_triggers_and_errors() -> None:
    data = np.array([0x8000, 0x6010, 0xA301, 0x6011, 0xA300], "<u2").tobytes()
    events, trig = EventPacketDecoder().decode_with_triggers(packet("evt3", data, 9 * SEC))
    assert events.x.size == 0
    assert trig.t.tolist() == [9 * SEC, 9 * SEC + 1000] and trig.id.tolist() == [3, 3]
    assert trig.edge.tolist() == [1, 0]
    with pytest.raises(EventPacketError, match=r"'libcaer_cmp' is not supported; supported: evt3"):
        decode_event_packet(packet("libcaer_cmp", b"", 0))
    with pytest.raises(EventPacketError, match="not whole 8-byte events"):
        decode_event_packet(packet("mono", b"\0" * 12, 0))
    with pytest.raises(EventPacketError, match="undefined type 12"):
        decode_event_packet(packet("evt3", np.array([0xC000], "<u2").tobytes(), 0))
    with pytest.raises(EventPacketError, match="time_reference must be"):
        EventPacketDecoder("ros")  # type: ignore[arg-type]


def test_rosbags_event_packet_round_trip() -> None:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    store.register(get_types_from_msg(EVENT_PACKET, "event_camera_msgs/msg/EventPacket"))
    cls = store.types["event_camera_msgs/msg/EventPacket"]
    hdr = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=3, nanosec=5), frame_id="ev"
    )
    raw = encode_mono([10, 20], [30, 40], [0, 1000], [0, 1])
    msg = cls(
        header=hdr,
        height=480,
        width=640,
        seq=0,
        time_base=0,
        encoding="mono",
        is_bigendian=False,
        events=np.frombuffer(raw, np.uint8),
    )
    back = store.deserialize_cdr(store.serialize_cdr(msg, cls.__msgtype__), cls.__msgtype__)
    assert as_tuples(decode_event_packet(back)) == [
        (10, 30, 3 * SEC + 5, 0),
        (20, 40, 3 * SEC + 1005, 1),
    ]


def dvs_store():
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC)
    store.register(
        get_types_from_msg("uint16 x\nuint16 y\ntime ts\nbool polarity\n", "dvs_msgs/msg/Event")
    )
    store.register(
        get_types_from_msg(
            "std_msgs/Header header\nuint32 height\nuint32 width\ndvs_msgs/Event[] events\n",
            "dvs_msgs/msg/EventArray",
        )
    )
    return store


def test_dvs_event_array_fields_and_ros1_bytes_agree() -> None:
    store = dvs_store()
    ev_cls, arr_cls = store.types["dvs_msgs/msg/Event"], store.types["dvs_msgs/msg/EventArray"]
    time_cls = store.types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(2)
    n = 200
    xs, ys = rng.integers(0, 346, n), rng.integers(0, 260, n)
    ts = 1_600_000_000 * SEC + np.sort(rng.integers(0, 3 * SEC, n))
    ps = rng.integers(0, 2, n).astype(bool)
    events = [
        ev_cls(
            x=int(a),
            y=int(b),
            ts=time_cls(sec=int(t // SEC), nanosec=int(t % SEC)),
            polarity=bool(p),
        )
        for a, b, t, p in zip(xs, ys, ts, ps, strict=True)
    ]
    hdr = store.types["std_msgs/msg/Header"](
        seq=7, stamp=time_cls(sec=1_600_000_000, nanosec=42), frame_id="dvs"
    )
    msg = arr_cls(header=hdr, height=260, width=346, events=events)
    expected = list(
        zip(xs.tolist(), ys.tolist(), ts.tolist(), ps.astype(int).tolist(), strict=True)
    )
    assert as_tuples(events_from_dvs_array(msg)) == expected
    raw = store.serialize_ros1(msg, arr_cls.__msgtype__)
    stamp, frame, from_bytes = events_from_dvs_ros1(raw)
    assert (stamp, frame) == (1_600_000_000 * SEC + 42, "dvs")
    assert as_tuples(from_bytes) == expected
    with pytest.raises(EventPacketError, match="says 200 events"):
        events_from_dvs_ros1(bytes(raw)[:-3])


def brute_force(parts: list[Events], lo: int, hi: int) -> list[tuple[int, int, int, int]]:
    allev = Events.concatenate(parts)
    keep = (allev.t >= lo) & (allev.t <= hi)
    return as_tuples(Events(*(a[keep] for a in allev)))


def make_packets(rng: np.random.Generator, count: int, ms: int = 1_000_000) -> list[Events]:
    out = []
    for i in range(count):
        n = int(rng.integers(0, 50))
        t = np.sort(i * ms + rng.integers(0, ms, n)).astype(np.int64)
        out.append(
            Events(
                rng.integers(0, 640, n).astype(np.uint16),
                rng.integers(0, 480, n).astype(np.uint16),
                t,
                rng.integers(0, 2, n).astype(np.uint8),
            )
        )
    return out


def test_window_returns_exactly_the_events_in_range() -> None:
    rng = np.random.default_rng(5)
    packets = make_packets(rng, 40)
    window = EventWindow(5_000_000)
    for i, pk in enumerate(packets):
        window.add(pk)
        if i % 7 == 6:
            anchor = i * 1_000_000 + 300_000
            got = window.window(anchor)
            assert as_tuples(got) == brute_force(packets[: i + 1], anchor - 5_000_000, anchor)


def test_window_memory_is_bounded() -> None:
    rng = np.random.default_rng(6)
    window = EventWindow(3_000_000)  # keeps 2 windows of packets by default
    for pk in make_packets(rng, 200):
        window.add(pk)
        span = window.span()
        assert span is None or span[1] - span[0] <= 7_000_000
    assert 0 < len(window) <= 8 * 50
    window.window(199_000_000)  # a query drops what is before its window
    assert window.span()[0] >= 196_000_000 - 1_000_000
    capped = EventWindow(10_000_000, max_events=100)
    for pk in make_packets(rng, 30):
        capped.add(pk)
        assert len(capped) <= 100
    with pytest.raises(ValueError, match="keep_ns"):
        EventWindow(10, keep_ns=5)

"""EVT 3.0 decoding against hand-written word streams and a word-by-word reference decoder.

The reference follows event_camera_codecs' ``evt3_decoder.h`` one word at a time (small
streams only); the library is vectorised, so agreement on random streams (every word type, time
wraps, packets cut anywhere) checks the register propagation, not a shared formula.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.sensors.evt3 import Evt3Error, Evt3State, decode_evt3, encode_evt3


def words(*values: int, big: bool = False) -> bytes:
    return np.array(values, dtype=">u2" if big else "<u2").tobytes()


def events_of(d) -> list[tuple[int, int, int, int]]:
    return list(zip(d.x.tolist(), d.y.tolist(), d.t_us.tolist(), d.p.tolist(), strict=True))


def reference(data: bytes, width: int = 0, height: int = 0):
    w = np.frombuffer(data, "<u2")
    ey = tl = th = pol = bx = 0
    valid = seen_high = False
    out, trig = [], []

    def high(t: int, th: int) -> int:
        last = (th >> 12) & 0xFFF
        if t < last and last - t > 10:
            th += 1 << 24
        return (th & ~((1 << 24) - 1)) | (t << 12)

    i = 0
    while not valid and i < len(w):
        code, pay = int(w[i]) >> 12, int(w[i]) & 0xFFF
        if code == 6:
            tl = pay
            valid = seen_high
        elif code == 8:
            th, seen_high = high(pay, th), True
        i += 1

    def emit(x: int, p: int) -> None:
        if not width or (x < width and ey < height):
            out.append((x, ey, th | tl, p))

    for word in w[i:]:
        code, pay = int(word) >> 12, int(word) & 0xFFF
        if code == 2:
            emit(pay & 0x7FF, pay >> 11)
        elif code == 0:
            ey = pay & 0x7FF
        elif code == 6:
            tl = pay
        elif code == 8:
            th = high(pay, th)
        elif code == 3:
            pol, bx = pay >> 11, pay & 0x7FF
        elif code in (4, 5):
            n = 12 if code == 4 else 8
            for b in range(n):
                if pay & (1 << b):
                    emit(bx + b, pol)
            bx += n
        elif code == 10:
            trig.append((th | tl, (pay >> 8) & 0xF, pay & 1))
    return out, trig


HAND = words(
    0x8001,  # TIME_HIGH 1 -> 4096 us
    0x6010,  # TIME_LOW 16 -> 4112 us
    0x0005,  # ADDR_Y 5
    0x2800 | 100,  # ADDR_X 100, polarity 1
    0x3000 | 200,  # VECT_BASE_X 200, polarity 0
    0x4005,  # VECT_12 bits 0, 2 -> x 200, 202; base -> 212
    0x5F81,  # VECT_8 bits 0, 7 (unused bits 8-11 set, ignored) -> x 212, 219; base -> 220
    0xA301,  # EXT_TRIGGER id 3, rising edge
    0xE019,  # OTHERS (MASTER_END_OF_FRAME)
    0xFABC,  # CONTINUED_12
    0x7005,  # CONTINUED_4
    0x9000,  # padding
    0x4800,  # VECT_12 bit 11 -> x 231, still polarity 0
    0x6020,  # TIME_LOW 32 -> 4128 us
    0x0801,  # ADDR_Y 1 with system-type bit set: y 1
    0x2007,  # ADDR_X 7, polarity 0
)


def test_every_word_type_by_hand() -> None:
    d, state = decode_evt3(HAND)
    assert events_of(d) == [
        (100, 5, 4112, 1),
        (200, 5, 4112, 0),
        (202, 5, 4112, 0),
        (212, 5, 4112, 0),
        (219, 5, 4112, 0),
        (231, 5, 4112, 0),
        (7, 1, 4128, 0),
    ]
    assert (d.trigger_t_us.tolist(), d.trigger_id.tolist(), d.trigger_edge.tolist()) == (
        [4112],
        [3],
        [1],
    )
    assert (state.y, state.base_x, state.time_high, state.time_low) == (1, 232, 4096, 32)
    assert events_of(d) == reference(HAND)[0]


def test_time_wrap_and_small_step_back() -> None:
    data = words(
        0x8FFF,
        0x6FFF,
        0x0001,
        0x2001,  # t = 2^24 - 1
        0x8000,
        0x6002,
        0x2002,  # TIME_HIGH wraps to 0: t = 2^24 + 2
        0x8100,
        0x6000,
        0x2003,  # t = 2^24 + 0x100000
        0x80FB,
        0x2004,  # back by 5 (< 10): no wrap, t = 2^24 + 0x0FB000
    )
    d, state = decode_evt3(data)
    assert d.t_us.tolist() == [2**24 - 1, 2**24 + 2, 2**24 + 0x100000, 2**24 + 0x0FB000]
    assert state.time_high >> 24 == 1


def test_nothing_before_a_valid_time() -> None:
    # ADDR_Y and events before TIME_HIGH + TIME_LOW are ignored, as the codec does.
    data = words(0x0003, 0x2009, 0x6005, 0x8002, 0x200A, 0x6007, 0x200B)
    d, state = decode_evt3(data)
    assert events_of(d) == [(11, 0, 2 * 4096 + 7, 0)] == reference(data)[0]
    assert state.valid
    d, state = decode_evt3(words(0x0003, 0x200A, 0x8002))
    assert d.x.size == 0 and not state.valid and state.seen_high
    d, state = decode_evt3(words(0x6001, 0x0004, 0x2005), state)  # the valid time completes
    assert events_of(d) == [(5, 4, 2 * 4096 + 1, 0)]


def test_geometry_drops_events_outside_the_sensor() -> None:
    data = words(0x8000, 0x6000, 0x0002, 0x2000 | 639, 0x2000 | 640, 0x0300, 0x2001)
    d, _ = decode_evt3(data, width=640, height=480)
    assert events_of(d) == [(639, 2, 0, 0)] == reference(data, 640, 480)[0]


@pytest.mark.parametrize("seed", range(9))
def test_random_streams_agree_with_the_reference_and_the_events(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    dense = seed % 3 != 0  # dense streams fill vectors; sparse ones cross a 24-bit wrap
    x = rng.integers(0, 48 if dense else 640, n)
    y = rng.integers(0, 6 if dense else 480, n)
    t0 = int(rng.integers(0, 10**6)) if dense else 2**24 - 20_000
    t = t0 + rng.integers(0, 300 if dense else 60_000, n)
    p = rng.integers(0, 2, n)
    data = encode_evt3(x, y, t, p, vector=[None, 8, 12][seed % 3])
    d, _ = decode_evt3(data)
    got = events_of(d)
    assert got == reference(data)[0]
    assert sorted(got) == sorted(zip(x.tolist(), y.tolist(), t.tolist(), p.tolist(), strict=True))
    if seed % 3:
        codes = np.frombuffer(data, "<u2") >> 12
        assert (codes == (5 if seed % 3 == 1 else 4)).any() and (codes == 3).any()


@pytest.mark.parametrize("seed", range(4))
def test_packets_cut_anywhere_decode_like_one_stream(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = 2000
    x, y = rng.integers(0, 40, n), rng.integers(0, 5, n)
    t, p = 2**24 - 5000 + rng.integers(0, 20_000, n), rng.integers(0, 2, n)
    data = np.frombuffer(encode_evt3(x, y, t, p, vector=12), np.uint8)
    whole = events_of(decode_evt3(data)[0])
    cuts = np.unique(rng.integers(0, data.size // 2, 12)) * 2
    state, parts = Evt3State(), []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, data.size], strict=True):
        d, state = decode_evt3(data[a:b], state)
        parts += events_of(d)
    assert parts == whole


def test_big_endian_and_duplicates() -> None:
    x, y, t, p = [3, 3, 4, 5], [1, 1, 1, 1], [10, 10, 10, 10], [1, 1, 1, 1]  # a duplicate
    for big in (False, True):
        data = encode_evt3(x, y, t, p, vector=12, big_endian=big)
        d, _ = decode_evt3(data, big_endian=big)
        assert sorted(events_of(d)) == sorted(zip(x, y, t, p, strict=True))


def test_errors() -> None:
    with pytest.raises(Evt3Error, match="must be whole 16-bit words"):
        decode_evt3(b"\x00\x80\x00")
    with pytest.raises(Evt3Error, match=r"word 2 \(0xb123\) has undefined type 11"):
        decode_evt3(words(0x8000, 0x6000, 0xB123))
    with pytest.raises(Evt3Error, match="x, y in 0..2047"):
        encode_evt3([2048], [0], [0], [0])
    with pytest.raises(Evt3Error, match="vector must be 12, 8 or None"):
        encode_evt3([1], [0], [0], [0], vector=4)

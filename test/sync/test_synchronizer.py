"""Timeline tests of the anchor-driven synchroniser (:mod:`sam_moelora_ros.sync.synchronizer`).

Every test replays an exact, seeded timeline of (receive time, sensor, stamp) events, the way
the node and the bag replay drive the synchroniser, and checks what a user of the frames relies
on: which sensors are in each frame and with which message, why the others are not, how long a
frame waited, and that nothing stalls, leaks or goes out of order.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import threading
from collections.abc import Iterable

import pytest

from sam_moelora_ros.sync.synchronizer import Absence, Frame, SensorSpec, SyncConfig, Synchronizer

pytestmark = pytest.mark.colcon

Event = tuple[float, str, float]  # (receive time now_s, sensor, header stamp_s)


def stream(
    sensor: str,
    hz: float,
    t0: float,
    t1: float,
    *,
    latency: float = 0.0,
    jitter: float = 0.0,
    rng: random.Random | None = None,
    gap: tuple[float, float] | None = None,
) -> list[Event]:
    """A sensor publishing at ``hz`` from ``t0`` to ``t1`` (exclusive), optionally with a gap."""
    events = []
    n = round((t1 - t0) * hz)
    for i in range(n):
        stamp = round(t0 + i / hz, 9)
        if gap is not None and gap[0] <= stamp < gap[1]:
            continue
        if jitter and rng is not None:
            stamp = round(stamp + rng.uniform(-jitter, jitter), 9)
        events.append((round(stamp + latency, 9), sensor, stamp))
    return events


def run(
    sync: Synchronizer,
    events: Iterable[Event],
    *,
    poll_dt: float = 0.01,
    until: float | None = None,
    flush: bool = True,
) -> list[Frame]:
    """Push events in receive order with a ``poll`` timer every ``poll_dt`` (like the node).

    The timer keeps ticking until ``until`` (default: 0.1 s after the last event), then
    ``flush`` releases whatever is still pending.
    """
    ordered = sorted(events, key=lambda e: e[0])  # stable: same-time events keep list order
    end = ordered[-1][0] + 0.1 if until is None else until
    frames: list[Frame] = []
    k = 0
    for now, sensor, stamp in ordered:
        while k * poll_dt < now:
            frames += sync.poll(k * poll_dt)
            k += 1
        frames += sync.push(sensor, stamp, (sensor, stamp), now)
    while k * poll_dt <= end:
        frames += sync.poll(k * poll_dt)
        k += 1
    if flush:
        frames += sync.flush()
    return frames


def nearest(stamps: Iterable[float], t: float, tol: float) -> float | None:
    """Brute-force reference: the stamp nearest ``t`` within ``tol``, ties (1 ns) to the older."""
    best = None
    for s in sorted(stamps):
        if abs(s - t) <= tol + 1e-9 and (best is None or abs(s - t) < abs(best - t) - 1e-9):
            best = s
    return best


def check_consistent(frame: Frame) -> None:
    """Each present message is the one pushed with that stamp; absent and present are disjoint."""
    for name, msg in frame.messages.items():
        assert msg == (name, frame.stamps[name])
    assert not set(frame.absent) & set(frame.messages)
    assert frame.messages[frame.anchor] == (frame.anchor, frame.stamp)


def cfg(*specs: SensorSpec, **kw: object) -> SyncConfig:
    return SyncConfig(sensors=specs, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- matching


def test_all_sensors_present_one_frame_per_anchor_with_nearest_messages() -> None:
    specs = (
        SensorSpec("rgb"),
        SensorSpec("depth", tolerance_s=0.02),
        SensorSpec("event", tolerance_s=0.02),
        SensorSpec("lidar", tolerance_s=0.05, max_wait_s=0.06),
    )
    sync = Synchronizer(cfg(*specs))
    ev = (
        stream("rgb", 20, 0, 2, latency=0.02)
        + stream("depth", 20, 0, 2, latency=0.005)
        + stream("event", 20, 0, 2, latency=0.002)
        + stream("lidar", 10, 0, 2, latency=0.01)
    )
    frames = run(sync, ev)
    assert [f.stamp for f in frames] == [e[2] for e in stream("rgb", 20, 0, 2)]
    lidar_stamps = [e[2] for e in ev if e[1] == "lidar"]
    for f in frames:
        check_consistent(f)
        assert f.present == ("rgb", "depth", "event", "lidar"), f
        assert f.stamps["depth"] == f.stamp == f.stamps["event"]
        assert f.stamps["lidar"] == nearest(lidar_stamps, f.stamp, 0.05)
        assert not f.forced and f.wait_s <= 0.06 + 1e-9
    # the 10 Hz LiDAR serves two camera frames each
    assert sync.status(2.1).sensors["lidar"].used == len(frames)


def test_sensor_dropped_mid_stream_is_left_out_without_stalling_and_used_again() -> None:
    depth = SensorSpec("depth", tolerance_s=0.02, stale_timeout_s=0.3)
    sync = Synchronizer(cfg(SensorSpec("rgb"), depth))
    ev = stream("rgb", 20, 0, 3, latency=0.02) + stream(
        "depth", 20, 0, 3, latency=0.005, gap=(1.0, 2.0)
    )
    frames = run(sync, ev)
    assert len(frames) == 60  # one frame per anchor, none lost
    before = [f for f in frames if f.stamp < 1.0]
    during = [f for f in frames if 1.0 <= f.stamp < 2.0]
    after = [f for f in frames if f.stamp >= 2.0]
    assert all(f.stamps.get("depth") == f.stamp for f in before + after)
    reasons = [f.absent["depth"] for f in during]
    assert len(reasons) == 20 and set(reasons) == {Absence.LATE, Absence.STALE}
    first_stale = reasons.index(Absence.STALE)
    assert all(r == "late" for r in reasons[:first_stale])  # then it counts as down ...
    assert all(r == "stale" for r in reasons[first_stale:])  # ... and stays down until back
    # a late sensor costs at most its bounded wait (plus timer granularity); a stale one nothing
    assert all(f.wait_s <= 0.05 + 0.01 + 1e-9 for f in during)
    assert all(f.wait_s == 0 for f in during[first_stale + 1 :])
    assert after[0].stamp == 2.0 and "depth" in after[0].present  # back from its next message


def test_jittered_and_reordered_member_stamps_match_the_nearest() -> None:
    rng = random.Random(7)
    specs = (SensorSpec("rgb"), SensorSpec("depth", tolerance_s=0.02, max_wait_s=0.05))
    sync = Synchronizer(cfg(*specs))
    rgb = stream("rgb", 20, 0, 3, latency=0.03, jitter=0.003, rng=rng)
    depth = stream("depth", 30, 0, 3, latency=0.004, jitter=0.003, rng=rng)
    # deliver some depth messages out of order: swap the receive times of neighbours
    for i in range(1, len(depth) - 1, 7):
        (a, sa, ta), (b, sb, tb) = depth[i], depth[i + 1]
        depth[i], depth[i + 1] = (b, sa, ta), (a, sb, tb)
    frames = run(sync, rgb + depth)
    assert [f.stamp for f in frames] == [e[2] for e in rgb]
    matched = 0
    for f in frames:
        check_consistent(f)
        # the nearest among the depth messages received by the time the frame left; a message
        # overtaken by a newer one is only used if it arrived before the frame was released
        received = [t for now, _, t in depth if now <= f.emitted_s]
        expected = nearest(received, f.stamp, 0.02)
        assert f.stamps.get("depth") == expected, f
        matched += expected is not None
        if expected is None:
            assert f.absent["depth"] in (Absence.NO_MATCH, Absence.LATE)
    assert matched > 0.8 * len(frames)
    assert sync.status(3.1).sensors["depth"].reordered == len(range(1, len(depth) - 1, 7))


def test_reordered_anchor_inside_the_wait_is_emitted_in_stamp_order() -> None:
    sync = Synchronizer(cfg(SensorSpec("rgb"), SensorSpec("depth", max_wait_s=0.05)))
    assert sync.push("depth", 0.0, ("depth", 0.0), 0.0) == []
    assert sync.push("rgb", 0.10, ("rgb", 0.10), 0.101) == []  # waits: depth is behind
    assert sync.push("rgb", 0.05, ("rgb", 0.05), 0.102) == []  # older anchor, arrives later
    frames = sync.push("depth", 0.10, ("depth", 0.10), 0.11)
    assert [f.stamp for f in frames] == [0.05, 0.10]
    assert [f.stamps["depth"] for f in frames] == [0.0, 0.10]  # equidistant: the older wins
    # an anchor older than a frame already emitted cannot be emitted in order: rejected
    assert sync.push("rgb", 0.07, ("rgb", 0.07), 0.12) == []
    assert sync.status(0.12).sensors["rgb"].rejected == {"out_of_order": 1}


def test_different_rates_camera_lidar_and_bursty_events() -> None:
    specs = (
        SensorSpec("rgb"),
        SensorSpec("lidar", tolerance_s=0.05, max_wait_s=0.06),
        SensorSpec("event", tolerance_s=0.005, max_wait_s=0.0, stale_timeout_s=1.0),
    )
    sync = Synchronizer(cfg(*specs, max_buffer=64))
    bursts = [
        (round(b + k * 0.001 + 0.002, 9), "event", round(b + k * 0.001, 9))
        for b in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
        for k in range(20)
    ]
    ev = stream("rgb", 20, 0, 2, latency=0.02) + stream("lidar", 10, 0, 2, latency=0.01) + bursts
    frames = run(sync, ev)
    assert len(frames) == 40
    lidar = [e[2] for e in ev if e[1] == "lidar"]
    events = [e[2] for e in bursts]
    with_events = 0
    for f in frames:
        check_consistent(f)
        assert f.stamps["lidar"] == nearest(lidar, f.stamp, 0.05)
        expected = nearest(events, f.stamp, 0.005)
        assert f.stamps.get("event") == expected, f
        if expected is None:
            assert f.absent["event"] in (Absence.LATE, Absence.NO_MATCH)
        with_events += expected is not None
    assert with_events == 8  # the frames at each burst start (0.0, 0.25, ...) and no others


# --------------------------------------------------------------------------- bounded waiting


def test_waits_for_a_late_sensor_up_to_its_bound_then_emits_without_it() -> None:
    sync = Synchronizer(cfg(SensorSpec("rgb"), SensorSpec("depth", max_wait_s=0.05)))
    sync.push("depth", 0.0, ("depth", 0.0), 0.0)
    sync.push("rgb", 0.0, ("rgb", 0.0), 0.0)
    # depth 30 ms late: within the bound, the frame waits and is completed by depth's push
    assert sync.push("rgb", 0.1, ("rgb", 0.1), 0.1) == []
    assert sync.poll(0.12) == []
    (frame,) = sync.push("depth", 0.1, ("depth", 0.1), 0.13)
    assert frame.present == ("rgb", "depth") and frame.wait_s == pytest.approx(0.03)
    # depth 80 ms late: the timer releases the frame at the bound, without depth
    assert sync.push("rgb", 0.2, ("rgb", 0.2), 0.2) == []
    assert sync.poll(0.249) == []
    (frame,) = sync.poll(0.25)
    assert frame.stamp == 0.2 and frame.absent == {"depth": Absence.LATE}
    assert frame.wait_s == pytest.approx(0.05) and not frame.forced
    # its message arriving afterwards produces no second frame, and is used by the next anchor
    assert sync.push("depth", 0.2, ("depth", 0.2), 0.28) == []
    assert sync.push("rgb", 0.22, ("rgb", 0.22), 0.29) == []  # depth behind again: waits
    (frame,) = sync.poll(0.34)
    assert frame.stamps == {"rgb": 0.22, "depth": 0.2}


def test_never_seen_sensor_is_not_waited_for() -> None:
    specs = (SensorSpec("rgb"), SensorSpec("thermal", max_wait_s=1.0))
    sync = Synchronizer(cfg(*specs))
    (frame,) = sync.push("rgb", 5.0, ("rgb", 5.0), 5.0)
    assert frame.absent == {"thermal": Absence.NEVER_SEEN} and frame.wait_s == 0


def test_pending_queue_is_bounded_and_flush_releases_everything() -> None:
    specs = (SensorSpec("rgb"), SensorSpec("depth", max_wait_s=10.0, stale_timeout_s=100.0))
    sync = Synchronizer(cfg(*specs, max_pending=3))
    sync.push("depth", 0.0, ("depth", 0.0), 0.0)
    out = []
    for i in range(1, 8):
        t = round(i * 0.05, 9)
        out += sync.push("rgb", t, ("rgb", t), t)
        assert sync.status(t).pending <= 3
    assert [f.stamp for f in out] == [0.05, 0.1, 0.15, 0.2] and all(f.forced for f in out)
    rest = sync.flush()
    assert [f.stamp for f in rest] == [0.25, 0.3, 0.35] and sync.status().pending == 0
    assert sync.status().frames_forced == 7


# ---------------------------------------------------------------------------- anchor fallback


def test_anchor_loss_fallback_takes_over_and_hands_back() -> None:
    specs = (SensorSpec("rgb"), SensorSpec("depth"), SensorSpec("lidar", tolerance_s=0.05))
    sync = Synchronizer(cfg(*specs, fallback_anchors=("depth", "lidar"), anchor_timeout_s=0.3))
    ev = (
        stream("rgb", 20, 0, 6, latency=0.01, gap=(2.0, 4.0))
        + stream("depth", 20, 0, 6, latency=0.005)
        + stream("lidar", 10, 0, 6, latency=0.005)
    )
    frames = run(sync, ev)
    anchors = [(f.anchor, f.stamp) for f in frames]
    by_depth = [s for a, s in anchors if a == "depth"]
    assert {a for a, _ in anchors} == {"rgb", "depth"}
    # depth drives frames from its first message after rgb's silence exceeded the timeout ...
    assert by_depth[0] == pytest.approx(1.95 + 0.3 + 0.05, abs=0.051)
    # ... until rgb's first message back; rgb drives everything else
    # (depth's 4.0 arrives 5 ms before rgb's: both anchor a frame, then depth stops anchoring)
    assert by_depth[-1] == 4.0 and len(by_depth) == len(set(by_depth))
    assert [s for a, s in anchors if a == "rgb"] == [e[2] for e in ev if e[1] == "rgb"]
    for f in frames:
        check_consistent(f)
        if f.anchor == "depth":
            assert f.absent["rgb"] == Absence.STALE and f.present == ("depth", "lidar")
    # frames never stop for longer than the anchor timeout (plus a period)
    stamps = sorted(s for _, s in anchors)
    assert max(b - a for a, b in itertools.pairwise(stamps)) <= 0.3 + 0.05 + 0.05
    st = sync.status(6.0)
    assert st.active_anchor == "rgb" and st.anchor_switches == 2


def test_fallback_order_prefers_the_earlier_alive_fallback() -> None:
    # rgb's own stale timeout is long: only the anchor timeout says it is gone
    specs = (
        SensorSpec("rgb", stale_timeout_s=1.0),
        SensorSpec("depth", stale_timeout_s=0.2),
        SensorSpec("lidar", stale_timeout_s=0.2),
    )
    sync = Synchronizer(cfg(*specs, fallback_anchors=("depth", "lidar"), anchor_timeout_s=0.2))
    sync.push("rgb", 0.0, "r", 0.0)
    sync.push("depth", 0.0, "d", 0.0)
    sync.poll(0.5)  # rgb and depth silent since 0.0
    (frame,) = sync.push("lidar", 0.5, "l", 0.5)
    assert frame.anchor == "lidar" and sync.active_anchor == "lidar"
    assert sync.push("depth", 0.6, "d", 0.6) == []  # depth outranks lidar as soon as it speaks
    (frame,) = sync.push("lidar", 0.6, "l", 0.601)  # completes depth's frame, anchors none
    assert frame.anchor == "depth" and frame.stamps == {"depth": 0.6, "lidar": 0.6}
    assert frame.absent == {"rgb": Absence.STALE}  # a timed-out anchor is not waited for
    assert sync.status(0.601).sensors["rgb"].state == "stale"
    assert sync.push("depth", 0.7, "d", 0.7) == []
    assert [f.anchor for f in sync.push("lidar", 0.7, "l", 0.7)] == ["depth"]
    (frame,) = sync.push("rgb", 0.7, "r", 0.71)  # rgb is back: it anchors again at once
    assert frame.anchor == "rgb" and frame.present == ("rgb", "depth", "lidar")
    assert sync.active_anchor == "rgb" and sync.status(0.71).anchor_switches == 3


# ------------------------------------------------------------------------------ time & input


@pytest.mark.parametrize("clock", ["sim", "wall"])
def test_bag_loop_resets_buffers_with_a_warning(
    clock: str, caplog: pytest.LogCaptureFixture
) -> None:
    specs = (SensorSpec("rgb"), SensorSpec("depth"), SensorSpec("lidar", tolerance_s=0.05))
    sync = Synchronizer(cfg(*specs))
    one_loop = sorted(
        stream("rgb", 20, 0, 2) + stream("depth", 20, 0, 2) + stream("lidar", 10, 0, 2),
        key=lambda e: e[2],
    )
    events = []
    for loop in range(2):
        offset = 0.0 if clock == "sim" else loop * 2.1  # wall: receive time keeps going
        events += [(round(t + offset, 9), s, t) for _, s, t in one_loop]
    frames: list[Frame] = []
    with caplog.at_level(logging.WARNING, logger="sam_moelora_ros.sync.synchronizer"):
        for now, s, t in events:  # replay order: stamp order, now = stamp (+ offset)
            frames += sync.push(s, t, (s, t), now)
        frames += sync.flush()
    st = sync.status()
    assert st.resets == 1 and "jumped back" in (st.last_reset_reason or "")
    assert any("time reset" in r.getMessage() for r in caplog.records)
    assert len(frames) == 80  # the frame pending at the loop point was flushed, not lost
    assert [f.stamp for f in frames] == [e[2] for e in stream("rgb", 20, 0, 2)] * 2
    for f in frames:
        check_consistent(f)
        assert all(abs(s - f.stamp) <= 0.05 + 1e-9 for s in f.stamps.values())  # no mixing
    second = frames[40:]
    assert all(f.present == ("rgb", "depth", "lidar") for f in second)


def test_sim_clock_jumping_back_resets_before_any_message() -> None:
    specs = (SensorSpec("rgb"), SensorSpec("depth", max_wait_s=0.05))
    sync = Synchronizer(cfg(*specs))
    loop = sorted(stream("rgb", 20, 0, 2) + stream("depth", 20, 0, 2), key=lambda e: e[2])
    for _, s, t in loop:
        sync.push(s, t, (s, t), t)
    sync.push("rgb", 2.0, ("rgb", 2.0), 2.0)  # waits for depth: its deadline is now=2.05
    flushed = sync.poll(0.0)  # /clock restarted (bag loop with use_sim_time), no message yet
    assert [f.stamp for f in flushed] == [2.0] and flushed[0].forced
    st = sync.status()
    assert st.resets == 1 and "clock jumped back" in (st.last_reset_reason or "")
    assert st.now_s == 0.0 and st.pending == 0
    # time restarts from the new clock: waits and latencies are measured on it, not clamped
    assert sync.push("rgb", 0.0, ("rgb", 0.0), 0.0) == []  # depth was alive: waited for
    assert sync.poll(0.04) == []
    (frame,) = sync.push("depth", 0.0, ("depth", 0.0), 0.045)
    assert frame.present == ("rgb", "depth") and frame.wait_s == pytest.approx(0.045)


def test_duplicate_stamps_keep_the_first_message() -> None:
    sync = Synchronizer(cfg(SensorSpec("rgb"), SensorSpec("depth", max_wait_s=0.0)))
    sync.push("depth", 1.0, "depth-first", 1.0)
    sync.push("depth", 1.0, "depth-again", 1.001)
    (frame,) = sync.push("rgb", 1.0, "rgb-first", 1.002)
    assert sync.push("rgb", 1.0, "rgb-again", 1.003) == []
    assert frame.messages == {"rgb": "rgb-first", "depth": "depth-first"}
    sensors = sync.status(1.01).sensors
    assert sensors["depth"].rejected == {"duplicate": 1}
    assert sensors["rgb"].rejected == {"out_of_order": 1}  # already emitted: same stamp again
    assert sync.status().frames_emitted == 1


def test_bad_input_is_rejected_and_counted_programming_errors_raise() -> None:
    sync = Synchronizer(cfg(SensorSpec("rgb"), SensorSpec("depth"), max_age_s=0.3))
    sync.push("depth", 5.0, "d", 5.0)
    assert sync.push("depth", math.nan, "d", 5.0) == []
    assert sync.push("depth", 4.5, "d", 5.0) == []  # 0.5 s back: too old, not a loop
    assert sync.status(5.0).sensors["depth"].rejected == {"invalid_stamp": 1, "too_old": 1}
    assert sync.status(5.0).resets == 0
    with pytest.raises(ValueError, match=r"unknown sensor 'thermal' \(known: rgb, depth\)"):
        sync.push("thermal", 5.0, "t", 5.0)
    with pytest.raises(ValueError, match="now_s must be a finite number"):
        sync.poll(math.inf)


def test_runtime_disable_and_reenable_a_sensor() -> None:
    sync = Synchronizer(cfg(SensorSpec("rgb"), SensorSpec("depth", max_wait_s=0.0)))
    sync.push("depth", 0.0, "d0", 0.0)
    sync.set_enabled("depth", False)
    assert sync.push("depth", 0.05, "d1", 0.05) == []  # ignored while disabled
    (frame,) = sync.push("rgb", 0.05, "r1", 0.05)
    assert frame.absent == {"depth": Absence.DISABLED}
    assert sync.status(0.05).sensors["depth"].state == "disabled"
    sync.set_enabled("depth", True)
    sync.push("depth", 0.1, "d2", 0.1)
    (frame,) = sync.push("rgb", 0.1, "r2", 0.1)
    assert frame.messages == {"rgb": "r2", "depth": "d2"}
    with pytest.raises(ValueError, match="would disable the anchor and every fallback"):
        sync.set_enabled("rgb", False)


# ----------------------------------------------------------------------- memory & diagnostics


def test_buffers_stay_bounded_under_a_flood() -> None:
    specs = (
        SensorSpec("rgb"),
        SensorSpec("event", tolerance_s=0.001, max_wait_s=0.0),
        SensorSpec("lidar", tolerance_s=0.5, stale_timeout_s=5.0),
        # spoke once, never stale, huge wait: every anchor would wait on it forever
        SensorSpec("depth", max_wait_s=1e6, stale_timeout_s=1e6),
    )
    sync = Synchronizer(cfg(*specs, max_buffer=64, max_age_s=2.0, max_pending=4))
    sync.push("depth", 0.0, "d", 0.0)
    frames = 0
    for i in range(100_000):  # 100 kHz of events, a 100 Hz camera, a 1 Hz LiDAR
        t = i * 1e-5
        if i % 1000 == 0:
            frames += len(sync.push("rgb", t, i, t))
        if i % 100_000 == 0:
            frames += len(sync.push("lidar", t, i, t))
        frames += len(sync.push("event", t, i, t))
        if i % 97 == 0:
            st = sync.status(t)
            assert st.pending <= 4
            assert all(s.buffered <= 64 for s in st.sensors.values())
    st = sync.status(1.0)
    assert st.sensors["event"].buffered == 64 and st.sensors["event"].dropped == 100_000 - 64
    # the first frame settled normally (depth had spoken at its stamp); the rest were forced
    assert frames + st.pending == 100 and st.frames_forced == frames - 1
    # age bound: a slow sensor keeps only max_age_s of stamps however many slots are free
    for k in range(1, 10):
        sync.push("lidar", float(k), k, float(k))
    assert sync.status(9.0).sensors["lidar"].buffered == 3  # stamps 7, 8, 9 (2 s window)


def test_status_reports_rates_states_and_counters() -> None:
    specs = (
        SensorSpec("rgb"),
        SensorSpec("depth", tolerance_s=0.01, max_wait_s=0.0),
        SensorSpec("lidar", tolerance_s=0.05, stale_timeout_s=0.5),
        SensorSpec("event", enabled=False),
        SensorSpec("thermal"),
    )
    sync = Synchronizer(cfg(*specs, rate_window_s=2.0))
    ev = (
        stream("rgb", 20, 0, 3.05, latency=0.02)
        + stream("lidar", 10, 0, 3, latency=0.01)
        # depth is alive but its clock is 0.2 s behind: it never matches
        + [(now, "depth", t - 0.2) for now, _, t in stream("depth", 30, 0, 3, latency=0.005)]
        + stream("event", 30, 0, 1)
    )
    run(sync, ev, until=3.02, flush=False)
    st = sync.status(3.02)
    rgb, lidar, depth = st.sensors["rgb"], st.sensors["lidar"], st.sensors["depth"]
    assert rgb.rate_hz == pytest.approx(20, rel=0.05)
    assert depth.rate_hz == pytest.approx(30, rel=0.05)
    assert lidar.rate_hz == pytest.approx(10, rel=0.1)
    assert (rgb.state, lidar.state, depth.state) == ("ok", "ok", "missing")
    assert st.sensors["event"].state == "disabled" and st.sensors["event"].rejected["disabled"]
    assert st.sensors["thermal"].state == "never_seen"
    assert st.last_frame_present == ("rgb", "lidar")
    assert rgb.last_stamp_s == pytest.approx(3.0) and rgb.received == 61
    assert depth.absent.get("no_match", 0) + depth.absent.get("late", 0) == rgb.used
    # LiDAR stopped at 2.9 s: stale after its timeout, and its rate decays to 0
    late = sync.status(4.0).sensors["lidar"]
    assert late.state == "stale" and late.silence_s == pytest.approx(4.0 - 2.91)
    assert late.rate_hz == pytest.approx(9 / (4.0 - 2.01))  # 10 arrivals left in the window
    assert sync.status(5.0).sensors["lidar"].rate_hz == 0.0
    assert st.frames_emitted == rgb.used and st.active_anchor == "rgb"


def test_replay_is_deterministic() -> None:
    def once() -> list[tuple[object, ...]]:
        rng = random.Random(3)
        sync = Synchronizer(cfg(SensorSpec("rgb"), SensorSpec("depth"), SensorSpec("lidar")))
        ev = (
            stream("rgb", 20, 0, 2, latency=0.01, jitter=0.004, rng=rng)
            + stream("depth", 30, 0, 2, latency=0.003, jitter=0.004, rng=rng)
            + stream("lidar", 10, 0, 2, latency=0.02, jitter=0.004, rng=rng)
        )
        frames = run(sync, ev)
        return [(f.anchor, f.stamp, f.stamps, f.absent, f.emitted_s) for f in frames]

    first = once()
    assert len(first) == 40 and first == once()


def test_concurrent_pushes_are_safe() -> None:
    sync = Synchronizer(
        cfg(SensorSpec("rgb"), SensorSpec("depth"), SensorSpec("lidar"), max_buffer=16)
    )
    errors: list[BaseException] = []

    def feed(sensor: str) -> None:
        try:
            for i in range(3000):
                t = i * 0.001
                sync.push(sensor, t, i, t)
                sync.poll(t)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(s,)) for s in ("rgb", "depth", "lidar")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    st = sync.status()
    assert all(s.received == 3000 and s.buffered <= 16 for s in st.sensors.values())


# ------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"anchor": "thermal"}, r"SyncConfig\.anchor 'thermal' is not a configured sensor"),
        ({"fallback_anchors": ("rgb",)}, r"fallback_anchors contains the anchor 'rgb'"),
        ({"fallback_anchors": ("sonar",)}, r"fallback_anchors: 'sonar' is not a configured"),
        ({"fallback_anchors": ("depth", "depth")}, r"fallback_anchors has duplicates"),
        ({"anchor_timeout_s": 0.0}, r"SyncConfig\.anchor_timeout_s must be a finite number > 0"),
        ({"max_age_s": math.nan}, r"SyncConfig\.max_age_s must be a finite number > 0, got nan"),
        ({"max_buffer": 0}, r"SyncConfig\.max_buffer must be an int >= 1, got 0"),
        ({"max_pending": 2.5}, r"SyncConfig\.max_pending must be an int >= 1, got 2\.5"),
        ({"time_jump_s": -1.0}, r"SyncConfig\.time_jump_s must be a finite number > 0"),
    ],
)
def test_invalid_sync_config_names_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cfg(SensorSpec("rgb"), SensorSpec("depth"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tolerance_s": -0.1}, r"SensorSpec\('depth'\)\.tolerance_s must be .* >= 0, got -0\.1"),
        ({"max_wait_s": math.inf}, r"SensorSpec\('depth'\)\.max_wait_s must be .*, got inf"),
        ({"stale_timeout_s": 0}, r"SensorSpec\('depth'\)\.stale_timeout_s must be .* > 0"),
        ({"enabled": "yes"}, r"SensorSpec\('depth'\)\.enabled must be a bool"),
    ],
)
def test_invalid_sensor_spec_names_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SensorSpec("depth", **kwargs)  # type: ignore[arg-type]


def test_invalid_sensor_sets() -> None:
    with pytest.raises(ValueError, match=r"SyncConfig\.sensors is empty"):
        SyncConfig(sensors=())
    with pytest.raises(ValueError, match=r"names must be unique; repeated: \['rgb'\]"):
        cfg(SensorSpec("rgb"), SensorSpec("rgb"))
    with pytest.raises(ValueError, match=r"SensorSpec\.name must be a non-empty string"):
        SensorSpec("")
    with pytest.raises(ValueError, match="the anchor and every fallback anchor are disabled"):
        cfg(SensorSpec("rgb", enabled=False), SensorSpec("depth"))
    # a disabled anchor is fine while an enabled fallback can drive frames
    c = cfg(SensorSpec("rgb", enabled=False), SensorSpec("depth"), fallback_anchors=["depth"])
    assert c.fallback_anchors == ("depth",) and c.anchor_chain == ("rgb", "depth")

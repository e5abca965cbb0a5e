"""The node's thread-safe pieces: latest-wins slot, warning throttle, sensor health, presence."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from sam_moelora_ros.pipeline import runtime
from sam_moelora_ros.pipeline.runtime import (
    FramePresence,
    InferenceStats,
    LatestSlot,
    SensorHealth,
    Throttle,
)


def test_latest_slot_keeps_the_newest_and_counts_drops() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.dropped == 2 and slot.accepted == 3
    assert slot.get(timeout=0) == 3
    assert slot.get(timeout=0.01) is None


def test_latest_slot_wakes_the_consumer_and_closes() -> None:
    slot: LatestSlot[str] = LatestSlot()
    got: list[str | None] = []
    consumer = threading.Thread(target=lambda: got.append(slot.get(timeout=5)))
    consumer.start()
    slot.put("frame")
    consumer.join(2)
    assert got == ["frame"]
    waiting = threading.Thread(target=lambda: got.append(slot.get(timeout=5)))
    waiting.start()
    slot.close()
    waiting.join(2)
    assert not waiting.is_alive() and got[-1] is None and slot.closed


def test_latest_slot_memory_is_bounded_under_a_flood() -> None:
    slot: LatestSlot[bytes] = LatestSlot()
    for _i in range(10_000):
        slot.put(bytes(10))
    assert slot.dropped == 9_999
    assert slot.get(0) is not None and slot.get(0) is None


def test_throttle_counts_suppressed() -> None:
    throttle = Throttle(period_s=5.0)
    assert throttle.allow("rgb", 0.0) == (True, 0)
    assert throttle.allow("rgb", 1.0) == (False, 0)
    assert throttle.allow("depth", 1.0) == (True, 0)
    assert throttle.allow("rgb", 2.0) == (False, 0)
    assert throttle.allow("rgb", 5.5) == (True, 2)


def test_sensor_health() -> None:
    health = SensorHealth("rgb")
    health.ok()
    health.reject("truncated", 2.0)
    assert (health.received, health.rejected, health.last_error) == (1, 1, "truncated")
    assert health.last_error_s == 2.0


def test_sensor_health_keeps_no_second_rate_estimate() -> None:
    """One rate estimator: the synchroniser's (``SensorStatus.rate_hz``, what diagnostics show).

    SensorHealth used to tick a RateMeter of its own that nothing read (and a ``last_ok_s`` no
    one read): dead state updated on every message.
    """
    fields = {f.name for f in dataclasses.fields(SensorHealth)}
    assert fields == {"name", "received", "rejected", "last_error", "last_error_s"}
    assert not hasattr(runtime, "RateMeter")


def test_frame_presence_counts_late_and_unmatched_over_the_window() -> None:
    presence = FramePresence(window=4)
    assert presence.missed("depth") == (0, 0)
    presence.record({"depth": "late", "lidar": "stale"})
    presence.record({"depth": "no_match", "event": "never_seen"})
    presence.record({})
    # stale / never_seen / disabled have states of their own: not counted as "missed"
    assert presence.missed("depth") == (2, 3)
    assert presence.missed("lidar") == (0, 3) and presence.missed("event") == (0, 3)
    for _ in range(3):
        presence.record({})
    assert presence.missed("depth") == (0, 4)  # old frames leave the window
    with pytest.raises(ValueError, match="at least 1 frame"):
        FramePresence(window=0)


def test_inference_stats_failure_bookkeeping() -> None:
    stats = InferenceStats()
    with stats.lock:
        stats.failed("RuntimeError: boom", 3.0)
        stats.failed("RuntimeError: again", 4.0)
    assert (stats.failures, stats.consecutive_failures) == (2, 2)
    assert (stats.last_error, stats.last_error_s) == ("RuntimeError: again", 4.0)

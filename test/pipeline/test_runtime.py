"""The node's thread-safe pieces: latest-wins slots, warning throttle, sensor health, presence."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from sam_moelora_ros.pipeline import runtime
from sam_moelora_ros.pipeline.runtime import (
    FramePresence,
    InferenceStats,
    LatestSlots,
    SensorHealth,
    Throttle,
)


def test_latest_slots_keep_the_newest_per_key_and_count_drops() -> None:
    slots: LatestSlots[str, int] = LatestSlots()
    assert slots.put("front", 1) is False
    assert slots.put("front", 2) is True and slots.put("front", 3) is True
    assert slots.put("rear", 7) is False
    assert slots.dropped == {"front": 2} and slots.accepted == {"front": 3, "rear": 1}
    assert slots.take(timeout=0) == {"front": 3, "rear": 7}  # ready together: taken together
    assert slots.take(timeout=0.01) == {}


def test_latest_slots_wake_the_consumer_for_any_key_and_close() -> None:
    slots: LatestSlots[str, str] = LatestSlots()
    got: list[dict[str, str]] = []
    consumer = threading.Thread(target=lambda: got.append(slots.take(timeout=5)))
    consumer.start()
    slots.put("rear", "frame")
    consumer.join(2)
    assert got == [{"rear": "frame"}]
    waiting = threading.Thread(target=lambda: got.append(slots.take(timeout=5)))
    waiting.start()
    slots.close()
    waiting.join(2)
    assert not waiting.is_alive() and got[-1] == {} and slots.closed


def test_latest_slots_memory_is_bounded_under_a_flood() -> None:
    slots: LatestSlots[str, bytes] = LatestSlots()
    for _i in range(10_000):
        slots.put("a", bytes(10))
        slots.put("b", bytes(10))
    assert slots.dropped == {"a": 9_999, "b": 9_999}
    assert len(slots.take(0)) == 2 and slots.take(0) == {}


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
    assert fields == {
        "lock",
        "name",
        "received",
        "rejected",
        "last_error",
        "last_error_s",
        "counts",  # parts of accepted messages dropped (events outside the sensor)
        "last_count",
        "last_count_s",
    }
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

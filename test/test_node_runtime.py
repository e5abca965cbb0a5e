"""The node's thread-safe pieces: the latest-wins slot, the rate meter, the warning throttle."""

from __future__ import annotations

import threading

import pytest

from sam_moelora_ros.node_runtime import LatestSlot, RateMeter, SensorHealth, Throttle


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


def test_rate_meter() -> None:
    meter = RateMeter(window_s=2.0)
    assert meter.rate(0.0) == 0.0
    for i in range(21):
        meter.tick(i * 0.1)
    assert meter.rate(2.0) == pytest.approx(10.0, rel=0.01)
    assert meter.rate(100.0) == 0.0  # stopped sensors decay to zero


def test_throttle_counts_suppressed() -> None:
    throttle = Throttle(period_s=5.0)
    assert throttle.allow("rgb", 0.0) == (True, 0)
    assert throttle.allow("rgb", 1.0) == (False, 0)
    assert throttle.allow("depth", 1.0) == (True, 0)
    assert throttle.allow("rgb", 2.0) == (False, 0)
    assert throttle.allow("rgb", 5.5) == (True, 2)


def test_sensor_health() -> None:
    health = SensorHealth("rgb")
    health.ok(1.0)
    health.reject("truncated", 2.0)
    assert (health.received, health.rejected, health.last_error) == (1, 1, "truncated")

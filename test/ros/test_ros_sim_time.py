"""``use_sim_time``: the node's clock follows /clock; without it, /clock is ignored.

The harness publishes /clock (rosgraph_msgs/Clock) around t = 1000 s, far from the wall clock,
and stamps every sensor message on that clock, as a simulator or ``ros2 bag play --clock`` does.
The node never compares stamps with its clock, so labels come out in both modes; what follows
/clock under ``use_sim_time`` is the node's receive clock: the stamps of /diagnostics, and the
bounded waits for a late sensor, which end only once *simulated* time has passed them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import (
    TOPICS,
    TYPES,
    Harness,
    depth_msg,
    domain_of,
    node_args,
    rgb_msg,
    running_node,
    stamp_of,
    wait_until,
)
from rosgraph_msgs.msg import Clock

pytestmark = [pytest.mark.ros, pytest.mark.timeout(150)]

SIM_START = 1000.0
"""Simulated seconds when the tests start: about 56 years behind the wall clock."""
SENSORS = ("rgb", "depth")
ONLY_RGB_AND_DEPTH = ("sensors.event.enabled:=false", "sensors.lidar.enabled:=false")
MAX_WAIT = 0.05
"""sensors.depth.max_wait in config/perception.yaml: how long a frame waits for depth."""


class SimClock:
    """Publishes /clock at 20 Hz (wall) with the simulated time :meth:`set` last gave."""

    def __init__(self, harness: Harness, start_s: float) -> None:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._pub = harness.node.create_publisher(Clock, "/clock", qos)
        self._now = start_s
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def set(self, now_s: float) -> None:
        """Move simulated time to ``now_s`` and publish it at once."""
        with self._lock:
            self._now = now_s
        self._publish()

    def _publish(self) -> None:
        with self._lock:
            now = self._now
        msg = Clock()
        msg.clock.sec = int(now)
        msg.clock.nanosec = round((now - int(now)) * 1e9)
        self._pub.publish(msg)

    def _loop(self) -> None:
        while self._running:
            self._publish()
            time.sleep(0.05)

    def close(self) -> None:
        self._running = False
        self._thread.join(1)


@pytest.fixture
def sim_harness(ros_env: dict[str, str]) -> Iterator[tuple[Harness, SimClock]]:
    """A harness whose /clock (frozen at SIM_START) runs before the node starts."""
    harness = Harness(domain_of(ros_env))
    clock = SimClock(harness, SIM_START)
    try:
        yield harness, clock
    finally:
        clock.close()
        harness.close()


def publish_frames(harness: Harness, clock: SimClock, start_s: float, count: int) -> float:
    """``count`` rgb+depth pairs 0.1 simulated s apart, /clock moved along; the last stamp."""
    stamp = start_s
    for i in range(count):
        stamp = start_s + 0.1 * i
        clock.set(stamp)
        harness.pubs["depth"].publish(depth_msg(stamp))
        harness.pubs["rgb"].publish(rgb_msg(stamp, seed=i))
        time.sleep(0.1)
    return stamp


def diagnostics_stamps(harness: Harness) -> list[float]:
    return [stamp_of(array) for array in harness.messages("diagnostics")]


def labels_at(harness: Harness, stamp_s: float) -> bool:
    return any(abs(stamp_of(m) - stamp_s) < 1e-6 for m in harness.messages("labels"))


def test_sim_time_node_follows_clock(
    ros_env: dict[str, str], tiny_adapter: Path, sim_harness: tuple[Harness, SimClock]
) -> None:
    harness, clock = sim_harness
    args = node_args(tiny_adapter, "use_sim_time:=true", *ONLY_RGB_AND_DEPTH)
    with running_node(args, ros_env):
        # The node's clock jumped to /clock's time (its timers fired once on that jump) ...
        wait_until(
            lambda: any(s >= SIM_START for s in diagnostics_stamps(harness)),
            20,
            "/diagnostics stamped with /clock's time",
        )
        time.sleep(1.0)
        # ... then the sensors' publishers appear while simulated time stands still (a paused
        # simulator): the node still finds their types in the ROS graph and subscribes.
        for name in SENSORS:
            harness.publisher(name, TYPES[name], TOPICS[name])
        harness.wait_matched()

        last = publish_frames(harness, clock, SIM_START + 1.0, 20)
        wait_until(lambda: labels_at(harness, last), 30, "labels of the last sim-stamped frame")
        assert all(SIM_START < stamp_of(m) <= last for m in harness.messages("labels"))
        # /diagnostics is stamped with the node's clock: simulated time, not the wall clock.
        wait_until(lambda: diagnostics_stamps(harness), 10, "/diagnostics")
        stamps = diagnostics_stamps(harness)
        assert all(0.0 <= s <= last + 1.0 for s in stamps), stamps
        assert any(s >= SIM_START for s in stamps), stamps

        # A late sensor is waited for on the simulated clock: depth is alive but behind, so the
        # frame at `anchor` waits MAX_WAIT of *simulated* time, however much wall time passes.
        depth_at, anchor = last + 0.1, last + 0.3
        clock.set(depth_at)
        harness.pubs["depth"].publish(depth_msg(depth_at))
        time.sleep(0.2)
        harness.pubs["rgb"].publish(rgb_msg(anchor))
        time.sleep(1.5)  # thirty times MAX_WAIT of wall time
        assert not labels_at(harness, anchor), "the wait ended on the wall clock"
        clock.set(depth_at + 2 * MAX_WAIT)  # simulated time passes the wait: the frame leaves
        wait_until(lambda: labels_at(harness, anchor), 20, "labels once /clock passed the wait")


def test_without_sim_time_clock_is_ignored(
    ros_env: dict[str, str], tiny_adapter: Path, sim_harness: tuple[Harness, SimClock]
) -> None:
    harness, clock = sim_harness
    with running_node(node_args(tiny_adapter, *ONLY_RGB_AND_DEPTH), ros_env):
        for name in SENSORS:
            harness.publisher(name, TYPES[name], TOPICS[name])
        harness.wait_matched()

        # Stamps far from the wall clock are not "stale": they are matched with each other only.
        last = publish_frames(harness, clock, SIM_START + 1.0, 10)
        wait_until(lambda: labels_at(harness, last), 30, "labels of the last sim-stamped frame")
        wait_until(lambda: diagnostics_stamps(harness), 10, "/diagnostics")
        wall = time.time()
        assert all(abs(s - wall) < 30.0 for s in diagnostics_stamps(harness))

        # The same late depth as above: the wait ends on the wall clock, /clock standing still.
        depth_at, anchor = last + 0.1, last + 0.3
        clock.set(depth_at)
        harness.pubs["depth"].publish(depth_msg(depth_at))
        time.sleep(0.2)
        harness.pubs["rgb"].publish(rgb_msg(anchor))
        wait_until(lambda: labels_at(harness, anchor), 20, "labels after a wall-clock wait")

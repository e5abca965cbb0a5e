"""The managed perception node (``perception_lifecycle_node``) over Fast DDS: lifecycle_msgs
GetState/ChangeState calls walk it through its states, and labels flow only while it is active.

One node process serves the whole walk (it pays torch's import once); a second, with a bad
model parameter, shows that a failing configure leaves the node unconfigured. Assertions are on
what must (or must not) arrive, never on exact counts.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import (
    BUILDERS,
    REPO,
    TOPICS,
    TYPES,
    Harness,
    camera_info_msg,
    domain_of,
    node_args,
    wait_until,
)
from vision_msgs.msg import LabelInfo

from sam_moelora_ros.ros import process

pytestmark = [pytest.mark.ros, pytest.mark.timeout(300)]

SENSORS = ("rgb", "depth", "event", "lidar")
NODE = f"/{process.NODE_NAME}"
MODULE = "sam_moelora_ros.ros.lifecycle_node"
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def lifecycle_process(args: list[str], env: dict[str, str]) -> process.NodeProcess:
    """``python -m sam_moelora_ros.ros.lifecycle_node --ros-args ...``, waited for unconfigured."""
    command = [sys.executable, "-m", MODULE, "--ros-args", *args]
    proc = process.NodeProcess(command, env, cwd=REPO)
    proc.wait_for_log(r"unconfigured: parameters declared", timeout=60)
    return proc


class Lifecycle:
    """get_state / change_state clients of the node under test, on the harness node."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.get = h.node.create_client(GetState, f"{NODE}/get_state")
        self.change = h.node.create_client(ChangeState, f"{NODE}/change_state")
        for client in (self.get, self.change):
            assert client.wait_for_service(timeout_sec=30), f"no service {client.srv_name}"

    def _call(self, client: Any, request: Any, timeout: float = 60.0) -> Any:
        future = client.call_async(request)
        wait_until(future.done, timeout, f"a reply from {client.srv_name}")
        return future.result()

    def state(self) -> int:
        return int(self._call(self.get, GetState.Request()).current_state.id)

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return bool(self._call(self.change, request).success)


def publish_tick(h: Harness) -> None:
    """One synchronised set of every sensor (same stamp) and camera_info."""
    stamp = time.time()
    h.pubs["camera_info"].publish(camera_info_msg(stamp))
    for name in SENSORS:
        h.pubs[name].publish(BUILDERS[name](stamp))


def stream(h: Harness, seconds: float, rate: float = 15.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        publish_tick(h)
        time.sleep(1.0 / rate)


def labels_flow(h: Harness, timeout: float = 30.0) -> None:
    """Publish until labels arrive."""

    def arrived() -> bool:
        publish_tick(h)
        return h.count("labels") > 0

    wait_until(arrived, timeout, "labels from the active node", step=1.0 / 15.0)


def no_labels(h: Harness, seconds: float = 2.0) -> None:
    """Publish for ``seconds``; not one label may arrive."""
    time.sleep(0.5)  # anything published before the transition has arrived by now
    h.clear()
    stream(h, seconds)
    time.sleep(0.5)
    assert h.count("labels") == 0, f"{h.count('labels')} labels while not active"


@pytest.fixture(scope="module")
def harness(ros_env: dict[str, str]) -> Iterator[Harness]:
    h = Harness(domain_of(ros_env))
    for name in (*SENSORS, "camera_info"):
        h.publisher(name, TYPES[name], TOPICS[name])
    yield h
    h.close()


def test_the_lifecycle_walk(harness: Harness, ros_env: dict[str, str], tiny_adapter: Path) -> None:
    h = harness
    h.subscribe("label_info", LabelInfo, f"{NODE}/label_info", LATCHED)
    proc = lifecycle_process(node_args(tiny_adapter), ros_env)
    try:
        lc = Lifecycle(h)
        assert lc.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert "warm-up took" not in proc.output  # nothing loaded before configure

        assert lc.transition(Transition.TRANSITION_CONFIGURE), proc.output
        assert lc.state() == State.PRIMARY_STATE_INACTIVE
        proc.wait_for_log(r"warm-up took", timeout=1)
        no_labels(h)  # inactive: no subscriptions, nothing published

        assert lc.transition(Transition.TRANSITION_ACTIVATE), proc.output
        assert lc.state() == State.PRIMARY_STATE_ACTIVE
        h.wait_matched()
        labels_flow(h)
        assert len(h.messages("label_info")) == 1  # the class table, once active (not before)

        assert lc.transition(Transition.TRANSITION_DEACTIVATE), proc.output
        assert lc.state() == State.PRIMARY_STATE_INACTIVE
        no_labels(h)

        assert lc.transition(Transition.TRANSITION_ACTIVATE), proc.output
        h.clear()
        labels_flow(h)
        assert proc.output.count("warm-up took") == 1, "activate reloaded the model"

        assert lc.transition(Transition.TRANSITION_DEACTIVATE), proc.output
        assert lc.transition(Transition.TRANSITION_CLEANUP), proc.output
        assert lc.state() == State.PRIMARY_STATE_UNCONFIGURED
        proc.wait_for_log(r"model unloaded", timeout=1)

        # a model loaded again (configure) is announced again on ~/label_info
        announced = len(h.messages("label_info"))
        assert lc.transition(Transition.TRANSITION_CONFIGURE), proc.output
        assert lc.transition(Transition.TRANSITION_ACTIVATE), proc.output
        wait_until(lambda: len(h.messages("label_info")) > announced, 20, "the class table again")
        assert lc.transition(Transition.TRANSITION_DEACTIVATE), proc.output
        assert lc.transition(Transition.TRANSITION_CLEANUP), proc.output

        assert lc.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN), proc.output
        assert proc.proc.wait(15) == 0, proc.output
        assert "Traceback" not in proc.output, proc.output
    finally:
        proc.stop()


def test_a_failing_configure_leaves_it_unconfigured(
    harness: Harness, ros_env: dict[str, str], tiny_adapter: Path
) -> None:
    bad = node_args(tiny_adapter, "model.adapter:=/nonexistent/m.safetensors")
    proc = lifecycle_process(bad, ros_env)
    try:
        lc = Lifecycle(harness)
        assert not lc.transition(Transition.TRANSITION_CONFIGURE)
        assert lc.state() == State.PRIMARY_STATE_UNCONFIGURED
        proc.wait_for_log(
            r"configure failed: parameter 'model.adapter' = '/nonexistent.*does not exist", 5
        )
        assert proc.proc.poll() is None, proc.output  # still there, still managed
        assert "Traceback" not in proc.output, proc.output
    finally:
        code, _ = proc.stop()
    assert code == 0, proc.output  # Ctrl-C of an unconfigured node is clean

"""Ctrl-C while the node labels: exit 0, no traceback, over real DDS.

rclpy's SIGINT handler shuts the ROS context down at once; the inference thread, still
segmenting a frame, then published into a dead context and printed ``publisher's context is
invalid`` with a traceback on every normal stop. The node now stops its worker before the context
goes. Each trial starts a real node process, keeps it busy with camera frames faster than it
labels them, and sends SIGINT once labels flow, so the signal lands while a frame is in hand.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from ros_harness import BUILDERS, TOPICS, TYPES, Harness, NodeProcess, domain_of, node_args

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

TRIALS = 3
SENSORS = ("rgb", "depth", "event")


def _publish_until(h: Harness, stop: threading.Event) -> None:
    while not stop.is_set():
        stamp = time.time()
        for name in SENSORS:
            h.pubs[name].publish(BUILDERS[name](stamp))
        time.sleep(0.01)  # ~100 Hz: always a frame waiting, so the worker never idles


@pytest.mark.parametrize("trial", range(TRIALS))
def test_sigint_while_labelling_exits_0_without_a_traceback(
    ros_env: dict[str, str], tiny_adapter: Path, trial: int
) -> None:
    # colour and confidence outputs too: the longest publish phase, the likeliest to be hit
    args = node_args(tiny_adapter, "output.color:=true", "output.confidence:=true")
    proc = NodeProcess(args, ros_env)
    h = Harness(domain_of(ros_env))
    stop = threading.Event()
    publisher = threading.Thread(target=_publish_until, args=(h, stop), daemon=True)
    try:
        proc.wait_for_log(r"ready: model", timeout=90)
        for name in SENSORS:
            h.publisher(name, TYPES[name], TOPICS[name])
        h.wait_matched()
        publisher.start()
        deadline = time.monotonic() + 60
        while h.count("labels") < 3 + trial:  # a different point of the work on each trial
            proc.check()
            assert time.monotonic() < deadline, f"no labels within 60 s:\n{proc.output}"
            time.sleep(0.01)
        code, seconds = proc.stop(timeout=15)
    finally:
        stop.set()
        if publisher.is_alive():
            publisher.join(2)
        h.close()
        if proc.proc.poll() is None:
            proc.stop()
    output = proc.output
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "context is invalid" not in output, output
    assert "inference failed" not in output, output
    assert seconds < 10.0, f"SIGINT took {seconds:.1f} s"

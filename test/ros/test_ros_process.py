"""The node-process supervisor (``sam_moelora_ros.ros.process``) on small Python children.

The supervisor is what both ``replay_live`` and these ROS tests start the node with; here its
children are tiny scripts, so each behaviour (output drained and logged, an early exit reported
at once, Ctrl-C as the stop) is checked in well under a second of child run time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ros_harness import REPO, NodeProcess

from sam_moelora_ros.ros import process

pytestmark = [pytest.mark.timeout(60)]

SIGINT_AWARE = """
import signal, sys, time
def on_int(*_):
    print("stopping", flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, on_int)
for i in range(3):
    print(f"line {i}", flush=True)
print("ready: model", flush=True)
time.sleep(60)
"""


def python(script: str) -> list[str]:
    return [sys.executable, "-c", script]


def test_output_is_drained_logged_and_sigint_stops_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "node.log"
    proc = process.NodeProcess(python(SIGINT_AWARE), None, log=log)
    assert proc.wait_for_log(r"^ready: model$", timeout=20) == "ready: model"
    proc.check()  # still running: no exception
    assert proc.lines[:3] == ["line 0", "line 1", "line 2"]
    assert proc.rss_mb() > 1.0
    code, seconds = proc.stop(timeout=10)
    assert code == 0 and seconds < 10
    assert proc.lines[-1] == "stopping"
    assert log.read_text().splitlines() == proc.lines


def test_an_exit_before_the_expected_line_is_reported_with_the_output(tmp_path: Path) -> None:
    script = "print('[FATAL] cannot start: parameter anchor'); raise SystemExit(2)"
    proc = process.NodeProcess(python(script), None)
    with pytest.raises(process.NodeExited, match=r"code 2 before printing 'ready'(.|\n)*anchor"):
        proc.wait_for_log("ready", timeout=20)
    with pytest.raises(process.NodeExited, match="cannot start"):
        proc.check()
    assert proc.stop() == (2, pytest.approx(0.0, abs=2.0))
    # a line printed just before the exit is still found after it
    assert proc.wait_for_log("cannot start", timeout=0) == "[FATAL] cannot start: parameter anchor"


def test_a_silent_running_child_times_out_with_its_output() -> None:
    proc = process.NodeProcess(python(SIGINT_AWARE), None)
    try:
        proc.wait_for_log("ready: model", timeout=20)  # up and printing
        with pytest.raises(TimeoutError, match=r"did not log 'never'(.|\n)*line 0"):
            proc.wait_for_log("never", timeout=0.3)
    finally:
        proc.stop(timeout=10)


def test_the_harness_and_replay_start_the_node_the_same_way() -> None:
    module = process.node_command(["-p", "anchor:=depth"])
    assert module == [
        sys.executable,
        "-m",
        "sam_moelora_ros.ros.node",
        "--ros-args",
        "-p",
        "anchor:=depth",
    ]
    script = process.node_command([], script=True)
    assert script == [str(Path(sys.executable).parent / "perception_node"), "--ros-args"]
    assert issubclass(NodeProcess, process.NodeProcess)
    from sam_moelora_ros.replay.params_file import node_command

    assert node_command(REPO / "p.yaml") == process.node_command(
        ["--params-file", str(REPO / "p.yaml")]
    )

"""Start-up failures end the node at once with exit code 2 and a message naming the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
from ros_harness import NodeProcess, node_args

from sam_moelora_ros.inference.segmenter import default_adapter_path

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["sensors.depth.tolerance:=-1.0"], r"parameter 'sensors.depth.tolerance' = -1.0: must be"),
        (["anchor:=radar"], r"parameter 'anchor' = 'radar': must be one of"),
        (["lidar.extrinsic:=[1.0, 2.0]"], r"parameter 'lidar.extrinsic'.*16 numbers"),
        (
            ["model.adapter:=/nonexistent/m.safetensors"],
            r"parameter 'model.adapter' = '/nonexistent.*does not exist",
        ),
        (["model.dtype:=int8"], r"parameter 'model.dtype' = 'int8'"),
    ],
)
def test_invalid_parameter_names_itself(
    ros_env: dict[str, str], tiny_adapter: Path, extra: list[str], expected: str
) -> None:
    proc = NodeProcess(node_args(tiny_adapter, *extra), ros_env)
    code = proc.proc.wait(60)
    proc.stop()
    assert code == 2, proc.output
    proc.wait_for_log(r"cannot start: " + expected, timeout=1)
    assert "Traceback" not in proc.output


@pytest.mark.skipif(default_adapter_path() is not None, reason="the package ships a model")
def test_no_model_tells_the_user_what_to_pass(ros_env: dict[str, str]) -> None:
    proc = NodeProcess(
        ["--params-file", str(Path(__file__).parents[2] / "config" / "perception.yaml")],
        ros_env,
        script=True,
    )
    code = proc.proc.wait(60)
    proc.stop()
    assert code == 2, proc.output
    proc.wait_for_log(r"model.adapter.*default_tiny.safetensors.*pass", timeout=1)


@pytest.mark.skipif(default_adapter_path() is None, reason="this install ships no default model")
def test_no_model_given_runs_the_shipped_default_model(ros_env: dict[str, str]) -> None:
    proc = NodeProcess(
        ["--params-file", str(Path(__file__).parents[2] / "config" / "perception.yaml")],
        ros_env,
        script=True,
    )
    try:
        proc.wait_for_log(r"default_tiny\.safetensors \(the shipped default model\)", timeout=60)
        proc.wait_for_log(r"ready: model", timeout=30)
        assert proc.proc.poll() is None, proc.output  # still running
    finally:
        proc.stop()

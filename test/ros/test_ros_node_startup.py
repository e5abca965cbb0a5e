"""Start-up failures end the node at once with exit code 2 and a message naming the parameter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ros_harness import NodeProcess, node_args

from sam_moelora_ros.inference.segmenter import DEFAULT_MODEL_ENV, default_adapter_path

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]


def assert_refused(proc: NodeProcess, expected: str) -> None:
    """Exit code 2 and one ``cannot start`` line matching ``expected``; no traceback."""
    code = proc.proc.wait(60)
    proc.stop()
    assert code == 2, proc.output
    proc.wait_for_log(r"cannot start: " + expected, timeout=1)
    assert "Traceback" not in proc.output


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
        (["sensors.rgb.topic:=1bad"], r"parameter 'sensors.rgb.topic' = '1bad': is not a valid"),
        (["cameras:=[front, 2nd]"], r"parameter 'cameras' = \['front', '2nd'\]: '2nd' is not a"),
        (
            ["cameras:=[front]", "cameras.front.sensors:=[radar]"],
            r"parameter 'cameras.front.sensors' = \['radar'\]: must be a non-empty list",
        ),
        (  # a typo'd group: declared by nobody, so rclpy kept it quiet
            ["cameras:=[front, rear]", "cameras.raer.rgb.topic:=rear/image"],
            r"parameter 'cameras.raer.rgb.topic' = 'rear/image': camera 'raer' is not in",
        ),
        (
            ["sensors.event.window:=1e12"],
            r"parameter 'sensors.event.window' = 1000000000000.0: must be",
        ),
        (["model.torch_threads:=100000"], r"parameter 'model.torch_threads' = 100000: must be"),
        (["executor:=multi"], r"parameter 'executor' = 'multi': must be one of"),
        (
            ["model.sam_checkpoint:=/nonexistent/sam.pth"],
            r"parameter 'model.sam_checkpoint' = '/nonexistent/sam.pth': SAM checkpoint",
        ),
    ],
)
def test_invalid_parameter_names_itself(
    ros_env: dict[str, str], tiny_adapter: Path, extra: list[str], expected: str
) -> None:
    assert_refused(NodeProcess(node_args(tiny_adapter, *extra), ros_env), expected)


def test_cuda_on_a_machine_without_it_names_model_device(
    ros_env: dict[str, str], tiny_adapter: Path
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = NodeProcess(node_args(tiny_adapter, "model.device:=cuda"), ros_env)
    assert_refused(proc, r"parameter 'model.device' = 'cuda': .*CUDA is not available")


def test_an_adapter_with_infinite_lora_alpha_is_refused(
    ros_env: dict[str, str], tiny_adapter: Path, tmp_path: Path
) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tiny_adapter), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    config = json.loads(metadata["config"])
    config["lora_alpha"] = float("inf")
    metadata["config"] = json.dumps(config)
    bad = tmp_path / "inf_alpha.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    proc = NodeProcess(node_args(bad, "model.merge_lora:=true"), ros_env)
    assert_refused(proc, r"parameter 'model.adapter' = '.*inf_alpha.*ModelConfig\.lora_alpha")


def test_a_params_file_that_is_not_yaml_is_one_line(
    ros_env: dict[str, str], tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("sam_moelora_perception:\n  ros__parameters: {anchor: [rgb\n")
    proc = NodeProcess(["--params-file", str(params)], ros_env)
    assert_refused(proc, r"--params-file .*params\.yaml is not valid YAML at line \d")


def test_no_model_tells_the_user_what_to_pass(ros_env: dict[str, str], tmp_path: Path) -> None:
    """The default model's path points at a missing file: what an install without one sees."""
    env = {**ros_env, DEFAULT_MODEL_ENV: str(tmp_path / "no_default.safetensors")}
    proc = NodeProcess(
        ["--params-file", str(Path(__file__).parents[2] / "config" / "perception.yaml")],
        env,
        script=True,
    )
    assert_refused(proc, r"parameter 'model.adapter' = '': .*no_default.safetensors.*pass")


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


def _with_encodings(adapter: Path, out: Path, encodings: dict[str, object]) -> Path:
    """A copy of ``adapter`` whose recorded input contract has ``encodings`` changed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(adapter), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    contract = json.loads(metadata["input_encodings"])
    metadata["input_encodings"] = json.dumps({**contract, **encodings})
    save_file(tensors, str(out), metadata=metadata)
    return out


def test_a_lidar_encoding_the_node_cannot_compute_is_refused(
    ros_env: dict[str, str], tiny_adapter: Path, tmp_path: Path
) -> None:
    bad = _with_encodings(
        tiny_adapter, tmp_path / "png.safetensors", {"lidar": {"name": "deliver_png"}}
    )
    proc = NodeProcess(node_args(bad), ros_env)
    assert_refused(proc, r"parameter 'sensors.lidar.enabled' = True: .*'deliver_png'.*retrain")


def test_an_event_parameter_contradicting_the_model_names_both(
    ros_env: dict[str, str], tiny_adapter: Path, tmp_path: Path
) -> None:
    voxel = {"event": {"name": "voxel", "bins": 3, "window": 0.05, "max_count": 0.0}}
    model = _with_encodings(tiny_adapter, tmp_path / "voxel.safetensors", voxel)
    proc = NodeProcess(node_args(model, "sensors.event.representation:=frame"), ros_env)
    assert_refused(proc, r"parameter 'sensors.event.representation' = 'frame': .*voxel")

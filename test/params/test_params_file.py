"""Files the node is given on its command line or as parameters: never opened when they would
block (a named pipe), refused in one line when rcl would end with a traceback (not YAML)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sam_moelora_ros.files import regular_file_problem
from sam_moelora_ros.params import ParameterError, load_palette
from sam_moelora_ros.params.params_file import (
    ParamsFileError,
    check_params_files,
    params_file_arguments,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(30)  # without the checks, a FIFO blocks until this timeout


def test_params_file_arguments_are_found_anywhere_in_the_command_line() -> None:
    argv = ["node", "--ros-args", "--params-file", "a.yaml", "-p", "x:=1", "--params-file", "b"]
    assert params_file_arguments(argv) == ["a.yaml", "b"]
    assert params_file_arguments(["node", "--params-file"]) == []  # rcl reports that one


def test_the_shipped_params_file_passes() -> None:
    check_params_files(["--params-file", str(REPO / "config" / "perception.yaml")])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("node:\n  ros__parameters: {a: [1\n", r"bad\.yaml is not valid YAML at line \d+; fix it"),
        ("- just\n- a list\n", r"bad\.yaml holds a list, not a mapping of node names"),
        ("", r"bad\.yaml holds a NoneType"),
    ],
)
def test_params_files_rcl_would_choke_on_are_one_line(
    tmp_path: Path, content: str, match: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ParamsFileError, match=match) as caught:
        check_params_files(["--ros-args", "--params-file", str(path)])
    assert "\n" not in str(caught.value)


def test_a_named_pipe_or_a_folder_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "params.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ParamsFileError, match=r"params\.yaml is a named pipe \(FIFO\), not a"):
        check_params_files(["--params-file", str(fifo)])
    with pytest.raises(ParamsFileError, match="is a directory, not a file"):
        check_params_files(["--params-file", str(tmp_path)])
    with pytest.raises(ParamsFileError, match=r"gone\.yaml does not exist"):
        check_params_files(["--params-file", str(tmp_path / "gone.yaml")])
    with pytest.raises(ParameterError, match=r"'output.palette_file'.*named pipe"):
        load_palette(str(fifo), 3)


def test_the_node_refuses_a_named_pipe_params_file_with_exit_code_2(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The node's own ``main``: it returns before ``rclpy.init``, so no DDS is involved."""
    node = pytest.importorskip("sam_moelora_ros.ros.node")  # needs rclpy (the ROS wheels)
    fifo = tmp_path / "params.yaml"
    os.mkfifo(fifo)
    assert node.main(["perception_node", "--ros-args", "--params-file", str(fifo)]) == 2
    err = capfd.readouterr().err
    assert "cannot start: --params-file" in err and "named pipe (FIFO)" in err


def test_regular_file_problem_names_each_kind(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert regular_file_problem(tmp_path / "f") is None
    assert "character device" in str(regular_file_problem("/dev/null"))
    assert "does not exist (pass X)" in str(regular_file_problem(tmp_path / "g", "pass X"))

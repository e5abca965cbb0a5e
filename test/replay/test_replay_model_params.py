"""replay_eval builds its model from the node parameters, as the node does: every ``model.*``
parameter is honoured, and a model that cannot start is the node's one line naming the parameter
(exit 2), never a silently different model."""

from __future__ import annotations

import pytest
import torch

from sam_moelora_ros.inference.from_params import load_segmenter
from sam_moelora_ros.params import ParameterError, build_config
from sam_moelora_ros.replay.cli import evaluate_bag, main


def _run(replay_bag, tmp_path, capsys, *params: str) -> tuple[int, list[str]]:
    argv = ["--bag", str(replay_bag), "--out", str(tmp_path / "out"), "--no-progress"]
    for param in params:
        argv += ["--param", param]
    code = main(argv)
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _node_line(**params) -> str:
    """What the node prints for these parameters: the ParameterError its start-up turns into
    its one line (ros/perception_core.py raises StartupError(str(exc)))."""
    with pytest.raises(ParameterError) as exc:
        load_segmenter(build_config(params))
    return str(exc.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_device_cuda_without_cuda_is_the_node_line_and_exit_2(replay_bag, tmp_path, capsys):
    code, err = _run(replay_bag, tmp_path, capsys, "model.device=cuda")
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("replay_eval: error: parameter 'model.device' = 'cuda':"), err
    assert err[0] == f"replay_eval: error: {_node_line(**{'model.device': 'cuda'})}"
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("param", "name"),
    [
        ("model.sam_checkpoint=/nonexistent/sam_vit_b.pth", "model.sam_checkpoint"),
        ("model.adapter=/nonexistent/adapter.safetensors", "model.adapter"),
        ("model.backend=onnxruntime", "model.adapter"),  # the default adapter is not an export
    ],
)
def test_other_model_parameters_reach_the_model(replay_bag, tmp_path, capsys, param, name):
    """Each of these was ignored by replay_eval before: it built its model from its own flags."""
    code, err = _run(replay_bag, tmp_path, capsys, param)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"replay_eval: error: parameter '{name}'"), err


def test_a_flag_sets_its_model_parameter(replay_bag, tmp_path, capsys):
    """``--device`` is ``model.device``, and wins over a ``--param`` of it."""
    code = main(
        ["--bag", str(replay_bag), "--out", str(tmp_path / "o"), "--no-progress",
         "--param", "model.device=cuda:7", "--device", "cpu", "--max-frames", "1",
         "--param", "model.dtype=bfloat16"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err


def test_the_model_is_the_one_the_parameters_describe(replay_bag, tiny_model_path, tmp_path):
    params = {"model.adapter": str(tiny_model_path), "model.dtype": "bfloat16"}
    outcome = evaluate_bag(
        replay_bag, tmp_path, node_params=params, device="cpu", max_frames=1, overlays=False,
        progress=False,
    )  # fmt: skip
    assert outcome.metrics["model"].startswith("cpu bfloat16 S=64 K=25"), outcome.metrics["model"]

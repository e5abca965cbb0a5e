"""``python -m sam_moelora_ros.training.evaluate``: user errors: one line, exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor, save_adapter
from training.evaluate import main as evaluate_main


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", image_size=64, window_size=4)
    path = tmp_path_factory.mktemp("eval_cli") / "m.safetensors"
    return save_adapter(MoELoRASegmentor(cfg), path, include_backbone=True)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--batch-size", "0", "argument --batch-size: must be an integer >= 1, got 0"),
        ("--batch-size", "four", "argument --batch-size: must be an integer >= 1, got 'four'"),
        ("--workers", "-1", "argument --workers: must be an integer >= 0, got -1"),
        ("--max-samples", "-2", "argument --max-samples: must be an integer >= 0, got -2"),
    ],
)
def test_bad_numbers_are_usage_errors(
    adapter: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        evaluate_main(["--adapter", str(adapter), "--data", "x", option, value])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_or_corrupt_adapter_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data", str(tmp_path), "--no-progress"]
    assert evaluate_main(["--adapter", str(tmp_path / "none.safetensors"), *argv]) == 2
    assert "none.safetensors does not exist" in one_error_line(capsys)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    assert evaluate_main(["--adapter", str(junk), *argv]) == 2
    assert "junk.safetensors is truncated or not a safetensors file" in one_error_line(capsys)


def test_a_missing_dataset_is_one_line(
    adapter: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--adapter", str(adapter), "--data", str(tmp_path / "nowhere"), "--no-progress"]
    assert evaluate_main(argv) == 2
    assert one_error_line(capsys).startswith("error: ")


@pytest.mark.parametrize(("max_samples", "frames"), [("0", 4), ("2", 2)])
def test_max_samples_zero_means_all(
    adapter: Path, deliver_tree: Path, tmp_path: Path, max_samples: str, frames: int
) -> None:
    out = tmp_path / "eval"
    argv = ["--adapter", str(adapter), "--data", str(deliver_tree), "--out", str(out)]
    argv += ["--max-samples", max_samples, "--full-only", "--no-progress"]
    assert evaluate_main(argv) == 0
    assert json.loads((out / "report.json").read_text())["frames"] == frames  # val holds 4

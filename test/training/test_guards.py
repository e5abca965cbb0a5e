"""Training refuses to produce garbage: non-finite config numbers, losses, weights and labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from training.config import TrainConfig, TrainConfigError
from training.data import build_datasets
from training.loop import Trainer, TrainingError, check_labels

from .conftest import run_config

FIELDS = [
    ("optim", "lr", ".inf"),
    ("optim", "lr", ".nan"),
    ("optim", "grad_clip", ".inf"),
    ("optim", "weight_decay", ".nan"),
    ("optim", "warmup_epochs", ".inf"),
    ("loss", "aux_weight", ".nan"),
    ("loss", "aux_weight", ".inf"),
    ("dropout", "p", ".nan"),
]


@pytest.mark.parametrize(("section", "key", "value"), FIELDS)
def test_non_finite_config_numbers_name_the_field(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"{section}:\n  {key}: {value}\n")
    with pytest.raises(TrainConfigError, match=rf"run\.yaml: {section}\.{key}: must be a"):
        TrainConfig.load(path)


def test_infinite_scale_range_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  scale_range: [0.5, .inf]\n")
    with pytest.raises(TrainConfigError, match=r"run\.yaml: data\.scale_range"):
        TrainConfig.load(path)


def _copy_tree(deliver_tree: Path, dest: Path) -> Path:
    shutil.copytree(deliver_tree, dest)
    return dest


def _relabel(root: Path, value: int) -> int:
    """Overwrite every semantic PNG's label channel with ``value``; return how many."""
    paths = sorted((root / "semantic").rglob("*.png"))
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        image[...] = value
        assert cv2.imwrite(str(path), image)
    return len(paths)


def _written(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*.safetensors"))


def test_all_ignored_labels_stop_training_after_one_epoch(
    deliver_tree: Path, tmp_path: Path
) -> None:
    root = _copy_tree(deliver_tree, tmp_path / "data")
    assert _relabel(root, 255) > 0  # DELIVER's "unlabelled"
    cfg = run_config(root, tmp_path / "run", optim={"max_steps": 20}, data={"val_split": None})
    train_set, _ = build_datasets(cfg)
    trainer = Trainer(cfg, train_set)
    with pytest.raises(TrainingError, match="no labelled pixel in a whole epoch"):
        trainer.train()
    assert trainer.step == trainer.steps_per_epoch  # stopped at the first epoch's end


def test_a_non_finite_loss_stops_before_anything_is_written(
    deliver_tree: Path, tmp_path: Path
) -> None:
    cfg = run_config(deliver_tree, tmp_path / "run", data={"val_split": None})
    train_set, _ = build_datasets(cfg)
    trainer = Trainer(cfg, train_set)
    # A SAM checkpoint with a NaN weight: the frozen encoder's first parameter.
    frozen = next(p for p in trainer.model.parameters() if not p.requires_grad)
    with torch.no_grad():
        frozen.view(-1)[0] = float("nan")
    with pytest.raises(TrainingError, match=r"the loss is nan at step 1 "):
        trainer.train()
    assert trainer.step == 0
    assert _written(tmp_path / "run") == []


def test_non_finite_weights_are_never_saved(deliver_tree: Path, tmp_path: Path) -> None:
    cfg = run_config(deliver_tree, tmp_path / "run", data={"val_split": None})
    train_set, _ = build_datasets(cfg)
    trainer = Trainer(cfg, train_set)
    trainable = next(p for p in trainer.model.parameters() if p.requires_grad)
    with torch.no_grad():
        trainable.view(-1)[0] = float("inf")
    with pytest.raises(TrainingError, match="hold NaN/Inf"):
        trainer.save_checkpoint("last")
    assert _written(tmp_path / "run") == []


def test_label_ids_outside_the_classes_name_the_samples() -> None:
    target = torch.full((2, 4, 4), 255, dtype=torch.long)
    target[0, 0, 0] = 3
    assert check_labels(target, 25, ["a", "b"]) == 1
    target[1, 2, 2] = 30
    with pytest.raises(TrainingError, match=r"label ids \[30\] are outside 0\.\.24.* in b;"):
        check_labels(target, 25, ["a", "b"])
    assert np.isclose(check_labels(torch.zeros(1, 2, 2, dtype=torch.long), 25, []), 4)


def _main_lines(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, list[str]]:
    from training.train import main

    code = main(argv)
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def test_train_cli_malformed_dataset_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data" / "img").mkdir(parents=True)  # a DELIVER root without semantic/ etc.
    config = tmp_path / "run.yaml"
    config.write_text(f"data:\n  root: {tmp_path / 'data'}\nrun:\n  out: {tmp_path / 'run'}\n")
    code, lines = _main_lines(capsys, ["--config", str(config)])
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]


def test_train_cli_non_finite_config_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("optim:\n  lr: .inf\n")
    code, lines = _main_lines(capsys, ["--config", str(config)])
    assert (code, len(lines)) == (2, 1)
    assert "optim.lr: must be a finite number > 0" in lines[0]


def test_train_cli_refuses_max_steps_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(tmp_path / "x.yaml"), "--max-steps", "0"])
    assert exit_info.value.code == 2
    assert "--max-steps: must be an integer >= 1, got 0" in capsys.readouterr().err

"""The loop on a tiny synthetic DELIVER tree: it learns, resumes exactly, writes no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sam_moelora_ros.datasets.augment import EvalTransform, collate
from training.config import TrainConfigError
from training.data import build_datasets
from training.loop import Trainer
from training.losses import segmentation_loss

from .conftest import assert_not_pickle, run_config


def fixed_batch_loss(trainer: Trainer, batch: dict) -> float:
    model = trainer.model.eval()
    with torch.no_grad():
        logits, extras = model(batch["inputs"], return_extras=True)
        loss, _ = segmentation_loss(logits, extras["aux_logits"], batch["label"], 0.4)
    model.train()
    return float(loss)


def test_a_few_steps_reduce_the_loss(deliver_tree: Path, tmp_path: Path) -> None:
    cfg = run_config(
        deliver_tree,
        tmp_path / "run",
        optim={"lr": 2e-3, "max_steps": 12, "warmup_steps": 0},
        dropout={"p": 0.0, "p_rgb": 0.0},
        data={"val_split": None, "scale_range": [1.0, 1.0]},
    )
    train_set, val_set = build_datasets(cfg)
    assert val_set is None and len(train_set) == 8
    probe = EvalTransform(cfg.model_config().image_size)
    batch = collate([probe(train_set.load(i)) for i in range(4)])
    trainer = Trainer(cfg, train_set)
    before = fixed_batch_loss(trainer, batch)
    trainer.train()
    after = fixed_batch_loss(trainer, batch)
    assert after < 0.8 * before, (before, after)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 13))
    assert records[-1]["kind"] == "end" and records[-1]["step"] == 12


def _train(cfg, out: Path, stop_at: int | None = None, resume: bool = False) -> Trainer:
    train_set, val_set = build_datasets(cfg)
    trainer = Trainer(cfg, train_set, val_set, out_dir=out)
    if resume:
        trainer.resume(out)
    trainer.train(stop_at=stop_at)
    return trainer


def test_resume_matches_an_uninterrupted_run(deliver_tree: Path, tmp_path: Path) -> None:
    # 8 frames / batch 2 = 4 batches, accumulate 2 -> 2 steps per epoch; 5 steps cross two
    # epoch boundaries, and stopping after step 3 resumes in the middle of an epoch.
    sections = {
        "optim": {"max_steps": 5, "accumulate": 2, "warmup_steps": 2},
        "run": {"val_every": 2, "log_every": 1, "progress": False},
    }
    straight = _train(run_config(deliver_tree, tmp_path / "a", **sections), tmp_path / "a")
    cfg_b = run_config(deliver_tree, tmp_path / "b", **sections)
    _train(cfg_b, tmp_path / "b", stop_at=3)
    resumed = _train(cfg_b, tmp_path / "b", resume=True)
    assert straight.step == resumed.step == 5
    # Bit-exact: every saved weight, every weight in memory, every optimizer state tensor.
    a = load_file(str(tmp_path / "a" / "checkpoints" / "last.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    opt_a = straight.optimizer.state_dict()["state"]
    opt_b = resumed.optimizer.state_dict()["state"]
    assert opt_a.keys() == opt_b.keys()
    for pid, moments in opt_a.items():
        assert moments.keys() == opt_b[pid].keys()
        for name, value in moments.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b[pid][name])), name
    # Every file a run writes is safetensors / JSON / YAML, never a pickle.
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file():
            assert path.suffix in {".safetensors", ".jsonl", ".yaml", ".json"}, path
            if path.suffix == ".safetensors":
                assert_not_pickle(path)
    assert (tmp_path / "b" / "checkpoints" / "best.safetensors").is_file()


def test_resume_refuses_another_config_naming_the_keys(deliver_tree: Path, tmp_path: Path) -> None:
    sections = {"optim": {"max_steps": 2, "warmup_steps": 1}, "data": {"val_split": None}}
    _train(run_config(deliver_tree, tmp_path / "r", **sections), tmp_path / "r", stop_at=1)
    changed = run_config(
        deliver_tree,
        tmp_path / "r",
        optim={"max_steps": 2, "warmup_steps": 1, "lr": 5e-4, "batch_size": 4},
        data={"val_split": None, "num_workers": 1},  # num_workers may change
    )
    trainer = Trainer(changed, build_datasets(changed)[0], out_dir=tmp_path / "r")
    with pytest.raises(TrainConfigError) as caught:
        trainer.resume(tmp_path / "r")
    message = str(caught.value)
    assert "cannot resume" in message and "step_00000001/state.safetensors" in message
    assert "optim.batch_size: run=2 now=4, optim.lr: run=0.001 now=0.0005" in message
    assert "num_workers" not in message and "\n" not in message
    assert trainer.step == 0  # nothing was loaded
    same = run_config(deliver_tree, tmp_path / "r", **sections)
    Trainer(same, build_datasets(same)[0], out_dir=tmp_path / "r").resume(tmp_path / "r")


def test_adapters_without_sam_checkpoint_carry_the_encoder(deliver_tree: Path, tmp_path: Path):
    from sam_moelora_ros.model import load_segmentor

    cfg = run_config(deliver_tree, tmp_path / "c", optim={"max_steps": 1}, data={"val_split": None})
    trainer = _train(cfg, tmp_path / "c")
    model = load_segmentor(tmp_path / "c" / "checkpoints" / "last.safetensors")
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_the_hiera_backbone_trains_with_the_same_loop(deliver_tree: Path, tmp_path: Path) -> None:
    """Picking SAM 2's Hiera is configuration alone: same loop, data, checkpoints."""
    cfg = run_config(
        deliver_tree,
        tmp_path / "hiera",
        model={"preset": "hiera_tiny", "image_size": 64, "overrides": {}},
        optim={"lr": 2e-3, "max_steps": 3, "warmup_steps": 0},
        data={"val_split": None},
    )
    train_set, _ = build_datasets(cfg)
    trainer = Trainer(cfg, train_set, out_dir=tmp_path / "hiera")
    trainer.train()
    last = tmp_path / "hiera" / "checkpoints" / "last.safetensors"
    assert_not_pickle(last)
    from sam_moelora_ros.model import read_adapter_config

    assert read_adapter_config(last).backbone == "sam2_hiera"

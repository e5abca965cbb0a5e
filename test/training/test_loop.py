"""The loop on a tiny synthetic DELIVER tree: it learns, resumes exactly, writes no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from sam_moelora_ros.datasets.augment import EvalTransform, collate
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
    a = load_file(str(tmp_path / "a" / "checkpoints" / "last.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    moved = max(
        (straight.model.state_dict()[k] - v).abs().max().item()
        for k, v in load_file(str(tmp_path / "b" / "checkpoints" / "last.safetensors")).items()
    )
    assert moved < 1e-5
    opt_a = straight.optimizer.state_dict()["state"]
    opt_b = resumed.optimizer.state_dict()["state"]
    for pid in opt_a:
        torch.testing.assert_close(opt_a[pid]["exp_avg"], opt_b[pid]["exp_avg"])
    # Every file a run writes is safetensors / JSON / YAML, never a pickle.
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file():
            assert path.suffix in {".safetensors", ".jsonl", ".yaml"}, path
            if path.suffix == ".safetensors":
                assert_not_pickle(path)
    assert (tmp_path / "b" / "checkpoints" / "best.safetensors").is_file()


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

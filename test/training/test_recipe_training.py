"""Issue 25's training path: reduced-size loss, CPU autocast, router learning rate, standardised
stems, content crops that keep the vertical position, the decoded-frame cache, one seeding place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sam_moelora_ros.datasets.augment import TrainAugment, collate
from sam_moelora_ros.model import MoELoRASegmentor
from sam_moelora_ros.model.preprocess import normalize
from training.builders import amp_dtype, cpu_has_bf16
from training.config import TrainConfig, TrainConfigError
from training.data import build_datasets
from training.loop import Trainer, downsample_labels, loss_size
from training.optim import build_optimizer, set_lr
from training.standardise import input_statistics, standardise_stems

from .conftest import run_config


def test_loss_size_and_label_downsampling_keep_ignore_pixels():
    assert loss_size((96, 192), 0.5) == (48, 96) and loss_size((96, 192), 1.0) == (96, 192)
    target = torch.full((1, 4, 4), 255, dtype=torch.int64)
    target[0, :2, :2] = 3
    small = downsample_labels(target, (2, 2))
    assert small.dtype == torch.int64 and small.tolist() == [[[3, 255], [255, 255]]]


def test_amp_modes_on_the_cpu():
    cpu = torch.device("cpu")
    assert amp_dtype("none", cpu) is None and amp_dtype("fp16", cpu) is None
    assert amp_dtype("bf16", cpu) == torch.bfloat16
    assert amp_dtype("auto", cpu) == (torch.bfloat16 if cpu_has_bf16() else None)


def test_routers_get_their_own_learning_rate_and_the_default_keeps_two_groups():
    from sam_moelora_ros.model import ModelConfig

    model = MoELoRASegmentor(ModelConfig.preset("tiny", image_size=64, window_size=4))
    assert len(build_optimizer(model, 1e-3, 0.01, (0.9, 0.999)).param_groups) == 2
    opt = build_optimizer(model, 1e-3, 0.01, (0.9, 0.999), router_lr_mult=10.0)
    set_lr(opt, 1e-3, 0.5)
    router_ids = {id(p) for p in model.routers.parameters()}
    for group in opt.param_groups:
        is_router = {id(p) in router_ids for p in group["params"]}
        assert len(is_router) <= 1
        expected = 5e-3 if is_router == {True} else 5e-4
        assert group["lr"] == pytest.approx(expected)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(
        [p for p in model.parameters() if p.requires_grad]
    )


def test_standardised_stems_put_each_modality_at_zero_mean_unit_std(deliver_tree: Path, tmp_path):
    cfg = run_config(deliver_tree, tmp_path / "r", data={"val_split": None})
    train_set, _ = build_datasets(cfg)
    stats = input_statistics(train_set, ("rgb", "depth", "lidar"))
    model = MoELoRASegmentor(cfg.model_config())
    applied = standardise_stems(model.encoder.stems, stats)
    assert set(applied) == {"depth", "lidar"}  # RGB keeps SAM's own normalisation
    sample = train_set.load(0)
    with torch.no_grad():
        for m in ("depth", "lidar"):
            x = normalize(torch.from_numpy(sample["images"][m]).permute(2, 0, 1)[None], m)
            y = model.encoder.stems[m](x)
            assert abs(float(y.mean())) < 1.0 and 0.3 < float(y.std()) < 3.0
            assert float(x.std()) < 0.5  # before: the divided-by-255 scale
        identity = torch.eye(3).view(3, 3, 1, 1)
        assert torch.equal(model.encoder.stems["rgb"].mix.weight, identity)


def test_stem_init_standardise_runs_in_the_trainer(deliver_tree: Path, tmp_path):
    cfg = run_config(
        deliver_tree, tmp_path / "r", model={"stem_init": "standardise"}, data={"val_split": None}
    )
    trainer = Trainer(cfg, build_datasets(cfg)[0])
    weight = trainer.model.encoder.stems["depth"].mix.weight
    assert not torch.equal(weight, torch.eye(3).view(3, 3, 1, 1))


def test_content_crops_keep_the_vertical_position():
    label = np.zeros((192, 384), np.uint8)
    label[96:] = 1  # top half class 0, bottom half class 1
    sample = {"images": {"rgb": np.zeros((192, 384, 3), np.uint8)}, "label": label}
    keep = TrainAugment(192, (0.8, 0.8), flip=False, seed=0, content_multiple=32, vertical="keep")
    out = keep(sample)
    assert out["label"].shape == (96, 192) and out["inputs"]["rgb"].shape == (3, 96, 192)
    assert (out["label"][:48] == 0).all() and (out["label"][48:] == 1).all()
    small = TrainAugment(192, (0.4, 0.4), flip=False, seed=0, content_multiple=32, vertical="keep")
    out = small(sample)  # 77 rows in a 96-row crop: padding split between top and bottom
    rows = out["label"][:, 0].tolist()
    assert rows[0] == 255 and rows[-1] == 255 and rows[48] in (0, 1)
    assert rows.index(0) == (96 - 77) // 2


def test_collate_pads_samples_of_different_sizes():
    a = {"inputs": {"rgb": torch.ones(3, 32, 64)}, "label": torch.zeros(32, 64, dtype=torch.int64)}
    b = {"inputs": {"rgb": torch.ones(3, 64, 32)}, "label": torch.zeros(64, 32, dtype=torch.int64)}
    batch = collate([a, b])
    assert batch["inputs"]["rgb"].shape == (2, 3, 64, 64)
    assert int(batch["label"][0, 40, 0]) == 255 and float(batch["inputs"]["rgb"][0, 0, 40, 0]) == 0


def test_decoded_frames_are_cached_when_they_fit(deliver_tree: Path, tmp_path):
    cfg = run_config(deliver_tree, tmp_path / "r", data={"val_split": None, "cache_mb": 64})
    train_set, _ = build_datasets(cfg)
    assert train_set.cached is not None and len(train_set.cached) == len(train_set)
    calls = []
    train_set.load = lambda i: calls.append(i)  # type: ignore[method-assign]
    train_set[3]
    assert calls == []  # served from memory
    small = build_datasets(run_config(deliver_tree, tmp_path / "s", data={"val_split": None}))[0]
    assert not small.cache_decoded(1024) and small.cached is None  # does not fit: no cache


def test_recipe_config_fields_are_validated(tmp_path):
    with pytest.raises(TrainConfigError, match="loss.resolution"):
        TrainConfig.from_dict({"loss": {"resolution": 0}})
    with pytest.raises(TrainConfigError, match="optim.router_lr_mult"):
        TrainConfig.from_dict({"optim": {"router_lr_mult": -1}})
    with pytest.raises(TrainConfigError, match="data.crop_vertical"):
        TrainConfig.from_dict({"data": {"crop_vertical": "up"}})
    with pytest.raises(TrainConfigError, match="model.stem_init"):
        TrainConfig.from_dict({"model": {"stem_init": "zeros"}})
    shipped = TrainConfig.load("training/configs/synthetic_tiny_v2.yaml").model_config()
    assert (shipped.input_geometry, shipped.router_scores) == ("content", "linear")


def test_the_new_recipe_trains_a_content_model_end_to_end(deliver_tree: Path, tmp_path):
    cfg = run_config(
        deliver_tree,
        tmp_path / "v2",
        model={
            "stem_init": "standardise",
            "fusion": "routed",
            "overrides": {"window_size": 4, "input_geometry": "content", "router_scores": "linear"},
        },
        data={"cache_mb": 64, "crop_vertical": "keep"},
        optim={"router_lr_mult": 10.0, "max_steps": 3},
        loss={"resolution": 0.5},
        run={"amp": "bf16", "val_every": 3},
    )
    train_set, val_set = build_datasets(cfg)
    trainer = Trainer(cfg, train_set, val_set)
    batch = next(iter(trainer.loader))
    assert batch["inputs"]["rgb"].shape[-2:] == (32, 64)  # 64x32 frames: content, no square
    summary = trainer.train()
    assert summary["step"] == 3 and summary["last_val"]["miou"] >= 0


def test_every_training_seed_is_set_in_training_seeding():
    root = Path(__file__).resolve().parents[2] / "training"
    calls = ("manual_seed(", "random.seed(", "np.random.seed(")
    offenders = [
        p.name
        for p in root.glob("*.py")
        if p.name != "seeding.py" and any(c in p.read_text() for c in calls)
    ]
    assert offenders == []


def test_the_epoch_rolls_over_in_one_place(tmp_path, deliver_tree: Path):
    """8 training frames at batch 2: 4 steps an epoch; 5 steps roll over once, at step 4."""
    cfg = run_config(deliver_tree, tmp_path / "e", data={"val_split": None}, optim={"max_steps": 5})
    trainer = Trainer(cfg, build_datasets(cfg)[0])
    seen = []
    original = trainer.end_epoch
    trainer.end_epoch = lambda: (seen.append(trainer.step), original())[1]  # type: ignore[method-assign]
    trainer.train()
    per_epoch = trainer.steps_per_epoch
    assert seen == [per_epoch * k for k in range(1, 5 // per_epoch + 1)]
    assert trainer.epoch == 5 // per_epoch and trainer.position == 5 % per_epoch


def test_the_v2_study_variants_change_what_they_name():
    from training.study import Study

    study = Study.load(Path("training/configs/study_tiny_v2.yaml"))
    assert study.base == Path("training/configs/synthetic_tiny_v2.yaml") and study.seeds == (
        0,
        1,
        2,
    )
    base = TrainConfig.load(study.base).model_config()
    changed = {}
    for variant in study.variants:
        cfg = TrainConfig.load(study.base, list(variant.overrides)).model_config()
        changed[variant.name] = set(cfg.differences(base))
    assert changed == {
        "rgbdel": set(),
        "rgb_only": {"modalities"},
        "both": {"fusion"},
        "average": {"fusion"},
        "sigmoid_router": {"router_scores"},
    }

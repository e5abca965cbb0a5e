"""Training configs: shipped files load, overrides apply, every error names its field."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from training.config import TrainConfig, TrainConfigError, apply_overrides
from training.optim import lr_factor
from training.study import Study
from training.train import main as train_main

CONFIG_DIR = Path(__file__).resolve().parents[2] / "training" / "configs"
CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.yaml") if not p.name.startswith("study_"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path: Path) -> None:
    cfg = TrainConfig.load(path)
    model = cfg.model_config()
    assert model.num_classes == 25
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # round trip


def test_paper_recipe_and_ablations() -> None:
    by_name = {p.stem: TrainConfig.load(p) for p in CONFIGS}
    paper = by_name["deliver_vit_b"]
    assert paper.model_config().name == "vit_b" and paper.model_config().image_size == 1024
    o = paper.optim
    assert (o.lr, o.weight_decay, o.batch_size, o.epochs, o.warmup_epochs, o.power) == (
        6e-4, 0.01, 4, 200, 10, 0.9,
    )  # fmt: skip
    default = by_name["synthetic_tiny"]
    assert default.model.fusion == "both" and default.model.preset == "tiny"
    assert default.data.conditions is None and default.data.cases is None  # all + failures
    assert default.model.sam_checkpoint == by_name["pretrain_tiny"].run.out + "/encoder.safetensors"
    study = Study.load(CONFIG_DIR / "study_tiny.yaml")
    assert study.base == Path("training/configs/synthetic_tiny.yaml") and len(study.seeds) == 3
    changes = {
        "rgbdel": {},
        "average": {"fusion": "average"},
        "routed": {"fusion": "routed"},
        "rgb_only": {"modalities": ("rgb",)},
    }
    assert {v.name for v in study.variants} == set(changes)
    for variant in study.variants:  # each ablation changes the model as named, nothing else
        ablation = TrainConfig.load(CONFIG_DIR / study.base.name, list(variant.overrides))
        expected = default.model.__class__(**{**default.model.__dict__, **changes[variant.name]})
        assert ablation.model == expected
        assert (ablation.optim, ablation.data, ablation.dropout) == (
            default.optim, default.data, default.dropout,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["optim.lr=-1"], "optim.lr"),
        (["optim.batch_size=0"], "optim.batch_size"),
        (["optim.betas=[0.9]"], "optim.betas"),
        (["dropout.p=1.0"], "dropout.p"),
        (["run.amp=fp8"], "run.amp"),
        (["model.preset=vit_z"], "model.preset"),
        (["model.fusion=sum"], "fusion"),
        (["data.dataset=kitti"], "data.dataset"),
        (["data.scale_range=[2.0, 1.0]"], "data.scale_range"),
        (["optim.lrr=1"], "optim: unknown key"),
        (["trainer.lr=1"], "unknown config section"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, overrides: list[str], field: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: {preset: tiny}\n")
    with pytest.raises(TrainConfigError, match=field):
        TrainConfig.load(path, overrides)


def test_yaml_exponents_without_dot_are_numbers(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim: {lr: 1e-3, betas: [0.9, 0.99]}\n")  # YAML 1.1 reads 1e-3 as text
    assert TrainConfig.load(path).optim.lr == pytest.approx(1e-3)


def test_overrides_nest_and_parse_yaml() -> None:
    out = apply_overrides({"optim": {"lr": 1.0}}, ["optim.lr=0.5", "model.modalities=[rgb]"])
    assert out == {"optim": {"lr": 0.5}, "model": {"modalities": ["rgb"]}}
    with pytest.raises(TrainConfigError, match="section.key"):
        apply_overrides({}, ["lr=1"])


def test_cli_reports_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim: {warmup_epochs: -2}\n")
    assert train_main(["--config", str(path)]) == 2
    assert "optim.warmup_epochs" in capsys.readouterr().err


def test_schedule_warms_up_then_decays_to_zero() -> None:
    factors = [lr_factor(s, total_steps=100, warmup_steps=10) for s in range(101)]
    assert factors[0] == pytest.approx(1e-6)
    assert all(a < b for a, b in itertools.pairwise(factors[:11]))
    assert factors[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))
    assert factors[100] == 0.0
    assert factors[55] == pytest.approx(0.5**0.9)

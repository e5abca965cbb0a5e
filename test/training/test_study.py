"""training.study: variants x seeds, test-split reports, mean ± std, paired missing-sensor costs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from training.config import TrainConfigError
from training.study import Study, main, mean_std, noise_verdict, within_noise

from .conftest import run_config


def test_mean_std_is_the_sample_standard_deviation() -> None:
    mean, std = mean_std([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert std == pytest.approx(
        math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    )
    assert mean_std([5.0]) == (5.0, 0.0)


def test_one_seed_has_no_spread_so_no_verdict_of_noise() -> None:
    assert noise_verdict([39.4], [30.8]) == "1 seed: noise unknown"
    assert noise_verdict([40.0, 41.0], [30.0, 31.0]) == "beyond noise"
    assert noise_verdict([40.0, 41.0], [40.5, 41.5]) == "within noise"


def test_within_noise_compares_the_gap_with_both_spreads() -> None:
    assert within_noise([40.0, 41.0, 42.0], [40.5, 41.5, 42.5])
    assert not within_noise([40.0, 41.0, 42.0], [30.0, 31.0, 32.0])


def write_study(tmp_path: Path, **changes: object) -> Path:
    data: dict[str, object] = {
        "base_config": "base.yaml",
        "data": "/data",
        "out": str(tmp_path / "study"),
        "seeds": [0, 1],
        "variants": {"a": {"evaluate": "subsets"}, "b": {"overrides": ["model.fusion=average"]}},
    }
    data.update(changes)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": [1]}, "unknown key"),
        ({"baseline": "c"}, "baseline names 'c'"),
        ({"variants": {"a": {"evaluate": "everything"}}}, "variants.a.evaluate"),
        ({"seeds": []}, "'seeds' is empty"),
        ({"variants": {}}, "lists no variant"),
    ],
)
def test_bad_study_files_name_the_key(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(TrainConfigError, match=message):
        Study.load(write_study(tmp_path, **changes))


def test_study_trains_each_variant_per_seed_and_summarises(
    deliver_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = run_config(
        deliver_tree,
        tmp_path / "unused",
        model={"modalities": ["rgb", "depth"]},
        optim={"max_steps": 2},
    )
    base.save(tmp_path / "base.yaml")
    study_file = write_study(
        tmp_path,
        base_config=str(tmp_path / "base.yaml"),
        data=str(deliver_tree),
        test_split="val",
        reference="a",
        baseline="b",
        fusion_variants=["a", "b"],
        variants={
            "a": {"evaluate": "subsets"},
            "b": {"overrides": ["model.modalities=[rgb]"]},
        },
    )
    assert main(["--config", str(study_file), "--jobs", "2"]) == 0
    out = tmp_path / "study"
    summary = json.loads((out / "study.json").read_text())
    assert set(summary["variants"]) == {"a", "b"}
    a = summary["variants"]["a"]
    assert a["full"] == "rgb+depth" and a["seeds"] == [0, 1]
    per_seed = [
        json.loads((out / "a" / f"seed{s}" / "eval_test" / "report.json").read_text())
        for s in (0, 1)
    ]
    values = [r["subsets"]["rgb+depth"]["miou"] for r in per_seed]
    assert a["miou"]["rgb+depth"]["all"]["values"] == values
    assert a["miou"]["rgb+depth"]["all"]["mean"] == pytest.approx(sum(values) / 2)
    # Missing depth costs full - rgb, paired within each seed.
    cost = summary["missing_cost"]["depth"]["all"]["values"]
    expected = [r["subsets"]["rgb+depth"]["miou"] - r["subsets"]["rgb"]["miou"] for r in per_seed]
    assert cost == pytest.approx(expected)
    assert (
        "rgb" in summary["variants"]["b"]["miou"]
        and "depth" not in summary["variants"]["b"]["miou"]
    )
    text = (out / "study.md").read_text()
    assert (
        "## a vs b" in text and "Cost of one missing sensor" in text and "Fusion ablation" in text
    )
    # The runs were selected on val (best) and the seeds differ.
    assert (out / "a" / "seed1" / "checkpoints" / "best.safetensors").is_file()
    # A second call repeats nothing: the finished runs' files are left as they were.
    stamp = (out / "a" / "seed0" / "checkpoints" / "best.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["--config", str(study_file)]) == 0
    assert (out / "a" / "seed0" / "checkpoints" / "best.safetensors").stat().st_mtime_ns == stamp


def test_a_failing_run_is_reported_with_its_log(deliver_tree: Path, tmp_path: Path, capsys) -> None:
    base = run_config(deliver_tree, tmp_path / "unused", optim={"max_steps": 1})
    base.save(tmp_path / "base.yaml")
    study_file = write_study(
        tmp_path,
        base_config=str(tmp_path / "base.yaml"),
        data=str(tmp_path / "no_such_dataset"),
        seeds=[0],
        variants={"a": {}},
    )
    assert main(["--config", str(study_file)]) == 1
    err = capsys.readouterr().err
    assert "a seed 0" in err and "train.log" in err

"""TensorBoard event files beside metrics.jsonl: the same scalars, read back by tensorboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.config import TrainConfigError
from training.data import build_datasets
from training.loop import Trainer
from training.plots import main as plots_main
from training.tensorboard import EventWriter, has_events, load_run, read_events, read_jsonl

from .conftest import run_config

pytest.importorskip("tensorboard", reason="optional dependency (requirements-dev.txt pins it)")

REL = 1e-6
"""TensorBoard keeps scalars as float32."""


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").open()]


@pytest.fixture(scope="module")
def run(deliver_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two optimizer steps, validation after each, TensorBoard on."""
    out = tmp_path_factory.mktemp("tb") / "run"
    cfg = run_config(
        deliver_tree,
        out,
        optim={"max_steps": 2, "grad_clip": 1.0},
        run={"val_every": 1, "tensorboard": True},
    )
    train_set, val_set = build_datasets(cfg)
    Trainer(cfg, train_set, val_set).train()
    return out


def test_event_files_hold_the_scalars_of_metrics_jsonl(run: Path) -> None:
    assert has_events(run)
    events = read_events(run)  # tensorboard's EventAccumulator over the run folder
    logged = records(run)
    train = [r for r in logged if r["kind"] == "train"]
    val = [r for r in logged if r["kind"] == "val"]
    assert [r["step"] for r in train] == [1, 2] and [r["step"] for r in val] == [1, 2]

    def at(tag: str, step: int) -> float:
        (value,) = [v for s, v in events[tag] if s == step]
        return value

    for rec in train:
        for key in ("loss", "loss_main", "loss_aux", "loss_avg", "lr", "grad_norm"):
            assert at(f"train/{key}", rec["step"]) == pytest.approx(rec[key], rel=REL), key
    for rec in val:
        assert at("val/miou", rec["step"]) == pytest.approx(rec["miou"], rel=REL)
        assert rec["per_condition"], "validation has conditions"
        for condition, miou in rec["per_condition"].items():
            tag = f"val/per_condition/{condition}"
            assert at(tag, rec["step"]) == pytest.approx(miou, rel=REL)
        # router weights per modality, all four sensors present: they renormalise to 1
        assert set(rec["router"]) == {"rgb", "depth", "event", "lidar"}
        assert sum(rec["router"].values()) == pytest.approx(1.0, abs=1e-5)
        for modality, weight in rec["router"].items():
            assert at(f"val/router/{modality}", rec["step"]) == pytest.approx(weight, rel=REL)
    # and nothing else: every curve of one source is in the other, point for point
    from_jsonl = read_jsonl(run / "metrics.jsonl")
    assert events.keys() == from_jsonl.keys()
    for tag, points in from_jsonl.items():
        assert [s for s, _ in events[tag]] == [s for s, _ in points], tag
        assert [v for _, v in events[tag]] == pytest.approx([v for _, v in points], rel=REL)


def test_plots_read_either_source(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load_run(run).keys() == read_events(run).keys()  # auto: the event files
    for source in ("jsonl", "tensorboard"):
        out = run / f"curves_{source}.png"
        assert plots_main([str(run), "--source", source, "--out", str(out)]) == 0
        assert out.read_bytes().startswith(b"\x89PNG")
    assert "curves" in capsys.readouterr().out


def test_no_event_files_without_the_option(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps({"kind": "train", "step": 1, "epoch": 0, "loss": 2.5, "lr": 1e-3}) + "\n"
    )
    assert load_run(tmp_path) == {"train/loss": [(1, 2.5)], "train/lr": [(1, 1e-3)]}
    with pytest.raises(FileNotFoundError, match=r"no TensorBoard event files .* run\.tensorboard"):
        load_run(tmp_path, "tensorboard")
    with pytest.raises(SystemExit):
        plots_main([str(tmp_path / "missing")])


def test_a_resumed_run_replaces_what_followed_its_checkpoint(tmp_path: Path) -> None:
    """Steps 3-4 of an interrupted run are logged again after resuming from step 2."""
    first = [{"kind": "train", "step": s, "loss": 10.0 - s} for s in (1, 2, 3, 4)]
    again = [{"kind": "start", "step": 2}] + [
        {"kind": "train", "step": s, "loss": 1.0 / s} for s in (3, 4, 5)
    ]
    writer = EventWriter(tmp_path)
    for rec in first:
        writer.write(rec)
    writer.close()
    writer = EventWriter(tmp_path, purge_step=3)  # what Trainer passes after resume() at step 2
    for rec in again:
        writer.write(rec)
    writer.close()
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in first + again))
    want = [(1, 9.0), (2, 8.0), (3, 1 / 3), (4, 0.25), (5, 0.2)]
    for series in (read_events(tmp_path), read_jsonl(tmp_path / "metrics.jsonl")):
        assert [s for s, _ in series["train/loss"]] == [s for s, _ in want]
        assert [v for _, v in series["train/loss"]] == pytest.approx([v for _, v in want], REL)


def test_the_option_is_a_boolean(deliver_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match=r"run\.tensorboard: must be true or false"):
        run_config(deliver_tree, tmp_path, run={"tensorboard": "yes"})

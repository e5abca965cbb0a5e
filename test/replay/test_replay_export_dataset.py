"""``replay_eval --export-dataset``: a bag as a DELIVER-layout training set that scores the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sam_moelora_ros.datasets import DeliverDataset
from sam_moelora_ros.datasets.contract import read_contract
from sam_moelora_ros.evaluation import ConfusionMatrix
from sam_moelora_ros.replay.cli import evaluate_bag
from sam_moelora_ros.replay.cli import main as replay_main
from training.evaluate import main as evaluate_main

NO_LIDAR = {"sensors.lidar.enabled": False}


@pytest.fixture(scope="module")
def exported(replay_bag: Path, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("export")
    outcome = evaluate_bag(
        replay_bag,
        root / "replay",
        adapter=tiny_model_path,
        max_frames=6,
        progress=False,
        overlays=False,
        keep_labels=True,
        node_params=NO_LIDAR,
        device="cpu",
        export_dataset=root / "data",
    )
    return root, outcome


def test_the_export_is_a_deliver_folder_with_the_models_contract(exported) -> None:
    root, outcome = exported
    data, m = root / "data", outcome.metrics
    ds = DeliverDataset(data, "train", modalities=("rgb", "depth", "event"))
    assert ds.input_encodings == read_contract(data)
    assert ds.input_encodings["depth"].to_dict() == m["input_encodings"]["depth"]
    index = json.loads((data / f"frames_train_{Path(m['bag']).name}.json").read_text())
    complete = m["frames"]["per_sensor_set"].get("rgb+depth+event", 0)
    assert len(ds) == len(index) == complete >= 4  # frames without depth are not written
    assert not (data / "lidar").exists()  # a disabled sensor is not exported
    assert f"exported {complete} frames" in m["export"]


def test_evaluating_the_export_scores_what_the_replay_scored(exported, tiny_model_path) -> None:
    root, outcome = exported
    data = root / "data"
    (index_file,) = data.glob("frames_*.json")
    index = json.loads(index_file.read_text())
    replayed = ConfusionMatrix(25)
    ds = DeliverDataset(data, "train", modalities=("rgb",))
    for entry, (relative, _, _) in zip(index, ds.frames, strict=True):
        truth = DeliverDataset.read_label(ds._path("label", relative))
        replayed.update(outcome.labels[entry["stamp_ns"]], truth)
    out = root / "eval"
    args = ["--adapter", str(tiny_model_path), "--data", str(data), "--split", "train"]
    args += ["--modalities", "rgb", "depth", "event", "--full-only", "--no-progress"]
    assert evaluate_main([*args, "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["subsets"]["rgb+depth+event"]["miou"] == pytest.approx(
        100 * replayed.miou(), abs=0.05
    )


def test_the_command_line_names_the_export(
    replay_bag: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--bag", str(replay_bag), "--out", str(tmp_path / "r"), "--no-progress"]
    args += ["--adapter", str(tiny_model_path), "--device", "cpu", "--max-frames", "2"]
    assert (
        replay_main([*args, "--export-dataset", str(tmp_path / "d"), "--export-split", "val"]) == 0
    )
    assert f"to {tmp_path / 'd'} (with labels)" in capsys.readouterr().out
    assert (tmp_path / "d" / "img" / "sun" / "val").is_dir()

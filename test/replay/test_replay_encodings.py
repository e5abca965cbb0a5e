"""Replay builds every network image from the adapter's input contract, or refuses in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from sam_moelora_ros.replay.cli import main
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT, METADATA_KEY, InputContract


def with_contract(src: Path, dst: Path, contract: InputContract) -> Path:
    """A copy of the adapter ``src`` whose metadata records ``contract``."""
    with safe_open(str(src), "pt") as handle:
        metadata = dict(handle.metadata())
    metadata[METADATA_KEY] = contract.to_json()
    save_file(load_file(str(src)), str(dst), metadata=metadata)
    return dst


def _replay(bag: Path, model: Path, out: Path, *extra: str) -> int:
    args = ["--bag", str(bag), "--out", str(out), "--adapter", str(model), "--no-progress"]
    return main([*args, "--device", "cpu", "--max-frames", "3", *extra])


def test_a_quarter_depth_range_makes_depth_inputs_four_times_brighter(
    replay_bag: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    far = tmp_path / "far.safetensors"
    shutil.copy(tiny_model_path, far)
    near = with_contract(
        tiny_model_path,
        tmp_path / "near.safetensors",
        DEFAULT_CONTRACT.replace("depth", max_range=20.0),
    )
    for model, out in ((far, tmp_path / "far"), (near, tmp_path / "near")):
        assert _replay(replay_bag, model, out, "--save-inputs") == 0
    shown = sorted((tmp_path / "far" / "inputs" / "depth").glob("*.png"))
    assert shown
    for path in shown:
        a = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(int)
        b = cv2.imread(str(tmp_path / "near" / "inputs" / "depth" / path.name), 0).astype(int)
        valid = (a > 0) & (b < 255)  # measured and not saturated at 20 m
        assert valid.sum() > 100
        np.testing.assert_allclose(b[valid] - 1, 4 * (a[valid] - 1), atol=4)
        assert ((a == 0) == (b == 0)).all()  # holes stay holes


def test_a_lidar_encoding_the_node_cannot_compute_is_refused_in_one_line(
    replay_bag: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = with_contract(
        tiny_model_path,
        tmp_path / "png.safetensors",
        DEFAULT_CONTRACT.replace("lidar", "deliver_png"),
    )
    assert _replay(replay_bag, model, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'deliver_png'" in err[0] and "sensors.lidar.enabled" in err[0]
    # the way out it names works: the same model without the LiDAR sensor
    off = ["--param", "sensors.lidar.enabled=false"]
    assert _replay(replay_bag, model, tmp_path / "off", *off) == 0
    metrics = json.loads((tmp_path / "off" / "metrics.json").read_text())
    assert metrics["frames"]["segmented"] > 0

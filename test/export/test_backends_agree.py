"""ONNX Runtime and torch agree where it matters: a replayed bag and the evaluation CLI.

The replay runs the package's shipped tiny model (``default_tiny.safetensors``) over a synthetic
bag (the same generator arguments as test/replay's ``replay_bag``: two sequences, sun and
night, a recorded LiDAR dropout) with each backend: the labels must agree on at least 99.9 % of
the pixels and the mIoU within 0.1 points.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sam_moelora_ros.export.onnx_export import adapter_source, export_onnx
from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeSegmenter
from sam_moelora_ros.inference.segmenter import Segmenter, default_adapter_path
from sam_moelora_ros.model import load_segmentor
from sam_moelora_ros.replay.cli import evaluate_bag
from sam_moelora_ros.replay.cli import main as replay_main
from sam_moelora_ros.synthetic.cli import main as synthetic_main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bag")
    argv = [
        "--out", str(root), "--frames", "12", "--seq-len", "6", "--seed", "3", "--size",
        "128x64", "--conditions", "sun,night", "--bag", "--dropout", "lidar@0.2:0.5",
        "--no-progress",
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert synthetic_main(argv) == 0
    return root / "bags" / "synthetic_train_seed3"


@pytest.fixture(scope="module")
def shipped_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    adapter = default_adapter_path()
    if adapter is None:  # pragma: no cover - the repository ships it
        pytest.skip("this install ships no default model")
    out = tmp_path_factory.mktemp("shipped_onnx")
    # a content-only model: traced for the bag camera's 64 x 128 frames
    export_onnx(load_segmentor(adapter), out, adapter_source(adapter), camera_hw=(64, 128))
    return out


def test_replay_labels_and_miou_agree(bag: Path, shipped_export: Path, tmp_path: Path) -> None:
    outcomes = {}
    segmenters: dict[str, Any] = {
        "torch": Segmenter.from_files(None, device="cpu"),
        "onnxruntime": OnnxRuntimeSegmenter(shipped_export),
    }
    for name, segmenter in segmenters.items():
        outcomes[name] = evaluate_bag(
            bag, tmp_path / name, segmenter=segmenter, keep_labels=True, overlays=False,
            progress=False,
        )  # fmt: skip
    torch_run, onnx_run = outcomes["torch"], outcomes["onnxruntime"]
    assert torch_run.labels.keys() == onnx_run.labels.keys()
    assert len(torch_run.labels) >= 12
    same = total = 0
    for stamp, labels in torch_run.labels.items():
        same += int((labels == onnx_run.labels[stamp]).sum())
        total += labels.size
    assert same / total >= 0.999, f"labels agree on {100 * same / total:.3f} % of pixels"
    a, b = torch_run.metrics, onnx_run.metrics
    assert a["frames"]["evaluated"] == b["frames"]["evaluated"] >= 12
    assert a["frames"]["per_sensor_set"] == b["frames"]["per_sensor_set"]  # lidar dropout too
    assert abs(100 * a["miou"] - 100 * b["miou"]) <= 0.1
    assert "onnxruntime[CPUExecutionProvider]" in b["model"]


def test_replay_eval_cli_runs_the_onnxruntime_backend(
    bag: Path, shipped_export: Path, tmp_path: Path
) -> None:
    argv = [
        "--bag", str(bag), "--out", str(tmp_path), "--backend", "onnxruntime", "--adapter",
        str(shipped_export), "--providers", "cpu", "--max-frames", "2", "--no-progress",
        "--device", "cpu",
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert replay_main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["frames"]["segmented"] == 2
    assert metrics["model"].startswith("onnxruntime[CPUExecutionProvider]")


def test_evaluate_cli_scores_both_backends_alike(
    tiny_export: dict[str, Any], tmp_path: Path
) -> None:
    from training.evaluate import main as evaluate_main

    data = tmp_path / "deliver"
    argv = [
        "--out", str(data), "--frames", "3", "--seed", "2", "--size", "64x32", "--split", "val",
        "--seq-len", "3", "--failures", "none", "--no-progress",
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert synthetic_main(argv) == 0
    reports = {}
    for backend, model in (
        ("torch", tiny_export["adapter"]),
        ("onnxruntime", tiny_export["manifest"].root),
    ):
        out = tmp_path / backend
        args = ["--adapter", str(model), "--data", str(data), "--split", "val", "--device", "cpu"]
        args += ["--backend", backend, "--out", str(out), "--no-progress"]
        with contextlib.redirect_stdout(io.StringIO()):
            assert evaluate_main(args) == 0
        reports[backend] = json.loads((out / "report.json").read_text())
    a, b = reports["torch"]["subsets"], reports["onnxruntime"]["subsets"]
    assert a.keys() == b.keys() and len(a) == 15
    for subset in a:
        assert abs(a[subset]["miou"] - b[subset]["miou"]) <= 0.1, subset
    router_a, router_b = reports["torch"]["router"], reports["onnxruntime"]["router"]
    for condition, weights in router_a.items():
        for m, w in weights.items():
            assert router_b[condition][m] == pytest.approx(w, abs=1e-4)
    assert np.isfinite([entry["miou"] for entry in b.values()]).all()

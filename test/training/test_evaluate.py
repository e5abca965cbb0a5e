"""Evaluation: mIoU of hand-made predictions, and the CLI's report, tables and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor, save_adapter
from training.data import ShardSampler, build_datasets, make_loader
from training.distributed import DistInfo
from training.evaluate import build_report
from training.evaluate import main as evaluate_main
from training.validate import run_inference

from .conftest import SMALL_MODEL, run_config

IGNORE = 255


class PredictionInChannel0(nn.Module):
    """A stand-in model whose prediction is written in channel 0 of its first present input."""

    modalities = ("rgb", "depth")

    def forward(self, inputs: dict[str, torch.Tensor], return_extras: bool = False) -> Any:
        present = [m for m in self.modalities if m in inputs]
        pred = inputs[present[0]][:, 0].long()
        logits = nn.functional.one_hot(pred, 2).permute(0, 3, 1, 2).float()
        weights = {m: torch.full((pred.shape[0], 4), 1.0 / len(present)) for m in present}
        return logits, {"router_weights": weights, "aux_logits": logits}


def hand_made_batch() -> dict[str, Any]:
    target = torch.tensor([[[0, 0], [1, 1]], [[1, 1], [0, IGNORE]]])
    rgb_pred = torch.tensor([[[0, 1], [1, 1]], [[1, 1], [0, 0]]])  # one error in frame 0
    depth_pred = torch.tensor([[[1, 1], [1, 1]], [[1, 1], [1, 1]]])  # always class 1
    as_input = lambda p: p[:, None].float().repeat(1, 3, 1, 1)  # noqa: E731
    return {
        "inputs": {"rgb": as_input(rgb_pred), "depth": as_input(depth_pred)},
        "label": target,
        "condition": ["night", "fog"],
    }


def test_miou_of_hand_made_predictions() -> None:
    result = run_inference(
        PredictionInChannel0(),
        [hand_made_batch()],
        [("rgb", "depth"), ("rgb",), ("depth",)],
        num_classes=2,
        device=torch.device("cpu"),
        info=DistInfo(),
    )
    report = build_report(result, ("rgb", "depth"), ["a", "b"])
    rgb = report["subsets"]["rgb"]
    # Both frames, rgb: class a TP 2 FN 1 FP 0 -> 2/3; class b TP 4 FP 1 FN 0 -> 4/5.
    assert rgb["miou"] == pytest.approx(100 * (2 / 3 + 4 / 5) / 2)
    assert rgb["iou"] == pytest.approx({"a": 2 / 3, "b": 4 / 5})
    # night frame alone: a 1/2, b 2/3; fog frame alone (ignore pixel skipped): perfect.
    assert rgb["per_condition"]["night"]["miou"] == pytest.approx(100 * (1 / 2 + 2 / 3) / 2)
    assert rgb["per_condition"]["fog"]["miou"] == pytest.approx(100.0)
    # depth predicts b everywhere: a IoU 0, b IoU 4/7 (7 labelled pixels).
    assert report["subsets"]["depth"]["miou"] == pytest.approx(100 * (0 + 4 / 7) / 2)
    # rgb comes first in the pair, so rgb+depth predicts what rgb does.
    assert report["subsets"]["rgb+depth"]["miou"] == pytest.approx(rgb["miou"])
    assert report["router"]["night"] == pytest.approx({"rgb": 0.5, "depth": 0.5})


def test_cli_writes_report_tables_and_figures(
    deliver_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", image_size=64, window_size=4)
    adapter = save_adapter(MoELoRASegmentor(cfg), tmp_path / "m.safetensors", True)
    out = tmp_path / "eval"
    argv = ["--adapter", str(adapter), "--data", str(deliver_tree), "--split", "val"]
    assert evaluate_main([*argv, "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["subsets"]) == 15  # every non-empty subset of 4 modalities
    assert next(iter(report["subsets"])) == "rgb+depth+event+lidar"
    full = report["subsets"]["rgb+depth+event+lidar"]
    assert set(full["per_condition"]) <= {"cloud", "fog", "night", "rain", "sun"}
    assert len(full["iou"]) == 25 and report["frames"] == 4
    for name in ("confusion.png", "robustness.png", "router.png", "tables.md"):
        assert (out / name).stat().st_size > 0, name
    printed = capsys.readouterr().out
    assert "| rgb+depth+event+lidar |" in printed and "Building" in printed


def test_cli_rejects_unknown_modalities(deliver_tree: Path, tmp_path: Path) -> None:
    cfg = ModelConfig.preset("tiny", image_size=64, window_size=4, modalities=("rgb",))
    adapter = save_adapter(MoELoRASegmentor(cfg), tmp_path / "m.safetensors", True)
    argv = ["--adapter", str(adapter), "--data", str(deliver_tree), "--modalities", "lidar"]
    assert evaluate_main(argv) == 2


def test_cli_scores_a_content_only_model_as_its_validation_did(
    deliver_tree: Path, tmp_path: Path
) -> None:
    """``evaluate`` feeds a content-only model the content box, as training's validation does:
    the same frames give the same mIoU (a square letterbox gave 18 where validation said 42)."""
    torch.manual_seed(0)
    model_section = {**SMALL_MODEL, "overrides": {"window_size": 4, "input_geometry": "content"}}
    cfg = run_config(deliver_tree, tmp_path / "run", model=model_section)
    model = MoELoRASegmentor(cfg.model_config()).eval()
    adapter = save_adapter(model, tmp_path / "content.safetensors", True)
    _, val_set = build_datasets(cfg)
    assert val_set is not None
    first = val_set[0]["inputs"]["rgb"]
    assert first.shape[-2] != first.shape[-1]  # 64 x 32 frames: content only, no square
    loader = make_loader(val_set, ShardSampler(len(val_set), 1, 0), 2, 0, drop_last=False)
    full = tuple(cfg.model_config().modalities)
    validated = build_report(
        run_inference(model, loader, [full], 25, torch.device("cpu"), DistInfo()),
        full,
        [str(i) for i in range(25)],
    )["subsets"]["rgb+depth+event+lidar"]["miou"]
    out = tmp_path / "eval"
    argv = ["--adapter", str(adapter), "--data", str(deliver_tree), "--split", "val"]
    assert evaluate_main([*argv, "--out", str(out), "--no-progress", "--full-only"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["subsets"]["rgb+depth+event+lidar"]["miou"] == pytest.approx(validated)

"""``make demo`` (``python -m sam_moelora_ros.replay.demo``): a small run of the real thing.

The demo at its own image size and scenario, with the tiny 64 px model and 12 frames (one
sequence) instead of 48, so it takes seconds; what ``make demo`` promises is checked on its output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sam_moelora_ros.bag import BagReader
from sam_moelora_ros.inference.default_model import DEFAULT_MODEL_ENV
from sam_moelora_ros.replay.demo import EVENT_DROP, LIDAR_DROPOUT
from sam_moelora_ros.replay.demo import main as demo_main

FRAMES = 12


@pytest.mark.slow
def test_a_small_demo_writes_what_make_demo_promises(
    tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo_output"
    argv = ["--out", str(out), "--adapter", str(tiny_model_path), "--frames", str(FRAMES)]
    assert demo_main(argv) == 0
    printed = capsys.readouterr().out
    assert "| all frames" in printed and f"wrote {out}/" in printed
    for name in ("metrics.json", "confusion.png", "robustness.png", "overlays.gif"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / "overlays").glob("*.png"))) == FRAMES
    metrics = json.loads((out / "metrics.json").read_text())
    frames = metrics["frames"]
    assert frames["anchor_messages"] == frames["segmented"] == frames["evaluated"] == FRAMES
    assert metrics["scenario"] == [f"drop {EVENT_DROP}", f"drop {LIDAR_DROPOUT}"]
    lidar = next(w for w in metrics["windows"] if w["sensor"] == "lidar")
    assert lidar["frames_inside"] > 0 and lidar["sensor_used_inside"] < 1.0  # the dropout shows
    assert 0.0 <= metrics["miou"] <= 1.0 and metrics["model"].startswith("cpu float32 S=64")
    with BagReader(out / "labels_bag") as labels:  # the output bag opens and holds every frame
        counts = labels.counts
        assert max(counts.values()) == FRAMES, counts


def test_without_a_default_model_the_demo_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(tmp_path / "missing.safetensors"))
    assert demo_main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "missing.safetensors is missing" in err and "--adapter PATH.safetensors" in err
    assert not (tmp_path / "out").exists()  # nothing generated for nothing


def test_zero_frames_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        demo_main(["--frames", "0"])
    assert caught.value.code == 2
    assert "argument --frames: must be an integer >= 1, got 0" in capsys.readouterr().err

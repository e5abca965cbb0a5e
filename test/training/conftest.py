"""Shared fixtures: a tiny DELIVER-layout tree from the synthetic generator, small run configs."""

from __future__ import annotations

import contextlib
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from sam_moelora_ros.synthetic.cli import main as synthetic_main
from training.config import TrainConfig

# The tiny preset at a CPU-test size (as in test/model): 64 px input, 4 x 4 windows.
SMALL_MODEL = {"preset": "tiny", "image_size": 64, "overrides": {"window_size": 4}}


def generate(root: Path, split: str, frames: int, seed: int, failures: str) -> None:
    argv = [
        "--out", str(root), "--frames", str(frames), "--seed", str(seed), "--size", "64x32",
        "--split", split, "--seq-len", "2", "--failures", failures, "--no-progress",
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert synthetic_main(argv) == 0


@pytest.fixture(scope="session")
def deliver_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 training frames (clean + motion blur, 4 conditions) and 4 val frames, 64 x 32."""
    root = tmp_path_factory.mktemp("deliver")
    generate(root, "train", 8, seed=1, failures="none,motionblur")
    generate(root, "val", 4, seed=2, failures="none")
    return root


def run_config(root: Path, out: Path, **sections: dict[str, Any]) -> TrainConfig:
    """A small run on ``root``; ``sections`` update the defaults section by section."""
    data: dict[str, Any] = {
        "model": dict(SMALL_MODEL),
        "data": {"root": str(root), "scale_range": [0.8, 1.2]},
        "optim": {"lr": 1e-3, "batch_size": 2, "max_steps": 4, "warmup_steps": 1},
        "dropout": {"p": 0.5, "p_rgb": 0.2},
        "run": {"out": str(out), "log_every": 1, "val_every": 2, "progress": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return TrainConfig.from_dict(data)


def assert_not_pickle(path: Path) -> None:
    """A safetensors file: 8-byte header length, a JSON header, raw tensor bytes; no pickle."""
    data = path.read_bytes()
    assert not data.startswith((b"\x80", b"PK")), f"{path} looks like a pickle / torch.save zip"
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    assert isinstance(header, dict)

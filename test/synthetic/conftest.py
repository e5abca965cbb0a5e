"""Shared fixtures: one small synthetic run (DELIVER layout + sqlite3 bag) per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam_moelora_ros.synthetic.cli import main

SMALL = ["--size", "128x64", "--lidar-rings", "16", "--no-progress"]


def run_cli(out: Path, *extra: str) -> Path:
    """Run the CLI into ``out`` and fail the test on a non-zero exit."""
    assert main(["--out", str(out), *SMALL, *extra]) == 0
    return out


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 frames, 5 conditions (2 frames each), one failure case, with a bag."""
    out = tmp_path_factory.mktemp("syn")
    return run_cli(
        out,
        "--frames",
        "10",
        "--seed",
        "3",
        "--seq-len",
        "2",
        "--bag",
        "--failures",
        "none,motionblur",
    )


def bag_path(out: Path, split: str = "train", seed: int = 3) -> Path:
    """Where the CLI puts the bag."""
    return out / "bags" / f"synthetic_{split}_seed{seed}"

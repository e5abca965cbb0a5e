"""Fixtures of the replay tests: one tiny synthetic bag and one tiny random model per session.

Sizes are tiny (128x64 images, 16 frames, a 64 px model) so the whole replay suite stays within
seconds on the 2-core CI machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FRAMES = 12
SIZE = "128x64"
LIDAR_DROP = "lidar@0.2:0.5"
"""A LiDAR dropout recorded into the bag itself (the generator's own --dropout)."""


@pytest.fixture(scope="session")
def replay_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic bag: two sequences (sun, night), a recorded LiDAR dropout, DELIVER labels."""
    from sam_moelora_ros.synthetic.cli import main

    root = tmp_path_factory.mktemp("replay_data")
    code = main(
        [
            "--out", str(root), "--frames", str(FRAMES), "--seq-len", "6", "--seed", "3",
            "--size", SIZE, "--conditions", "sun,night", "--bag", "--dropout", LIDAR_DROP,
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    return root / "bags" / "synthetic_train_seed3"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny model (64 px input, all four modalities), saved with its backbone."""
    import torch

    from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor, save_adapter

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", num_classes=25).replace(image_size=64)
    path = tmp_path_factory.mktemp("replay_model") / "tiny64.safetensors"
    save_adapter(MoELoRASegmentor(cfg), path, include_backbone=True)
    return path


@pytest.fixture(scope="session")
def segmenter(tiny_model_path: Path):
    from sam_moelora_ros.inference.segmenter import Segmenter

    return Segmenter.from_files(tiny_model_path, device="cpu")

"""Shared by the CUDA tests: the device parametrisation and realistic four-sensor frames."""

from __future__ import annotations

import numpy as np
import pytest

DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.cuda)]
"""Parametrise a check that means something on both: the CUDA case is skipped without CUDA."""


def synthetic_frames(count: int = 2, width: int = 256, height: int = 128) -> list[dict]:
    """``count`` frames of the synthetic generator (sun, then night) as the node's network images.

    Why not random images: the half-precision check needs a model whose predictions are
    confident, i.e. the shipped trained model on the kind of scene it was trained on. On random
    pixels (or with a random model) the top two logits are nearly tied almost everywhere and any
    rounding flips labels, which says nothing about the precision path.
    """
    from sam_moelora_ros.sensors.representation import depth_to_network_image
    from sam_moelora_ros.synthetic.cli import plan_sequences, render
    from sam_moelora_ros.synthetic.deliver import lidar_image
    from sam_moelora_ros.synthetic.frames import GeneratorConfig
    from sam_moelora_ros.synthetic.transforms import Rig

    config = GeneratorConfig(rig=Rig(width=width, height=height))
    frames: list[dict[str, np.ndarray]] = []
    for frame in render(plan_sequences(count, 3, ("sun", "night"), seq_len=1), config):
        assert frame.lidar is not None  # sync_lidar: one sweep per camera frame
        frames.append(
            {
                "rgb": frame.rgb,
                "depth": depth_to_network_image(frame.depth),
                "event": frame.event_frame,
                "lidar": lidar_image(frame.lidar, config.rig),
            }
        )
    return frames

"""fp16 autocast gives the float32 labels on >= 99 % of the pixels, bf16 on >= 98 % (CPU, CUDA).

The shipped trained model (``default_tiny.safetensors``) on synthetic four-sensor frames of the
kind it was trained on; the Segmenter's softmax and arg-max run in float32 whatever the compute
dtype, so only the network's rounding can flip a label. bf16 keeps 8 mantissa bits to fp16's
11, so it rounds about 8x more coarsely: with the v2 default model, bf16 on the CPU gave 98.99 %
(the v1 default model had passed 99 %).
"""

from __future__ import annotations

import numpy as np
import pytest
from cuda_helpers import DEVICES, synthetic_frames

from sam_moelora_ros.inference.segmenter import Segmenter, default_adapter_path

pytestmark = pytest.mark.slow

AGREEMENT = {"float16": 0.99, "bfloat16": 0.98}
"""The least share of pixels whose label matches float32's, per compute dtype."""


@pytest.fixture(scope="module")
def frames() -> list[dict[str, np.ndarray]]:
    if default_adapter_path() is None:  # pragma: no cover - the repository ships it
        pytest.skip("this install ships no default model")
    return synthetic_frames(2)


@pytest.fixture(scope="module")
def float32_labels(frames: list[dict[str, np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Per device, filled on first use: the float32 labels of ``frames``."""
    return {}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("device", DEVICES)
def test_half_precision_labels_agree_with_float32(
    device: str, dtype: str, frames: list[dict[str, np.ndarray]], float32_labels: dict
) -> None:
    if device not in float32_labels:
        reference = Segmenter.from_files(None, device=device)
        float32_labels[device] = [reference(images).labels for images in frames]
    half = Segmenter.from_files(None, device=device, dtype=dtype)
    same = total = 0
    for images, want in zip(frames, float32_labels[device], strict=True):
        got = half(images)
        assert got.labels.shape == want.shape
        same += int((got.labels == want).sum())
        total += want.size
        assert len(np.unique(want)) >= 5  # a real scene: several classes, not one blob
    share = same / total
    assert share >= AGREEMENT[dtype], (
        f"{dtype} on {device}: labels agree on {100 * share:.2f} % only"
    )

"""The shared preprocessing path: letterbox geometry, normalisation, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam_moelora_ros.model.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    letterbox_params,
    normalize,
    prepare_inputs,
    unletterbox,
)


def test_letterbox_keeps_aspect_and_fits_the_long_side():
    box = letterbox_params(256, 512, 128)
    assert (box.new_h, box.new_w, box.size) == (64, 128, 128)
    assert box.scale == pytest.approx(0.25)
    with pytest.raises(ValueError, match="positive"):
        letterbox_params(0, 10, 64)


def test_rgb_uses_sam_pixel_statistics_and_other_modalities_divide_by_255():
    pixel = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert normalize(pixel, "rgb").abs().max() < 1e-6
    white = torch.full((1, 3, 2, 2), 255.0)
    expected = (255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert normalize(white, "rgb")[0, 0, 0, 0].item() == pytest.approx(expected)
    assert normalize(white.to(torch.uint8), "depth").max().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lidar: expected a B x 3 x H x W"):
        normalize(torch.zeros(1, 1, 2, 2), "lidar")


def test_prepare_inputs_letterboxes_every_modality_to_the_model_square():
    rgb = np.full((40, 80, 3), 200, np.uint8)
    depth = np.full((40, 80, 3), 255, np.uint8)
    event = np.zeros((20, 40, 3), np.uint8)  # smaller, as DELIVER's event frames
    event[5, 7] = 255
    tensors, box = prepare_inputs({"rgb": rgb, "depth": depth, "event": event}, 64)
    assert (box.new_h, box.new_w) == (32, 64)
    for tensor in tensors.values():
        assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == torch.float32
    torch.testing.assert_close(tensors["depth"][:, :, :32], torch.ones(1, 3, 32, 64))
    assert torch.all(tensors["depth"][:, :, 32:] == 0.0)  # padding below the image
    # Nearest-neighbour keeps the sparse event as a single full-strength value (not smeared).
    assert tensors["event"].max().item() == 1.0
    assert (tensors["event"][0, 0] > 0).sum().item() >= 1


def test_unletterbox_crops_the_padding_and_restores_input_size():
    _, box = prepare_inputs({"rgb": np.zeros((30, 90, 3), np.uint8)}, 60)
    maps = torch.zeros(1, 2, 60, 60)
    maps[:, :, : box.new_h, : box.new_w] = 1.0
    out = unletterbox(maps, box)
    assert out.shape == (1, 2, 30, 90)
    assert torch.all(out == 1.0)  # nothing of the padding leaks into the image

"""Augmentation keeps modalities and label aligned; eval transform == the node's letterbox."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sam_moelora_ros.datasets import DeliverDataset, EvalTransform, TrainAugment, collate
from sam_moelora_ros.model.preprocess import normalize, prepare_inputs

from .conftest import make_deliver

MODS = ("rgb", "depth", "event", "lidar")


def marker_sample(h: int = 30, w: int = 40, top: int = 8, left: int = 24) -> dict:
    """Black frame with a 4x4 white marker (label 7 there, 1 elsewhere); event at half size.

    ``top``/``left`` are even so the half-size event frame can hold the marker exactly.
    """
    images = {}
    for m in MODS:
        scale = 2 if m == "event" else 1
        img = np.zeros((h // scale, w // scale, 3), np.uint8)
        img[top // scale : (top + 4) // scale, left // scale : (left + 4) // scale] = 255
        images[m] = img
    label = np.ones((h, w), np.uint8)
    label[top : top + 4, left : left + 4] = 7
    return {"images": images, "label": label, "condition": "fog", "case": "clean", "name": "m"}


def centroid(mask: torch.Tensor) -> np.ndarray:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return np.array([ys.float().mean().item(), xs.float().mean().item()])


def marker_mask(x: torch.Tensor, modality: str) -> torch.Tensor:
    """Pixels closer to the marker's normalised value than to the background's."""
    lo = normalize(torch.zeros(1, 3, 1, 1), modality)[0, 0, 0, 0]
    hi = normalize(torch.full((1, 3, 1, 1), 255.0), modality)[0, 0, 0, 0]
    return x[0] > (lo + hi) / 2


@pytest.mark.parametrize("seed", range(12))
def test_marker_lands_at_the_same_place_everywhere(seed):
    aug = TrainAugment(crop_size=32, scale_range=(0.7, 1.6), seed=seed)
    out = aug(marker_sample())
    assert out["label"].shape == (32, 32) and out["label"].dtype == torch.int64
    assert set(out["inputs"]) == set(MODS)
    on_label = out["label"] == 7
    if not on_label.any():  # the crop missed the marker: then no modality may show it
        assert all(not marker_mask(out["inputs"][m], m).any() for m in MODS)
        return
    expected = centroid(on_label)
    for m in MODS:
        x = out["inputs"][m]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        got = centroid(marker_mask(x, m))
        assert np.abs(got - expected).max() <= 1.0, (m, got, expected)


def test_padding_flip_and_ranges():
    """Upscaled frame smaller than the crop: padded with 0 (normalised) and 255 (label)."""
    sample = marker_sample(h=10, w=12, top=0, left=0)
    flips = set()
    for seed in range(16):
        out = TrainAugment(24, scale_range=(1.0, 1.0), seed=seed)(sample)
        lab = out["label"]
        assert (lab[10:] == 255).all()
        flipped = bool(lab[0, -1] == 7)  # marker at the top-left ends at the top-right
        flips.add(flipped)
        valid = slice(12, 24) if flipped else slice(0, 12)
        assert (lab[:10, valid] != 255).all()
        pad = slice(0, 12) if flipped else slice(12, 24)
        assert (lab[:, pad] == 255).all()
        assert (out["inputs"]["rgb"][:, :, pad] == 0).all()  # = mean colour, as inference pads
        assert (out["inputs"]["depth"][:, 10:] == 0).all()
    assert flips == {True, False}


def test_seeded_is_repeatable_and_varies():
    sample = marker_sample()
    a = [TrainAugment(16, seed=3)(sample)["label"] for _ in range(2)]
    assert torch.equal(a[0], a[1])
    aug = TrainAugment(16, seed=3)
    draws = {tuple(sorted(aug.draw((30, 40)).items())) for _ in range(5)}
    assert len(draws) > 1


def test_metadata_kept_and_bad_arguments():
    out = TrainAugment(16, seed=0)(marker_sample())
    assert out["condition"] == "fog" and out["name"] == "m" and out["size_hw"] == (30, 40)
    with pytest.raises(ValueError, match="scale_range"):
        TrainAugment(16, scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="crop size must be positive"):
        TrainAugment(0)


def test_eval_transform_is_the_inference_letterbox():
    sample = marker_sample(h=30, w=40)
    out = EvalTransform(64)(sample)
    ref, box = prepare_inputs(sample["images"], 64, size_hw=(30, 40))
    for m in MODS:
        assert torch.equal(out["inputs"][m], ref[m][0])
    assert (box.new_h, box.new_w) == (48, 64)
    lab = out["label"]
    assert lab.shape == (64, 64) and (lab[48:] == 255).all() and (lab[:48] != 255).all()
    marker = lab == 7  # 4x4 marker scaled by 1.6 at rows 14.4.., cols 40..
    assert marker.any() and abs(centroid(marker)[1] - 26 * 1.6) < 1.5
    assert out["size_hw"] == (30, 40) and out["case"] == "clean"


def test_collate():
    samples = [EvalTransform(32)(marker_sample()) for _ in range(3)]
    batch = collate(samples)
    assert batch["inputs"]["lidar"].shape == (3, 3, 32, 32)
    assert batch["label"].shape == (3, 32, 32) and batch["label"].dtype == torch.int64
    assert batch["name"] == ["m"] * 3 and batch["size_hw"] == [(30, 40)] * 3
    del samples[1]["inputs"]["event"]
    with pytest.raises(ValueError, match="different modalities"):
        collate(samples)


def test_dataloader_end_to_end(tmp_path):
    root = make_deliver(tmp_path / "DELIVER", conditions=("fog",))
    ds = DeliverDataset(root, "train", transform=TrainAugment(16, seed=0))
    loader = DataLoader(ds, batch_size=4, collate_fn=collate, num_workers=0)
    batch = next(iter(loader))
    assert set(batch["inputs"]) == set(MODS)
    assert batch["inputs"]["rgb"].shape == (4, 3, 16, 16)
    assert batch["condition"] == ["fog"] * 4
    labels = batch["label"].unique().tolist()
    assert set(labels) <= {0, 6, 24, 255} and 6 in labels


class _Repeat(torch.utils.data.Dataset):
    """The same marker sample ``n`` times, augmented (so differences come from the draws)."""

    def __init__(self, n: int, aug: TrainAugment) -> None:
        self.n, self.aug, self.sample = n, aug, marker_sample()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        return self.aug(self.sample)


@pytest.mark.parametrize("seed", [None, 5])
def test_workers_and_epochs_draw_differently(seed):
    torch.manual_seed(0)
    ds = _Repeat(4, TrainAugment(16, seed=seed))
    loader = DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate)
    epochs = [torch.cat([b["label"] for b in loader]) for _ in range(2)]
    worker0, worker1 = epochs[0][0::2], epochs[0][1::2]  # samples alternate between workers
    assert not torch.equal(worker0, worker1)
    assert not torch.equal(epochs[0], epochs[1])
    torch.manual_seed(0)
    again = torch.cat([b["label"] for b in loader])
    assert torch.equal(again, epochs[0])  # repeatable from the main seed

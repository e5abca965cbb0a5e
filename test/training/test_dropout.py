"""Modality dropout: never empty, the configured rates, reproducible from the generator."""

from __future__ import annotations

import pytest
import torch

from training.dropout import sample_modalities

MODS = ("rgb", "depth", "event", "lidar")


@pytest.mark.parametrize(("p", "p_rgb"), [(0.5, 0.2), (0.9, 0.9), (0.99, 0.99), (0.0, 0.0)])
def test_never_drops_everything(p: float, p_rgb: float) -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(5000):
        kept = sample_modalities(MODS, p, p_rgb, gen)
        assert kept, "dropout removed every modality"
        assert set(kept) <= set(MODS)
        assert list(kept) == [m for m in MODS if m in kept]  # canonical order kept


def test_rates_match_the_configuration() -> None:
    gen = torch.Generator().manual_seed(1)
    draws = [sample_modalities(MODS, 0.4, 0.1, gen) for _ in range(20000)]
    rgb_kept = sum("rgb" in d for d in draws) / len(draws)
    depth_kept = sum("depth" in d for d in draws) / len(draws)
    assert rgb_kept == pytest.approx(0.9, abs=0.015)
    assert depth_kept == pytest.approx(0.6, abs=0.015)
    assert any("rgb" not in d for d in draws)  # RGB-free batches do occur


def test_single_modality_is_always_kept() -> None:
    gen = torch.Generator().manual_seed(2)
    assert {sample_modalities(("depth",), 0.9, 0.0, gen) for _ in range(100)} == {("depth",)}


def test_reproducible_from_the_generator_state() -> None:
    a = torch.Generator().manual_seed(3)
    b = torch.Generator().manual_seed(3)
    assert [sample_modalities(MODS, 0.5, 0.2, a) for _ in range(50)] == [
        sample_modalities(MODS, 0.5, 0.2, b) for _ in range(50)
    ]


@pytest.mark.parametrize(("p", "p_rgb"), [(1.0, 0.1), (0.3, -0.1)])
def test_bad_probability_is_rejected(p: float, p_rgb: float) -> None:
    with pytest.raises(ValueError, match="must be in"):
        sample_modalities(MODS, p, p_rgb, torch.Generator())

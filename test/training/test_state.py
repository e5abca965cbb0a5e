"""Training state files: exact round trip of optimizer and RNG states, and no pickle."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from training.state import (
    TrainStateError,
    global_rng_state,
    load_state,
    save_state,
    set_global_rng_state,
)

from .conftest import assert_not_pickle


def test_optimizer_state_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.9))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    path = save_state(tmp_path / "s.safetensors", {"optimizer": opt.state_dict(), "step": 3})
    assert_not_pickle(path)
    state = load_state(path)
    fresh = torch.optim.AdamW(model.parameters(), lr=1.0)
    fresh.load_state_dict(state["optimizer"])
    for group_a, group_b in zip(opt.param_groups, fresh.param_groups, strict=True):
        assert group_a["lr"] == group_b["lr"] and tuple(group_b["betas"]) == (0.8, 0.9)
    for p in model.parameters():
        for key, value in opt.state[p].items():
            assert torch.equal(value, fresh.state[p][key])
    assert state["step"] == 3


def test_rng_states_round_trip(tmp_path: Path) -> None:
    path = save_state(tmp_path / "rng.safetensors", {"rng": global_rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(3))
    set_global_rng_state(load_state(path)["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])


def test_non_tensor_objects_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="without pickle"):
        save_state(tmp_path / "x.safetensors", {"obj": object()})


def test_foreign_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(TrainStateError, match="junk.safetensors"):
        load_state(path)
    with pytest.raises(TrainStateError, match="does not exist"):
        load_state(tmp_path / "missing.safetensors")


def test_other_safetensors_and_directories_are_named_for_what_they_are(tmp_path: Path) -> None:
    other = tmp_path / "adapter.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "sam_moelora_ros.adapter"})
    with pytest.raises(TrainStateError, match="not a sam_moelora_ros training state.*adapter'"):
        load_state(other)
    folder = tmp_path / "last_state.safetensors"
    folder.mkdir()
    with pytest.raises(TrainStateError, match="last_state.safetensors is a directory") as info:
        load_state(folder)
    assert "truncated" not in str(info.value)

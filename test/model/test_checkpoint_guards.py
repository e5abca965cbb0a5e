"""Files from disk that would explode, hang or run code: each is refused with one clear line.

An adapter's model config comes from the file's metadata, so its numbers are checked (finite, in
a sane range) before anything is built; SAM checkpoints with NaN/Inf weights or pickled objects
are refused naming the tensor or saying the payload was not executed; named pipes are refused
without being opened (opening one blocks until a writer appears); a LoRA merge that would produce
NaN/Inf leaves no layer merged.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sam_moelora_ros.model import (
    CheckpointError,
    ModelConfig,
    ModelConfigError,
    MoELoRASegmentor,
    SamCheckpointError,
    load_adapter,
    load_sam_checkpoint,
    load_segmentor,
    read_adapter_config,
    save_adapter,
)
from sam_moelora_ros.model.vit import build_sam_vit

from .conftest import perturb_lora, random_inputs, small_config


def rewrite_config(path: Path, **changes: Any) -> Path:
    """Re-save an adapter with some of its stored config values replaced (as JSON would hold)."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    config = json.loads(metadata["config"])
    config.update(changes)
    metadata["config"] = json.dumps(config)  # Infinity / NaN as Python's json writes them
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.timeout(60)  # were "depth: 1000000" built, this would run out of memory or time
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lora_alpha": 1e30}, "lora_alpha"),
        ({"lora_alpha": math.inf}, "lora_alpha"),
        ({"lora_alpha": math.nan}, "lora_alpha"),
        ({"depth": 1_000_000}, "depth"),
        ({"image_size": 1_000_000_000}, "image_size"),
        ({"image_size": 1e9}, "image_size"),
        ({"mlp_ratio": math.inf}, "mlp_ratio"),
        ({"aux_loss_weight": math.inf}, "aux_loss_weight"),
        ({"num_classes": 10**12}, "num_classes"),
        ({"tap_layers": [0, 1, 2, 10**12]}, "tap_layers"),
    ],
)
def test_exploding_adapter_metadata_is_refused_naming_the_key(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    path = save_adapter(MoELoRASegmentor(small_config()), tmp_path / "a.safetensors", True)
    rewrite_config(path, **changes)
    with pytest.raises(CheckpointError, match=rf"a\.safetensors.*ModelConfig\.{field}: must"):
        read_adapter_config(path)
    with pytest.raises(CheckpointError, match=rf"ModelConfig\.{field}"):
        load_segmentor(path)


def test_every_preset_is_inside_the_limits() -> None:
    from sam_moelora_ros.model import PRESETS

    for name in PRESETS:  # the limits refuse nothing real
        assert ModelConfig.preset(name).name == name
    with pytest.raises(ModelConfigError, match=r"lora_alpha: must be a finite number in \(0"):
        ModelConfig.preset("tiny", lora_alpha=-1.0)


def test_a_refused_merge_leaves_no_layer_merged() -> None:
    torch.manual_seed(0)
    model = MoELoRASegmentor(small_config()).eval()
    perturb_lora(model)
    last = model.encoder.lora_layers[-1]
    with torch.no_grad():  # finite factors whose product overflows float32, in the last layer only
        for expert in last.experts.values():
            expert.lora_A.fill_(1e30)
            expert.lora_B.fill_(1e30)
    with pytest.raises(ValueError, match=r"encoder block 3: .*NaN/Inf.*no layer was merged"):
        model.merge_lora()
    assert [layer.merged for layer in model.encoder.lora_layers] == [False] * 4
    assert not model.lora_merged
    inputs = random_inputs(model.cfg, batch=1)
    with torch.no_grad():  # the unmerged model still runs (and merging a healthy one works)
        model(inputs)
        for expert in last.experts.values():
            expert.lora_A.normal_(0, 0.02)
            expert.lora_B.normal_(0, 0.02)
        model.merge_lora()
    assert model.lora_merged


# ---------------------------------------------------------------- SAM checkpoints
def _sam_state(cfg: ModelConfig) -> dict[str, torch.Tensor]:
    encoder = build_sam_vit(cfg)
    return {f"image_encoder.{k}": v.clone() for k, v in encoder.state_dict().items()}


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_sam_checkpoint_with_nan_or_inf_names_the_first_bad_tensor(
    tmp_path: Path, suffix: str
) -> None:
    cfg = small_config()
    state = _sam_state(cfg)
    keys = list(state)
    state[keys[5]][..., 0] = math.inf
    state[keys[9]][..., 0] = math.nan
    path = tmp_path / f"sam{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
        first = min(keys[5], keys[9])  # safetensors lists its tensors by name
    else:
        torch.save(state, path)
        first = keys[5]  # a state dict keeps its order
    model = MoELoRASegmentor(cfg)
    with pytest.raises(
        SamCheckpointError, match=rf"sam{suffix}: {first} holds NaN/Inf.*re-download"
    ):
        load_sam_checkpoint(model, path)


class _CreatesAFile:
    """Unpickling this object calls ``open(marker, "w")``: a payload that leaves evidence."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch, on the raw pickle
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_pickled_checkpoint_is_refused_and_never_executed(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "payload_ran"
    payload = {"image_encoder.x": torch.zeros(1), "evil": _CreatesAFile(marker)}
    path = tmp_path / "sam_vit_b.pth"
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    # The payload is live: a plain unpickler runs it (then the evidence is removed).
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()
    marker.unlink()
    model = MoELoRASegmentor(small_config())
    with pytest.raises(SamCheckpointError) as caught:
        load_sam_checkpoint(model, path)
    message = str(caught.value)
    assert "sam_vit_b.pth is not a plain tensor checkpoint" in message
    assert "NOT executed" in message
    if writer == "torch.save":  # torch names the global the pickle wanted to call
        assert "it references io.open" in message
    assert "Weights only load failed" not in message and "\n" not in message
    assert not marker.exists()


# ---------------------------------------------------------------- named pipes
@pytest.mark.timeout(30)  # without the check, opening the FIFO blocks until the timeout
@pytest.mark.parametrize("name", ["adapter.safetensors", "sam.pth", "sam.safetensors"])
def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    model = MoELoRASegmentor(small_config())
    pattern = rf"{name} is a named pipe \(FIFO\), not a regular file"
    with pytest.raises(SamCheckpointError, match=pattern):
        load_sam_checkpoint(model, fifo)
    if name.startswith("adapter"):
        with pytest.raises(CheckpointError, match=pattern):
            load_adapter(model, fifo)
        with pytest.raises(CheckpointError, match=pattern):
            load_segmentor(fifo)
    config = tmp_path / "model.yaml"
    os.mkfifo(config)
    with pytest.raises(ModelConfigError, match=r"model\.yaml is a named pipe"):
        ModelConfig.load(config)

"""RGB pretraining of the tiny encoder (training.pretrain) and its SAM-layout checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from sam_moelora_ros.model import (
    ModelConfig,
    MoELoRASegmentor,
    SamCheckpointError,
    load_sam_checkpoint,
    sam_state_dict,
)
from training.config import TrainConfig, TrainConfigError
from training.data import build_datasets
from training.loop import Trainer
from training.pretrain import ENCODER_FILE, main

from .conftest import run_config


def test_sam_state_dict_round_trips_through_load_sam_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = MoELoRASegmentor(ModelConfig.preset("tiny", modalities=("rgb",), image_size=64))
    with torch.no_grad():  # weights no fresh model has, so equality proves the copy
        for param in source.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    state = sam_state_dict(source)
    assert all(k.startswith(("image_encoder.", "mask_decoder.", "prompt_encoder.")) for k in state)
    assert not any(".experts." in k for k in state), "LoRA experts are not part of SAM's layout"
    path = tmp_path / "encoder.safetensors"
    save_file(state, str(path))
    torch.manual_seed(1)
    target = MoELoRASegmentor(
        ModelConfig.preset("tiny", modalities=("rgb", "depth", "event", "lidar"), image_size=64)
    )
    report = load_sam_checkpoint(target, path)
    assert "transformer.layers.0.self_attn.q_proj.weight" in report["decoder_loaded"]
    for key, tensor in target.encoder.frozen_state_dict().items():
        assert torch.equal(tensor, state[key]), key
    ours = target.decoder.state_dict()
    assert torch.equal(
        ours["transformer.layers.0.self_attn.q_proj.weight"],
        state["mask_decoder.transformer.layers.0.self_attn.q_proj.weight"],
    )


def test_sam_state_dict_refuses_hiera() -> None:
    model = MoELoRASegmentor(ModelConfig.preset("hiera_tiny", modalities=("rgb",), image_size=64))
    with pytest.raises(SamCheckpointError, match="SAM 1's ViT"):
        sam_state_dict(model)


def test_train_encoder_needs_rgb_alone(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match=r"model\.modalities: must be \[rgb\]"):
        run_config(tmp_path, tmp_path / "run", model={"train_encoder": True})


def write_config(cfg: TrainConfig, path: Path) -> Path:
    cfg.save(path)
    return path


def test_pretrain_cli_refuses_a_config_that_does_not_train_the_encoder(
    deliver_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = run_config(deliver_tree, tmp_path / "run", model={"modalities": ["rgb"]})
    assert main(["--config", str(write_config(cfg, tmp_path / "c.yaml"))]) == 2
    err = capsys.readouterr().err
    assert "model.train_encoder" in err and "pretrain_tiny.yaml" in err
    assert not (tmp_path / "run").exists(), "nothing trained, nothing written"


def test_pretrain_trains_the_encoder_and_writes_a_sam_checkpoint(
    deliver_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cfg = run_config(
        deliver_tree,
        out,
        model={"modalities": ["rgb"], "train_encoder": True},
        dropout={"p": 0.0, "p_rgb": 0.0},
    )
    assert main(["--config", str(write_config(cfg, tmp_path / "c.yaml"))]) == 0
    encoder = load_file(str(out / ENCODER_FILE))
    torch.manual_seed(cfg.run.seed)  # the trainer's initialisation, before any step
    initial = MoELoRASegmentor(cfg.model_config()).encoder.frozen_state_dict()
    moved = [k for k, v in initial.items() if not torch.equal(v, encoder[k])]
    assert "image_encoder.patch_embed.proj.weight" in moved
    assert "image_encoder.blocks.0.attn.qkv.weight" in moved, "the attention itself learned"
    # The adapter stage: a four-modality model loads it as its frozen encoder.
    adapter_cfg = run_config(
        deliver_tree, tmp_path / "adapters", model={"sam_checkpoint": str(out / ENCODER_FILE)}
    )
    train_set, _ = build_datasets(adapter_cfg)
    trainer = Trainer(adapter_cfg, train_set)
    for key, tensor in trainer.model.encoder.frozen_state_dict().items():
        assert torch.equal(tensor, encoder[key]), key
    trainable = [n for n, p in trainer.model.encoder.sam.named_parameters() if p.requires_grad]
    assert trainable and all(".experts." in n for n in trainable), "the encoder is frozen again"

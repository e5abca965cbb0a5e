"""SAM checkpoint import and adapter save/load, including every error path."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file
from segment_anything import sam_model_registry

from sam_moelora_ros.model import (
    CheckpointError,
    ModelConfig,
    MoELoRASegmentor,
    load_adapter,
    load_sam_checkpoint,
    load_segmentor,
    read_adapter_config,
    save_adapter,
)
from sam_moelora_ros.model.vit import build_sam_vit

from .conftest import perturb_lora, random_inputs, small_config


def _trained_small_model(seed: int = 0, **overrides) -> MoELoRASegmentor:
    torch.manual_seed(seed)
    model = MoELoRASegmentor(small_config(**overrides)).eval()
    perturb_lora(model, seed)
    return model


def _write_sam_layout(cfg: ModelConfig, path) -> dict[str, torch.Tensor]:
    """A checkpoint in segment_anything's key layout for a (small) ViT config."""
    encoder = build_sam_vit(cfg)
    state = {f"image_encoder.{k}": v for k, v in encoder.state_dict().items()}
    torch.save(state, path)
    return state


# ---------------------------------------------------------------- adapters
def test_adapter_round_trip_reproduces_the_logits(tmp_path):
    model = _trained_small_model()
    path = save_adapter(model, tmp_path / "adapter.safetensors")
    assert read_adapter_config(path) == model.cfg
    torch.manual_seed(99)
    other = MoELoRASegmentor(model.cfg).eval()
    # Same frozen encoder (the adapter alone does not carry it), different trainable weights.
    other.encoder.vit.load_state_dict(model.encoder.vit.state_dict())
    assert load_adapter(other, path) is False
    inputs = random_inputs(model.cfg)
    with torch.no_grad():
        torch.testing.assert_close(other(inputs), model(inputs), rtol=0, atol=0)


def test_adapter_with_backbone_builds_a_complete_model(tmp_path):
    model = _trained_small_model(seed=1)
    model.merge_lora()  # saving a merged model stores the unmerged factors
    path = save_adapter(model, tmp_path / "full.safetensors", include_backbone=True)
    loaded = load_segmentor(path)
    inputs = random_inputs(model.cfg)
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs), model(inputs), rtol=0, atol=1e-5)


def test_adapter_file_holds_no_frozen_weights_and_no_pickle(tmp_path):
    model = _trained_small_model()
    path = save_adapter(model, tmp_path / "a.safetensors")
    raw = path.read_bytes()
    assert b"encoder.vit.blocks.0.attn.qkv.base_layer.weight" not in raw
    assert b"encoder.vit.blocks.0.attn.qkv.experts.rgb.lora_A" in raw
    assert not raw.startswith(b"\x80")  # pickle protocol marker


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"num_classes": 7}, "num_classes"),
        ({"modalities": ("rgb", "depth")}, "modalities"),
        ({"lora_rank": 4, "lora_alpha": 4.0}, "lora_rank"),
        ({"fusion": "average"}, "fusion"),
    ],
)
def test_loading_into_another_config_names_what_differs(tmp_path, overrides, field):
    path = save_adapter(_trained_small_model(), tmp_path / "a.safetensors")
    other = MoELoRASegmentor(small_config(**overrides))
    with pytest.raises(CheckpointError, match=rf"a\.safetensors was trained for .*{field}"):
        load_adapter(other, path)


def test_truncated_and_foreign_adapter_files_are_clear_errors(tmp_path):
    model = _trained_small_model()
    path = save_adapter(model, tmp_path / "a.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors is truncated"):
        load_adapter(model, cut)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="foreign.safetensors.*not a sam_moelora_ros"):
        load_adapter(model, foreign)
    with pytest.raises(CheckpointError, match="nothere.safetensors does not exist"):
        load_adapter(model, tmp_path / "nothere.safetensors")


def test_adapter_missing_weights_or_holding_nan_is_rejected(tmp_path):
    model = _trained_small_model()
    tensors = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    from sam_moelora_ros.model.checkpoint import ADAPTER_FORMAT, ADAPTER_FORMAT_VERSION

    meta = {
        "format": ADAPTER_FORMAT,
        "format_version": ADAPTER_FORMAT_VERSION,
        "config": model.cfg.to_json(),
        "includes_backbone": "false",
    }
    key = "routers.0.score.weight"
    partial = {k: v for k, v in tensors.items() if k != key}
    save_file(partial, str(tmp_path / "partial.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=r"lacks 1 weight.*routers\.0\.score\.weight"):
        load_adapter(model, tmp_path / "partial.safetensors")
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(tmp_path / "nan.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="NaN"):
        load_adapter(model, tmp_path / "nan.safetensors")


def test_load_segmentor_without_backbone_asks_for_the_sam_checkpoint(tmp_path):
    path = save_adapter(_trained_small_model(), tmp_path / "a.safetensors")
    with pytest.raises(CheckpointError, match="pass the official SAM checkpoint"):
        load_segmentor(path)


# ---------------------------------------------------------------- SAM checkpoints
def test_sam_layout_checkpoint_loads_with_position_embedding_interpolation(tmp_path):
    """A checkpoint made for a larger input loads into a smaller one (pos embeds resized)."""
    big = small_config(image_size=128)
    state = _write_sam_layout(big, tmp_path / "sam_small.pth")
    model = MoELoRASegmentor(small_config())  # 64 px
    load_sam_checkpoint(model, tmp_path / "sam_small.pth")
    vit = model.encoder.vit
    assert vit.pos_embed.shape == (1, 4, 4, 192)
    torch.testing.assert_close(
        vit.blocks[2].attn.qkv.base_layer.weight, state["image_encoder.blocks.2.attn.qkv.weight"]
    )
    torch.testing.assert_close(vit.neck[0].weight, state["image_encoder.neck.0.weight"])
    global_block = vit.blocks[1].attn  # global attention: rel pos sized for the grid
    assert global_block.rel_pos_h.shape[0] == 2 * 4 - 1


@pytest.mark.parametrize("name", ["run.safetensors", "weights.pth"])
def test_a_directory_is_reported_as_one_for_adapters_and_sam_checkpoints(tmp_path, name):
    """All file readers share one reader: a directory is never called corrupt or missing."""
    folder = tmp_path / name
    folder.mkdir()
    model = MoELoRASegmentor(small_config())
    with pytest.raises(CheckpointError, match=f"SAM checkpoint .*{name} is a directory"):
        load_sam_checkpoint(model, folder)
    if name.endswith(".safetensors"):
        with pytest.raises(CheckpointError, match=f"adapter file .*{name} is a directory"):
            load_adapter(model, folder)


def test_a_truncated_safetensors_sam_checkpoint_is_named(tmp_path):
    model = MoELoRASegmentor(small_config())
    path = tmp_path / "sam.safetensors"
    save_file({"image_encoder.x": torch.zeros(4)}, str(path))
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(CheckpointError, match="SAM checkpoint .*sam.safetensors is truncated"):
        load_sam_checkpoint(model, path)


def test_corrupt_missing_and_foreign_checkpoints_name_the_file(tmp_path):
    model = MoELoRASegmentor(small_config())
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(CheckpointError, match="corrupt.pth is corrupt"):
        load_sam_checkpoint(model, corrupt)
    with pytest.raises(CheckpointError, match="gone.pth does not exist"):
        load_sam_checkpoint(model, tmp_path / "gone.pth")
    torch.save({"model": {"image_encoder.trunk.x": torch.zeros(1)}}, tmp_path / "sam2.pt")
    with pytest.raises(CheckpointError, match="sam2.pt looks like a SAM 2 checkpoint"):
        load_sam_checkpoint(model, tmp_path / "sam2.pt")
    torch.save({"mask_decoder.x": torch.zeros(1)}, tmp_path / "decoder_only.pth")
    with pytest.raises(CheckpointError, match="decoder_only.pth has no SAM image encoder"):
        load_sam_checkpoint(model, tmp_path / "decoder_only.pth")


def test_wrong_variant_and_missing_keys_are_named(tmp_path):
    model = MoELoRASegmentor(small_config())
    deeper = small_config(depth=6, global_attn_indexes=(2, 5), tap_layers=(2, 3, 4, 5))
    _write_sam_layout(deeper, tmp_path / "deeper.pth")  # has every key we need, and more
    wide = small_config(embed_dim=96)
    _write_sam_layout(wide, tmp_path / "wide.pth")
    with pytest.raises(
        CheckpointError, match=r"wide.pth is a different SAM variant \(embed_dim=96.*preset 'tiny'"
    ):
        load_sam_checkpoint(model, tmp_path / "wide.pth")
    state = torch.load(tmp_path / "deeper.pth", weights_only=True)
    short = {k: v for k, v in state.items() if ".blocks.3." not in k}
    torch.save(short, tmp_path / "short.pth")
    with pytest.raises(CheckpointError, match="short.pth is a different SAM variant.*missing"):
        load_sam_checkpoint(model, tmp_path / "short.pth")


@pytest.mark.slow
def test_official_vit_b_checkpoint_from_segment_anything_loads_where_it_should(tmp_path):
    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"]()
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(sam.state_dict(), path)
    official = sam.state_dict()
    del sam
    model = MoELoRASegmentor(ModelConfig.preset("vit_b", image_size=512))
    report = load_sam_checkpoint(model, path)
    vit = model.encoder.vit
    torch.testing.assert_close(
        vit.blocks[11].attn.qkv.base_layer.weight,
        official["image_encoder.blocks.11.attn.qkv.weight"],
    )
    torch.testing.assert_close(
        vit.blocks[5].mlp.lin2.bias, official["image_encoder.blocks.5.mlp.lin2.bias"]
    )
    assert vit.pos_embed.shape == (1, 32, 32, 768)  # 1024 -> 512 input: 64 -> 32 tokens
    assert vit.blocks[2].attn.rel_pos_h.shape == (63, 64)  # global block, resized
    assert vit.blocks[0].attn.rel_pos_h.shape == (27, 64)  # window block, as in the file
    torch.testing.assert_close(
        vit.blocks[0].attn.rel_pos_h, official["image_encoder.blocks.0.attn.rel_pos_h"]
    )
    # SAM's mask-decoder transformer and prompt-free embedding initialise our decoder.
    assert "transformer.layers.0.self_attn.q_proj.weight" in report["decoder_loaded"]
    torch.testing.assert_close(
        model.decoder.transformer.layers[1].mlp.lin1.weight,
        official["mask_decoder.transformer.layers.1.mlp.lin1.weight"],
    )
    torch.testing.assert_close(
        model.decoder.no_mask_embed.weight, official["prompt_encoder.no_mask_embed.weight"]
    )


def test_adapter_files_follow_the_umask_not_safetensors_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_adapter(_trained_small_model(), tmp_path / "shared.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644

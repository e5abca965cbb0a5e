"""SAM 2 Hiera backbone: presets match sam2's configs, shapes, frozen weights, checkpoints."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import yaml

from sam_moelora_ros.model import (
    CheckpointError,
    ModelConfig,
    MoELoRASegmentor,
    count_parameters,
    load_adapter,
    load_sam_checkpoint,
    save_adapter,
)
from sam_moelora_ros.model.hiera import build_sam2_hiera
from sam_moelora_ros.model.summary import format_summary

from .conftest import perturb_lora, random_inputs

ALL = ("rgb", "depth", "event", "lidar")
SUBSETS = [s for r in range(1, 5) for s in itertools.combinations(ALL, r)]
SAM2_CONFIGS = {
    "hiera_t": "sam2.1_hiera_t.yaml",
    "hiera_s": "sam2.1_hiera_s.yaml",
    "hiera_b+": "sam2.1_hiera_b+.yaml",
    "hiera_l": "sam2.1_hiera_l.yaml",
}


def tiny_hiera(**overrides) -> ModelConfig:
    values = {"num_classes": 5, "image_size": 64, **overrides}
    return ModelConfig.preset("hiera_tiny", **values)


@pytest.fixture(scope="module")
def hiera_model() -> MoELoRASegmentor:
    torch.manual_seed(0)
    return MoELoRASegmentor(tiny_hiera()).eval()


@pytest.mark.parametrize(("preset", "config_file"), sorted(SAM2_CONFIGS.items()))
def test_presets_match_the_packaged_sam2_configs(preset, config_file):
    import sam2

    path = Path(sam2.__file__).parent / "configs" / "sam2.1" / config_file
    encoder = yaml.safe_load(path.read_text())["model"]["image_encoder"]
    trunk, neck = encoder["trunk"], encoder["neck"]
    cfg = ModelConfig.preset(preset)
    assert cfg.embed_dim == trunk["embed_dim"] and cfg.num_heads == trunk["num_heads"]
    assert cfg.hiera_stages == tuple(trunk.get("stages", (2, 3, 16, 3)))
    assert cfg.global_attn_indexes == tuple(trunk.get("global_att_blocks", (12, 16, 20)))
    assert cfg.hiera_window_spec == tuple(trunk.get("window_spec", (8, 4, 14, 7)))
    # Missing keys take Hiera's constructor defaults (as in sam2.1_hiera_b+.yaml).
    pos_embed = trunk.get("window_pos_embed_bkg_spatial_size", (14, 14))
    assert cfg.hiera_pos_embed_size == tuple(pos_embed)
    assert cfg.out_chans == neck["d_model"] and encoder["scalp"] == 1
    assert cfg.lora_rank == 32  # the paper's rank


@pytest.mark.parametrize("subset", SUBSETS, ids=lambda s: "+".join(s))
def test_every_modality_subset_gives_finite_logits(hiera_model, subset):
    inputs = random_inputs(hiera_model.cfg, batch=1)
    with torch.no_grad():
        logits, extras = hiera_model({m: inputs[m] for m in subset}, return_extras=True)
    assert logits.shape == (1, 5, 64, 64) and extras["aux_logits"].shape == (1, 5, 64, 64)
    assert torch.isfinite(logits).all()
    assert set(extras["router_weights"]) == set(subset)
    assert extras["router_weights"][subset[0]].shape == (1, 3)  # three FPN levels


def test_untrained_adapter_reproduces_frozen_sam2_features_exactly(hiera_model):
    reference = build_sam2_hiera(hiera_model.cfg).eval()
    state = {
        k[len("image_encoder.") :]: v for k, v in hiera_model.encoder.frozen_state_dict().items()
    }
    reference.load_state_dict(state)
    inputs = random_inputs(hiera_model.cfg, batch=2)
    with torch.no_grad():
        levels = hiera_model.encoder(inputs, ALL)
        for index, modality in enumerate(ALL):
            expected = reference(inputs[modality])["backbone_fpn"]
            assert len(expected) == len(levels) == 3
            for ours, theirs in zip(levels, expected, strict=True):
                torch.testing.assert_close(ours[index], theirs, rtol=0, atol=1e-5)


def test_frozen_hiera_weights_do_not_move_and_lora_trains():
    torch.manual_seed(1)
    model = MoELoRASegmentor(tiny_hiera()).train()
    before = {k: v.clone() for k, v in model.encoder.frozen_state_dict().items()}
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    logits = model(random_inputs(model.cfg, batch=2))
    logits.logsumexp(1).mean().backward()
    optimiser.step()
    for key, value in model.encoder.frozen_state_dict().items():
        assert torch.equal(value, before[key]), key
    expert = model.encoder.lora_layers[-1].experts["lidar"]
    assert expert.lora_B.abs().sum() > 0


def test_lora_sits_on_every_hiera_block_including_stage_transitions(hiera_model):
    blocks = hiera_model.encoder.hiera.trunk.blocks
    assert len(hiera_model.encoder.lora_layers) == len(blocks) == hiera_model.cfg.depth
    widening = [b for b in blocks if b.dim != b.dim_out]
    assert widening  # q-pooling blocks: qkv maps C -> 3 * 2C
    layer = widening[0].attn.qkv
    assert layer.out_dim == 2 * layer.dim
    assert layer.experts["rgb"].lora_B.shape == (2, layer.out_dim, hiera_model.cfg.lora_rank)


def test_merged_lora_matches_unmerged():
    torch.manual_seed(2)
    model = MoELoRASegmentor(tiny_hiera()).eval()
    perturb_lora(model)
    inputs = {m: v for m, v in random_inputs(model.cfg).items() if m in ("rgb", "lidar")}
    with torch.no_grad():
        unmerged = model(inputs)
        model.merge_lora()
        merged = model(inputs)
    torch.testing.assert_close(merged, unmerged, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_official_sam2_checkpoint_from_build_sam2_loads_where_it_should(tmp_path):
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    sam = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")
    official = {k: v.clone() for k, v in sam.state_dict().items()}
    del sam
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": official}, path)
    model = MoELoRASegmentor(ModelConfig.preset("hiera_t", image_size=256))
    report = load_sam_checkpoint(model, path)
    trunk = model.encoder.hiera.trunk
    qkv = official["image_encoder.trunk.blocks.3.attn.qkv.weight"]
    torch.testing.assert_close(trunk.blocks[3].attn.qkv.base_layer.weight, qkv)
    neck = official["image_encoder.neck.convs.0.conv.weight"]
    torch.testing.assert_close(model.encoder.hiera.neck.convs[0].conv.weight, neck)
    # SAM 2's mask decoder initialises ours (MLP names mapped; conv_s0/s1 as high-res convs).
    assert "transformer.layers.0.mlp.lin1.weight" in report["decoder_loaded"]
    torch.testing.assert_close(
        model.decoder.transformer.layers[1].mlp.lin2.weight,
        official["sam_mask_decoder.transformer.layers.1.mlp.layers.1.weight"],
    )
    torch.testing.assert_close(
        model.decoder.high_res_s4.weight, official["sam_mask_decoder.conv_s0.weight"]
    )
    expected = official["sam_prompt_encoder.no_mask_embed.weight"] + official[
        "no_mem_embed"
    ].reshape(1, -1)
    torch.testing.assert_close(model.decoder.no_mask_embed.weight, expected)
    # A different Hiera variant is named as such.
    small = MoELoRASegmentor(ModelConfig.preset("hiera_s", image_size=256))
    with pytest.raises(CheckpointError, match="different SAM variant"):
        load_sam_checkpoint(small, path)


def test_wrong_generation_checkpoints_and_adapters_are_clear_errors(tmp_path, hiera_model):
    vit_like = {"image_encoder.patch_embed.proj.weight": torch.zeros(1)}
    torch.save(vit_like, tmp_path / "sam_vit_b.pth")
    with pytest.raises(CheckpointError, match="sam_vit_b.pth is not a SAM 2 checkpoint"):
        load_sam_checkpoint(hiera_model, tmp_path / "sam_vit_b.pth")
    vit = MoELoRASegmentor(ModelConfig.preset("tiny", num_classes=5, image_size=64, window_size=4))
    path = save_adapter(vit, tmp_path / "vit_adapter.safetensors")
    with pytest.raises(CheckpointError, match="vit_adapter.safetensors.*backbone: file='sam_vit'"):
        load_adapter(hiera_model, path)


def test_adapter_round_trip_records_the_backbone(tmp_path, hiera_model):
    path = save_adapter(hiera_model, tmp_path / "hiera.safetensors", include_backbone=True)
    from sam_moelora_ros.model import load_segmentor

    loaded = load_segmentor(path)
    assert loaded.cfg.backbone == "sam2_hiera"
    inputs = random_inputs(hiera_model.cfg, batch=1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs), hiera_model(inputs), rtol=0, atol=1e-5)


def test_hiera_b_plus_parameter_budget_is_printed():
    model = MoELoRASegmentor(ModelConfig.preset("hiera_b+"))
    counts = count_parameters(model)
    text = format_summary(model)
    assert "hiera_b+" in text and f"{counts['trainable']:,}" in text
    lora = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    assert 5_000_000 < lora < 6_000_000  # rank 32 on Q and V of 24 blocks, 4 modalities

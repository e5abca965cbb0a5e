"""The model's contract: shapes, missing modalities, routing, frozen encoder, LoRA behaviour."""

from __future__ import annotations

import itertools

import pytest
import torch
from segment_anything.modeling import ImageEncoderViT

from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor
from sam_moelora_ros.model.vit import build_sam_vit

from .conftest import perturb_lora, random_inputs, small_config

ALL = ("rgb", "depth", "event", "lidar")
SUBSETS = [s for r in range(1, 5) for s in itertools.combinations(ALL, r)]


def test_there_are_fifteen_subsets():
    assert len(SUBSETS) == 15


@pytest.mark.parametrize("subset", SUBSETS, ids=lambda s: "+".join(s))
def test_every_modality_subset_gives_finite_logits_of_input_size(small_model, subset):
    inputs = random_inputs(small_model.cfg)
    with torch.no_grad():
        logits, extras = small_model({m: inputs[m] for m in subset}, return_extras=True)
    assert logits.shape == (2, 5, 64, 64)
    assert extras["aux_logits"].shape == (2, 5, 64, 64)
    assert torch.isfinite(logits).all() and torch.isfinite(extras["aux_logits"]).all()
    assert extras["modalities"] == subset
    weights = extras["router_weights"]
    assert set(weights) == set(subset)  # absent modalities get no weight at all
    total = sum(weights.values())
    torch.testing.assert_close(total, torch.ones_like(total))


def test_input_of_another_size_is_resized_and_logits_come_back_at_that_size(small_model):
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        logits = small_model({"rgb": x, "depth": x})
    assert logits.shape == (1, 5, 48, 80)


def test_adding_a_modality_changes_the_output(small_model):
    perturb_lora(small_model)
    inputs = random_inputs(small_model.cfg)
    with torch.no_grad():
        rgb_only = small_model({"rgb": inputs["rgb"]})
        rgb_depth = small_model({"rgb": inputs["rgb"], "depth": inputs["depth"]})
    assert (rgb_only - rgb_depth).abs().max() > 1e-3


def test_modality_experts_differ_once_trained(small_model):
    """The same image through the depth experts is not the same as through the RGB experts."""
    perturb_lora(small_model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        as_rgb = small_model({"rgb": x})
        as_depth = small_model({"depth": x})
    assert (as_rgb - as_depth).abs().max() > 1e-3


def test_a_missing_modality_costs_no_encoder_pass(small_model):
    seen: list[int] = []
    hook = small_model.encoder.vit.patch_embed.register_forward_hook(
        lambda _m, args, _out: seen.append(args[0].shape[0])
    )
    inputs = random_inputs(small_model.cfg, batch=3)
    with torch.no_grad():
        small_model({"rgb": inputs["rgb"], "lidar": inputs["lidar"]})
        small_model(inputs)
    hook.remove()
    # One batched encoder call per forward, holding only the present modalities.
    assert seen == [2 * 3, 4 * 3]


def test_bad_inputs_are_rejected_with_a_clear_message(small_model):
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(KeyError, match="unknown modality.*thermal"):
        small_model({"thermal": x})
    with pytest.raises(ValueError, match="at least one modality"):
        small_model({})
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        small_model({"rgb": torch.randn(1, 1, 64, 64)})
    with pytest.raises(ValueError, match="share batch and size"):
        small_model({"rgb": x, "depth": torch.randn(2, 3, 64, 64)})


def test_frozen_encoder_is_bit_identical_after_an_optimiser_step():
    torch.manual_seed(1)
    model = MoELoRASegmentor(small_config()).train()
    frozen_before = {k: v.clone() for k, v in model.encoder.frozen_state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    lora_before = [p.clone() for p in trainable]
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    inputs = random_inputs(model.cfg)
    target = torch.randint(0, 5, (2, 64, 64))
    logits, extras = model(inputs, return_extras=True)
    loss = torch.nn.functional.cross_entropy(logits, target)
    loss = loss + 0.4 * torch.nn.functional.cross_entropy(extras["aux_logits"], target)
    loss.backward()
    optimiser.step()
    for key, value in model.encoder.frozen_state_dict().items():
        assert torch.equal(value, frozen_before[key]), key
        assert not value.requires_grad
    changed = sum(not torch.equal(a, b) for a, b in zip(trainable, lora_before, strict=True))
    assert changed == len(trainable)  # every trainable tensor moved (LoRA B included)


def _reference_encoder(model: MoELoRASegmentor) -> ImageEncoderViT:
    reference = build_sam_vit(model.cfg)
    state = {k[len("image_encoder.") :]: v for k, v in model.encoder.frozen_state_dict().items()}
    reference.load_state_dict(state)
    return reference.eval()


def test_untrained_adapter_reproduces_frozen_sam_features_exactly():
    """B = 0 and identity stems: every modality's features equal segment_anything's encoder."""
    torch.manual_seed(2)
    cfg = small_config(tap_layers=(0, 1, 2, 3))
    model = MoELoRASegmentor(cfg).eval()
    reference = _reference_encoder(model)
    inputs = random_inputs(cfg, batch=2)
    with torch.no_grad():
        taps = model.encoder(inputs, ALL)  # all four modalities in one batched call
        for index, modality in enumerate(ALL):
            ours = model.encoder.neck(taps[-1][index])
            torch.testing.assert_close(ours, reference(inputs[modality]), rtol=0, atol=1e-5)


def test_trained_experts_do_change_the_features():
    torch.manual_seed(3)
    model = MoELoRASegmentor(small_config()).eval()
    perturb_lora(model)
    reference = _reference_encoder(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model.encoder.neck(model.encoder({"rgb": x}, ("rgb",))[-1][0])
        assert (ours - reference(x)).abs().max() > 1e-3


@pytest.mark.parametrize("subset", [("rgb",), ("depth", "lidar"), ALL], ids="+".join)
def test_merged_lora_matches_unmerged(subset):
    torch.manual_seed(4)
    model = MoELoRASegmentor(small_config()).eval()
    perturb_lora(model)
    inputs = {m: v for m, v in random_inputs(model.cfg).items() if m in subset}
    with torch.no_grad():
        unmerged = model(inputs)
        model.merge_lora()
        model.merge_lora()  # merging twice is harmless
        assert model.lora_merged
        merged = model(inputs)
        model.unmerge_lora()
        model.unmerge_lora()
        again = model(inputs)
    torch.testing.assert_close(merged, unmerged, rtol=0, atol=1e-4)
    torch.testing.assert_close(again, unmerged, rtol=0, atol=1e-6)


def test_train_mode_unmerges_so_gradients_reach_the_experts():
    model = MoELoRASegmentor(small_config()).eval()
    model.merge_lora()
    model.train()
    assert not model.lora_merged
    out = model(random_inputs(model.cfg, batch=1))
    out.sum().backward()
    expert = model.encoder.lora_layers[0].experts["rgb"]
    assert expert.lora_B.grad is not None and expert.lora_B.grad.abs().sum() > 0


@pytest.mark.parametrize("fusion", ["both", "average", "routed"])
def test_fusion_modes_run_and_single_modality_passes_through(fusion):
    torch.manual_seed(5)
    model = MoELoRASegmentor(small_config(fusion=fusion)).eval()
    with torch.no_grad():
        out = model({"event": torch.randn(1, 3, 64, 64)}, return_extras=True)
    assert torch.isfinite(out[0]).all()
    torch.testing.assert_close(out[1]["router_weights"]["event"], torch.ones(1, 4))


def test_vit_b_trainable_share_stays_under_ten_percent():
    from sam_moelora_ros.model import count_parameters
    from sam_moelora_ros.model.summary import format_summary

    model = MoELoRASegmentor(ModelConfig.preset("vit_b", num_classes=25))
    counts = count_parameters(model)
    assert counts["trainable_share"] < 0.10
    assert counts["frozen"] == sum(p.numel() for p in model.encoder.vit.parameters()) - sum(
        p.numel() for n, p in model.encoder.vit.named_parameters() if ".experts." in n
    )
    assert "trainable" in format_summary(model)

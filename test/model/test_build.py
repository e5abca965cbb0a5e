"""The builder registry: every backbone name builds, unknown names list the known ones, and a
segmentor assembled from finished parts is the same model ``MoELoRASegmentor(cfg)`` builds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sam_moelora_ros.model.presets as presets_module
from sam_moelora_ros.model import (
    BACKBONE_BUILDERS,
    PRESETS,
    ModelConfig,
    ModelConfigError,
    MoELoRASegmentor,
    build_segmentor,
    build_segmentor_parts,
)
from sam_moelora_ros.model.backbone import MoELoRABackbone
from sam_moelora_ros.model.build import backbone_builder, build_backbone
from sam_moelora_ros.model.config import BACKBONES
from sam_moelora_ros.model.hiera import HieraMoELoRAEncoder
from sam_moelora_ros.model.vit import MoELoRAEncoder, build_sam_vit

from .conftest import random_inputs, small_config

# One CPU-sized config per backbone name, and the encoder class it must build.
SMALL_BY_BACKBONE = {
    "sam_vit": (lambda: small_config(), MoELoRAEncoder),
    "sam2_hiera": (
        lambda: ModelConfig.preset("hiera_tiny", num_classes=5, image_size=64),
        HieraMoELoRAEncoder,
    ),
}


def test_the_registry_and_the_config_validation_know_the_same_backbones():
    assert set(BACKBONE_BUILDERS) == set(BACKBONES) == set(SMALL_BY_BACKBONE)


@pytest.mark.parametrize("name", sorted(SMALL_BY_BACKBONE))
def test_every_registered_backbone_builds_finished_modules(name):
    make_cfg, encoder_class = SMALL_BY_BACKBONE[name]
    cfg = make_cfg()
    assert cfg.backbone == name
    encoder = build_backbone(cfg)
    assert type(encoder) is encoder_class and isinstance(encoder, MoELoRABackbone)
    assert len(encoder.lora_layers) == cfg.depth
    assert len(encoder.level_channels) == cfg.num_levels and encoder.high_res_channels > 0
    assert isinstance(backbone_builder(name).pyramid(cfg), nn.Module)
    model = build_segmentor(cfg).eval()
    with torch.no_grad():
        logits = model(random_inputs(cfg, batch=1))
    assert logits.shape == (1, cfg.num_classes, cfg.image_size, cfg.image_size)


def test_an_unknown_backbone_name_lists_the_known_ones():
    with pytest.raises(
        ModelConfigError, match=r"unknown backbone 'resnet'.*'sam_vit'.*'sam2_hiera'"
    ):
        backbone_builder("resnet")


def test_an_unknown_preset_lists_every_known_one():
    with pytest.raises(ModelConfigError, match="unknown model preset 'vit_x'") as info:
        ModelConfig.preset("vit_x")
    for name in PRESETS:
        assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_presets_module_docstring_names_every_preset(name):
    assert f"``{name}``" in (presets_module.__doc__ or "")


@pytest.mark.parametrize("name", sorted(SMALL_BY_BACKBONE))
def test_build_segmentor_is_the_model_the_class_builds_from_a_config(name):
    cfg = SMALL_BY_BACKBONE[name][0]()
    torch.manual_seed(7)
    built = build_segmentor(cfg).state_dict()
    torch.manual_seed(7)
    direct = MoELoRASegmentor(cfg).state_dict()
    assert list(built) == list(direct)  # same keys, same order
    for key, value in built.items():
        assert torch.equal(value, direct[key]), key


def test_a_segmentor_is_assembled_from_the_parts_it_is_given():
    cfg = small_config()
    parts = build_segmentor_parts(cfg)
    model = MoELoRASegmentor(cfg, **parts)
    assert model.encoder is parts["encoder"] and model.decoder is parts["decoder"]
    assert model.pyramid is parts["pyramid"] and model.aux_head is parts["aux_head"]
    assert list(model.routers) == list(parts["routers"])


def test_some_parts_without_the_others_is_an_error_naming_the_missing():
    parts = dict(build_segmentor_parts(small_config()))
    del parts["pyramid"], parts["decoder"]
    with pytest.raises(TypeError, match=r"not \['pyramid', 'decoder'\]; pass all five"):
        MoELoRASegmentor(small_config(), **parts)


def test_parts_built_for_another_config_are_rejected():
    cfg = small_config()
    parts = build_segmentor_parts(cfg.replace(lora_rank=4, lora_alpha=4.0))
    with pytest.raises(ModelConfigError, match="encoder was built for a different.*lora_rank"):
        MoELoRASegmentor(cfg, **parts)
    parts = build_segmentor_parts(cfg)
    parts["routers"] = nn.ModuleList(list(parts["routers"])[:3])
    with pytest.raises(ModelConfigError, match="3 router.*4 fused levels"):
        MoELoRASegmentor(cfg, **parts)


def test_a_backbone_given_an_encoder_of_another_size_says_so():
    cfg = small_config()
    deeper = build_sam_vit(cfg.replace(depth=6, tap_layers=(0, 2, 4, 5)))
    with pytest.raises(ModelConfigError, match="6 blocks of width 192.*depth=4"):
        MoELoRAEncoder(cfg, deeper)

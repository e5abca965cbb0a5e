"""ModelConfig: presets, validation messages that name the field, YAML/JSON round trips."""

from __future__ import annotations

import pytest

from sam_moelora_ros.model import PRESETS, ModelConfig, ModelConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_round_trip_through_yaml_and_json(tmp_path, name):
    cfg = ModelConfig.preset(name, num_classes=20, modalities=("rgb", "depth"))
    assert cfg.name == name and cfg.num_classes == 20 and cfg.modalities == ("rgb", "depth")
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"cfg{suffix}"
        cfg.save(path)
        assert ModelConfig.load(path) == cfg
    assert ModelConfig.from_json(cfg.to_json()) == cfg


def test_vit_presets_match_segment_anything_builders():
    assert ModelConfig.preset("vit_b").embed_dim == 768
    assert ModelConfig.preset("vit_l").depth == 24
    assert ModelConfig.preset("vit_h").global_attn_indexes == (7, 15, 23, 31)
    assert ModelConfig.preset("vit_b").image_size == 1024


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ModelConfigError, match="unknown model preset 'vit_x'.*tiny"):
        ModelConfig.preset("vit_x")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("image_size", 100, "image_size.*multiple of patch_size"),
        ("num_classes", 0, "num_classes.*positive integer"),
        ("lora_rank", -4, "lora_rank.*positive integer"),
        ("modalities", (), "modalities.*at least one"),
        ("modalities", ("rgb", "rgb"), "modalities.*repeat"),
        ("fusion", "max", "fusion.*both"),
        ("tap_layers", (0, 1), "tap_layers.*exactly 4"),
        ("tap_layers", (0, 1, 2, 9), "tap_layers.*depth"),
        ("lora_targets", ("q", "o"), "lora_targets"),
        ("backbone", "resnet", "backbone"),
        ("modalities", "rgb", "modalities must be a list"),
    ],
)
def test_bad_values_raise_an_error_naming_the_field(field, value, message):
    with pytest.raises(ModelConfigError, match=message):
        ModelConfig.preset("tiny", **{field: value})


def test_unknown_keys_and_bad_files_are_named(tmp_path):
    with pytest.raises(ModelConfigError, match=r"unknown ModelConfig field\(s\) \['colour'\]"):
        ModelConfig.from_dict({"colour": 1})
    bad = tmp_path / "bad.yaml"
    bad.write_text("image_size: [1, 2\n")
    with pytest.raises(ModelConfigError, match="bad.yaml is not valid YAML"):
        ModelConfig.load(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("num_classes: -1\n")
    with pytest.raises(ModelConfigError, match="wrong.yaml.*num_classes"):
        ModelConfig.load(wrong)
    with pytest.raises(ModelConfigError, match="cannot read"):
        ModelConfig.load(tmp_path / "missing.yaml")


def test_differences_lists_changed_fields():
    a = ModelConfig.preset("tiny")
    b = a.replace(num_classes=7, lora_rank=4, lora_alpha=4.0)
    assert set(a.differences(b)) == {"num_classes", "lora_rank", "lora_alpha"}

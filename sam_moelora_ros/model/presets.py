"""The named architectures (presets) a :class:`~.config.ModelConfig` can start from.

The presets, in three groups (a test checks every key of :data:`PRESETS` is named here):

* ``vit_b``, ``vit_l``, ``vit_h``: SAM 1's ViT image encoders, with the hyper-parameters of
  ``segment_anything.build_sam`` so the official ``sam_vit_*.pth`` checkpoints load key for key;
* ``hiera_t``, ``hiera_s``, ``hiera_b+``, ``hiera_l``: SAM 2.1's Hiera image encoders, with the
  hyper-parameters of ``sam2``'s packaged ``configs/sam2.1/sam2.1_hiera_*.yaml``;
* ``tiny`` (a ViT) and ``hiera_tiny``: the same architectures shrunk until they train on a CPU,
  for tests and the package's shipped default model (``tiny``). No official weights exist for
  them, so their adapters are saved with the frozen encoder (``include_backbone=True``).

The table holds plain values (no :class:`~.config.ModelConfig`), so this module depends on
nothing but :mod:`.errors` and the config module can import it without a cycle.
"""

from __future__ import annotations

from typing import Any

from .errors import ModelConfigError

_SAM_VIT: dict[str, Any] = {
    "backbone": "sam_vit",
    "image_size": 1024,
    "patch_size": 16,
    "mlp_ratio": 4.0,
    "window_size": 14,
    "out_chans": 256,
    "lora_rank": 16,
    "lora_alpha": 16.0,
    "pyramid_dim": 256,
    "aux_dim": 256,
    "decoder_depth": 2,
    "decoder_heads": 8,
    "decoder_mlp_dim": 2048,
}

# SAM 2.1 Hiera image encoders (sam2 package, configs/sam2.1/sam2.1_hiera_*.yaml).
_SAM2_HIERA: dict[str, Any] = {
    "backbone": "sam2_hiera",
    "image_size": 1024,
    "patch_size": 4,
    "mlp_ratio": 4.0,
    "window_size": 8,
    "out_chans": 256,
    "tap_layers": (),
    "lora_rank": 32,
    "lora_alpha": 32.0,
    "pyramid_dim": 256,
    "aux_dim": 256,
    "decoder_depth": 2,
    "decoder_heads": 8,
    "decoder_mlp_dim": 2048,
}

PRESETS: dict[str, dict[str, Any]] = {
    # A SAM-architecture ViT small enough to train on a CPU (no official weights exist for it).
    "tiny": {
        "backbone": "sam_vit",
        "image_size": 256,
        "patch_size": 16,
        "embed_dim": 192,
        "depth": 4,
        "num_heads": 3,
        "mlp_ratio": 4.0,
        "window_size": 8,
        "global_attn_indexes": (1, 3),
        "out_chans": 128,
        "lora_rank": 8,
        "lora_alpha": 8.0,
        "tap_layers": (0, 1, 2, 3),
        "pyramid_dim": 64,
        "aux_dim": 64,
        "decoder_depth": 2,
        "decoder_heads": 4,
        "decoder_mlp_dim": 512,
    },
    "vit_b": {
        **_SAM_VIT,
        "embed_dim": 768,
        "depth": 12,
        "num_heads": 12,
        "global_attn_indexes": (2, 5, 8, 11),
        "tap_layers": (2, 5, 8, 11),
    },
    "vit_l": {
        **_SAM_VIT,
        "embed_dim": 1024,
        "depth": 24,
        "num_heads": 16,
        "global_attn_indexes": (5, 11, 17, 23),
        "tap_layers": (5, 11, 17, 23),
    },
    "vit_h": {
        **_SAM_VIT,
        "embed_dim": 1280,
        "depth": 32,
        "num_heads": 16,
        "global_attn_indexes": (7, 15, 23, 31),
        "tap_layers": (7, 15, 23, 31),
    },
    "hiera_t": {
        **_SAM2_HIERA,
        "embed_dim": 96,
        "num_heads": 1,
        "hiera_stages": (1, 2, 7, 2),
        "depth": 12,
        "global_attn_indexes": (5, 7, 9),
        "hiera_window_spec": (8, 4, 14, 7),
        "hiera_pos_embed_size": (7, 7),
    },
    "hiera_s": {
        **_SAM2_HIERA,
        "embed_dim": 96,
        "num_heads": 1,
        "hiera_stages": (1, 2, 11, 2),
        "depth": 16,
        "global_attn_indexes": (7, 10, 13),
        "hiera_window_spec": (8, 4, 14, 7),
        "hiera_pos_embed_size": (7, 7),
    },
    "hiera_b+": {
        **_SAM2_HIERA,
        "embed_dim": 112,
        "num_heads": 2,
        "hiera_stages": (2, 3, 16, 3),
        "depth": 24,
        "global_attn_indexes": (12, 16, 20),
        "hiera_window_spec": (8, 4, 14, 7),
        "hiera_pos_embed_size": (14, 14),
    },
    "hiera_l": {
        **_SAM2_HIERA,
        "embed_dim": 144,
        "num_heads": 2,
        "hiera_stages": (2, 6, 36, 4),
        "depth": 48,
        "global_attn_indexes": (23, 33, 43),
        "hiera_window_spec": (8, 4, 16, 8),
        "hiera_pos_embed_size": (7, 7),
    },
    # A Hiera small enough for CPU tests (no official weights exist for it).
    "hiera_tiny": {
        **_SAM2_HIERA,
        "image_size": 128,
        "embed_dim": 24,
        "num_heads": 1,
        "hiera_stages": (1, 1, 2, 1),
        "depth": 5,
        "global_attn_indexes": (3,),
        "hiera_window_spec": (8, 4, 4, 2),
        "hiera_pos_embed_size": (4, 4),
        "out_chans": 64,
        "lora_rank": 4,
        "lora_alpha": 4.0,
        "pyramid_dim": 32,
        "aux_dim": 32,
        "decoder_heads": 4,
        "decoder_mlp_dim": 256,
    },
}
"""Preset name -> the :class:`~.config.ModelConfig` fields it sets (see the module docstring)."""


def preset_values(name: str) -> dict[str, Any]:
    """A copy of preset ``name``'s fields; an unknown name is an error listing the known ones."""
    if name not in PRESETS:
        raise ModelConfigError(
            f"unknown model preset {name!r}; known presets: {list(PRESETS)} "
            "(pick one of them, or add an entry to PRESETS in sam_moelora_ros/model/presets.py)"
        )
    return dict(PRESETS[name])

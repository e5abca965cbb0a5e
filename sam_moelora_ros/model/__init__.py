"""The MoE-LoRA SAM model (pure PyTorch; no ROS imports).

Public API::

    from sam_moelora_ros.model import (
        PRESETS, ModelConfig, MoELoRASegmentor, build_segmentor, BACKBONE_BUILDERS,
        load_sam_checkpoint, save_adapter, load_adapter, load_segmentor, read_adapter_config,
        count_parameters, sam_state_dict,
    )

Modules, each one concept, imported in one direction (no cycles): :mod:`.presets` ->
:mod:`.config`; :mod:`.lora`, :mod:`.router`, :mod:`.heads`; :mod:`.backbone` -> :mod:`.vit`
(SAM 1) and :mod:`.hiera` (SAM 2) -> :mod:`.build` (the builder registry) -> :mod:`.segmentor`
-> :mod:`.sam_checkpoint` and :mod:`.checkpoint` (files, read through :mod:`.safetensors_io`).
"""

from .build import BACKBONE_BUILDERS, build_segmentor_parts
from .checkpoint import (
    count_parameters,
    load_adapter,
    load_sam_checkpoint,
    load_segmentor,
    read_adapter_config,
    save_adapter,
)
from .config import ModelConfig
from .errors import CheckpointError, ModelConfigError, SamCheckpointError
from .presets import PRESETS
from .sam_checkpoint import sam_state_dict
from .segmentor import MoELoRASegmentor, build_segmentor

__all__ = [
    "BACKBONE_BUILDERS",
    "PRESETS",
    "CheckpointError",
    "MoELoRASegmentor",
    "ModelConfig",
    "ModelConfigError",
    "SamCheckpointError",
    "build_segmentor",
    "build_segmentor_parts",
    "count_parameters",
    "load_adapter",
    "load_sam_checkpoint",
    "load_segmentor",
    "read_adapter_config",
    "sam_state_dict",
    "save_adapter",
]

"""The MoE-LoRA SAM model (pure PyTorch; no ROS imports).

Public API::

    from sam_moelora_ros.model import (
        ModelConfig, MoELoRASegmentor, load_sam_checkpoint, save_adapter, load_adapter,
        load_segmentor, read_adapter_config, count_parameters,
    )
"""

from .checkpoint import (
    count_parameters,
    load_adapter,
    load_sam_checkpoint,
    load_segmentor,
    read_adapter_config,
    save_adapter,
)
from .config import PRESETS, ModelConfig
from .errors import CheckpointError, ModelConfigError
from .segmentor import MoELoRASegmentor

__all__ = [
    "PRESETS",
    "CheckpointError",
    "MoELoRASegmentor",
    "ModelConfig",
    "ModelConfigError",
    "count_parameters",
    "load_adapter",
    "load_sam_checkpoint",
    "load_segmentor",
    "read_adapter_config",
    "save_adapter",
]

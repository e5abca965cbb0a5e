"""The node's parameters: the table (:mod:`.specs`), the typed config (:mod:`.config`), palettes.

Pure Python (no rclpy): the node declares the table, replay and tests build configs from it.
"""

from sam_moelora_ros.params.check import check_value
from sam_moelora_ros.params.config import (
    NodeConfig,
    SensorConfig,
    build_config,
    check_model_modalities,
)
from sam_moelora_ros.params.palette import load_palette
from sam_moelora_ros.params.specs import PARAMETERS, SPECS, ParameterError, ParamSpec

__all__ = [
    "PARAMETERS",
    "SPECS",
    "NodeConfig",
    "ParamSpec",
    "ParameterError",
    "SensorConfig",
    "build_config",
    "check_model_modalities",
    "check_value",
    "load_palette",
]

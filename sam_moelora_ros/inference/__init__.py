"""Model inference for the node and replay: numpy in, labels out (:mod:`.segmenter`).

:mod:`.device` resolves devices, dtypes and ``torch.compile`` modes and stages uploads;
:func:`build_segmenter` (:mod:`.factory`) picks the backend: torch, or ONNX Runtime on an exported
model (:mod:`.onnx_backend`).
"""

from sam_moelora_ros.inference.device import SegmenterError, resolve_device
from sam_moelora_ros.inference.factory import BACKENDS, build_segmenter
from sam_moelora_ros.inference.segmenter import Segmentation, Segmenter, default_adapter_path

__all__ = [
    "BACKENDS",
    "Segmentation",
    "Segmenter",
    "SegmenterError",
    "build_segmenter",
    "default_adapter_path",
    "resolve_device",
]

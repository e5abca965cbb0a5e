"""Model inference for the node and replay: numpy in, labels out (:mod:`.segmenter`).

:mod:`.device` resolves devices, dtypes and ``torch.compile`` modes and stages uploads.
"""

from sam_moelora_ros.inference.device import SegmenterError, resolve_device
from sam_moelora_ros.inference.segmenter import Segmentation, Segmenter, default_adapter_path

__all__ = ["Segmentation", "Segmenter", "SegmenterError", "default_adapter_path", "resolve_device"]

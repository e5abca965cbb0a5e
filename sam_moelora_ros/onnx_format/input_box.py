"""The image an exported model's encoder graphs take: a square, or one camera's content box.

ONNX graphs here have fixed image shapes (only the batch is dynamic), so a content-only model
(``input_geometry: content``) is exported for one camera: its encoders take the content box the
torch Segmenter feeds that camera's frames (``letterbox_params`` with the content multiple).
The manifest records the box (``info.input_hw``); the ONNX backend refuses frames of another
box rather than squashing them.
"""

from __future__ import annotations

from typing import Any

from sam_moelora_ros.model.preprocess import content_multiple, letterbox_params

from .errors import ExportError


def export_input_hw(cfg: Any, camera_hw: tuple[int, int] | None) -> tuple[int, int]:
    """``(H, W)`` of the image the exported encoders take.

    A letterboxing model takes its ``S x S`` square whatever the camera. A content-only model
    (``input_geometry: content``) sees a frame's content box, whose shape depends on the
    camera's aspect ratio, and an ONNX graph's is fixed: it is traced for one camera's box
    (``camera_hw``), as the torch Segmenter would feed that camera's frames. Squashing or
    padding other frames into a square instead costs such a model most of its accuracy (the
    v2 default model: 39 mIoU on its content, 16 letterboxed).
    """
    size = int(cfg.image_size)
    if getattr(cfg, "input_geometry", "letterbox") != "content":
        return (size, size)
    if camera_hw is None:
        raise ExportError(
            f"this model sees only the image content (input_geometry: content), so its graphs "
            f"are traced for one camera's frame size: pass it, e.g. --camera-hw 480x640 "
            f"(height x width; a {size} px box is computed from it)"
        )
    multiple = content_multiple("content", int(cfg.patch_size))
    return letterbox_params(int(camera_hw[0]), int(camera_hw[1]), size, multiple).padded_hw

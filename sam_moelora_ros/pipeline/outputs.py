"""Network outputs -> ROS messages: palette colouring, the label/colour/confidence Images, the
lossless PNG labels, the labels' CameraInfo and the class table. No rclpy.

Shared by the node (which publishes them) and replay (which writes the same pictures to disk), so
a colour overlay looks the same wherever it is produced.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from sam_moelora_ros.pipeline.decode import Camera
from sam_moelora_ros.pipeline.labelled_cloud import scale_camera
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.messages import build_message


def colorize(
    labels: np.ndarray, palette: np.ndarray, rgb: np.ndarray | None, alpha: float
) -> np.ndarray:
    """Class ids -> ``H x W x 3`` uint8 palette image, blended over ``rgb`` with ``alpha``.

    Ids outside the palette (never produced by the model, but cheap to guard) become black.
    The blend is ``round(alpha * colour + (1 - alpha) * rgb)`` in float32, evaluated once per
    (colour, rgb) byte pair into a 256 x 256 table and then looked up per pixel: the same bytes
    as the per-pixel arithmetic, 1.7 instead of 10 ms at 640x480 (it runs on the inference
    worker for every frame).
    """
    table = np.concatenate([palette, np.zeros((1, 3), dtype=np.uint8)])
    color = np.take(table, labels, axis=0, mode="clip")  # ids past the palette: the black row
    if rgb is None or alpha >= 1.0 or rgb.shape[:2] != labels.shape:
        return color
    pair = color.astype(np.uint16)
    pair <<= 8
    pair |= rgb[..., :3]
    return np.take(_blend_table(float(alpha)), pair)


@functools.lru_cache(maxsize=8)
def _blend_table(alpha: float) -> np.ndarray:
    """``table[c * 256 + r] = round(alpha * c + (1 - alpha) * r)`` (float32, clipped) as uint8."""
    byte = np.arange(256, dtype=np.float32)
    blended = alpha * byte[:, None] + (1.0 - alpha) * byte[None, :]
    table = np.clip(np.rint(blended), 0, 255).astype(np.uint8).reshape(-1)
    table.setflags(write=False)  # cached and shared between calls
    return table


def encode_outputs(
    labels: np.ndarray,
    header: Any,
    msg_type: type,
    *,
    color: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    include_labels: bool = True,
) -> dict[str, Any]:
    """The output Images: ``labels`` (mono8 / 16UC1), ``labels_color`` (rgb8), ``confidence``.

    ``include_labels=False`` encodes only the optional outputs (the node publishes the labels
    first, before it spends time on the colour blend).
    """
    out = {}
    if include_labels:
        encoding = "mono8" if labels.dtype == np.uint8 else "16UC1"
        out["labels"] = numpy_to_image(labels, encoding, msg_type=msg_type, header=header)
    if color is not None:
        out["labels_color"] = numpy_to_image(color, "rgb8", msg_type=msg_type, header=header)
    if confidence is not None:
        out["confidence"] = numpy_to_image(
            confidence.astype(np.float32, copy=False), "32FC1", msg_type=msg_type, header=header
        )
    return out


LABELS_THRESHOLD = 0.0
"""LabelInfo's ``threshold``: every pixel gets its most probable class (no confidence cut-off;
``~/confidence`` says how sure each pixel is)."""


def class_table(class_names: Sequence[str]) -> list[tuple[int, str]]:
    """``(class_id, class_name)`` per class: the id is the value in the label image."""
    return [(index, str(name)) for index, name in enumerate(class_names)]


def png_format(encoding: str) -> str:
    """image_transport's ``compressed`` format of a one-channel PNG: ``"mono8; png compressed "``
    (compressed_image_transport names a target encoding only for colour images)."""
    return f"{encoding}; png compressed "


def compressed_labels(labels: np.ndarray, header: Any, msg_type: Any = None) -> Any:
    """The label image as a lossless PNG ``CompressedImage`` (mono8, or 16UC1 past 256 classes)
    that image_transport's ``compressed`` subscriber (and ``sensors.compressed``) decodes."""
    encoding = "mono8" if labels.dtype == np.uint8 else "16UC1"
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(labels), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {labels.shape} {labels.dtype} label image")
    return build_message(msg_type, header, {"format": png_format(encoding)}, buf.reshape(-1))


CAMERA_INFO_FIELDS = ("distortion_model", "d", "r", "binning_x", "binning_y", "roi")
"""CameraInfo fields copied unchanged (header, size, ``k`` and ``p`` are set)."""


def label_camera_info(info: Any, header: Any, size_hw: tuple[int, int], msg_type: Any) -> Any:
    """The camera's CameraInfo for a label image: its ``header``, and ``k`` / ``p`` / size
    scaled when the label image's ``size_hw`` is not the camera's (``scale_camera``'s pixel-centre
    rule), so the labels can be back-projected. ``msg_type`` None: a plain namespace.
    """
    h, w = int(size_hw[0]), int(size_hw[1])
    k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    p = np.asarray(info.p, dtype=np.float64).reshape(3, 4).copy()
    if (h, w) != (int(info.height), int(info.width)):
        camera = Camera(int(info.height), int(info.width), k, None, "")
        k_new = scale_camera(camera, (h, w)).K
        p[:, :3] = scale_camera(Camera(camera.height, camera.width, p[:, :3], None, ""), (h, w)).K
        p[0, 3] *= w / camera.width  # Tx = -fx' B scales with fx
        p[1, 3] *= h / camera.height
        k = k_new
    values = {name: getattr(info, name) for name in CAMERA_INFO_FIELDS}
    values.update(height=h, width=w, k=[float(v) for v in k.reshape(-1)])
    values["p"] = [float(v) for v in p.reshape(-1)]
    if msg_type is None:
        return SimpleNamespace(header=header, **values)
    msg = msg_type()
    for name, value in values.items():
        setattr(msg, name, value)
    msg.header.stamp.sec = int(header.stamp.sec)
    msg.header.stamp.nanosec = int(header.stamp.nanosec)
    msg.header.frame_id = str(header.frame_id)
    return msg

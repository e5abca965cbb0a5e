"""A frame's LiDAR cloud with each point's label and confidence (``~/lidar/labelled``). No rclpy.

Why: users who want semantic LiDAR (fusion, semantic mapping) would otherwise redo the node's
projection of every point into the camera. The node already has the cloud, the camera model and
the extrinsic it projected the cloud with, and the label and confidence images; this module
reads the two images back at each point's pixel.

Why the cloud travels with its decoded image (:class:`CloudDecoded`): the synchroniser holds
decoded messages, and the labels are produced on the inference worker later, possibly after
camera_info or the tf lookup changed. So the decoder attaches the cloud with the camera and the
``T_cam_from_lidar`` it was projected with (:class:`LidarSource`), and the labelled cloud is
computed from exactly those; with them come the pixels the decode found every point at
(``decode.LidarHits``), so the cloud is projected once per frame, not twice.

The points are the cloud's real returns (``sensors.lidar.lidar_returns``) that project into the
image, every one of them: where several points share a pixel (an occluded point behind a nearer
one), all get that pixel's label. The cloud keeps its frame, stamp and every field (offsets,
types, byte order as they were); ``label`` (uint8, uint16 for a model of more than 256 classes)
and ``confidence`` (float32) are appended after them. A field already named ``label`` or
``confidence`` is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from sam_moelora_ros.pipeline.decode import Camera, Decoded, LidarHits
from sam_moelora_ros.sensors.lidar import (
    DATATYPES,
    FLOAT32,
    UINT8,
    UINT16,
    create_cloud,
    dtype_from_fields,
    lidar_returns,
    read_points,
)
from sam_moelora_ros.sensors.projection import project_pixels

__all__ = ["CloudDecoded", "LidarSource", "label_cloud", "scale_camera"]

ADDED_FIELDS = ("label", "confidence")


@dataclass(frozen=True)
class LidarSource:
    """What a LiDAR image was made from: the cloud message, the camera and T_cam_from_lidar,
    and where the decode found the cloud's points in that camera (``hits``: None, projected
    again when needed)."""

    cloud: Any
    camera: Camera
    T_cam_from_lidar: np.ndarray
    hits: LidarHits | None = None


@dataclass(frozen=True)
class CloudDecoded(Decoded):
    """A decoded LiDAR cloud that keeps its :class:`LidarSource` (for ``~/lidar/labelled``)."""

    source: LidarSource | None = None


def scale_camera(camera: Camera, size_hw: tuple[int, int]) -> Camera:
    """``camera`` for an image of ``size_hw`` showing the same view (a resized image).

    Pixel centres stay on the same rays: ``f' = s f`` and ``c' = s (c + 0.5) - 0.5`` per axis
    (the centre of pixel ``i`` is at coordinate ``i``, as ``sensors.projection`` has it), which
    is where OpenCV's resize puts them. Distortion acts on normalised coordinates: unchanged.
    """
    h, w = int(size_hw[0]), int(size_hw[1])
    if (h, w) == (camera.height, camera.width):
        return camera
    sx, sy = w / camera.width, h / camera.height
    K = np.array(camera.K, dtype=np.float64).reshape(3, 3).copy()
    K[0, 0] *= sx
    K[0, 1] *= sx
    K[0, 2] = sx * (K[0, 2] + 0.5) - 0.5
    K[1, 1] *= sy
    K[1, 2] = sy * (K[1, 2] + 0.5) - 0.5
    return Camera(h, w, K, camera.D, camera.frame_id, camera.distortion_model)


def _added_fields(fields: list[Any], point_step: int, label_type: int) -> tuple[list[Any], int]:
    """The cloud's fields (``label``/``confidence`` dropped) plus the two new ones; point_step."""
    kept = [
        SimpleNamespace(
            name=str(f.name), offset=int(f.offset), datatype=int(f.datatype), count=int(f.count)
        )
        for f in fields
        if str(f.name) not in ADDED_FIELDS
    ]
    label_at = point_step
    confidence_at = -(-(label_at + DATATYPES[label_type].itemsize) // 4) * 4  # 4-byte aligned
    kept.append(SimpleNamespace(name="label", offset=label_at, datatype=label_type, count=1))
    kept.append(SimpleNamespace(name="confidence", offset=confidence_at, datatype=FLOAT32, count=1))
    return kept, confidence_at + 4


def _project_cloud(
    cloud: Any, camera: Camera, T_cam_from_lidar: np.ndarray, size_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(pixel, cloud index) of every return of ``cloud`` that lands in an image of ``size_hw``."""
    view = scale_camera(camera, size_hw)
    xyz, grid = lidar_returns(cloud, ("x", "y", "z"))
    pixel, point = project_pixels(
        xyz,
        view.K,
        T_cam_from_lidar,
        size_hw,
        D=view.D,
        distortion_model=view.distortion_model or None,
    )
    return pixel, grid[point]


def label_cloud(
    cloud: Any,
    camera: Camera,
    T_cam_from_lidar: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray,
    msg_type: Any = None,
    *,
    typestore: Any = None,
    hits: LidarHits | None = None,
) -> Any:
    """The points of ``cloud`` that project into the label image, with ``label`` and
    ``confidence`` read at each point's pixel; a PointCloud2 of ``msg_type``'s flavour (None:
    plain namespaces) with the cloud's header, unorganised (height 1).

    ``labels`` / ``confidence``: ``H x W`` images of the camera's view; when their size is not
    the camera's, the camera is scaled to it (:func:`scale_camera`). ``hits``: the decode's
    projection of this cloud with this camera and transform (``decode.LidarHits``), used when it
    is at the images' size instead of projecting the cloud again. Raises ValueError for a cloud
    without x, y, z or images of different sizes.
    """
    labels = np.asarray(labels)
    confidence = np.asarray(confidence, dtype=np.float32)
    if labels.ndim != 2 or labels.shape != confidence.shape:
        raise ValueError(
            f"label image {labels.shape} and confidence image {confidence.shape} must be the "
            "same H x W"
        )
    if hits is not None and hits.size_hw == labels.shape:
        pixel, cloud_index = hits.pixel, hits.cloud_index
    else:
        pixel, cloud_index = _project_cloud(cloud, camera, T_cam_from_lidar, labels.shape)
    label_type = UINT8 if labels.dtype == np.uint8 else UINT16
    fields, point_step = _added_fields(list(cloud.fields), int(cloud.point_step), label_type)
    points = read_points(cloud, reshape_organized=False)[cloud_index]
    out = np.zeros(points.shape[0], dtype=dtype_from_fields(fields, point_step))
    for name in out.dtype.names or ():
        if name not in ADDED_FIELDS:
            out[name] = points[name]
    out["label"] = labels.reshape(-1)[pixel]
    out["confidence"] = confidence.reshape(-1)[pixel]
    return create_cloud(
        cloud.header,
        fields,
        out,
        msg_type,
        typestore=typestore,
        point_step=point_step,
        is_bigendian=bool(cloud.is_bigendian),
    )

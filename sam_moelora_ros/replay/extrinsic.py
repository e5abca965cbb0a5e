"""The LiDAR->camera extrinsic of a bag: composed along its ``/tf_static`` chain. No rclpy.

Why: robots publish calibration as a tree of static transforms (``base_link -> os_sensor ->
os_lidar``, ``base_link -> camera_link -> camera_color_optical_frame``), one TFMessage per
static broadcaster. Replay reads every ``/tf_static`` message of the bag into a
:class:`~sam_moelora_ros.sensors.tf_chain.TransformTree` and looks up ``T_cam_from_lidar``
between the frame of the first LiDAR cloud (``header.frame_id``) and the camera's frame (the
first CameraInfo's, else the first RGB image's). The chain used is reported once (metrics.json
and a log line).

Rules: the ``lidar.extrinsic`` parameter given explicitly (``--param lidar.extrinsic=...``)
wins; else a bag with ``/tf_static`` must connect the two frames, or replay stops with the
reason (a bad link, e.g. a zero quaternion, is rejected as tf2 rejects it, and named);
a bag without ``/tf_static`` uses the parameter's value (identity by default).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.sensors.tf_chain import TfError, TransformTree

__all__ = ["Extrinsic", "ExtrinsicError", "bag_extrinsic", "find_extrinsic"]

_log = logging.getLogger(__name__)


class ExtrinsicError(SamMoeLoraError, ValueError):
    """The bag's /tf_static cannot give the LiDAR->camera extrinsic (the text says why)."""


@dataclass(frozen=True)
class Extrinsic:
    """``T_cam_from_lidar`` and where it came from."""

    matrix: np.ndarray
    source: str
    """``tf_static``, ``parameter`` or ``identity`` (cloud and camera share a frame)."""
    chain: tuple[str, ...] = ()
    camera_frame: str = ""
    lidar_frame: str = ""
    rejected_links: tuple[str, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        """JSON-ready: what metrics.json records under ``extrinsic``."""
        return {
            "source": self.source,
            "chain": list(self.chain),
            "lidar_frame": self.lidar_frame,
            "camera_frame": self.camera_frame,
            "T_cam_from_lidar": np.round(self.matrix, 9).tolist(),
            "rejected_links": list(self.rejected_links),
        }

    def log_line(self) -> str:
        if self.source == "tf_static":
            return (
                f"LiDAR->camera extrinsic from /tf_static: {' -> '.join(self.chain)} "
                f"(cloud frame {self.lidar_frame!r} into camera frame {self.camera_frame!r})"
            )
        if self.source == "identity":
            return f"LiDAR and camera share the frame {self.camera_frame!r}: identity extrinsic"
        return "LiDAR->camera extrinsic from the lidar.extrinsic parameter"


def _first_messages(reader: Any, topics: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for rec in reader.messages(topics, order="log"):
        if rec.msg is not None and rec.topic not in found:
            found[rec.topic] = rec.msg
        if len(found) == len(topics):
            break
    return found


def find_extrinsic(
    reader: Any,
    topics: Mapping[str, str],
    parameter: np.ndarray,
    *,
    explicit_parameter: bool = False,
) -> Extrinsic:
    """The extrinsic replay uses (see the module docstring); raises :class:`ExtrinsicError`."""
    if explicit_parameter:
        return Extrinsic(np.asarray(parameter, dtype=np.float64), "parameter")
    tf_topic = topics["tf_static"]
    lidar_topic = topics["lidar"]
    if tf_topic not in reader.topics or lidar_topic not in reader.topics:
        return Extrinsic(np.asarray(parameter, dtype=np.float64), "parameter")
    camera_topics = [t for t in (topics["camera_info"], topics["rgb"]) if t in reader.topics]
    first = _first_messages(reader, [lidar_topic, *camera_topics])
    if lidar_topic not in first or not any(t in first for t in camera_topics):
        return Extrinsic(np.asarray(parameter, dtype=np.float64), "parameter")
    lidar_frame = str(first[lidar_topic].header.frame_id).lstrip("/")
    camera_msg = next(first[t] for t in camera_topics if t in first)
    camera_frame = str(camera_msg.header.frame_id).lstrip("/")
    if lidar_frame == camera_frame:
        return Extrinsic(np.eye(4), "identity", (camera_frame,), camera_frame, lidar_frame)
    tree, rejected = TransformTree(), []
    for rec in reader.messages([tf_topic], order="log"):
        for transform in getattr(rec.msg, "transforms", None) or ():
            try:
                tree.add(transform)
            except TfError as exc:  # tf2 rejects the link and keeps the others
                rejected.append(str(exc))
    for reason in rejected:
        _log.warning("/tf_static link rejected: %s", reason)
    try:
        matrix, chain = tree.lookup(camera_frame, lidar_frame)
    except TfError as exc:
        why = f"; rejected links: {' | '.join(rejected)}" if rejected else ""
        raise ExtrinsicError(
            f"cannot compose the LiDAR->camera extrinsic from the bag's {tf_topic}: {exc}{why}; "
            "fix the transforms or pass --param 'lidar.extrinsic=[x, y, z, qx, qy, qz, qw]' "
            "(T_cam_from_lidar)"
        ) from exc
    return Extrinsic(matrix, "tf_static", tuple(chain), camera_frame, lidar_frame, tuple(rejected))


def bag_extrinsic(reader: Any, topics: Mapping[str, str], default: np.ndarray) -> np.ndarray:
    """``T_cam_from_lidar`` as :func:`find_extrinsic` finds it (``default`` without
    ``/tf_static``); raises :class:`ExtrinsicError` when the bag's transforms do not connect."""
    return find_extrinsic(reader, topics, default).matrix

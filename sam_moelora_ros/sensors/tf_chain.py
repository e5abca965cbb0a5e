"""Extrinsics from ``/tf_static``: compose TransformStamped links between any two frames.

Why: real robots publish their calibration as a tree of static transforms (``base_link ->
os_sensor -> os_lidar``, ``base_link -> camera_link -> camera_color_optical_frame``); the
LiDAR-to-camera extrinsic is the composition along the path between the two frames, through
their common ancestor. This module does that without tf2 (the pure core has no rclpy).

Conventions (tf2 / REP 105): a TransformStamped with ``header.frame_id`` parent and
``child_frame_id`` child holds the child's pose in the parent, i.e. ``T_parent_from_child``
(it maps child coordinates into the parent frame). ``lookup(target, source)`` returns
``T_target_from_source`` like ``tf2 lookupTransform(target, source)``, plus the chain of frames
used, so callers can log which links made an extrinsic.

As tf2's ``setTransform``: a leading ``/`` is stripped from frame ids, a link's newer message
replaces the older one, a quaternion must be normalised within ``|q.q - 1| < 0.01`` (then it
is renormalised) and a zero quaternion is an error, not the identity. Errors are
:class:`TfError` (a ValueError) naming the frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sam_moelora_ros.errors import SamMoeLoraError

from .extrinsics import extrinsic_matrix

__all__ = ["TfError", "TransformTree"]

QUATERNION_TOLERANCE = 1e-2
"""tf2's QUATERNION_NORMALIZATION_TOLERANCE on ``|q.q - 1|``."""


class TfError(SamMoeLoraError, ValueError):
    """A transform that cannot be used, or no chain between two frames."""


def _frame(name: Any, role: str) -> str:
    frame = str(name).lstrip("/")
    if not frame:
        raise TfError(f"transform has an empty {role} frame id")
    return frame


class TransformTree:
    """Static transforms by child frame; look up the composed transform between two frames."""

    def __init__(self, transforms: Iterable[Any] = ()) -> None:
        self._parent: dict[str, str] = {}
        self._matrix: dict[str, np.ndarray] = {}  # child -> T_parent_from_child
        for transform in transforms:
            self.add(transform)

    @classmethod
    def from_messages(cls, messages: Iterable[Any]) -> TransformTree:
        """A tree from ``tf2_msgs/TFMessage``-like messages (each with ``.transforms``)."""
        tree = cls()
        for msg in messages:
            tree.add_message(msg)
        return tree

    def add_message(self, msg: Any) -> None:
        """Add every TransformStamped of a ``TFMessage``-like message."""
        for transform in msg.transforms:
            self.add(transform)

    def add(self, transform: Any) -> None:
        """Add (or replace) one TransformStamped-like link ``header.frame_id -> child``."""
        parent = _frame(transform.header.frame_id, "parent (header.frame_id)")
        child = _frame(transform.child_frame_id, "child (child_frame_id)")
        link = f"{parent} -> {child}"
        if parent == child:
            raise TfError(f"transform {link} links a frame to itself")
        t, q = transform.transform.translation, transform.transform.rotation
        values = np.array([t.x, t.y, t.z, q.x, q.y, q.z, q.w], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise TfError(f"transform {link} holds non-finite numbers: {values.tolist()}")
        norm2 = float(values[3:] @ values[3:])
        if norm2 == 0.0:
            raise TfError(
                f"transform {link} has a zero quaternion: that is no rotation at all (the "
                "identity is x y z w = 0 0 0 1); fix the publisher's calibration"
            )
        if abs(norm2 - 1.0) >= QUATERNION_TOLERANCE:
            raise TfError(
                f"transform {link} has an unnormalised quaternion (|q|^2 = {norm2:.4f}); tf2 "
                f"rejects |q.q - 1| >= {QUATERNION_TOLERANCE}"
            )
        # Reject a link that would close a loop (the tree would have no root).
        ancestor: str | None = parent
        while ancestor is not None:
            if ancestor == child:
                raise TfError(f"transform {link} would make a loop: {child} is above {parent}")
            ancestor = self._parent.get(ancestor)
        self._parent[child] = parent
        self._matrix[child] = extrinsic_matrix(values)

    @property
    def frames(self) -> list[str]:
        """Every frame named by a link, sorted."""
        return sorted(set(self._parent) | set(self._parent.values()))

    def _up(self, frame: str) -> tuple[list[str], list[np.ndarray]]:
        """Frames from ``frame`` up to its root, and the matrices ``T_frame_i+1_from_frame_i``."""
        path, mats = [frame], []
        while path[-1] in self._parent:
            mats.append(self._matrix[path[-1]])
            path.append(self._parent[path[-1]])
        return path, mats

    def lookup(self, target: str, source: str) -> tuple[np.ndarray, list[str]]:
        """``(T_target_from_source 4x4 float64, [source, ..., common ancestor, ..., target])``.

        Raises TfError naming the known frames when a frame is missing, and the two roots when
        the frames are in separate trees.
        """
        target, source = _frame(target, "target"), _frame(source, "source")
        known = self.frames
        for frame in (target, source):
            if frame not in known:
                raise TfError(
                    f"frame {frame!r} is not in /tf_static; known frames: {known or 'none'}"
                )
        if target == source:
            return np.eye(4), [source]
        up_s, mats_s = self._up(source)
        up_t, mats_t = self._up(target)
        on_target = {f: i for i, f in enumerate(up_t)}
        common = next((i for i, f in enumerate(up_s) if f in on_target), None)
        if common is None:
            raise TfError(
                f"no chain between {source!r} (tree rooted at {up_s[-1]!r}) and {target!r} "
                f"(rooted at {up_t[-1]!r}): a link between the two trees is missing; known "
                f"frames: {known}"
            )
        j = on_target[up_s[common]]
        root_from_source = np.eye(4)
        for m in mats_s[:common]:
            root_from_source = m @ root_from_source
        root_from_target = np.eye(4)
        for m in mats_t[:j]:
            root_from_target = m @ root_from_target
        chain = up_s[: common + 1] + up_t[:j][::-1]
        return _rigid_inverse(root_from_target) @ root_from_source, chain


def _rigid_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 (R^T, -R^T t): exact where a general inverse rounds."""
    out = np.eye(4)
    out[:3, :3] = m[:3, :3].T
    out[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return out

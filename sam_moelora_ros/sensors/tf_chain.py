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
is renormalised) and a zero quaternion is an error, not the identity. Beyond tf2: a translation
longer than :data:`MAX_TRANSLATION_M` is refused (a calibration is never that far; 1e30 is a
corrupt message), and a link that would close a loop is refused in near-constant time (a
union-find over the trees; only a link that moves a frame to another parent rebuilds it), so a
100000-link chain loads in linear time. Errors are :class:`TfError` (a ValueError) naming the
frames.
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


MAX_TRANSLATION_M = 1e7
"""Longest translation a link may hold (metres): beyond any robot, below UTM coordinates."""


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
        self._known: set[str] = set()
        self._group: dict[str, str] = {}  # union-find: frame -> a frame of the same tree
        for transform in transforms:
            self.add(transform)

    def _find(self, frame: str) -> str:
        """The representative of ``frame``'s tree (path halving: near-constant amortised)."""
        group = self._group
        group.setdefault(frame, frame)
        while group[frame] != frame:
            group[frame] = group[group[frame]]
            frame = group[frame]
        return frame

    def _regroup(self) -> None:
        """Rebuild the union-find from the links (after a frame moved to another parent)."""
        self._group = {}
        for child, parent in self._parent.items():
            self._group[self._find(child)] = self._find(parent)

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
        length = float(np.linalg.norm(values[:3]))
        if length > MAX_TRANSLATION_M:
            raise TfError(
                f"transform {link} has a translation of {length:.3g} m, beyond "
                f"{MAX_TRANSLATION_M:.0g} m: the message is corrupt"
            )
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
        # Reject a link that would close a loop (the tree would have no root). Without its
        # current link, ``child`` is the root of its subtree, so ``parent`` is below it exactly
        # when the two are in one tree.
        previous = self._parent.get(child)
        if previous != parent:
            if previous is not None:  # a move: the old link goes first
                del self._parent[child]
                self._regroup()
            if self._find(child) == self._find(parent):
                if previous is not None:
                    self._parent[child] = previous
                    self._regroup()
                raise TfError(f"transform {link} would make a loop: {child} is above {parent}")
            self._group[self._find(child)] = self._find(parent)
        self._parent[child] = parent
        self._known.update((parent, child))
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
        for frame in (target, source):
            if frame not in self._known:
                raise TfError(
                    f"frame {frame!r} is not in /tf_static; known frames: "
                    f"{_listing(self.frames) or 'none'}"
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
                f"frames: {_listing(self.frames)}"
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


def _listing(frames: list[str], most: int = 20) -> str:
    """At most ``most`` frame names for an error message (a tree may hold thousands)."""
    if len(frames) <= most:
        return str(frames) if frames else ""
    return f"{frames[:most]} ... ({len(frames)} in all)"


def _rigid_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 (R^T, -R^T t): exact where a general inverse rounds."""
    out = np.eye(4)
    out[:3, :3] = m[:3, :3].T
    out[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return out

"""``lidar.use_tf``: T_cam_from_lidar from the robot's transforms, with or without tf2_ros.

Three ways, picked at start-up by :func:`make_tf_source`:

- tf2_ros importable (a ROS install): its Buffer and TransformListener (/tf and /tf_static);
- else tf2_msgs importable: the node subscribes to ``/tf_static`` (reliable, transient local,
  as tf2's static broadcaster publishes) and composes the chain with
  :class:`~sam_moelora_ros.sensors.tf_chain.TransformTree` (:class:`StaticTransforms`);
- else: :class:`TfUnavailable`, a start-up error saying what to install or set. (tf2_msgs has
  no PyPI wheel, so the development machines, which have the ROS core from PyPI wheels, take
  this branch; a ROS install always has tf2_msgs.)

Each source's :meth:`lookup` returns ``(T_target_from_source, chain of frames)`` so the node can
log which links made its extrinsic. A zero quaternion is an error, not the identity.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.safe_yaml import load_yaml
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix
from sam_moelora_ros.sensors.tf_chain import TfError, TransformTree

TF_STATIC_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""tf2_ros' StaticListenerQoS: late joiners still get every static broadcaster's message."""


class TfUnavailable(SamMoeLoraError, RuntimeError):
    """Neither tf2_ros nor tf2_msgs is importable; the text says what to do."""


class TfSource(Protocol):
    """Where ``lidar.use_tf`` looks transforms up."""

    name: str

    def lookup(self, target: str, source: str) -> tuple[np.ndarray, list[str]]:
        """``(T_target_from_source, [source, ..., target])``; raises on failure."""


class StaticTransforms:
    """``tf2_msgs/TFMessage``s in, composed transforms out. No rclpy.

    One bad link (zero or unnormalised quaternion, a loop) is kept out and remembered in
    :attr:`rejected`, so a lookup that needs it says why it failed; the other links are used.
    """

    name = "/tf_static"

    def __init__(self) -> None:
        self.tree = TransformTree()
        self.rejected: dict[str, str] = {}

    def add_message(self, msg: Any) -> list[str]:
        """Add every TransformStamped of ``msg``; return the errors of the links rejected."""
        errors = []
        for transform in msg.transforms:
            link = f"{transform.header.frame_id} -> {transform.child_frame_id}"
            try:
                self.tree.add(transform)
            except TfError as exc:
                self.rejected[link] = str(exc)
                errors.append(str(exc))
            else:
                self.rejected.pop(link, None)
        return errors

    def lookup(self, target: str, source: str) -> tuple[np.ndarray, list[str]]:
        try:
            return self.tree.lookup(target, source)
        except TfError as exc:
            if self.rejected:
                raise TfError(f"{exc}; rejected links: {list(self.rejected.values())}") from exc
            raise


class _StaticListener(StaticTransforms):
    """:class:`StaticTransforms` fed by a ``/tf_static`` subscription of ``node``."""

    def __init__(self, node: Node, tf_message: type) -> None:
        super().__init__()
        self._node = node
        self._sub = node.create_subscription(tf_message, "/tf_static", self._on_msg, TF_STATIC_QOS)

    def _on_msg(self, msg: Any) -> None:
        for error in self.add_message(msg):
            self._node.get_logger().error(f"/tf_static: {error}")


class _Tf2Ros:
    """tf2_ros' Buffer + TransformListener; the chain is read from the buffer's frame tree."""

    name = "tf2_ros"

    def __init__(self, node: Node, tf2_ros: Any) -> None:
        self.buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self.buffer, node)

    def lookup(self, target: str, source: str) -> tuple[np.ndarray, list[str]]:
        import rclpy.time

        tf = self.buffer.lookup_transform(target, source, rclpy.time.Time()).transform
        t, q = tf.translation, tf.rotation
        matrix = extrinsic_matrix([t.x, t.y, t.z, q.x, q.y, q.z, q.w])
        parents = {
            frame: str(info.get("parent", ""))
            for frame, info in (load_yaml(self.buffer.all_frames_as_yaml()) or {}).items()
        }
        return matrix, frame_chain(parents, target, source)


def frame_chain(parents: dict[str, str], target: str, source: str) -> list[str]:
    """``[source, ..., common ancestor, ..., target]`` in a child -> parent map."""
    up_source, up_target = [source], [target]
    while up_source[-1] in parents and parents[up_source[-1]] not in up_source:
        up_source.append(parents[up_source[-1]])
    while up_target[-1] in parents and parents[up_target[-1]] not in up_target:
        up_target.append(parents[up_target[-1]])
    common = next((f for f in up_source if f in up_target), None)
    if common is None:
        return [source, target]
    return up_source[: up_source.index(common) + 1] + up_target[: up_target.index(common)][::-1]


def make_tf_source(node: Node) -> TfSource:
    """tf2_ros when importable, else a ``/tf_static`` listener (tf2_msgs), else TfUnavailable."""
    try:
        tf2_ros = importlib.import_module("tf2_ros")
    except ImportError:
        pass
    else:
        return _Tf2Ros(node, tf2_ros)
    try:
        tf_message = importlib.import_module("tf2_msgs.msg").TFMessage
    except ImportError as exc:
        raise TfUnavailable(
            "parameter 'lidar.use_tf' = True: neither tf2_ros nor tf2_msgs is importable here "
            "(a ROS install has both: sudo apt install ros-$ROS_DISTRO-tf2-ros, then source the "
            "ROS setup); or set lidar.use_tf: false and give lidar.extrinsic"
        ) from exc
    return _StaticListener(node, tf_message)

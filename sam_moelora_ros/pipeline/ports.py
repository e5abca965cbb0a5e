"""What the frame path needs from its host, as one declared interface: the node's or replay's.

Why: one frame goes from a sensor message to published labels through pure code (intake,
synchroniser, admission, worker), and the few things that code cannot know itself -- the time,
the LiDAR extrinsic of a cloud, where released frames go, where the label images go and
whether anyone receives them, whom to tell when a message fails its decode -- used to reach it
as lambdas set in the ROS layer. They are the methods of :class:`FramePort` now: the ROS camera
channel (:class:`~sam_moelora_ros.ros.camera_channel.CameraChannel`) implements it for the
node, and :class:`FrameCollector` for offline replay and tests, so the node and replay run the
same code from message to labels and differ only in their port. No rclpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from sam_moelora_ros.pipeline.admission import DecodeProblem
from sam_moelora_ros.sync.synchronizer import Frame

__all__ = ["FrameCollector", "FramePort"]


class FramePort(Protocol):
    """One camera group's host, as the frame path sees it.

    ``now`` and ``extrinsic`` are called on the thread that feeds the intake (the node's
    executor thread), ``submit`` there too; ``publish`` and ``decode_problems`` on the
    inference worker's thread.
    """

    def now(self) -> float:
        """The receive clock, in seconds (message arrival, synchroniser waits)."""
        ...

    def extrinsic(self, cloud: Any) -> np.ndarray:
        """``T_cam_from_lidar`` (4x4) for this cloud (the node: tf2 or ``lidar.extrinsic``)."""
        ...

    def submit(self, frames: Sequence[Frame]) -> None:
        """Frames the synchroniser released (admitted entries, decoded by the worker)."""
        ...

    def publish(self, key: str, msg: Any) -> None:
        """One output message, ``key`` one of the worker's output keys."""
        ...

    def wants(self, key: str) -> bool:
        """Whether an output message of ``key`` would reach anyone now (the node: its publisher
        has a subscriber). The worker builds no colour, confidence, compressed, camera_info or
        labelled-cloud message nobody wants; ``labels`` is always published."""
        ...

    def decode_problems(self, problems: Sequence[DecodeProblem]) -> None:
        """What a frame's decode found wrong (rejections, events outside the image)."""
        ...


class FrameCollector:
    """A :class:`FramePort` that keeps what the frame path hands out: replay's, and tests'.

    Args:
        extrinsic: the fixed ``T_cam_from_lidar`` (replay: the bag's /tf_static or the
            ``lidar.extrinsic`` parameter).
        now_s: the clock's start value; the host moves it (:attr:`now_s`) as it reads.
        frames: the list submitted frames are appended to (a new one by default).
        unwanted: output keys :meth:`wants` says no to (none by default: replay keeps all).
    """

    def __init__(
        self,
        extrinsic: np.ndarray | None = None,
        now_s: float = 0.0,
        frames: list[Frame] | None = None,
        unwanted: Sequence[str] = (),
    ) -> None:
        self.T = np.eye(4) if extrinsic is None else np.asarray(extrinsic, dtype=np.float64)
        self.now_s = now_s
        self.frames: list[Frame] = [] if frames is None else frames
        self.published: list[tuple[str, Any]] = []
        self.problems: list[DecodeProblem] = []
        self.unwanted = frozenset(unwanted)

    def now(self) -> float:
        return self.now_s

    def extrinsic(self, cloud: Any) -> np.ndarray:
        return self.T

    def submit(self, frames: Sequence[Frame]) -> None:
        self.frames.extend(frames)

    def publish(self, key: str, msg: Any) -> None:
        self.published.append((key, msg))

    def wants(self, key: str) -> bool:
        return key not in self.unwanted

    def decode_problems(self, problems: Sequence[DecodeProblem]) -> None:
        self.problems.extend(problems)

    def take_frames(self) -> list[Frame]:
        """The frames submitted since the last call."""
        frames, self.frames = self.frames, []
        return frames

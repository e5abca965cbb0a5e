"""Test-side helpers: the node as a subprocess, an rclpy harness node, synthetic sensor messages.

The node under test always runs in its own process (as on a robot); the harness publishes and
subscribes from the pytest process in its own rclpy Context on the module's ROS domain.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from sam_moelora_ros.ros import process
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.lidar import create_cloud, make_fields

REPO = Path(__file__).resolve().parents[2]
H, W = 48, 64
"""Camera size used by the tests (tiny, so the 2-core CI machine keeps up)."""
K = (40.0, 0.0, 32.0, 0.0, 40.0, 24.0, 0.0, 0.0, 1.0)

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def tf_link(parent: str, child: str, xyz: tuple[float, ...], q: tuple[float, ...]) -> Any:
    """A geometry_msgs/TransformStamped ``parent -> child`` (translation, quaternion x y z w)."""
    from geometry_msgs.msg import TransformStamped

    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    t, r = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = xyz
    r.x, r.y, r.z, r.w = q
    return msg


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    """Poll ``predicate`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(step)


class NodeProcess(process.NodeProcess):
    """The node under test, started from the repository root with ``--ros-args ros_args``.

    The package's own supervisor (``replay_live`` uses it too); this only fixes the command.
    ``script=True`` starts the ``perception_node`` console script, as users do.
    """

    def __init__(self, ros_args: Sequence[str], env: dict[str, str], script: bool = False) -> None:
        super().__init__(process.node_command(ros_args, script=script), env, cwd=REPO)


@contextlib.contextmanager
def running_node(
    args: Sequence[str], env: dict[str, str], *, script: bool = False
) -> Iterator[NodeProcess]:
    """A node that has logged ``ready``; afterwards Ctrl-C must end it cleanly within 5 s."""
    proc = NodeProcess(args, env, script=script)
    try:
        proc.wait_for_log(r"ready: model", timeout=90)
        yield proc
    finally:
        code, seconds = proc.stop()
    # Ctrl-C ends the node cleanly and quickly, whatever it was doing.
    assert code == 0, proc.output
    assert seconds < 5.0, f"SIGINT took {seconds:.1f} s"


class Harness:
    """A test node with publishers for every sensor and subscriptions to every output."""

    def __init__(
        self,
        domain_id: int,
        node_ns: str = "/sam_moelora_perception",
        cameras: Sequence[str] = (),
    ) -> None:
        """``cameras``: the node's camera groups; their outputs are kept as ``<camera>/<key>``
        (``<node_ns>/<camera>/<key>``), and the plain keys are not subscribed."""
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("test_harness", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._lock = threading.Lock()
        groups = [f"{camera}/" for camera in cameras] or [""]
        self.outputs = [
            f"{g}{key}" for g in groups for key in ("labels", "labels_color", "confidence")
        ]
        """The output keys subscribed (topics ``<node_ns>/<key>``)."""
        self._node_ns = node_ns
        self.received: dict[str, list[Any]] = {key: [] for key in (*self.outputs, "diagnostics")}
        self.arrival: dict[str, list[float]] = {k: [] for k in self.received}
        for key in self.outputs:
            self.node.create_subscription(Image, f"{node_ns}/{key}", self._store(key), RELIABLE)
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self._store("diagnostics"), RELIABLE
        )
        self.pubs: dict[str, Any] = {}
        self._spin = threading.Thread(target=self._spin_loop, daemon=True)
        self._running = True
        self._spin.start()

    def _spin_loop(self) -> None:
        while self._running and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down under us
                break

    def _store(self, key: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            with self._lock:
                self.received[key].append(msg)
                self.arrival[key].append(time.time())
                if len(self.received[key]) > 2000:  # keep memory flat in long tests
                    del self.received[key][:1000], self.arrival[key][:1000]

        return callback

    def subscribe(self, key: str, msg_type: type, topic: str, qos: QoSProfile = RELIABLE) -> None:
        """Keep the messages of ``topic`` under ``key`` too (``messages(key)``)."""
        with self._lock:
            self.received.setdefault(key, [])
            self.arrival.setdefault(key, [])
        self.node.create_subscription(msg_type, topic, self._store(key), qos)

    def publisher(self, name: str, msg_type: type, topic: str, qos: QoSProfile = RELIABLE) -> Any:
        pub = self.node.create_publisher(msg_type, topic, qos)
        self.pubs[name] = pub
        return pub

    def wait_matched(self, timeout: float = 20.0) -> None:
        """Every publisher has a subscriber and every output subscription a publisher."""
        wait_until(
            lambda: all(p.get_subscription_count() > 0 for p in self.pubs.values()),
            timeout,
            "the node to subscribe to every test publisher",
        )
        for key in self.outputs:
            topic = f"{self._node_ns}/{key}"
            wait_until(
                lambda t=topic: self.node.count_publishers(t) > 0,
                timeout,
                f"a publisher of {topic}",
            )

    def messages(self, key: str) -> list[Any]:
        with self._lock:
            return list(self.received[key])

    def count(self, key: str) -> int:
        with self._lock:
            return len(self.received[key])

    def clear(self) -> None:
        with self._lock:
            for key in self.received:
                self.received[key].clear()
                self.arrival[key].clear()

    def arrivals(self, key: str) -> list[tuple[float, Any]]:
        """(wall-clock arrival, message) pairs."""
        with self._lock:
            return list(zip(self.arrival[key], self.received[key], strict=True))

    def latest_status(self, suffix: str) -> Any | None:
        """The newest DiagnosticStatus whose name ends with ``suffix``."""
        for array in reversed(self.messages("diagnostics")):
            for status in array.status:
                if status.name.endswith(suffix):
                    return status
        return None

    def close(self) -> None:
        self._running = False
        self._spin.join(2)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def values(status: Any) -> dict[str, str]:
    """A DiagnosticStatus' key/values as a dict."""
    return {kv.key: kv.value for kv in status.values}


def header(stamp_s: float, frame_id: str = "camera") -> Any:
    from std_msgs.msg import Header

    msg = Header(frame_id=frame_id)
    msg.stamp.sec = int(stamp_s)
    msg.stamp.nanosec = round((stamp_s - int(stamp_s)) * 1e9)
    return msg


def stamp_of(msg: Any) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def rgb_msg(stamp_s: float, seed: int = 0) -> Image:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return numpy_to_image(array, "rgb8", msg_type=Image, header=header(stamp_s))


def depth_msg(stamp_s: float) -> Image:
    depth = np.linspace(0.5, 20.0, H * W, dtype=np.float32).reshape(H, W)
    return numpy_to_image(depth, "32FC1", msg_type=Image, header=header(stamp_s))


def event_msg(stamp_s: float) -> Image:
    frame = np.zeros((H, W), dtype=np.uint8)
    frame[::4, ::3] = 255
    return numpy_to_image(frame, "mono8", msg_type=Image, header=header(stamp_s))


def lidar_msg(stamp_s: float) -> PointCloud2:
    """Points 5 m in front of the camera (identity extrinsic: the LiDAR frame is optical)."""
    xs, ys = np.meshgrid(np.linspace(-3, 3, 40), np.linspace(-2, 2, 16))
    points = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 5.0)], axis=1).astype(np.float32)
    fields = make_fields(
        [("x", PointField.FLOAT32), ("y", PointField.FLOAT32), ("z", PointField.FLOAT32)],
        msg_type=PointCloud2,
    )
    return create_cloud(header(stamp_s, "lidar"), fields, points, msg_type=PointCloud2)


def camera_info_msg(stamp_s: float) -> CameraInfo:
    msg = CameraInfo(height=H, width=W, distortion_model="plumb_bob")
    msg.header = header(stamp_s)
    msg.k = list(K)
    msg.d = [0.0] * 5
    msg.p = [K[0], 0.0, K[2], 0.0, 0.0, K[4], K[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


BUILDERS: dict[str, Callable[[float], Any]] = {
    "rgb": rgb_msg,
    "depth": depth_msg,
    "event": event_msg,
    "lidar": lidar_msg,
}
TOPICS = {
    "rgb": "camera/image",
    "depth": "depth/image",
    "event": "event/image",
    "lidar": "lidar/points",
    "camera_info": "camera/camera_info",
}
TYPES = {
    "rgb": Image,
    "depth": Image,
    "event": Image,
    "lidar": PointCloud2,
    "camera_info": CameraInfo,
}


def node_args(adapter: Path, *extra: str) -> list[str]:
    """The node's --ros-args: the shipped params file, the tiny model, reliable test QoS."""
    return [
        "--params-file",
        str(REPO / "config" / "perception.yaml"),
        "-p",
        f"model.adapter:={adapter}",
        "-p",
        "model.device:=cpu",
        "-p",
        "model.torch_threads:=1",
        "-p",
        "qos.profile:=reliable",
        "-p",
        "diagnostics.period:=0.25",
        *[item for pair in (("-p", e) for e in extra) for item in pair],
    ]


def without_packages(env: dict[str, str], packages: Sequence[str], where: Path) -> dict[str, str]:
    """``env`` for a node on which ``packages`` are not importable (as on a robot without them):
    a folder first on PYTHONPATH holds a package of each name whose import raises ImportError."""
    for package in packages:
        (where / package).mkdir(parents=True, exist_ok=True)
        (where / package / "__init__.py").write_text(
            f"raise ImportError('{package} is hidden from this test node')\n"
        )
    path = [str(where), *filter(None, [env.get("PYTHONPATH", "")])]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def domain_of(env: dict[str, str]) -> int:
    return int(env["ROS_DOMAIN_ID"])


def now_s() -> float:
    return time.time()


__all__ = ["BUILDERS", "TOPICS", "TYPES", "Harness", "NodeProcess", "os"]

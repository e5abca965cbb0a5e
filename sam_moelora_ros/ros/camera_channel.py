"""One camera group inside the perception node: its subscriptions, synchroniser and publishers.

A node runs one :class:`CameraChannel` per entry of ``cameras`` (one, named ``""``, without
it), all feeding the one inference worker and model of the node. A channel owns what is
per camera: the sensor subscriptions (its topics), the decoders (its camera model and LiDAR
extrinsic), the synchroniser, the intake, the ``~/<camera>/<key>`` publishers and its share of
/diagnostics (statuses named ``<node>/<camera>: ...``). The unnamed channel of a one-camera node
publishes ``~/<key>`` and names its statuses ``<node>: ...``, as the node always did.

The node creates each piece inside its own phases (so its entity bookkeeping sees them); the
channel only holds them, turns callbacks into calls of the pure pipeline, and is the pipeline's
:class:`~sam_moelora_ros.pipeline.ports.FramePort` for its camera: the clock, the LiDAR
extrinsic (tf2 or ``lidar.extrinsic``), where released frames go (the worker), where label
images go (its publishers) and whom the worker tells of a message its decode rejected (the
intake's counts). The frame path enters ``ros/`` only at its two ends: the subscription callback
and the publisher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.params import NodeConfig
from sam_moelora_ros.pipeline.admission import DecodeProblem
from sam_moelora_ros.pipeline.assembly import SensorDecoders, sync_config
from sam_moelora_ros.pipeline.diagnostics import Report, camera_info_report, sensor_reports
from sam_moelora_ros.pipeline.intake import SensorIntake
from sam_moelora_ros.pipeline.worker import (
    CAMERA_INFO,
    COMPRESSED,
    LABELLED_CLOUD,
    OUTPUT_KEYS,
    CameraOutput,
    InferenceWorker,
)
from sam_moelora_ros.ros.label_info import LATCHED_QOS, label_info_message
from sam_moelora_ros.ros.process import NODE_NAME
from sam_moelora_ros.ros.subscriptions import SensorSubscriptions
from sam_moelora_ros.ros.tf_static import TfSource
from sam_moelora_ros.sync.synchronizer import Frame, Synchronizer

PublisherFactory = Callable[[Any, str, QoSProfile | int], Publisher]
"""``make(msg_type, topic, qos)``: ``Node.create_publisher`` or a lifecycle publisher's."""


class CameraChannel:
    """One camera group's per-camera pieces; see the module docstring.

    Args:
        node: the perception node (logger, clock, subscriptions).
        name: the camera group, ``""`` for a node without ``cameras``.
        cfg: the group's view of the node's configuration (``NodeConfig.camera_views``).
    """

    def __init__(self, node: Node, name: str, cfg: NodeConfig) -> None:
        self.node, self.name, self.cfg = node, name, cfg
        self.prefix = f"{NODE_NAME}/{name}" if name else NODE_NAME
        """The /diagnostics status names' prefix."""
        self.namespace = f"~/{name}" if name else "~"
        """Where the outputs go: ``<namespace>/labels`` ..."""
        self.pub: dict[str, Publisher] = {}
        self.label_info_pub: Publisher | None = None
        self.subs: SensorSubscriptions | None = None
        self.decoders: SensorDecoders | None = None
        self.sync: Synchronizer | None = None
        self.intake: SensorIntake | None = None
        self.worker: InferenceWorker | None = None
        self.tf: TfSource | None = None
        self.extrinsic_chain: list[str] = []

    # ------------------------------------------------------------------ set-up
    def create_outputs(
        self, make: PublisherFactory, qos: QoSProfile, label_info: Any = None
    ) -> None:
        """The ``<namespace>/<key>`` publishers: the images, ``labels/camera_info``,
        ``labels/compressed``, ``lidar/labelled`` (LiDAR enabled and ``output.lidar_labelled``)
        and, with ``label_info`` (vision_msgs' LabelInfo class), the latched ``label_info``."""
        types: dict[str, Any] = {key: Image for key in OUTPUT_KEYS}
        types.update({CAMERA_INFO: CameraInfo, COMPRESSED: CompressedImage})
        if self.cfg.sensors["lidar"].enabled and self.cfg.lidar_labelled:
            types[LABELLED_CLOUD] = PointCloud2
        self.pub = {key: make(cls, f"{self.namespace}/{key}", qos) for key, cls in types.items()}
        if label_info is not None:
            self.label_info_pub = make(label_info, f"{self.namespace}/label_info", LATCHED_QOS)

    def publish_label_info(self, types: Any, class_names: Any, stamp: Any) -> None:
        """The class table on ``<namespace>/label_info`` (latched)."""
        if self.label_info_pub is not None and types is not None:
            self.label_info_pub.publish(label_info_message(types, class_names, stamp))

    def subscribe(self, qos: QoSProfile, supported: Mapping[str, Sequence[str]]) -> None:
        """Each of the group's sensors with its topic's type (raises ``ParameterError``)."""
        self.subs = SensorSubscriptions(
            self.node,
            self.cfg,
            qos,
            self.on_sensor,
            self.on_camera_info,
            supported,
        )

    def start(self, tf: TfSource | None) -> CameraOutput:
        """A fresh synchroniser and decoders; the worker's output for this camera.

        ``tf``: where T_cam_from_lidar is looked up per cloud (``lidar.use_tf``), else None.
        """
        self.tf = tf
        self.sync = Synchronizer(sync_config(self.cfg))
        self.decoders = SensorDecoders(self.cfg, self.extrinsic)
        return CameraOutput(self.name, self)

    def connect(self, worker: InferenceWorker) -> None:
        """Frames of this camera's synchroniser go to ``worker`` (after :meth:`start`)."""
        assert self.decoders is not None and self.sync is not None
        self.worker = worker
        self.intake = SensorIntake(self.decoders, self.sync, self)

    def stop(self) -> None:
        """Forget the processing pieces (the node destroys the subscriptions it recorded)."""
        self.subs = self.decoders = self.sync = self.intake = self.worker = None

    # ------------------------------------------------------------------ the pipeline's port
    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def extrinsic(self, cloud: Any) -> np.ndarray:
        """T_cam_from_lidar for this camera: looked up per cloud when ``lidar.use_tf`` (the chain
        logged once per camera), else the camera's ``lidar.extrinsic``."""
        camera = self.decoders.camera if self.decoders is not None else None
        if self.tf is None or camera is None:
            return self.cfg.extrinsic
        try:
            matrix, chain = self.tf.lookup(camera.frame_id, cloud.header.frame_id)
        except Exception as exc:
            if self.intake is not None:
                self.intake.warn(
                    "lidar_tf", f"{self.tf.name} lookup failed ({exc}); using lidar.extrinsic"
                )
            return self.cfg.extrinsic
        if chain != self.extrinsic_chain:
            self.extrinsic_chain = chain
            self.node.get_logger().info(
                f"lidar.use_tf: T_cam_from_lidar from {self.tf.name}, chain {' -> '.join(chain)}"
            )
        return matrix

    def submit(self, frames: Sequence[Frame]) -> None:
        if self.worker is not None:
            self.worker.submit(frames, self.name)

    def publish(self, key: str, msg: Any) -> None:
        if key in self.pub:
            self.pub[key].publish(msg)

    def wants(self, key: str) -> bool:
        """A subscriber is matched to ``<namespace>/<key>`` (image_pipeline's lazy outputs: a
        topic nobody listens to costs no work; ``ros2 topic echo`` or a bag recording it counts)."""
        publisher = self.pub.get(key)
        return publisher is not None and publisher.get_subscription_count() > 0

    def decode_problems(self, problems: Sequence[DecodeProblem]) -> None:
        intake = self.intake
        if intake is not None:
            intake.decode_problems(problems, self.now())

    # ------------------------------------------------------------------ callbacks
    def on_sensor(self, sensor: str, msg: Any) -> None:
        if self.intake is not None:
            self.intake.sensor(sensor, msg)

    def on_camera_info(self, msg: Any) -> None:
        if self.intake is not None:
            self.intake.camera_info(msg, self.now())

    def poll(self, now_s: float) -> None:
        if self.intake is not None:
            self.intake.poll(now_s)

    # ------------------------------------------------------------------ diagnostics
    def reports(self, worker: InferenceWorker, tf: TfSource | None, now_s: float) -> list[Report]:
        """This camera's statuses: one per sensor, camera_info when needed, inference."""
        sync, intake, subs, decoders = self.sync, self.intake, self.subs, self.decoders
        if sync is None or intake is None or subs is None or decoders is None:
            return []
        status = sync.status(now_s)
        topics = {n: self.cfg.sensors[n].topic for n in MODALITIES}
        presence = worker.outputs[self.name].presence
        reports = sensor_reports(self.prefix, status, intake.health, topics, now_s, presence)
        subs.decorate(reports)
        if tf is not None:
            chain = " -> ".join(self.extrinsic_chain) or "lookup pending"
            for report in reports:
                if report.name.endswith(" sensor lidar"):
                    report.values["extrinsic_from"] = f"{tf.name}: {chain}"
        if subs.camera_info_subscribed:
            size = decoders.camera_size()
            reports.append(camera_info_report(self.prefix, True, intake.camera_health, size, now_s))
        reports.append(worker.report(self.prefix, status, self.name))
        return reports

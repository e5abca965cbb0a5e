"""One camera group inside the perception node: its subscriptions, synchroniser and publishers.

A node runs one :class:`CameraChannel` per entry of ``cameras`` (one, named ``""``, without
it), all feeding the one inference worker and model of the node. A channel owns what is
per camera: the sensor subscriptions (its topics), the decoders (its camera model and LiDAR
extrinsic), the synchroniser, the intake, the ``~/<camera>/<key>`` publishers and its share of
/diagnostics (statuses named ``<node>/<camera>: ...``). The unnamed channel of a one-camera node
publishes ``~/<key>`` and names its statuses ``<node>: ...``, as the node always did.

The node creates each piece inside its own phases (so its entity bookkeeping sees them); the
channel only holds them and turns callbacks into calls of the pure pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.params import NodeConfig
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
from sam_moelora_ros.sync.synchronizer import Synchronizer

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
        self.camera_info_msg: Any = None
        """The latest accepted CameraInfo (``~/labels/camera_info`` is made from it)."""
        self.subs: SensorSubscriptions | None = None
        self.decoders: SensorDecoders | None = None
        self.sync: Synchronizer | None = None
        self.intake: SensorIntake | None = None
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

    def start(self, extrinsic: Callable[[CameraChannel, Any], Any]) -> CameraOutput:
        """A fresh synchroniser and decoders; the worker's output for this camera.

        ``extrinsic(channel, cloud)`` gives T_cam_from_lidar for a cloud (the node's tf lookup).
        """
        self.sync = Synchronizer(sync_config(self.cfg))
        self.decoders = SensorDecoders(self.cfg, lambda msg: extrinsic(self, msg))
        pub = self.pub
        decoders = self.decoders

        def publish(key: str, msg: Any) -> None:
            if key in pub:
                pub[key].publish(msg)

        return CameraOutput(
            self.name, publish, lambda: decoders.camera, camera_info=lambda: self.camera_info_msg
        )

    def connect(self, worker: InferenceWorker) -> None:
        """Frames of this camera's synchroniser go to ``worker`` (after :meth:`start`)."""
        assert self.decoders is not None and self.sync is not None
        name = self.name
        self.intake = SensorIntake(
            self.decoders, self.sync, lambda frames: worker.submit(frames, name)
        )

    def stop(self) -> None:
        """Forget the processing pieces (the node destroys the subscriptions it recorded)."""
        self.subs = self.decoders = self.sync = self.intake = None

    # ------------------------------------------------------------------ callbacks
    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def on_sensor(self, sensor: str, msg: Any) -> None:
        if self.intake is not None:
            self.intake.sensor(sensor, msg, self._now())

    def on_camera_info(self, msg: Any) -> None:
        if self.intake is not None and self.decoders is not None:
            before = self.decoders.camera
            self.intake.camera_info(msg, self._now())
            if self.decoders.camera is not before:  # accepted (a rejected one keeps the camera)
                self.camera_info_msg = msg

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

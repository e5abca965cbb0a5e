"""``sam_moelora_perception``: the ROS 2 node. Sensor topics in, semantic labels out.

A thin adapter (docs/design.md): it declares parameters, subscribes, and hands each message with
its receive time to :class:`~sam_moelora_ros.pipeline.intake.SensorIntake` (decode, stamp check,
health, :class:`~sam_moelora_ros.sync.Synchronizer`); frames go to the
:class:`~sam_moelora_ros.pipeline.worker.InferenceWorker`, which segments and publishes through
the publishers this node owns. Nothing hard lives here, so it all unit-tests without DDS. How
frames are assembled (the synchroniser's configuration, which decoder gets which reference size,
a frame's model inputs) is :mod:`~sam_moelora_ros.pipeline.assembly`, shared with offline bag
replay so the two cannot drift apart.

Threads, and why: subscription callbacks and timers run on the executor thread and only decode
and push (milliseconds); inference (tens of ms to seconds) runs on the
:class:`~sam_moelora_ros.pipeline.worker.InferenceWorker` thread, fed by a queue of one where a
newer frame replaces a pending one (counted as a drop). So a slow model never delays message
handling, the labels are always for the newest frame, and memory does not grow with input rate.
The synchroniser takes its own lock, so the worker and diagnostics may read it concurrently.

Bad input never kills the node: each callback turns any decode error into a throttled warning
and a /diagnostics entry. Start-up problems (a wrong parameter, no model) end the process with a
one-line error naming the parameter and exit code 2.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.inference.segmenter import Segmenter, SegmenterError, default_adapter_path
from sam_moelora_ros.params import (
    PARAMETERS,
    NodeConfig,
    ParameterError,
    build_config,
    check_model_modalities,
    check_value,
    load_palette,
)
from sam_moelora_ros.pipeline.assembly import (
    CLOUD,
    SYNC_MAX_BUFFER,
    SensorDecoders,
    message_kind,
    needs_camera_info,
    sync_config,
)
from sam_moelora_ros.pipeline.diagnostics import camera_info_report, sensor_reports
from sam_moelora_ros.pipeline.intake import WARN_PERIOD_S, SensorIntake
from sam_moelora_ros.pipeline.worker import (
    OUTPUT_KEYS,
    ROUTER_WINDOW,
    InferenceWorker,
    OutputOptions,
)
from sam_moelora_ros.ros.process import NODE_NAME
from sam_moelora_ros.sync.synchronizer import SyncConfig, Synchronizer

__all__ = [
    "NODE_NAME",
    "ROUTER_WINDOW",
    "SYNC_MAX_BUFFER",
    "WARN_PERIOD_S",
    "PerceptionNode",
    "StartupError",
    "input_qos",
    "main",
]


class _RosLogHandler(logging.Handler):
    """Forward the pure core's ``logging`` records (e.g. sync resets) to the node's ROS logger."""

    def __init__(self, node: Node) -> None:
        super().__init__(logging.INFO)
        self._logger = node.get_logger()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.levelno >= logging.ERROR:
            self._logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(text)
        else:
            self._logger.info(text)


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, missing model); the message says what to fix."""


def input_qos(profile: str, depth: int) -> QoSProfile:
    """``sensor_data``: best effort, volatile (what camera/LiDAR drivers publish); ``reliable``."""
    reliability = (
        ReliabilityPolicy.BEST_EFFORT if profile == "sensor_data" else ReliabilityPolicy.RELIABLE
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=reliability,
        durability=DurabilityPolicy.VOLATILE,
    )


OUTPUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE
)
"""Outputs are reliable: they match reliable and best-effort subscribers (RViz, recorders)."""


class PerceptionNode(Node):
    """The perception node; see the module docstring and ``config/perception.yaml``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._log_handler = _RosLogHandler(self)
        core_logger = logging.getLogger("sam_moelora_ros")
        core_logger.addHandler(self._log_handler)
        core_logger.setLevel(logging.INFO)
        core_logger.propagate = False
        self.config = self._declare_and_validate()
        cfg = self.config
        self.segmenter = self._load_segmenter(cfg)
        self.class_names, self.palette = self._load_palette(cfg)
        self._output = OutputOptions(cfg.color, cfg.color_alpha, cfg.confidence)
        self.sync = Synchronizer(self._sync_config(cfg))
        self._tf = self._make_tf_lookup(cfg)
        self._decoders = SensorDecoders(cfg, self._extrinsic)

        self._pub = {
            key: self.create_publisher(Image, f"~/{key}", OUTPUT_QOS) for key in OUTPUT_KEYS
        }
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._worker = InferenceWorker(
            self.segmenter,
            self.palette,
            lambda key, msg: self._pub[key].publish(msg),
            Image,
            self._now,
            self._output,
            camera=lambda: self._decoders.camera,
        )
        self._intake = SensorIntake(self._decoders, self.sync, self._worker.submit)
        self._subscribe(cfg)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._worker.start()
        self.create_timer(cfg.poll_period, self._on_poll)
        self.create_timer(cfg.diagnostics_period, self._publish_diagnostics)
        self.get_logger().info(
            f"ready: model {self.segmenter.describe()}; sensors "
            + ", ".join(f"{n}<-{cfg.sensors[n].topic}" for n in cfg.enabled)
            + f"; anchor {cfg.anchor} (fallback {list(cfg.fallback_anchors)})"
            + f"; qos {cfg.qos_profile}"
        )

    # ------------------------------------------------------------------ start-up
    def _declare_and_validate(self) -> NodeConfig:
        """Declare every parameter with its description, then validate them all together."""
        values: dict[str, Any] = {}
        for spec in PARAMETERS:
            descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
            try:
                param = self.declare_parameter(spec.name, spec.default, descriptor)
            except Exception as exc:  # e.g. a YAML value of the wrong type
                raise StartupError(f"parameter '{spec.name}': {exc}") from exc
            values[spec.name] = param.value
        try:
            return build_config(values)
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc

    def _load_segmenter(self, cfg: NodeConfig) -> Segmenter:
        import torch

        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        try:
            segmenter = Segmenter.from_files(
                cfg.adapter or None,
                cfg.sam_checkpoint or None,
                device=cfg.device,
                dtype=cfg.dtype,
                merge_lora=cfg.merge_lora,
                compile=cfg.compile_mode,
            )
            check_model_modalities(cfg, segmenter.modalities)
        except SegmenterError as exc:
            hint = (
                "; e.g. perception_node --ros-args -p model.adapter:=/path/to/adapter.safetensors"
                if not cfg.adapter
                else ""
            )
            raise StartupError(f"parameter 'model.adapter' = {cfg.adapter!r}: {exc}{hint}") from exc
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc
        source = cfg.adapter or f"{default_adapter_path()} (the shipped default model)"
        warm = segmenter.warmup()
        self.get_logger().info(f"model {source}: warm-up took {warm * 1e3:.0f} ms")
        return segmenter

    def _load_palette(self, cfg: NodeConfig) -> tuple[tuple[str, ...], Any]:
        try:
            return load_palette(cfg.palette_file, self.segmenter.num_classes)
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc

    @staticmethod
    def _sync_config(cfg: NodeConfig) -> SyncConfig:
        """The shared :func:`~sam_moelora_ros.pipeline.assembly.sync_config` (replay's too)."""
        return sync_config(cfg)

    def _make_tf_lookup(self, cfg: NodeConfig) -> Any:
        """A tf2 buffer+listener when ``lidar.use_tf`` (needs tf2_ros from the ROS install)."""
        if not (cfg.use_tf and cfg.sensors["lidar"].enabled):
            return None
        try:
            import tf2_ros  # not on PyPI: available only in a ROS install
        except ImportError as exc:
            raise StartupError(
                "parameter 'lidar.use_tf' = True: tf2_ros is not importable in this environment; "
                "set lidar.use_tf: false and give lidar.extrinsic"
            ) from exc
        buffer = tf2_ros.Buffer()
        self._tf_listener = tf2_ros.TransformListener(buffer, self)
        return buffer

    def _subscribe(self, cfg: NodeConfig) -> None:
        qos = input_qos(cfg.qos_profile, cfg.qos_depth)
        self._subs = []
        for name in cfg.enabled:
            msg_type = PointCloud2 if message_kind(cfg, name) == CLOUD else Image
            callback = functools.partial(self._on_sensor, name)
            self._subs.append(
                self.create_subscription(msg_type, cfg.sensors[name].topic, callback, qos)
            )
        if self._needs_camera_info():
            info = cfg.camera_info_topic
            self._subs.append(self.create_subscription(CameraInfo, info, self._on_camera_info, qos))

    def _needs_camera_info(self) -> bool:
        return needs_camera_info(self.config)

    # ------------------------------------------------------------------ callbacks, clock, tf2
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_sensor(self, name: str, msg: Any) -> None:
        self._intake.sensor(name, msg, self._now())

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._intake.camera_info(msg, self._now())

    def _on_poll(self) -> None:
        self._intake.poll(self._now())

    def _extrinsic(self, msg: PointCloud2) -> Any:
        camera = self._decoders.camera
        if self._tf is None or camera is None:
            return self.config.extrinsic
        try:
            import numpy as np

            tf = self._tf.lookup_transform(
                camera.frame_id, msg.header.frame_id, rclpy.time.Time()
            ).transform
            q, t = tf.rotation, tf.translation
            from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix

            return np.asarray(extrinsic_matrix([t.x, t.y, t.z, q.x, q.y, q.z, q.w]))
        except Exception as exc:
            self._intake.warn("lidar_tf", f"tf2 lookup failed ({exc}); using lidar.extrinsic")
            return self.config.extrinsic

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        now = self._now()
        status = self.sync.status(now)
        cfg = self.config
        topics = {n: cfg.sensors[n].topic for n in MODALITIES}
        intake = self._intake
        reports = sensor_reports(
            NODE_NAME, status, intake.health, topics, now, self._worker.presence
        )
        if self._needs_camera_info():
            size = self._decoders.camera_size()
            reports.append(camera_info_report(NODE_NAME, True, intake.camera_health, size, now))
        reports.append(self._worker.report(NODE_NAME, status))
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for report in reports:
            array.status.append(
                DiagnosticStatus(
                    level=bytes([report.level]),
                    name=report.name,
                    message=report.message,
                    hardware_id=self.get_fully_qualified_name(),
                    values=[KeyValue(key=k, value=v) for k, v in report.values.items()],
                )
            )
        self._diag_pub.publish(array)

    # ------------------------------------------------------------------ parameters, shutdown
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate run-time changes (only the output.* options are writable)."""
        for param in params:
            try:
                check_value(param.name, param.value)
            except ParameterError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        for param in params:
            if param.name == "output.color":
                self._output.color = bool(param.value)
            elif param.name == "output.color_alpha":
                self._output.color_alpha = float(param.value)
            elif param.name == "output.confidence":
                self._output.confidence = bool(param.value)
        return SetParametersResult(successful=True)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker (it finishes the frame in hand) before the node is destroyed."""
        self._worker.close(timeout_s)
        logging.getLogger("sam_moelora_ros").removeHandler(self._log_handler)


def main(args: list[str] | None = None) -> int:
    """Console script ``perception_node``: spin until SIGINT; exit 2 on a start-up error."""
    rclpy.init(args=args)
    node: PerceptionNode | None = None
    code = 0
    try:
        node = PerceptionNode()
        rclpy.spin(node)
    except StartupError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())

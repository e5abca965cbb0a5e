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

import logging
import sys
from typing import Any

import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.inference.factory import build_segmenter
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
from sam_moelora_ros.params.params_file import ParamsFileError, check_params_files
from sam_moelora_ros.pipeline.assembly import SYNC_MAX_BUFFER, SensorDecoders, sync_config
from sam_moelora_ros.pipeline.diagnostics import camera_info_report, sensor_reports
from sam_moelora_ros.pipeline.intake import WARN_PERIOD_S, SensorIntake
from sam_moelora_ros.pipeline.kinds import SUPPORTED_TYPES
from sam_moelora_ros.pipeline.worker import (
    OUTPUT_KEYS,
    ROUTER_WINDOW,
    InferenceWorker,
    OutputOptions,
)
from sam_moelora_ros.ros.process import NODE_NAME
from sam_moelora_ros.ros.subscriptions import SensorSubscriptions
from sam_moelora_ros.ros.tf_static import TfSource, TfUnavailable, make_tf_source
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
        self._tf = self._make_tf_source(cfg)
        self._extrinsic_chain: list[str] = []
        self._subscribe(cfg)  # before the model: a bad message_type fails at once
        self.segmenter = self._load_segmenter(cfg)
        self.class_names, self.palette = self._load_palette(cfg)
        self._output = OutputOptions(cfg.color, cfg.color_alpha, cfg.confidence)
        self.sync = Synchronizer(self._sync_config(cfg))
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
            segmenter = build_segmenter(
                cfg.backend,
                cfg.adapter or None,
                cfg.sam_checkpoint or None,
                device=cfg.device,
                dtype=cfg.dtype,
                merge_lora=cfg.merge_lora,
                compile=cfg.compile_mode,
                providers=cfg.providers,
                provider_fallback=cfg.provider_fallback,
                engine_cache_dir=cfg.engine_cache_dir or None,
                threads=cfg.torch_threads,
            )
            check_model_modalities(cfg, segmenter.modalities)
            warm = segmenter.warmup()  # a NaN/Inf forward is a start-up error, not "ready"
        except SegmenterError as exc:
            raise _model_startup_error(cfg, exc) from exc
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc
        source = cfg.adapter or f"{default_adapter_path()} (the shipped default model)"
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

    def _make_tf_source(self, cfg: NodeConfig) -> TfSource | None:
        """tf2_ros, else the node's own /tf_static reader, when ``lidar.use_tf`` (ros/tf_static)."""
        if not (cfg.use_tf and cfg.sensors["lidar"].enabled):
            return None
        try:
            return make_tf_source(self)
        except TfUnavailable as exc:
            raise StartupError(str(exc)) from exc

    def _subscribe(self, cfg: NodeConfig) -> None:
        """Each sensor with its topic's type (``sensors.<s>.message_type``, ros/subscriptions)."""
        qos = input_qos(cfg.qos_profile, cfg.qos_depth)
        try:
            self._subs = SensorSubscriptions(
                self, cfg, qos, self._on_sensor, self._on_camera_info, SUPPORTED_TYPES
            )
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc

    def _needs_camera_info(self) -> bool:
        return self._subs.camera_info_subscribed

    # ------------------------------------------------------------------ callbacks, clock, tf2
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_sensor(self, name: str, msg: Any) -> None:
        self._intake.sensor(name, msg, self._now())

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._intake.camera_info(msg, self._now())

    def _on_poll(self) -> None:
        self._intake.poll(self._now())

    def _extrinsic(self, msg: Any) -> Any:
        """T_cam_from_lidar: looked up per cloud when ``lidar.use_tf``; the chain logged once."""
        camera = self._decoders.camera
        if self._tf is None or camera is None:
            return self.config.extrinsic
        try:
            matrix, chain = self._tf.lookup(camera.frame_id, msg.header.frame_id)
        except Exception as exc:
            self._intake.warn(
                "lidar_tf", f"{self._tf.name} lookup failed ({exc}); using lidar.extrinsic"
            )
            return self.config.extrinsic
        if chain != self._extrinsic_chain:
            self._extrinsic_chain = chain
            self.get_logger().info(
                f"lidar.use_tf: T_cam_from_lidar from {self._tf.name}, chain {' -> '.join(chain)}"
            )
        return matrix

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
        self._subs.decorate(reports)
        if self._tf is not None:
            chain = " -> ".join(self._extrinsic_chain) or "lookup pending"
            for report in reports:
                if report.name.endswith(" sensor lidar"):
                    report.values["extrinsic_from"] = f"{self._tf.name}: {chain}"
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


_MODEL_PARAMETERS = {
    "sam_checkpoint": ("model.sam_checkpoint", "sam_checkpoint"),
    "device": ("model.device", "device"),
    "dtype": ("model.dtype", "dtype"),
    "compile": ("model.compile", "compile_mode"),
    "backend": ("model.backend", "backend"),
    "providers": ("model.providers", "providers"),
}
"""``SegmenterError.input_name`` -> (the parameter to name, its NodeConfig field); anything else
(the adapter, its weights, the warm-up) is ``model.adapter``."""


def _model_startup_error(cfg: NodeConfig, exc: SegmenterError) -> StartupError:
    """The one line for a model that cannot start, naming the parameter to fix."""
    name, field = _MODEL_PARAMETERS.get(exc.input_name, ("model.adapter", "adapter"))
    value = getattr(cfg, field)
    value = list(value) if isinstance(value, tuple) else value
    hint = ""
    if name == "model.adapter" and not cfg.adapter:
        hint = "; e.g. perception_node --ros-args -p model.adapter:=/path/to/adapter.safetensors"
    return StartupError(f"parameter '{name}' = {value!r}: {exc}{hint}")


def _fatal(message: str) -> int:
    rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {message}")
    return 2


def main(args: list[str] | None = None) -> int:
    """Console script ``perception_node``: spin until SIGINT; exit 2 on a start-up error.

    ``--params-file`` arguments are checked before ``rclpy.init`` (rcl would end with a traceback
    on a file that is not YAML, and block forever on a named pipe); whatever else rcl refuses in
    the command line is one line and exit 2 as well.
    """
    try:
        check_params_files(sys.argv if args is None else args)
    except ParamsFileError as exc:
        return _fatal(str(exc))
    try:
        rclpy.init(args=args)
    except RCLError as exc:  # e.g. a params file in a layout rcl does not accept
        reason = str(exc).splitlines()[0].split(", at /")[0]
        return _fatal(f"the ROS command line was refused: {reason}")
    node: PerceptionNode | None = None
    code = 0
    try:
        node = PerceptionNode()
        rclpy.spin(node)
    except StartupError as exc:
        code = _fatal(str(exc))
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

"""``sam_moelora_perception``: the ROS 2 node. Sensor topics in, semantic labels out.

A thin adapter (DESIGN.md, "The node's contract"): it declares parameters, subscribes, decodes
messages with :mod:`node_io` (the ``sensors`` codecs), groups them into frames with
:class:`~sam_moelora_ros.sync.Synchronizer`, segments frames with
:class:`~sam_moelora_ros.inference.Segmenter` and publishes the results. Nothing hard lives here.
How frames are assembled (the synchroniser's configuration, which decoder gets which reference
size, a frame's model inputs) is :mod:`~sam_moelora_ros.frame_assembly`, shared with offline bag
replay so the two cannot drift apart.

Threads, and why: subscription callbacks and timers run on the executor thread and only decode
and push (milliseconds); inference (tens of ms to seconds) runs on one worker thread fed by a
:class:`~sam_moelora_ros.node_runtime.LatestSlot`, a queue of one where a newer frame replaces a
pending one and the replacement is counted as a drop. So a slow model never delays message
handling, the labels are always for the newest frame, and memory does not grow with input rate.
The synchroniser takes its own lock, so the worker and diagnostics may read it concurrently.

Bad input never kills the node: each callback turns any decode error into a throttled warning
and a /diagnostics entry. Start-up problems (a wrong parameter, no model) end the process with a
one-line error naming the parameter and exit code 2.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
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
from sam_moelora_ros.frame_assembly import (
    CLOUD,
    SYNC_MAX_BUFFER,
    SensorDecoders,
    frame_inputs,
    message_kind,
    needs_camera_info,
    sync_config,
)
from sam_moelora_ros.inference import Segmenter, SegmenterError, default_adapter_path
from sam_moelora_ros.node_diagnostics import (
    camera_info_report,
    inference_report,
    sensor_reports,
)
from sam_moelora_ros.node_io import (
    BadMessage,
    Camera,
    Decoded,
    colorize,
    encode_outputs,
    stamp_seconds,
)
from sam_moelora_ros.node_params import (
    PARAMETERS,
    NodeConfig,
    ParameterError,
    build_config,
    check_model_modalities,
    check_value,
    load_palette,
)
from sam_moelora_ros.node_runtime import InferenceStats, LatestSlot, SensorHealth, Throttle
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync import Frame, SyncConfig, Synchronizer

NODE_NAME = "sam_moelora_perception"
WARN_PERIOD_S = 5.0
"""At most one warning per sensor per this many seconds (the rest are counted)."""
ROUTER_WINDOW = 30
"""Frames over which /diagnostics averages the router weight of each modality."""
__all__ = ["NODE_NAME", "SYNC_MAX_BUFFER", "PerceptionNode", "StartupError", "input_qos", "main"]


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


@dataclass
class _Output:
    """The output options that may change at run time (set via ``ros2 param set``)."""

    color: bool
    color_alpha: float
    confidence: bool


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
        self._output = _Output(cfg.color, cfg.color_alpha, cfg.confidence)
        self.sync = Synchronizer(self._sync_config(cfg))
        self._tf = self._make_tf_lookup(cfg)
        self._decoders = SensorDecoders(cfg, self._extrinsic)

        self._health = {name: SensorHealth(name) for name in MODALITIES}
        self._camera_health = SensorHealth("camera_info")
        self._newest: dict[str, float] = {}
        self._throttle = Throttle(WARN_PERIOD_S)
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._stats = InferenceStats()
        self._router: deque[dict[str, float]] = deque(maxlen=ROUTER_WINDOW)

        self._pub = {
            "labels": self.create_publisher(Image, "~/labels", OUTPUT_QOS),
            "labels_color": self.create_publisher(Image, "~/labels_color", OUTPUT_QOS),
            "confidence": self.create_publisher(Image, "~/confidence", OUTPUT_QOS),
        }
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._subscribe(cfg)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._worker = threading.Thread(target=self._worker_loop, name="inference", daemon=True)
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
        """The shared :func:`frame_assembly.sync_config` (offline replay builds the same)."""
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
            callback = self._make_callback(name, lambda m, n=name: self._decoders.decode(n, m))
            self._subs.append(
                self.create_subscription(msg_type, cfg.sensors[name].topic, callback, qos)
            )
        if self._needs_camera_info():
            self._subs.append(
                self.create_subscription(
                    CameraInfo, cfg.camera_info_topic, self._on_camera_info, qos
                )
            )

    def _needs_camera_info(self) -> bool:
        return needs_camera_info(self.config)

    # ------------------------------------------------------------------ callbacks
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    @property
    def _camera(self) -> Camera | None:
        return self._decoders.camera

    def _camera_size(self) -> tuple[int, int] | None:
        return self._decoders.camera_size()

    def _extrinsic(self, msg: PointCloud2) -> Any:
        if self._tf is None or self._camera is None:
            return self.config.extrinsic
        try:
            import numpy as np

            tf = self._tf.lookup_transform(
                self._camera.frame_id, msg.header.frame_id, rclpy.time.Time()
            ).transform
            q, t = tf.rotation, tf.translation
            from sam_moelora_ros.node_params import extrinsic_matrix

            return np.asarray(extrinsic_matrix([t.x, t.y, t.z, q.x, q.y, q.z, q.w]))
        except Exception as exc:
            self._warn("lidar_tf", f"tf2 lookup failed ({exc}); using lidar.extrinsic")
            return self.config.extrinsic

    def _warn(self, key: str, text: str) -> None:
        allowed, suppressed = self._throttle.allow(key, time.monotonic())
        if allowed:
            more = f" ({suppressed} similar suppressed)" if suppressed else ""
            self.get_logger().warning(f"{text}{more}")

    def _reject(self, health: SensorHealth, reason: str, now: float) -> None:
        """Count a bad message and warn, throttled per sensor and kind of problem."""
        health.reject(reason, now)
        kind = re.sub(r"[-+0-9.e]+", "#", reason)[:80]
        self._warn(f"{health.name}:{kind}", f"rejected {health.name} message: {reason}")

    def _make_callback(self, name: str, decode: Callable[[Any], Decoded]) -> Callable[[Any], None]:
        health = self._health[name]

        def callback(msg: Any) -> None:
            now = self._now()
            try:
                decoded = decode(msg)
                stamp = stamp_seconds(msg.header)
            except BadMessage as exc:
                self._reject(health, str(exc), now)
                return
            except Exception as exc:  # never let one message take the node down
                self._reject(health, f"{type(exc).__name__}: {exc}", now)
                return
            last = self._newest.get(name)
            if last is not None and stamp < last:
                self._warn(
                    f"{name}_stamp",
                    f"{name} stamp went backwards ({last:.3f} -> {stamp:.3f} s); the synchroniser "
                    "reorders small steps, drops stale ones and resets on big jumps",
                )
                health.reject(f"stamp went backwards ({last:.3f} -> {stamp:.3f} s)", now)
            self._newest[name] = stamp
            health.ok(now)
            self._decoders.accept(name, decoded)
            self._dispatch(self.sync.push(name, stamp, decoded, now))

        return callback

    def _on_camera_info(self, msg: CameraInfo) -> None:
        now = self._now()
        try:
            self._decoders.camera_info(msg)
        except BadMessage as exc:
            self._reject(self._camera_health, str(exc), now)
            return
        except Exception as exc:
            self._reject(self._camera_health, f"{type(exc).__name__}: {exc}", now)
            return
        self._camera_health.ok(now)

    def _on_poll(self) -> None:
        self._dispatch(self.sync.poll(self._now()))

    def _dispatch(self, frames: list[Frame]) -> None:
        for frame in frames:
            with self._stats.lock:
                self._stats.frames_in += 1
            self._slot.put(frame)

    # ------------------------------------------------------------------ worker
    def _worker_loop(self) -> None:
        while not self._slot.closed:
            frame = self._slot.get(timeout=0.2)
            if frame is None:
                continue
            try:
                self._segment_and_publish(frame)
            except Exception as exc:  # a failing frame must not end the worker
                with self._stats.lock:
                    self._stats.failures += 1
                    self._stats.last_error = f"{type(exc).__name__}: {exc}"
                self._warn("inference", f"inference failed: {type(exc).__name__}: {exc}")

    def _segment_and_publish(self, frame: Frame) -> None:
        started = self._now()
        _, images, anchor = frame_inputs(frame, self.segmenter.modalities)
        result = self.segmenter(images, anchor.size_hw)
        segmented = self._now()
        header = anchor.header
        camera = self._camera
        if frame.anchor in ("lidar", "event") and camera is not None and camera.frame_id:
            # LiDAR and event images were rendered into the camera: label them in its frame.
            header = plain_header(int(header.stamp.sec), int(header.stamp.nanosec), camera.frame_id)
        # Class ids first: their consumers should not wait for the colour blend.
        self._pub["labels"].publish(encode_outputs(result.labels, header, Image)["labels"])
        published = self._now()
        latency = published - frame.arrival_s
        out = self._output
        if out.color or out.confidence:
            color = None
            if out.color:
                color = colorize(result.labels, self.palette, images.get("rgb"), out.color_alpha)
            extras = encode_outputs(
                result.labels,
                header,
                Image,
                color=color,
                confidence=result.confidence if out.confidence else None,
                include_labels=False,
            )
            for key, msg in extras.items():
                self._pub[key].publish(msg)
        with self._stats.lock:
            stats = self._stats
            stats.frames_out += 1
            stats.last_modalities = result.modalities
            stats.last_anchor = frame.anchor
            stats.last_router = dict(result.router_weights)
            stats.last_latency_s = latency
            stats.max_latency_s = max(stats.max_latency_s, latency)
            stats.last_inference_s = result.inference_s
            stats.last_wait_s = started - frame.arrival_s
            stats.last_publish_s = published - segmented
            stats.last_error = "" if not stats.failures else stats.last_error
            self._router.append(dict(result.router_weights))

    # ------------------------------------------------------------------ diagnostics
    def _router_means(self) -> dict[str, float]:
        with self._stats.lock:
            history = list(self._router)
        sums: dict[str, list[float]] = {}
        for weights in history:
            for name, weight in weights.items():
                sums.setdefault(name, []).append(weight)
        return {n: sum(v) / len(v) for n, v in sums.items() if n in sums}

    def _publish_diagnostics(self) -> None:
        now = self._now()
        status = self.sync.status(now)
        cfg = self.config
        topics = {n: cfg.sensors[n].topic for n in MODALITIES}
        reports = sensor_reports(NODE_NAME, status, self._health, topics, now)
        if self._needs_camera_info():
            reports.append(
                camera_info_report(NODE_NAME, True, self._camera_health, self._camera_size(), now)
            )
        reports.append(
            inference_report(
                NODE_NAME,
                self._stats,
                self._router_means(),
                self._slot.dropped,
                f"{self.segmenter.device} {str(self.segmenter.dtype).removeprefix('torch.')}",
                status,
            )
        )
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
        self._slot.close()
        if self._worker.is_alive():
            self._worker.join(timeout_s)
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

"""What the plain and the managed perception node share: setting up and tearing down the pipeline.

:class:`PerceptionCore` is a :class:`rclpy.node.Node` with the node's pieces as phases, each with
its undo, so :class:`~sam_moelora_ros.ros.node.PerceptionNode` runs them all at construction and
:class:`~sam_moelora_ros.ros.lifecycle_node.PerceptionLifecycleNode` runs them on its
transitions:

- parameters: :meth:`~PerceptionCore._declare_parameters`, then a validated
  :class:`~sam_moelora_ros.params.NodeConfig` (:meth:`~PerceptionCore._build_config`);
- the model (configure): :meth:`~PerceptionCore._open_tf`, :meth:`~PerceptionCore._load_model`
  (segmenter warmed up, palette, output options) and :meth:`~PerceptionCore._create_outputs`
  (the output publishers); undone by :meth:`~PerceptionCore._unload_model`;
- the inputs and the processing (activate): :meth:`~PerceptionCore._subscribe` and
  :meth:`~PerceptionCore._start_processing` (synchronisers, decoders, inference worker, intake,
  timers); undone by :meth:`~PerceptionCore._stop_processing`.

What is per camera (topics, synchroniser, decoders, publishers, its /diagnostics statuses) lives
in one :class:`~sam_moelora_ros.ros.camera_channel.CameraChannel` per camera group of
``cameras`` (one unnamed channel without it); the model and the inference worker are the node's,
shared by every camera (frames ready together are batched).

Every subscription, timer and publisher a phase creates (those of ``SensorSubscriptions`` and the
tf listener included) is recorded, so its undo destroys exactly those. The pure pipeline stays in
:mod:`sam_moelora_ros.pipeline`; nothing here decides anything about frames.

The process around either node (``run_node``) and the start-up errors are in
:mod:`sam_moelora_ros.ros.startup`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
from collections.abc import Iterator
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from sam_moelora_ros.inference.from_params import describe_source, load_segmenter
from sam_moelora_ros.inference.segmenter import Segmenter
from sam_moelora_ros.params import (
    PARAMETERS,
    NodeConfig,
    ParameterError,
    ParamSpec,
    build_config,
    check_model_modalities,
    check_value,
    load_palette,
)
from sam_moelora_ros.params.cameras import camera_specs, undeclared_camera_parameters
from sam_moelora_ros.params.config import apply_model_encodings
from sam_moelora_ros.params.specs import camera_names_check
from sam_moelora_ros.pipeline.kinds import SUPPORTED_TYPES
from sam_moelora_ros.pipeline.worker import (
    CAMERA_INFO,
    COMPRESSED,
    LABELLED_CLOUD,
    InferenceWorker,
    OutputOptions,
)
from sam_moelora_ros.ros.camera_channel import CameraChannel, PublisherFactory
from sam_moelora_ros.ros.label_info import label_info_types
from sam_moelora_ros.ros.process import NODE_NAME
from sam_moelora_ros.ros.startup import StartupError
from sam_moelora_ros.ros.tf_static import TfSource, TfUnavailable, make_tf_source

__all__ = [
    "OUTPUT_QOS",
    "PerceptionCore",
    "StartupError",
    "input_qos",
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


class PerceptionCore(Node):
    """The perception node's phases and their undo; see the module docstring.

    The attributes a phase sets exist from that phase until its undo: ``config``, ``segmenter``,
    ``class_names``, ``palette`` (model loaded).
    """

    config: NodeConfig
    segmenter: Segmenter
    class_names: tuple[str, ...]
    palette: Any

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._log_handler = _RosLogHandler(self)
        core_logger = logging.getLogger("sam_moelora_ros")
        core_logger.addHandler(self._log_handler)
        core_logger.setLevel(logging.INFO)
        core_logger.propagate = False
        self._output: OutputOptions | None = None
        self._tf: TfSource | None = None
        self._channels: list[CameraChannel] = []
        """One per camera group, from :meth:`_subscribe` or :meth:`_create_outputs` (whichever
        runs first) until :meth:`_unload_model`."""
        self._diag_pub: Publisher | None = None
        self._camera_parameters: list[str] = []
        """The ``cameras.<camera>.*`` parameters declared (:meth:`_declare_parameters`)."""
        self._stray_parameters: dict[str, Any] = {}
        """``cameras.*`` values given but not declared (a typo'd group): build_config names them."""
        self._model_entities: list[Any] = []
        """What :meth:`_load_model` created (the tf listener's subscriptions)."""
        self._input_entities: list[Any] = []
        """What :meth:`_subscribe` and :meth:`_start_processing` created."""
        self._worker: InferenceWorker | None = None
        self._label_info: Any = None
        """vision_msgs' (LabelInfo, VisionClass) classes, None without vision_msgs."""

    # ------------------------------------------------------------------ parameters
    def _declare_parameters(self) -> dict[str, Any]:
        """Declare every parameter with its description; their values.

        The shared parameters first, then each camera group's (``cameras.<camera>.*``), whose
        defaults derive from the shared values (``params.cameras``).
        """
        values = {spec.name: self._declare(spec) for spec in PARAMETERS}
        specs = []
        if camera_names_check(values["cameras"]) is None:  # else build_config names the problem
            specs = [spec for name in values["cameras"] for spec in camera_specs(name, values)]
        values.update({spec.name: self._declare(spec) for spec in specs})
        self._camera_parameters = [spec.name for spec in specs]
        given = {name: p.value for name, p in self._parameter_overrides.items()}
        self._stray_parameters = undeclared_camera_parameters(given, values)
        return {**values, **self._stray_parameters}

    def _declare(self, spec: ParamSpec) -> Any:
        """Declare one parameter; its value. An empty list default declares a string array
        (rclpy would take ``[]`` for a byte array) whose unset value reads as ``[]``."""
        descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
        default = Parameter.Type.STRING_ARRAY if spec.default == [] else spec.default
        try:
            self.declare_parameter(spec.name, default, descriptor)
        except Exception as exc:  # e.g. a YAML value of the wrong type
            raise StartupError(f"parameter '{spec.name}': {exc}") from exc
        return self._parameter_value(spec.name)

    @staticmethod
    def _build_config(values: dict[str, Any]) -> NodeConfig:
        """Validate the parameters all together."""
        try:
            return build_config(values)
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc

    def _declare_and_validate(self) -> NodeConfig:
        """Declare every parameter with its description, then validate them all together."""
        return self._build_config(self._declare_parameters())

    def _current_config(self) -> NodeConfig:
        """The declared parameters' current values, validated."""
        names = [spec.name for spec in PARAMETERS] + self._camera_parameters
        values = {name: self._parameter_value(name) for name in names}
        return self._build_config({**values, **self._stray_parameters})

    def _parameter_value(self, name: str) -> Any:
        """A declared parameter's value; an unset string array (``cameras``) reads as ``[]``."""
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:
            return []

    def _watch_output_parameters(self) -> None:
        """Validate run-time parameter changes; ``output.*`` apply to the next frame."""
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ entity bookkeeping
    def _entities(self) -> list[Any]:
        return [*self.subscriptions, *self.timers, *self.publishers]

    @contextlib.contextmanager
    def _recording(self, into: list[Any]) -> Iterator[None]:
        """Append to ``into`` every subscription, timer and publisher created inside (even when
        it raises, so a failed phase can be undone)."""
        before = {id(e) for e in self._entities()}
        try:
            yield
        finally:
            into.extend(e for e in self._entities() if id(e) not in before)

    def _destroy(self, entities: list[Any]) -> None:
        """Destroy ``entities`` (newest first) and empty the list."""
        for entity in reversed(entities):
            if isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            elif isinstance(entity, Timer):
                self.destroy_timer(entity)
            elif isinstance(entity, Publisher):
                self._destroy_publisher(entity)
        entities.clear()

    def _destroy_publisher(self, publisher: Publisher) -> None:
        self.destroy_publisher(publisher)

    # ------------------------------------------------------------------ the model (configure)
    def _open_tf(self, cfg: NodeConfig) -> None:
        """The tf source of ``lidar.use_tf`` (None without it); undone by :meth:`_unload_model`."""
        with self._recording(self._model_entities):
            self._tf = self._make_tf_source(cfg)

    def _load_model(self, cfg: NodeConfig) -> None:
        """The segmenter (loaded and warmed up), its palette, the output options."""
        self.segmenter = self._load_segmenter(cfg)
        self._apply_encodings(cfg)
        self.class_names, self.palette = self._load_palette(cfg)
        self._output = OutputOptions(
            cfg.color, cfg.color_alpha, cfg.confidence, cfg.labels_compressed
        )

    def _apply_encodings(self, cfg: NodeConfig) -> None:
        """The model's input contract into the config and every camera channel already made.

        A node parameter that contradicts it, or a sensor whose encoding the node cannot
        compute, is a start-up error naming both (``params.config.apply_model_encodings``).
        """
        segmenter = self.segmenter
        try:
            self.config = apply_model_encodings(
                cfg, segmenter.input_encodings, segmenter.modalities
            )
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc
        for channel in self._channels:
            channel.cfg = dataclasses.replace(channel.cfg, encodings=self.config.encodings)
        self.get_logger().info(
            "input encodings (from the model): " + self.config.encodings.to_json()
        )

    def _camera_channels(self, cfg: NodeConfig) -> list[CameraChannel]:
        """The camera channels of ``cfg`` (made once; :meth:`_unload_model` forgets them)."""
        if not self._channels:
            self._channels = [CameraChannel(self, name, view) for name, view in cfg.camera_views()]
        return self._channels

    def _create_outputs(self, make: PublisherFactory) -> None:
        """Each camera's ``<namespace>/<key>`` publishers (``label_info`` with vision_msgs) and
        /diagnostics'."""
        self._label_info = label_info_types(self.get_logger().warning)
        info_type = None if self._label_info is None else self._label_info[0]
        for channel in self._camera_channels(self.config):
            channel.create_outputs(make, OUTPUT_QOS, info_type)
        self._diag_pub = make(DiagnosticArray, "/diagnostics", 10)

    def _unload_model(self) -> None:
        """Undo :meth:`_open_tf`, :meth:`_load_model` and :meth:`_create_outputs` (whatever of
        them was done)."""
        publishers = [p for channel in self._channels for p in channel.pub.values()]
        publishers += [c.label_info_pub for c in self._channels if c.label_info_pub is not None]
        for publisher in [*publishers, self._diag_pub]:
            if publisher is not None:
                self._destroy_publisher(publisher)
        self._channels, self._diag_pub = [], None
        self._destroy(self._model_entities)
        self._tf, self._output = None, None
        for name in ("segmenter", "class_names", "palette"):
            self.__dict__.pop(name, None)
        gc.collect()  # the model's tensors go now, not at some later collection

    def _load_segmenter(self, cfg: NodeConfig) -> Segmenter:
        """The model of the ``model.*`` parameters, warmed up (:mod:`inference.from_params`,
        which replay uses too)."""
        try:
            segmenter, warm = load_segmenter(cfg)
            check_model_modalities(cfg, segmenter.modalities)
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc
        self.get_logger().info(f"model {describe_source(cfg)}: warm-up took {warm * 1e3:.0f} ms")
        return segmenter

    def _load_palette(self, cfg: NodeConfig) -> tuple[tuple[str, ...], Any]:
        try:
            return load_palette(cfg.palette_file, self.segmenter.num_classes)
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc

    def _make_tf_source(self, cfg: NodeConfig) -> TfSource | None:
        """tf2_ros, else the node's own /tf_static reader, when ``lidar.use_tf`` (ros/tf_static)."""
        if not (cfg.use_tf and cfg.sensors["lidar"].enabled):
            return None
        try:
            return make_tf_source(self)
        except TfUnavailable as exc:
            raise StartupError(str(exc)) from exc

    # ------------------------------------------------------------------ inputs, processing
    def _subscribe(self, cfg: NodeConfig) -> None:
        """Each camera's sensors with their topics' types (``sensors.<s>.message_type``)."""
        qos = input_qos(cfg.qos_profile, cfg.qos_depth)
        try:
            with self._recording(self._input_entities):
                for channel in self._camera_channels(cfg):
                    channel.subscribe(qos, SUPPORTED_TYPES)
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc

    def _start_processing(self, cfg: NodeConfig) -> None:
        """Synchronisers, decoders, the inference worker (started), intake and the timers.

        Needs :meth:`_load_model`, :meth:`_create_outputs` and :meth:`_subscribe` done; each
        call starts afresh (new synchronisers and worker, so no frame of before is released).
        """
        assert self._output is not None, "the model is not loaded"
        outputs = [channel.start(self._tf) for channel in self._channels]
        types = {CAMERA_INFO: CameraInfo, COMPRESSED: CompressedImage, LABELLED_CLOUD: PointCloud2}
        self._worker = InferenceWorker(
            self.segmenter,
            self.palette,
            outputs,
            Image,
            self._now,
            self._output,
            message_types=types,
        )
        for channel in self._channels:
            channel.connect(self._worker)
        self._worker.start()
        with self._recording(self._input_entities):
            self.create_timer(cfg.poll_period, self._on_poll)
            self.create_timer(cfg.diagnostics_period, self._publish_diagnostics)

    def _stop_processing(self, timeout_s: float = 5.0) -> None:
        """Undo :meth:`_subscribe` and :meth:`_start_processing`: no more input, and the worker
        stopped (it finishes the frame in hand)."""
        self._destroy(self._input_entities)
        for channel in self._channels:
            channel.stop()
        if self._worker is not None:
            self._worker.close(timeout_s)
            self._worker = None

    def _publish_label_info(self) -> None:
        """Each camera's class table on ``label_info`` (latched): after each start, so a new
        model (a lifecycle configure) is announced; lifecycle publishers must be active."""
        stamp = self.get_clock().now().to_msg()
        for channel in self._channels:
            channel.publish_label_info(self._label_info, self.class_names, stamp)

    def _log_ready(self, cfg: NodeConfig) -> None:
        groups = []
        for channel in self._channels:
            view = channel.cfg
            where = f"camera {channel.name} ({channel.namespace}/labels): " if channel.name else ""
            groups.append(
                f"{where}sensors "
                + ", ".join(f"{n}<-{view.sensors[n].topic}" for n in view.enabled)
                + f"; anchor {view.anchor} (fallback {list(view.fallback_anchors)})"
            )
        self.get_logger().info(
            f"ready: model {self.segmenter.describe()}; "
            + "; ".join(groups)
            + f"; qos {cfg.qos_profile}"
        )

    # ------------------------------------------------------------------ callbacks, clock, tf2
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_poll(self) -> None:
        now = self._now()
        for channel in self._channels:
            channel.poll(now)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        worker, diag_pub = self._worker, self._diag_pub
        if worker is None or diag_pub is None:
            return
        now = self._now()
        reports = [r for channel in self._channels for r in channel.reports(worker, self._tf, now)]
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
        diag_pub.publish(array)

    # ------------------------------------------------------------------ parameters, shutdown
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate run-time changes (only the output.* options are writable)."""
        for param in params:
            try:
                check_value(param.name, param.value)
            except ParameterError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        output = self._output  # None before the model is loaded: read at configure then
        for param in params:
            if output is None:
                break
            if param.name == "output.color":
                output.color = bool(param.value)
            elif param.name == "output.color_alpha":
                output.color_alpha = float(param.value)
            elif param.name == "output.confidence":
                output.confidence = bool(param.value)
            elif param.name == "output.labels_compressed":
                output.labels_compressed = bool(param.value)
        return SetParametersResult(successful=True)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker (it finishes the frame in hand) before the node is destroyed."""
        if self._worker is not None:
            self._worker.close(timeout_s)
        logging.getLogger("sam_moelora_ros").removeHandler(self._log_handler)

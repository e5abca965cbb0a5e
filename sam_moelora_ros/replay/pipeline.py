"""Offline replay: bag messages in stamp order through the node's frame path, then the Segmenter.

One path with the node (docs/design.md): every message goes through the node's own
:class:`~sam_moelora_ros.pipeline.intake.SensorIntake` (admission, stamp checks, the
:class:`~sam_moelora_ros.sync.Synchronizer` configured from the node's parameters), whose port
here is a :class:`~sam_moelora_ros.pipeline.ports.FrameCollector` (the clock is the bag's stamp,
the extrinsic the bag's), and every released frame through the worker's per-frame core
(:func:`~sam_moelora_ros.pipeline.worker.prepare_frame`: the full decode, the model's inputs);
the same :class:`~sam_moelora_ros.inference.Segmenter` segments. Replay pushes in stamp order
with ``now = stamp`` (what :mod:`sam_moelora_ros.sync` documents for replay) and segments every
frame (the node keeps the newest), so a run is deterministic: two runs give the same frames. The
live-vs-offline ROS test checks the two paths give identical labels. No rclpy.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.bag import BagMessage, BagReader, header_stamp_ns
from sam_moelora_ros.inference.segmenter import Segmenter
from sam_moelora_ros.params import build_config
from sam_moelora_ros.params.config import apply_model_encodings
from sam_moelora_ros.pipeline.assembly import SensorDecoders, sync_config
from sam_moelora_ros.pipeline.intake import SensorIntake
from sam_moelora_ros.pipeline.labelled_cloud import CloudDecoded, LidarSource
from sam_moelora_ros.pipeline.ports import FrameCollector
from sam_moelora_ros.pipeline.worker import prepare_frame
from sam_moelora_ros.replay.extrinsic import Extrinsic, bag_extrinsic, find_extrinsic
from sam_moelora_ros.replay.inputs import check_topic_types, preflight
from sam_moelora_ros.replay.scenarios import CORRUPT, DROP, Scenario, corrupt_message
from sam_moelora_ros.sync.synchronizer import Frame, Synchronizer
from sam_moelora_ros.synthetic import topics as tp

__all__ = [
    "DEFAULT_TOPICS",
    "FrameResult",
    "ReplayLog",
    "ReplayRunner",
    "bag_extrinsic",
    "parse_topic_overrides",
]

_log = logging.getLogger(__name__)

GT_TOLERANCE_NS = 1_000_000
"""A ground-truth image matches a frame when their stamps differ by at most 1 ms."""
SETTLE_NS = 500_000_000
"""A frame is finalised once the stream has moved 0.5 s past it (its label/condition arrived)."""

DEFAULT_TOPICS: dict[str, str] = {
    "rgb": tp.CAMERA_TOPIC,
    "depth": tp.DEPTH_TOPIC,
    "event": tp.EVENT_TOPIC,
    "lidar": tp.LIDAR_TOPIC,
    "camera_info": tp.CAMERA_INFO_TOPIC,
    "tf_static": tp.TF_STATIC_TOPIC,
    "labels": tp.LABELS_TOPIC,
    "condition": tp.CONDITION_TOPIC,
}
"""Role -> bag topic (the synthetic bags' names); override with ``--topic ROLE=TOPIC``.

Not the node's ``params.specs.DEFAULT_TOPICS`` on purpose: those are relative names for a node
on a robot (resolved in its namespace, remapped at launch); these are what a bag holds, absolute,
and include roles the node never subscribes to (ground truth, condition, ``/tf_static``). Live
replay gives the node these names as its ``sensors.*.topic`` parameters."""


def parse_topic_overrides(items: list[str] | None) -> dict[str, str]:
    """``["rgb=/cam/front/image", ...]`` -> ``{"rgb": "/cam/front/image"}`` (roles checked)."""
    out: dict[str, str] = {}
    for item in items or ():
        role, sep, topic = item.partition("=")
        if not sep or role not in DEFAULT_TOPICS or not topic:
            raise ValueError(
                f"--topic {item!r}: expected ROLE=TOPIC with ROLE one of {sorted(DEFAULT_TOPICS)}"
            )
        out[role] = topic
    return out


@dataclass
class FrameResult:
    """One segmented frame and what the report needs about it."""

    stamp_ns: int
    anchor: str
    present: tuple[str, ...]
    absent: dict[str, str]
    labels: np.ndarray
    confidence: np.ndarray
    rgb: np.ndarray | None
    header: Any
    router: dict[str, float]
    inference_s: float
    wait_s: float
    forced: bool
    log_ns: int = 0
    condition: str | None = None
    ground_truth: np.ndarray | None = None
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    """The network images the model received (``keep_inputs`` runs only)."""
    lidar: LidarSource | None = None
    """The frame's LiDAR cloud with its camera and extrinsic (``~/lidar/labelled``)."""


@dataclass
class ReplayLog:
    """Counters of one replay: messages, rejections, scenario actions."""

    messages: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    dropped_by_scenario: dict[str, int] = field(default_factory=dict)
    corrupted_by_scenario: dict[str, int] = field(default_factory=dict)
    anchor_messages: int = 0
    failures: list[str] = field(default_factory=list)
    decode_s: float = 0.0

    def reject(self, sensor: str, stamp_ns: int, reason: str) -> None:
        self.rejected.append({"sensor": sensor, "stamp": stamp_ns * 1e-9, "reason": reason})


class ReplayRunner:
    """Replay one bag through the node's pipeline; iterate :meth:`run` for :class:`FrameResult`.

    Args:
        segmenter: the model.
        topics: role -> bag topic (see :data:`DEFAULT_TOPICS`).
        scenario: drops/corruptions to apply (None: replay as recorded).
        node_params: node parameter overrides (dotted names), e.g. ``{"anchor": "rgb"}``.
        ground_truth: ``"topic"`` (the ``labels`` role) or an object with ``lookup(index)``
            returning a label image for the index-th anchor message (a DELIVER folder).
        keep_inputs: keep each frame's network images in :attr:`FrameResult.inputs`.

    Before the first message, :meth:`run` checks every replayed topic's type against the role
    (``replay.inputs``), the first CameraInfo and the event camera's alignment, and finds the
    LiDAR extrinsic (``replay.extrinsic``): each problem is one ValueError, never one rejection
    per message. :attr:`extrinsic` and :attr:`inputs_info` then say what was found.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        topics: Mapping[str, str] | None = None,
        scenario: Scenario | None = None,
        node_params: Mapping[str, Any] | None = None,
        ground_truth: Any = "topic",
        keep_inputs: bool = False,
    ) -> None:
        self.segmenter = segmenter
        self.topics = {**DEFAULT_TOPICS, **(topics or {})}
        self.scenario = scenario or Scenario()
        self.params = dict(node_params or {})
        self.ground_truth = ground_truth
        self.keep_inputs = keep_inputs
        self.log = ReplayLog()
        self.sync: Synchronizer | None = None
        self.extrinsic: Extrinsic | None = None
        self.inputs_info: dict[str, Any] = {}
        self._camera_info: Any = None

    def needed_topics(
        self, reader: BagReader, explicit: set[str]
    ) -> tuple[dict[str, str], list[str]]:
        """(sensor -> topic of the sensors replayed, the topics that must be in the bag)."""
        cfg = build_config(self.params)
        sensors = {
            n: self.topics[n]
            for n in MODALITIES
            if cfg.sensors[n].enabled
            and n in self.segmenter.modalities
            and (self.topics[n] in reader.topics or n == cfg.anchor or n in explicit)
        }
        required = [self.topics[cfg.anchor], *(self.topics[r] for r in explicit)]
        if "lidar" in sensors:
            required.append(self.topics["camera_info"])
        return sensors, list(dict.fromkeys(required))

    def prepare(self, reader: BagReader, explicit: set[str]) -> tuple[dict[str, str], Any]:
        """Check the bag before reading it; ``(sensor -> topic replayed, node config)``.

        Raises BagError (a missing topic or type) or ValueError (a topic of the wrong type, an
        unusable CameraInfo, misaligned events, /tf_static that does not connect the frames).
        """
        sensors, required = self.needed_topics(reader, explicit)
        reader.require(required)
        check_topic_types(
            reader, self.topics, [*sensors, "camera_info", "tf_static", "labels", "condition"]
        )
        enabled = {f"sensors.{n}.enabled": n in sensors for n in MODALITIES}
        cfg = apply_model_encodings(
            build_config({**self.params, **enabled}),
            self.segmenter.input_encodings,
            self.segmenter.modalities,
        )
        info = preflight(reader, self.topics, sensors, cfg)
        self._camera_info = info.pop("camera_info_msg", None)
        self.inputs_info = info
        self.extrinsic = None
        if "lidar" in sensors:
            self.extrinsic = find_extrinsic(
                reader,
                self.topics,
                cfg.extrinsic,
                explicit_parameter="lidar.extrinsic" in self.params,
            )
            _log.info(self.extrinsic.log_line())
        return sensors, cfg

    def run(
        self,
        reader: BagReader,
        *,
        explicit_topics: set[str] | None = None,
        max_frames: int | None = None,
        on_message: Any = None,
    ) -> Iterator[FrameResult]:
        """Yield finalised frames (with ground truth and condition attached), in stamp order.

        ``on_message(record)`` is called for every record read (e.g. to copy it to an output bag).
        """
        sensors, cfg = self.prepare(reader, explicit_topics or set())
        extrinsic = cfg.extrinsic if self.extrinsic is None else self.extrinsic.matrix
        port = FrameCollector(extrinsic)
        decoders = SensorDecoders(cfg, port.extrinsic)
        self.sync = sync = Synchronizer(sync_config(cfg))
        intake = SensorIntake(decoders, sync, port, sensors=MODALITIES)
        if self._camera_info is not None:  # the camera's calibration, known from the start
            decoders.camera_info(self._camera_info)
        by_topic = {t: n for n, t in sensors.items()}
        extra = [self.topics[r] for r in ("camera_info", "labels", "condition")]
        read = [*sensors.values(), *(t for t in extra if t in reader.topics)]
        start_ns = reader.start_ns
        truth: dict[int, np.ndarray] = {}
        conditions: list[tuple[int, str]] = []
        pending: list[FrameResult] = []
        anchor_index: dict[int, int] = {}
        received: dict[tuple[str, int], int] = {}  # (sensor, header stamp) -> bag receive time
        emitted = 0
        log = self.log

        def finalise(upto_ns: int | None) -> Iterator[FrameResult]:
            while pending and (upto_ns is None or pending[0].stamp_ns < upto_ns - SETTLE_NS):
                result = pending.pop(0)
                result.ground_truth = self._truth(result, truth, anchor_index)
                result.condition = _condition_at(conditions, result.log_ns)
                yield result
            old = None if upto_ns is None else upto_ns - 4 * SETTLE_NS
            for stamp in [s for s in truth if old is not None and s < old]:
                del truth[stamp]
            for key in [k for k in received if old is not None and k[1] < old]:
                del received[key]

        def segment_released() -> None:
            nonlocal emitted
            for frame in port.take_frames():
                if max_frames is not None and emitted >= max_frames:
                    continue
                result = self._segment(frame, port, received)
                if result is not None:
                    emitted += 1
                    pending.append(result)

        for rec in reader.messages(read):
            if on_message is not None:
                on_message(rec)
            log.messages[rec.topic] = log.messages.get(rec.topic, 0) + 1
            port.now_s = rec.stamp_s
            if rec.topic == self.topics["labels"] and self.ground_truth == "topic":
                self._store_truth(rec, truth)
            elif rec.topic == self.topics["condition"]:
                if rec.msg is not None:
                    conditions.append((rec.log_ns, str(rec.msg.data)))
            elif rec.topic == self.topics["camera_info"]:
                if rec.msg is None:
                    log.reject("camera_info", rec.stamp_ns, rec.error or "undecodable")
                elif not intake.camera_info(rec.msg, rec.stamp_s):
                    log.reject("camera_info", rec.stamp_ns, intake.camera_health.last_error)
            elif rec.topic in by_topic:
                self._push(rec, by_topic[rec.topic], intake, start_ns, anchor_index, received)
            segment_released()
            yield from finalise(rec.stamp_ns)
            if max_frames is not None and emitted >= max_frames:
                break
        else:
            intake.flush()
            segment_released()
        yield from finalise(None)

    def _push(
        self,
        rec: BagMessage,
        sensor: str,
        intake: SensorIntake,
        start_ns: int,
        anchor_index: dict[int, int],
        received: dict[tuple[str, int], int],
    ) -> None:
        """One sensor record into the node's intake, after the scenario's drop or corruption."""
        log = self.log
        if sensor == intake.sync.config.anchor:
            anchor_index.setdefault(rec.stamp_ns, len(anchor_index))
            log.anchor_messages += 1
        action = self.scenario.action(sensor, (rec.stamp_ns - start_ns) * 1e-9)
        if action == DROP:
            log.dropped_by_scenario[sensor] = log.dropped_by_scenario.get(sensor, 0) + 1
            intake.poll(rec.stamp_s)
            return
        msg = rec.msg
        if action == CORRUPT and msg is not None:
            log.corrupted_by_scenario[sensor] = log.corrupted_by_scenario.get(sensor, 0) + 1
            msg = corrupt_message(msg)
        health = intake.health[sensor]
        rejected = health.rejected
        start = time.perf_counter()
        admitted = intake.sensor(sensor, msg, rec.stamp_s)
        log.decode_s += time.perf_counter() - start
        if health.rejected > rejected and not admitted:
            reason = health.last_error + (f" ({rec.error})" if rec.error else "")
            log.reject(sensor, rec.stamp_ns, reason)
        if admitted:
            received[(sensor, header_stamp_ns(msg) or rec.stamp_ns)] = rec.log_ns
        else:  # as before the intake existed: a refused message still moves the clock on
            intake.poll(rec.stamp_s)

    def _segment(
        self, frame: Frame, port: FrameCollector, received: dict[tuple[str, int], int]
    ) -> FrameResult | None:
        """As the node's ``InferenceWorker``: the frame decoded, present modalities, anchor's
        size; None when the anchor's message failed its decode (logged as a rejection)."""
        start = time.perf_counter()
        ready, problems = prepare_frame(frame, self.segmenter.modalities)
        self.log.decode_s += time.perf_counter() - start
        for problem in problems:
            if problem.reason is not None:
                stamp = header_stamp_ns(problem) or 0  # a DecodeProblem has the header
                self.log.reject(problem.sensor, stamp, problem.reason)
        port.decode_problems(problems)
        if ready is None:
            return None
        decoded, present, images, anchor = ready.frame, ready.present, ready.images, ready.anchor
        result = self.segmenter(images, anchor.size_hw)
        lidar = decoded.messages.get("lidar")
        stamp_ns = header_stamp_ns(anchor) or round(frame.stamp * 1e9)
        return FrameResult(
            stamp_ns=stamp_ns,
            anchor=frame.anchor,
            present=present,
            absent={k: str(v) for k, v in decoded.absent.items()},
            labels=result.labels,
            confidence=result.confidence,
            rgb=images.get("rgb"),
            header=anchor.header,
            router=dict(result.router_weights),
            inference_s=result.inference_s,
            wait_s=frame.wait_s,
            forced=frame.forced,
            log_ns=received.get((frame.anchor, stamp_ns), 0),
            inputs=dict(images) if self.keep_inputs else {},
            lidar=lidar.source if "lidar" in present and isinstance(lidar, CloudDecoded) else None,
        )

    def _store_truth(self, rec: BagMessage, truth: dict[int, np.ndarray]) -> None:
        from sam_moelora_ros.sensors.image import image_to_numpy

        try:
            array = np.asarray(image_to_numpy(rec.msg))
            truth[rec.stamp_ns] = array if array.ndim == 2 else array[:, :, 0]
        except Exception as exc:
            self.log.reject("labels", rec.stamp_ns, f"{type(exc).__name__}: {exc}")

    def _truth(
        self, result: FrameResult, truth: dict[int, np.ndarray], anchor_index: dict[int, int]
    ) -> np.ndarray | None:
        if self.ground_truth != "topic":
            index = anchor_index.get(result.stamp_ns)
            return None if index is None else self.ground_truth.lookup(index)
        hit = truth.get(result.stamp_ns)
        if hit is None:
            near = [s for s in truth if abs(s - result.stamp_ns) <= GT_TOLERANCE_NS]
            hit = truth[min(near, key=lambda s: abs(s - result.stamp_ns))] if near else None
        return hit


def _condition_at(conditions: list[tuple[int, str]], log_ns: int) -> str | None:
    """The newest condition tag recorded at or before ``log_ns`` (receive time)."""
    index = bisect.bisect_right(conditions, (log_ns, "\U0010ffff"))
    return conditions[index - 1][1] if index else None

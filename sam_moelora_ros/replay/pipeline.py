"""Offline replay: bag messages in stamp order through the node's decoders, Synchronizer, Segmenter.

One path with the node (docs/design.md): :mod:`sam_moelora_ros.pipeline.assembly` is what the node
itself uses to configure its :class:`~sam_moelora_ros.sync.Synchronizer` from its parameters
(:func:`node_params.build_config`), to decode each sensor's message with the same reference sizes
(:class:`~frame_assembly.SensorDecoders`) and to pick a frame's model inputs; the same
:class:`~sam_moelora_ros.inference.Segmenter` segments. Replay pushes in stamp order with
``now = stamp`` (what :mod:`sync` documents for replay), so a run is deterministic: two runs give
the same frames. The live-vs-offline ROS test checks the two paths give identical labels. No rclpy.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.bag import BagMessage, BagReader, header_stamp_ns
from sam_moelora_ros.inference.segmenter import Segmenter
from sam_moelora_ros.params import build_config
from sam_moelora_ros.pipeline.assembly import SensorDecoders, frame_inputs, sync_config
from sam_moelora_ros.pipeline.decode import BadMessage, Decoded
from sam_moelora_ros.replay.scenarios import CORRUPT, DROP, Scenario, corrupt_message
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix
from sam_moelora_ros.sync.synchronizer import Frame, Synchronizer
from sam_moelora_ros.synthetic import topics as tp

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


def _transform(tf: Any) -> np.ndarray:
    t, q = tf.transform.translation, tf.transform.rotation
    return extrinsic_matrix([t.x, t.y, t.z, q.x, q.y, q.z, q.w])


def extrinsic_from_tf(transforms: list[Any], camera_frame: str, lidar_frame: str) -> np.ndarray:
    """``T_cam_from_lidar`` from TransformStamped messages (parent -> child chains to a root).

    Raises:
        ValueError: the two frames are not connected by the transforms.
    """
    parent: dict[str, tuple[str, np.ndarray]] = {
        tf.child_frame_id: (tf.header.frame_id, _transform(tf)) for tf in transforms
    }

    def to_root(frame: str) -> tuple[str, np.ndarray]:
        pose, seen = np.eye(4), {frame}
        while frame in parent:
            frame, step = parent[frame][0], parent[frame][1]
            pose = step @ pose
            if frame in seen:
                break
            seen.add(frame)
        return frame, pose

    cam_root, root_from_cam = to_root(camera_frame)
    lidar_root, root_from_lidar = to_root(lidar_frame)
    if cam_root != lidar_root:
        raise ValueError(f"no transform chain between {camera_frame!r} and {lidar_frame!r}")
    return np.linalg.inv(root_from_cam) @ root_from_lidar


def bag_extrinsic(reader: BagReader, topics: Mapping[str, str], default: np.ndarray) -> np.ndarray:
    """The LiDAR->camera extrinsic the bag's ``/tf_static`` gives, else ``default``.

    Frames come from the first CameraInfo and the first LiDAR cloud, so the live node can be
    given the same ``lidar.extrinsic`` parameter the offline replay uses.
    """
    wanted = [
        topics[r] for r in ("tf_static", "camera_info", "lidar") if topics[r] in reader.topics
    ]
    if len(wanted) < 3:
        return default
    found: dict[str, Any] = {}
    for rec in reader.messages(wanted, order="log"):
        if rec.msg is not None and rec.topic not in found:
            found[rec.topic] = rec.msg
        if len(found) == 3:
            break
    if len(found) < 3:
        return default
    camera_frame = found[topics["camera_info"]].header.frame_id
    lidar_frame = found[topics["lidar"]].header.frame_id
    try:
        return extrinsic_from_tf(
            list(found[topics["tf_static"]].transforms), camera_frame, lidar_frame
        )
    except ValueError:
        return default


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
    """

    def __init__(
        self,
        segmenter: Segmenter,
        topics: Mapping[str, str] | None = None,
        scenario: Scenario | None = None,
        node_params: Mapping[str, Any] | None = None,
        ground_truth: Any = "topic",
    ) -> None:
        self.segmenter = segmenter
        self.topics = {**DEFAULT_TOPICS, **(topics or {})}
        self.scenario = scenario or Scenario()
        self.params = dict(node_params or {})
        self.ground_truth = ground_truth
        self.log = ReplayLog()
        self.sync: Synchronizer | None = None

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
        if self.ground_truth == "topic":
            required.append(self.topics["labels"])
        if "lidar" in sensors:
            required.append(self.topics["camera_info"])
        return sensors, list(dict.fromkeys(required))

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
        sensors, required = self.needed_topics(reader, explicit_topics or set())
        reader.require(required)
        enabled = {f"sensors.{n}.enabled": n in sensors for n in MODALITIES}
        cfg = build_config({**self.params, **enabled})
        extrinsic = bag_extrinsic(reader, self.topics, cfg.extrinsic)
        decoders = SensorDecoders(cfg, extrinsic)
        self.sync = sync = Synchronizer(sync_config(cfg))
        by_topic = {t: n for n, t in sensors.items()}
        extra = [self.topics[r] for r in ("camera_info", "labels", "condition")]
        read = [*sensors.values(), *(t for t in extra if t in reader.topics)]
        start_ns = reader.start_ns
        truth: dict[int, np.ndarray] = {}
        conditions: list[tuple[int, str]] = []
        pending: list[FrameResult] = []
        anchor_index: dict[int, int] = {}
        emitted = 0
        log = self.log

        def finalise(upto_ns: int | None) -> Iterator[FrameResult]:
            while pending and (upto_ns is None or pending[0].stamp_ns < upto_ns - SETTLE_NS):
                result = pending.pop(0)
                result.ground_truth = self._truth(result, truth, anchor_index)
                result.condition = _condition_at(conditions, result.log_ns)
                yield result
            for stamp in [s for s in truth if upto_ns is not None and s < upto_ns - 4 * SETTLE_NS]:
                del truth[stamp]

        for rec in reader.messages(read):
            if on_message is not None:
                on_message(rec)
            log.messages[rec.topic] = log.messages.get(rec.topic, 0) + 1
            frames: list[Frame] = []
            if rec.topic == self.topics["labels"] and self.ground_truth == "topic":
                self._store_truth(rec, truth)
            elif rec.topic == self.topics["condition"]:
                if rec.msg is not None:
                    conditions.append((rec.log_ns, str(rec.msg.data)))
            elif rec.topic == self.topics["camera_info"]:
                try:
                    decoders.camera_info(rec.msg)
                except (BadMessage, AttributeError) as exc:
                    reason = str(exc) if rec.msg else (rec.error or "undecodable")
                    log.reject("camera_info", rec.stamp_ns, reason)
            elif rec.topic in by_topic:
                frames = self._push(
                    rec, by_topic[rec.topic], decoders, sync, start_ns, anchor_index
                )
            for frame in frames:
                if max_frames is not None and emitted >= max_frames:
                    break
                emitted += 1
                pending.append(self._segment(frame))
            yield from finalise(rec.stamp_ns)
            if max_frames is not None and emitted >= max_frames:
                break
        else:
            for frame in sync.flush():
                if max_frames is None or emitted < max_frames:
                    emitted += 1
                    pending.append(self._segment(frame))
        yield from finalise(None)

    def _push(
        self,
        rec: BagMessage,
        sensor: str,
        decoders: SensorDecoders,
        sync: Synchronizer,
        start_ns: int,
        anchor_index: dict[int, int],
    ) -> list[Frame]:
        log = self.log
        if sensor == sync.config.anchor:
            anchor_index.setdefault(rec.stamp_ns, len(anchor_index))
            log.anchor_messages += 1
        action = self.scenario.action(sensor, (rec.stamp_ns - start_ns) * 1e-9)
        if action == DROP:
            log.dropped_by_scenario[sensor] = log.dropped_by_scenario.get(sensor, 0) + 1
            return sync.poll(rec.stamp_s)
        msg = rec.msg
        if action == CORRUPT and msg is not None:
            log.corrupted_by_scenario[sensor] = log.corrupted_by_scenario.get(sensor, 0) + 1
            msg = corrupt_message(msg)
        start = time.perf_counter()
        try:
            decoded = decoders.decode_and_accept(sensor, msg)
        except BadMessage as exc:
            reason = f"{exc}" + (f" ({rec.error})" if rec.error else "")
            log.reject(sensor, rec.stamp_ns, reason)
            return sync.poll(rec.stamp_s)
        except Exception as exc:  # as the node: one message never stops the replay
            log.reject(sensor, rec.stamp_ns, f"{type(exc).__name__}: {exc}")
            return sync.poll(rec.stamp_s)
        finally:
            log.decode_s += time.perf_counter() - start
        decoded = _Stamped(decoded.image, decoded.header, rec.log_ns)
        return sync.push(sensor, rec.stamp_s, decoded, rec.stamp_s)

    def _segment(self, frame: Frame) -> FrameResult:
        """As the node's ``InferenceWorker``: the present modalities, anchor's size."""
        present, images, anchor = frame_inputs(frame, self.segmenter.modalities)
        result = self.segmenter(images, anchor.size_hw)
        return FrameResult(
            stamp_ns=header_stamp_ns(anchor) or round(frame.stamp * 1e9),
            anchor=frame.anchor,
            present=present,
            absent={k: str(v) for k, v in frame.absent.items()},
            labels=result.labels,
            confidence=result.confidence,
            rgb=images.get("rgb"),
            header=anchor.header,
            router=dict(result.router_weights),
            inference_s=result.inference_s,
            wait_s=frame.wait_s,
            forced=frame.forced,
            log_ns=getattr(anchor, "log_ns", 0),
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


@dataclass(frozen=True)
class _Stamped(Decoded):
    """A decoded message plus the bag receive time of its record (for condition lookup)."""

    log_ns: int = 0


def _condition_at(conditions: list[tuple[int, str]], log_ns: int) -> str | None:
    """The newest condition tag recorded at or before ``log_ns`` (receive time)."""
    index = bisect.bisect_right(conditions, (log_ns, "\U0010ffff"))
    return conditions[index - 1][1] if index else None

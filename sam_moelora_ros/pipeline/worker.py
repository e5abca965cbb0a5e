"""The inference worker: frames in from the executor thread, label images out. No rclpy.

Why a thread of its own: subscription callbacks must stay fast (milliseconds) while a frame takes
tens of ms to seconds to segment, so frames (of admitted, not yet decoded messages: see
``admission``) are handed over through
:class:`~.runtime.LatestSlots` (a queue of one per camera, latest wins, replacements counted as
drops) and one worker segments them; the frames of several cameras pending together share one
batched forward pass. So a slow model never delays message handling, the labels are always for
the newest frame, and memory does not grow with the input rate. The worker decodes the messages
of the frames it takes (:func:`prepare_frame`, which offline replay runs too), so a frame that is
dropped costs no decode.

Why here and not in the node: what the worker does with a frame (which header the labels carry,
the order of the outputs, the statistics and router-weight history /diagnostics report, how a
failing frame is counted) is policy, and kept pure it is tested without DDS. The node hands in
one :class:`CameraOutput` per camera (its :class:`~.ports.FramePort`: where the images go and
whom to tell of a message its decode rejects), its message class and its clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sam_moelora_ros.pipeline.admission import DecodeProblem, Pending, decode_frame
from sam_moelora_ros.pipeline.assembly import frame_inputs
from sam_moelora_ros.pipeline.decode import Decoded
from sam_moelora_ros.pipeline.diagnostics import Report, inference_report
from sam_moelora_ros.pipeline.labelled_cloud import CloudDecoded, label_cloud
from sam_moelora_ros.pipeline.outputs import (
    colorize,
    compressed_labels,
    encode_outputs,
    label_camera_info,
)
from sam_moelora_ros.pipeline.ports import FramePort
from sam_moelora_ros.pipeline.runtime import FramePresence, InferenceStats, LatestSlots, Throttle
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync.synchronizer import Frame
from sam_moelora_ros.sync.track import SyncStatus

if TYPE_CHECKING:
    from sam_moelora_ros.inference.segmenter import Segmentation, Segmenter
    from sam_moelora_ros.pipeline.decode import Camera

ROUTER_WINDOW = 30
"""Frames over which /diagnostics averages the router weight of each modality."""
WARN_PERIOD_S = 5.0
"""At most one "inference failed" warning per this many seconds (the rest are counted)."""
WARM_SIZE_HW = (480, 640)
"""The blank frame the worker thread segments before its first real one (`_warm_this_thread`)."""
OUTPUT_KEYS = ("labels", "labels_color", "confidence")
"""The Image keys ``publish`` is called with (the node's ``~/<key>`` topics)."""
CAMERA_INFO, COMPRESSED = "labels/camera_info", "labels/compressed"
LABELLED_CLOUD = "lidar/labelled"
"""The other keys: ``~/labels/camera_info`` (CameraInfo), ``~/labels/compressed``
(CompressedImage), ``~/lidar/labelled`` (PointCloud2); ``message_types`` names their classes."""

_log = logging.getLogger(__name__)


@dataclass
class OutputOptions:
    """The output options that may change at run time (``ros2 param set output.*``)."""

    color: bool
    color_alpha: float
    confidence: bool
    labels_compressed: bool = False


class RouterHistory:
    """Each modality's router weight averaged over the last ``window`` segmented frames.

    A modality absent from a frame has no weight in it and is averaged over the frames that had
    it (the router renormalises over present modalities), so a sensor that comes back is not
    reported diluted by the frames it missed.
    """

    def __init__(self, window: int = ROUTER_WINDOW) -> None:
        self._weights: deque[dict[str, float]] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, weights: Mapping[str, float]) -> None:
        with self._lock:
            self._weights.append(dict(weights))

    def means(self) -> dict[str, float]:
        with self._lock:
            history = list(self._weights)
        sums: dict[str, list[float]] = {}
        for weights in history:
            for name, weight in weights.items():
                sums.setdefault(name, []).append(weight)
        return {name: sum(v) / len(v) for name, v in sums.items()}


def output_header(frame: Frame, camera: Camera | None) -> Any:
    """The header the labels carry: the anchor's, in the camera's frame for LiDAR/event anchors.

    LiDAR and event images were rendered into the camera, so their labels are pixels of the
    camera's image plane and say so (stamp of the anchor, ``frame_id`` of the camera: camera_info's,
    else that of the frame's RGB or depth image; the anchor's own only when neither is known).
    """
    header = frame.messages[frame.anchor].header
    if frame.anchor not in ("lidar", "event"):
        return header
    camera_frame = camera.frame_id if camera is not None else ""
    for name in ("rgb", "depth"):
        if not camera_frame and name in frame.present:
            camera_frame = str(frame.messages[name].header.frame_id)
    if camera_frame:
        return plain_header(int(header.stamp.sec), int(header.stamp.nanosec), camera_frame)
    return header


def frame_camera(frame: Frame) -> Camera | None:
    """The camera model the frame's messages were admitted with (the anchor's first)."""
    entries = [frame.messages[frame.anchor], *frame.messages.values()]
    for entry in entries:
        if isinstance(entry, Pending) and entry.camera is not None:
            return entry.camera
    return None


class PreparedFrame(NamedTuple):
    """A frame decoded for the model: the decoded frame, its inputs, anchor and camera."""

    frame: Frame
    present: tuple[str, ...]
    images: dict[str, np.ndarray]
    anchor: Decoded
    camera: Camera | None


def prepare_frame(
    frame: Frame, modalities: Sequence[str]
) -> tuple[PreparedFrame | None, list[DecodeProblem]]:
    """Decode a released frame's messages and pick the model's inputs (node and replay alike).

    None (with the problems) when the anchor's message failed its decode: there is nothing to
    label. Other failing messages leave the frame (``absent``: ``rejected``).
    """
    camera = frame_camera(frame)
    decoded, problems = decode_frame(frame)
    if decoded is None:
        return None, problems
    present, images, anchor = frame_inputs(decoded, modalities)
    return PreparedFrame(decoded, present, images, anchor, camera), problems


@dataclass
class CameraOutput:
    """One camera's share of the worker: where its images go and what /diagnostics says of it.

    Args:
        name: the camera group (``""`` in a node with one camera).
        port: the camera's host (:class:`~.ports.FramePort`): ``publish(key, message)`` with
            ``key`` one of :data:`OUTPUT_KEYS` and the other keys, ``decode_problems``.
    """

    name: str
    port: FramePort
    router_window: int = ROUTER_WINDOW

    def __post_init__(self) -> None:
        self.stats = InferenceStats()
        self.router = RouterHistory(self.router_window)
        self.presence = FramePresence()


class InferenceWorker:
    """Segment submitted frames on one thread and publish their images; keep the statistics.

    One worker serves every camera of a node (one loaded model): each camera has its own
    latest-wins slot, and the frames pending when the worker wakes (the frames ready together)
    are segmented in one batched forward pass (:meth:`Segmenter.segment_batch`), then each
    camera's images go to its own publishers.

    Args:
        segmenter: the model.
        palette: ``num_classes x 3`` uint8 colours of ``labels_color``.
        outputs: one :class:`CameraOutput` per camera (a node without ``cameras``: one, named
            ``""``).
        image_type: the Image message class to build (None: plain namespaces).
        clock: the clock ``Frame.arrival_s`` was taken on (latencies are differences of it).
        options: read for every frame, so run-time changes apply to the next one.
        message_types: the classes of the other outputs by key (:data:`CAMERA_INFO`,
            :data:`COMPRESSED`, :data:`LABELLED_CLOUD`); a key left out is not published.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        palette: np.ndarray,
        outputs: Sequence[CameraOutput],
        image_type: Any,
        clock: Callable[[], float],
        options: OutputOptions,
        message_types: Mapping[str, Any] | None = None,
    ) -> None:
        if not outputs:
            raise ValueError("InferenceWorker needs at least one CameraOutput")
        self.outputs = {output.name: output for output in outputs}
        if len(self.outputs) != len(outputs):
            raise ValueError(f"camera names repeat: {[o.name for o in outputs]}")
        self.segmenter = segmenter
        self.palette = palette
        self.options = options
        self._image_type = image_type
        self._types = dict(message_types or {})
        self._clock = clock
        self.slots: LatestSlots[str, Frame] = LatestSlots()
        self._throttle = Throttle(WARN_PERIOD_S)
        self._thread: threading.Thread | None = None
        self.warmed_on: int | None = None
        """The thread ident :meth:`_warm_this_thread` ran on (None before it has)."""
        dtype = str(segmenter.dtype).removeprefix("torch.")
        self.device = f"{segmenter.device} {dtype}"

    # ------------------------------------------------------------------ executor side
    def submit(self, frames: Iterable[Frame], camera: str = "") -> None:
        """Hand ``camera``'s frames over (latest wins); each counts in ``frames_in`` and the
        presence."""
        output = self.outputs[camera]
        for frame in frames:
            with output.stats.lock:
                output.stats.frames_in += 1
            output.presence.record(frame.absent)
            self.slots.put(camera, frame)

    def report(self, prefix: str, status: SyncStatus, camera: str = "") -> Report:
        """The ``<prefix>: inference`` diagnostics status of ``camera``, now."""
        output = self.outputs[camera]
        return inference_report(
            prefix,
            output.stats,
            output.router.means(),
            self.slots.dropped[camera],
            self.device,
            status,
            self._clock(),
        )

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="inference", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking frames; wait for the frames in hand (at most ``timeout_s``)."""
        self.slots.close()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        self._warm_this_thread()
        while not self.slots.closed:
            pending = self.slots.take(timeout=0.2)
            if pending:
                self.process_batch(pending)

    def _warm_this_thread(self) -> None:
        """One blank frame with every modality, on the worker thread, before any real frame.

        Why: the Segmenter is warmed up where it is built (a passing thread, see
        ``inference.passing_thread.on_passing_thread``), but torch's OpenMP pool and the
        allocator's arena are per thread, so the worker's first real frames would pay for
        creating them (docs/design.md, "The Segmenter's measured choices"). A failure is logged
        and ignored: the real frames report their own errors.
        """
        blank = np.zeros((*WARM_SIZE_HW, 3), dtype=np.uint8)
        try:
            self.segmenter({m: blank for m in self.segmenter.modalities}, WARM_SIZE_HW)
        except Exception as exc:  # never keeps the worker from starting
            _log.warning(f"inference worker warm-up failed: {type(exc).__name__}: {exc}")
        self.warmed_on = threading.get_ident()

    def process(self, frame: Frame, camera: str = "") -> bool:
        """Segment and publish one frame; a failure is counted and logged, never raised.

        Returns whether the frame was published. Runs on the worker thread (tests call it
        directly: it is the whole of what the thread does with one camera's frame).
        """
        return self.process_batch({camera: frame})[camera]

    def process_batch(self, frames: Mapping[str, Frame]) -> dict[str, bool]:
        """Decode one frame per camera (:func:`prepare_frame`), segment them in one batched
        forward pass, then publish each camera's images (every camera's labels first, then the
        colour and confidence images).

        A message that fails its decode is reported to its camera's port (``decode_problems``:
        the node counts it as a rejection of its sensor); a frame whose anchor failed is not
        segmented. A failing batch is retried frame by frame, so one camera's bad frame costs the
        others nothing; each failure is counted on its camera and logged (throttled), never
        raised. Returns camera -> whether its frame was published.
        """
        started = self._clock()
        prepared: dict[str, PreparedFrame] = {}
        for camera, frame in frames.items():
            ready = self._prepare(camera, frame)
            if ready is not None:
                prepared[camera] = ready
        published = self._segment_and_publish(prepared, started, self._clock())
        return {camera: camera in published for camera in frames}

    def _prepare(self, camera: str, frame: Frame) -> PreparedFrame | None:
        """The frame decoded, its problems reported; None when there is nothing to segment."""
        try:
            ready, problems = prepare_frame(frame, self.segmenter.modalities)
        except Exception as exc:  # a failing frame must not end the worker
            self._failed(camera, exc)
            return None
        if problems:
            try:
                self.outputs[camera].port.decode_problems(problems)
            except Exception as exc:
                _log.warning(f"reporting decode problems failed: {type(exc).__name__}: {exc}")
        return ready

    def _segment_and_publish(
        self, prepared: Mapping[str, PreparedFrame], started: float, decoded: float
    ) -> set[str]:
        """Segment the prepared frames together and publish; the cameras that published."""
        if not prepared:
            return set()
        try:
            results = self.segmenter.segment_batch(
                [p.images for p in prepared.values()],
                [p.anchor.size_hw for p in prepared.values()],
            )
        except Exception as exc:  # a failing frame must not end the worker
            if len(prepared) == 1:
                (camera,) = prepared
                self._failed(camera, exc)
                return set()
            return {
                c
                for c, p in prepared.items()
                if self._segment_and_publish({c: p}, started, decoded)
            }
        segmented = self._clock()
        done = dict(zip(prepared, results, strict=True))
        headers = {c: output_header(p.frame, p.camera) for c, p in prepared.items()}
        published: dict[str, float] = {}
        for camera in prepared:  # class ids first: their consumers need no colour
            labels = encode_outputs(done[camera].labels, headers[camera], self._image_type)
            try:
                self.outputs[camera].port.publish("labels", labels["labels"])
            except Exception as exc:  # a failed publish must not end the worker either
                self._failed(camera, exc)
                continue
            published[camera] = self._clock()
        for camera in list(published):
            ready = prepared[camera]
            try:
                self._publish_camera_info(camera, ready.camera, headers[camera], done[camera])
                self._publish_extras(camera, headers[camera], done[camera], ready.images.get("rgb"))
                self._publish_labelled_cloud(camera, ready.frame, done[camera])
            except Exception as exc:
                self._failed(camera, exc)
                published.pop(camera)
        for camera, at in published.items():
            frame = prepared[camera].frame
            times = (started, decoded, segmented, at)
            self._record(camera, frame, done[camera], times, len(prepared))
        return set(published)

    def _publish_camera_info(
        self, camera: str, model: Camera | None, header: Any, result: Segmentation
    ) -> None:
        """``labels/camera_info``: the frame's CameraInfo with the labels' header and size."""
        info = None if model is None else model.msg
        if info is None or not self._wanted(camera, CAMERA_INFO):
            return
        size_hw = (int(result.labels.shape[0]), int(result.labels.shape[1]))
        msg = label_camera_info(info, header, size_hw, self._types[CAMERA_INFO])
        self.outputs[camera].port.publish(CAMERA_INFO, msg)

    def _publish_labelled_cloud(self, camera: str, frame: Frame, result: Segmentation) -> None:
        """``lidar/labelled``: the frame's cloud with each point's label and confidence."""
        entry = frame.messages.get("lidar") if "lidar" in frame.present else None
        if not isinstance(entry, CloudDecoded) or entry.source is None:
            return
        if not self._wanted(camera, LABELLED_CLOUD):
            return
        src = entry.source
        cloud = label_cloud(
            src.cloud,
            src.camera,
            src.T_cam_from_lidar,
            result.labels,
            result.confidence,
            self._types[LABELLED_CLOUD],
            hits=src.hits,
        )
        self.outputs[camera].port.publish(LABELLED_CLOUD, cloud)

    def _publish_extras(
        self, camera: str, header: Any, result: Segmentation, rgb: np.ndarray | None
    ) -> None:
        """``labels_color``, ``confidence`` and ``labels/compressed`` when the options ask."""
        out = self.options
        if out.labels_compressed and self._wanted(camera, COMPRESSED):
            msg = compressed_labels(result.labels, header, self._types[COMPRESSED])
            self.outputs[camera].port.publish(COMPRESSED, msg)
        want_color = out.color and self._wanted(camera, "labels_color")
        want_confidence = out.confidence and self._wanted(camera, "confidence")
        if not (want_color or want_confidence):
            return
        color = colorize(result.labels, self.palette, rgb, out.color_alpha) if want_color else None
        extras = encode_outputs(
            result.labels,
            header,
            self._image_type,
            color=color,
            confidence=result.confidence if want_confidence else None,
            include_labels=False,
        )
        for key, msg in extras.items():
            self.outputs[camera].port.publish(key, msg)

    def _wanted(self, camera: str, key: str) -> bool:
        """``key`` is published by this worker (an Image key, or one with a class in
        ``message_types``) and ``camera``'s port has someone for it (:meth:`FramePort.wants`)."""
        if key not in OUTPUT_KEYS and key not in self._types:
            return False
        return self.outputs[camera].port.wants(key)

    def _record(
        self,
        camera: str,
        frame: Frame,
        result: Segmentation,
        times: tuple[float, float, float, float],
        batch: int,
    ) -> None:
        """The frame's statistics; ``times``: the worker started it, had decoded its batch,
        had segmented it, had published its labels (the worker's clock)."""
        started, decoded, segmented, published = times
        output = self.outputs[camera]
        latency = published - frame.arrival_s
        with output.stats.lock:
            stats = output.stats
            stats.frames_out += 1
            stats.consecutive_failures = 0
            stats.last_modalities = result.modalities
            stats.last_anchor = frame.anchor
            stats.last_latency_s = latency
            stats.max_latency_s = max(stats.max_latency_s, latency)
            stats.last_inference_s = result.inference_s
            stats.last_wait_s = started - frame.arrival_s
            stats.last_decode_s = decoded - started
            stats.last_publish_s = published - segmented
            stats.last_batch_size = batch
        output.router.add(result.router_weights)

    def _failed(self, camera: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        stats = self.outputs[camera].stats
        with stats.lock:
            stats.failed(error, self._clock())
        allowed, suppressed = self._throttle.allow("inference", time.monotonic())
        if allowed:
            more = f" ({suppressed} similar suppressed)" if suppressed else ""
            where = f" (camera {camera})" if camera else ""
            _log.warning(f"inference failed{where}: {error}{more}")

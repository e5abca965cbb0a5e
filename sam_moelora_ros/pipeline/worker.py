"""The inference worker: frames in from the executor thread, label images out. No rclpy.

Why a thread of its own: subscription callbacks must stay fast (milliseconds) while a frame takes
tens of ms to seconds to segment, so frames are handed over through a
:class:`~.runtime.LatestSlot` (a queue of one, latest wins, replacements counted as drops) and one
worker segments them. So a slow model never delays message handling, the labels are always for
the newest frame, and memory does not grow with the input rate.

Why here and not in the node: what the worker does with a frame (which header the labels carry,
the order of the outputs, the statistics and router-weight history /diagnostics report, how a
failing frame is counted) is policy, and kept pure it is tested without DDS. The node hands in
how to publish (``publish(key, message)``), its message class and its clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sam_moelora_ros.pipeline.assembly import frame_inputs
from sam_moelora_ros.pipeline.diagnostics import Report, inference_report
from sam_moelora_ros.pipeline.outputs import colorize, encode_outputs
from sam_moelora_ros.pipeline.runtime import FramePresence, InferenceStats, LatestSlot, Throttle
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync.synchronizer import Frame
from sam_moelora_ros.sync.track import SyncStatus

if TYPE_CHECKING:
    import numpy as np

    from sam_moelora_ros.inference.segmenter import Segmenter
    from sam_moelora_ros.pipeline.decode import Camera

ROUTER_WINDOW = 30
"""Frames over which /diagnostics averages the router weight of each modality."""
WARN_PERIOD_S = 5.0
"""At most one "inference failed" warning per this many seconds (the rest are counted)."""
OUTPUT_KEYS = ("labels", "labels_color", "confidence")
"""The keys ``publish`` is called with (the node's ``~/<key>`` topics)."""

_log = logging.getLogger(__name__)


@dataclass
class OutputOptions:
    """The output options that may change at run time (``ros2 param set output.*``)."""

    color: bool
    color_alpha: float
    confidence: bool


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


class InferenceWorker:
    """Segment submitted frames on one thread and publish their images; keep the statistics.

    Args:
        segmenter: the model.
        palette: ``num_classes x 3`` uint8 colours of ``labels_color``.
        publish: ``publish(key, message)`` with ``key`` one of :data:`OUTPUT_KEYS`.
        image_type: the Image message class to build (None: plain namespaces).
        clock: the clock ``Frame.arrival_s`` was taken on (latencies are differences of it).
        options: read for every frame, so run-time changes apply to the next one.
        camera: the latest CameraInfo (for the header of LiDAR/event-anchored labels).
        router_window: frames averaged in the router-weight report.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        palette: np.ndarray,
        publish: Callable[[str, Any], None],
        image_type: Any,
        clock: Callable[[], float],
        options: OutputOptions,
        camera: Callable[[], Camera | None] = lambda: None,
        router_window: int = ROUTER_WINDOW,
    ) -> None:
        self.segmenter = segmenter
        self.palette = palette
        self.options = options
        self._publish = publish
        self._image_type = image_type
        self._clock = clock
        self._camera = camera
        self.slot: LatestSlot[Frame] = LatestSlot()
        self.stats = InferenceStats()
        self.router = RouterHistory(router_window)
        self.presence = FramePresence()
        self._throttle = Throttle(WARN_PERIOD_S)
        self._thread: threading.Thread | None = None
        dtype = str(segmenter.dtype).removeprefix("torch.")
        self.device = f"{segmenter.device} {dtype}"

    # ------------------------------------------------------------------ executor side
    def submit(self, frames: Iterable[Frame]) -> None:
        """Hand frames over (latest wins); every frame counts in ``frames_in`` and the presence."""
        for frame in frames:
            with self.stats.lock:
                self.stats.frames_in += 1
            self.presence.record(frame.absent)
            self.slot.put(frame)

    def report(self, prefix: str, status: SyncStatus) -> Report:
        """The ``<prefix>: inference`` diagnostics status, now."""
        return inference_report(
            prefix,
            self.stats,
            self.router.means(),
            self.slot.dropped,
            self.device,
            status,
            self._clock(),
        )

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="inference", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking frames; wait for the frame in hand (at most ``timeout_s``)."""
        self.slot.close()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self.slot.closed:
            frame = self.slot.get(timeout=0.2)
            if frame is not None:
                self.process(frame)

    def process(self, frame: Frame) -> bool:
        """Segment and publish one frame; a failure is counted and logged, never raised.

        Returns whether the frame was published. Runs on the worker thread (tests call it
        directly: it is the whole of what the thread does with a frame).
        """
        try:
            self._segment_and_publish(frame)
        except Exception as exc:  # a failing frame must not end the worker
            error = f"{type(exc).__name__}: {exc}"
            with self.stats.lock:
                self.stats.failed(error, self._clock())
            allowed, suppressed = self._throttle.allow("inference", time.monotonic())
            if allowed:
                more = f" ({suppressed} similar suppressed)" if suppressed else ""
                _log.warning(f"inference failed: {error}{more}")
            return False
        return True

    def _segment_and_publish(self, frame: Frame) -> None:
        started = self._clock()
        _, images, anchor = frame_inputs(frame, self.segmenter.modalities)
        result = self.segmenter(images, anchor.size_hw)
        segmented = self._clock()
        header = output_header(frame, self._camera())
        # Class ids first: their consumers should not wait for the colour blend.
        labels = encode_outputs(result.labels, header, self._image_type)["labels"]
        self._publish("labels", labels)
        published = self._clock()
        out = self.options
        if out.color or out.confidence:
            color = None
            if out.color:
                color = colorize(result.labels, self.palette, images.get("rgb"), out.color_alpha)
            extras = encode_outputs(
                result.labels,
                header,
                self._image_type,
                color=color,
                confidence=result.confidence if out.confidence else None,
                include_labels=False,
            )
            for key, msg in extras.items():
                self._publish(key, msg)
        latency = published - frame.arrival_s
        with self.stats.lock:
            stats = self.stats
            stats.frames_out += 1
            stats.consecutive_failures = 0
            stats.last_modalities = result.modalities
            stats.last_anchor = frame.anchor
            stats.last_latency_s = latency
            stats.max_latency_s = max(stats.max_latency_s, latency)
            stats.last_inference_s = result.inference_s
            stats.last_wait_s = started - frame.arrival_s
            stats.last_publish_s = published - segmented
        self.router.add(result.router_weights)

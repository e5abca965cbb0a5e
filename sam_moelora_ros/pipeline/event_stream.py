"""Event packets -> one event image per frame: the time window ending at the anchor's stamp.

Why: event drivers publish many small messages (``event_camera_msgs/EventPacket`` about every
millisecond, stamped at their first event; ``dvs_msgs/EventArray`` likewise), not one per
camera frame. The synchroniser sees each packet as an event "message" (so the event sensor's
liveness, tolerance and waits work unchanged: a frame waits until a packet at or after its
stamp arrived, i.e. until every event up to the anchor is in), while the events themselves go
into one :class:`~sam_moelora_ros.sensors.event_window.EventWindow`. When the synchroniser
releases a frame, :meth:`EventStream.cut` copies ``[anchor - window, anchor]`` out of it (on the
executor thread: cheap), and :func:`render_cut` renders that with the event-cloud representation
(``sensors.events``), the rule the synthetic training data uses for its event frames, on the
inference worker for the frames it segments.

Alignment: events are pixel-aligned with the camera when the sensor's width x height equal the
camera's. Another size is an error unless ``scale_to_camera``: then the image is rendered at the
sensor's own size and resized to the camera's with nearest neighbour (as the dataset readers
resize DELIVER's smaller event frames), which needs the same aspect ratio (and field of view).

Memory is bounded: the window keeps ``window + KEEP_MARGIN_S`` of events (room for an anchor
that arrives that much later than the events of its time) and at most ``limits.max_events``
(default :data:`MAX_EVENTS`); one packet declaring more is refused before its events are made.
Events outside the sensor's width x height are dropped and counted (``EventSlice.outside``, then
``events_outside_sensor`` on /diagnostics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from sam_moelora_ros.pipeline.decode import BadMessage, Decoded, check_aspect
from sam_moelora_ros.pipeline.kinds import EVENT_PACKET
from sam_moelora_ros.sensors.encodings import Encoding
from sam_moelora_ros.sensors.event_packets import (
    EventPacketDecoder,
    EventPacketError,
    Events,
    events_from_dvs_array,
    inside_sensor,
)
from sam_moelora_ros.sensors.event_window import EventWindow
from sam_moelora_ros.sensors.limits import DEFAULT_LIMITS, MAX_EVENTS, Limits
from sam_moelora_ros.sensors.representation import encode_events

KEEP_MARGIN_S = 0.25
"""Events are kept this long beyond the window, for anchors that arrive late."""
__all__ = [
    "KEEP_MARGIN_S",
    "MAX_EVENTS",
    "EventCut",
    "EventSlice",
    "EventStream",
    "render_cut",
]
_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)
_NO_IMAGE.setflags(write=False)


@dataclass(frozen=True)
class EventSlice(Decoded):
    """An event packet taken into the window: its image is made when its frame is released.

    ``image`` is empty until :meth:`EventStream.render` filled it (``pending`` says which);
    ``events``: how many events the packet held; ``outside``: how many it held outside the
    sensor (dropped).
    """

    events: int = 0
    cut: EventCut | None = None
    """The frame's events once the synchroniser released it (rendered on the worker)."""

    @property
    def pending(self) -> bool:
        return self.image.size == 0


class EventStream:
    """One event sensor's packets, decoded in order into a time window (not thread-safe).

    Args:
        encoding: the event input encoding (``frame`` or ``voxel``, with its ``window`` in
            seconds; the model's, see ``sensors.encodings``).
        scale_to_camera: accept a sensor of another size than the camera (same aspect ratio).
        limits: ``max_events`` bounds one packet and the events held (oldest dropped first).
    """

    def __init__(
        self,
        encoding: Encoding,
        scale_to_camera: bool = False,
        limits: Limits = DEFAULT_LIMITS,
    ):
        window_s = float(encoding["window"])
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_ns = round(window_s * 1e9)
        self.encoding = encoding
        self.scale_to_camera = scale_to_camera
        self.sensor_hw: tuple[int, int] | None = None
        self.limits = limits
        self._decoder = EventPacketDecoder("header", limits)
        self._window = EventWindow(
            self.window_ns,
            keep_ns=self.window_ns + int(KEEP_MARGIN_S * 1e9),
            max_events=limits.max_events,
        )

    @property
    def lost_packets(self) -> int:
        """Gaps in the EventPacket ``seq`` numbers seen so far."""
        return self._decoder.lost_packets

    def _sensor_size(self, msg: Any, camera_hw: tuple[int, int]) -> tuple[int, int]:
        hw = (int(msg.height), int(msg.width))
        if hw[0] <= 0 or hw[1] <= 0:  # some dvs drivers leave the size 0: the camera's
            return camera_hw
        if hw != camera_hw:
            if not self.scale_to_camera:
                raise BadMessage(
                    f"event camera is {hw[1]}x{hw[0]} but the camera is {camera_hw[1]}x"
                    f"{camera_hw[0]}: events must be pixel-aligned with the camera; set "
                    "sensors.event.scale_to_camera: true if both see the same field of view"
                )
            check_aspect(hw, camera_hw, "event")
        return hw

    def add(self, msg: Any, kind: str, camera_hw: tuple[int, int] | None) -> EventSlice:
        """Decode one EventPacket (``kind`` :data:`EVENT_PACKET`) or dvs EventArray into the
        window; raises :class:`BadMessage` (no camera size yet, misaligned, undecodable)."""
        if camera_hw is None:
            raise BadMessage(
                "event packet arrived before the camera size is known (no camera_info, no "
                "camera image)"
            )
        hw = self._sensor_size(msg, camera_hw)
        try:
            outside = 0
            if kind == EVENT_PACKET:
                events = self._decoder.decode(msg)
                outside = self._decoder.last_outside
            else:
                events = events_from_dvs_array(msg, self.limits)
        except (EventPacketError, ValueError, AttributeError) as exc:
            raise BadMessage(f"event packet: {exc}") from exc
        events, beyond = inside_sensor(events, hw[1], hw[0])
        outside += beyond
        if self.sensor_hw is not None and hw != self.sensor_hw:
            self._window.clear()  # another sensor size: the old events do not fit the new one
        self.sensor_hw = hw
        self._window.add(events)
        return EventSlice(
            image=_NO_IMAGE, header=msg.header, events=int(events.t.size), outside=outside
        )

    def cut(self, anchor_ns: int, camera_hw: tuple[int, int]) -> EventCut:
        """The events of ``[anchor_ns - window, anchor_ns]``, copied out of the window.

        Cheap (the events are concatenated, nothing is rendered), so the executor thread cuts
        each released frame's events while the inference worker renders only the frames it
        segments (:func:`render_cut`); the cut owns its arrays, so later packets cannot
        change it.
        """
        return EventCut(
            self._window.window(int(anchor_ns)),
            int(anchor_ns),
            self.window_ns,
            self.sensor_hw or tuple(camera_hw),  # type: ignore[arg-type]
            (int(camera_hw[0]), int(camera_hw[1])),
            self.encoding,
        )

    def render(self, anchor_ns: int, camera_hw: tuple[int, int]) -> np.ndarray:
        """The network image of the events in ``[anchor_ns - window, anchor_ns]``, camera size.

        No event in the window gives an all-zero frame (or a flat 128 voxel grid): the sensor
        is alive and saw no change, which is information too.
        """
        return render_cut(self.cut(anchor_ns, camera_hw))


@dataclass(frozen=True)
class EventCut:
    """One frame's events and what rendering them needs (:meth:`EventStream.cut`)."""

    events: Events
    anchor_ns: int
    window_ns: int
    sensor_hw: tuple[int, int]
    camera_hw: tuple[int, int]
    encoding: Encoding


def render_cut(cut: EventCut) -> np.ndarray:
    """The network image of a cut: rendered at the sensor's size, resized to the camera's."""
    ev, hw = cut.events, cut.sensor_hw
    start = cut.anchor_ns - cut.window_ns
    t = ev.t - start  # small integers: the voxel bins are exact
    image = encode_events(
        ev.x, ev.y, t, ev.p, hw, cut.encoding, t_range=(0.0, float(cut.window_ns))
    )
    if tuple(hw) != tuple(cut.camera_hw):
        size = (int(cut.camera_hw[1]), int(cut.camera_hw[0]))
        image = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST_EXACT)
    return image

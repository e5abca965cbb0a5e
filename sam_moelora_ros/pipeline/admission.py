"""A message's two steps: admitted on arrival (cheap checks), decoded when its frame is segmented.

Why two steps: the node's subscriptions deliver every message, but the inference worker segments
only the newest frame it can take (latest wins), so on a loaded robot most frames are dropped
before they are segmented. Decoding every message on arrival (LiDAR projection, depth and event
rendering, JPEG decode) spent most of the executor thread's time on frames nobody looked at.
So on arrival the executor thread only *admits* a message: it checks what is cheap to check
(its kind, header, declared sizes against the decode budgets, the format of a compressed image,
that the camera needed to project it is known) and keeps it raw, as a :class:`Pending`, with a
snapshot of everything its decode will need (the camera model, the reference size, the LiDAR
extrinsic at its arrival). The synchroniser holds these. The worker then decodes the entries of
the one frame it takes (:func:`decode_frame`), from the snapshot alone, so the decode reads no
state the executor thread changes meanwhile and gives the same image whenever it runs: offline
replay, which decodes every frame, gets the node's labels.

A message that fails its full decode is dropped from its frame (``Absence.REJECTED``) and
reported, with its reason, to whoever reads :class:`DecodeProblem` (the node's /diagnostics
rejection count of that sensor; replay's log); a failing anchor loses the frame.

Event packets are the exception: every packet's events must enter the sensor's time window in
order, so packets are decoded on arrival as before (``event_stream``); what is deferred is the
rendering of a frame's window (:class:`~.event_stream.EventCut`). No rclpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from sam_moelora_ros.pipeline.decode import (
    BadMessage,
    Camera,
    Decoded,
    decode_depth,
    decode_event_cloud,
    decode_event_image,
    decode_lidar,
    decode_rgb,
)
from sam_moelora_ros.pipeline.event_stream import EventSlice, render_cut
from sam_moelora_ros.pipeline.kinds import CLOUD
from sam_moelora_ros.pipeline.labelled_cloud import CloudDecoded, LidarSource
from sam_moelora_ros.sensors.encodings import Encoding
from sam_moelora_ros.sensors.limits import Limits
from sam_moelora_ros.sync.synchronizer import Absence, Frame

__all__ = ["DecodeProblem", "DecodeSettings", "Pending", "decode_entry", "decode_frame"]

_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)
_NO_IMAGE.setflags(write=False)


@dataclass(frozen=True)
class DecodeSettings:
    """What every decode of one camera group reads: fixed when its decoders are made."""

    encodings: Mapping[str, Encoding]
    limits: Limits
    lidar_labelled: bool


@dataclass(frozen=True)
class Pending(Decoded):
    """An admitted message, not decoded yet; its ``image`` is empty until :func:`decode_entry`.

    ``declared_hw``: the size the message declares (images; None for clouds);
    ``reference_hw``, ``camera``, ``extrinsic``: the decoders' state when it arrived.
    """

    sensor: str = ""
    kind: str = ""
    msg: Any = None
    settings: DecodeSettings | None = None
    declared_hw: tuple[int, int] | None = None
    reference_hw: tuple[int, int] | None = None
    camera: Camera | None = None
    extrinsic: np.ndarray | None = None

    @classmethod
    def of(cls, msg: Any, sensor: str, kind: str, settings: DecodeSettings, **snapshot: Any) -> Any:
        """``msg`` admitted as ``sensor``'s ``kind``, with the decoders' ``snapshot``."""
        return cls(
            _NO_IMAGE, msg.header, sensor=sensor, kind=kind, msg=msg, settings=settings, **snapshot
        )


class DecodeProblem(NamedTuple):
    """What a frame's decode found wrong with one of its messages (``decode_frame``).

    ``reason``: why the message was rejected (None: decoded); ``outside``: events it held
    outside the camera image (an event cloud's; dropped and counted, as on arrival for packets).
    """

    sensor: str
    header: Any
    reason: str | None
    outside: int = 0


def decode_entry(entry: Decoded) -> Decoded:
    """The network image of one synchroniser entry (decoded entries pass through unchanged).

    Raises :class:`~.decode.BadMessage` (or whatever a codec raises) for a message its full
    decode refuses. Reads only the entry: safe on any thread.
    """
    if isinstance(entry, EventSlice):
        if entry.pending and entry.cut is not None:
            return replace(entry, image=render_cut(entry.cut), cut=None)
        return entry
    if not isinstance(entry, Pending):
        return entry
    msg, settings = entry.msg, entry.settings
    assert settings is not None, "a Pending entry is made with its settings"
    limits, encodings = settings.limits, settings.encodings
    if entry.sensor == "rgb":
        return decode_rgb(msg, entry.reference_hw, limits)
    if entry.sensor == "depth":
        return decode_depth(msg, entry.reference_hw, limits, encoding=encodings["depth"])
    if entry.sensor == "lidar":
        T = entry.extrinsic
        assert T is not None, "a lidar entry is admitted with its extrinsic"
        decoded = decode_lidar(msg, entry.camera, T, limits, encoding=encodings["lidar"])
        if not settings.lidar_labelled or entry.camera is None:
            return decoded
        # ~/lidar/labelled reads the labels back at the points projected with this camera/T
        source = LidarSource(msg, entry.camera, T, decoded.hits)
        return CloudDecoded(decoded.image, decoded.header, source=source)
    if entry.kind == CLOUD:
        return decode_event_cloud(msg, entry.reference_hw, encodings["event"], limits)
    return decode_event_image(msg, entry.reference_hw, limits)


def decode_frame(frame: Frame) -> tuple[Frame | None, list[DecodeProblem]]:
    """``frame`` with every entry decoded, and what went wrong; None when the anchor failed.

    A sensor whose message fails its decode leaves the frame (``absent``: ``rejected``), so the
    model segments the frame without it, as if it had not arrived. Never raises.
    """
    messages, absent = dict(frame.messages), dict(frame.absent)
    stamps = dict(frame.stamps)
    problems: list[DecodeProblem] = []
    for name, entry in frame.messages.items():
        try:
            decoded = decode_entry(entry)
        except BadMessage as exc:
            reason = str(exc)
        except Exception as exc:  # one message never takes the worker down
            reason = f"{type(exc).__name__}: {exc}"
        else:
            messages[name] = decoded
            if decoded.outside and not isinstance(decoded, EventSlice):
                problems.append(DecodeProblem(name, entry.header, None, decoded.outside))
            continue
        problems.append(DecodeProblem(name, entry.header, reason))
        if name == frame.anchor:
            return None, problems
        del messages[name], stamps[name]
        absent[name] = Absence.REJECTED
    return replace(frame, messages=messages, stamps=stamps, absent=absent), problems

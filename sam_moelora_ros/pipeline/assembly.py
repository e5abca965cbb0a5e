"""Frame assembly shared by the node and offline replay: sync config, per-sensor decoding, inputs.

Why a module of its own: docs/design.md keeps one code path from messages to frames, in the node and
in bag replay, but the node (:mod:`sam_moelora_ros.ros`) imports rclpy and replay must run without
it. So the small amount of wiring that decides *how* frames are assembled lives here, pure (no
rclpy, no torch), and both the node's camera channels
(:class:`~sam_moelora_ros.ros.camera_channel.CameraChannel`) and
:mod:`sam_moelora_ros.replay.pipeline` use it:

* :func:`sync_config` turns the node's typed parameters
  (:class:`~sam_moelora_ros.params.NodeConfig`) into the
  :class:`~sam_moelora_ros.sync.SyncConfig` of its synchroniser;
* :class:`SensorDecoders` decodes each sensor's message into its network image with the
  reference size the node uses (RGB against camera_info; depth and event images against the
  camera: camera_info, else the last RGB, else the last depth image; LiDAR projected with K),
  whatever supported type the message has (:data:`SUPPORTED_TYPES`), and renders event packets
  into the frames the synchroniser releases (:meth:`SensorDecoders.complete`);
* :func:`frame_inputs` picks, from a synchronised frame, the images the model is given.

What stays in the node: subscriptions, QoS, the receive clock, warnings and diagnostics, tf2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.params import NodeConfig
from sam_moelora_ros.pipeline.admission import DecodeSettings, Pending, decode_entry
from sam_moelora_ros.pipeline.decode import (
    DEPTH_ENCODINGS,
    BadMessage,
    Camera,
    Decoded,
    check_aspect,
    decode_camera_info,
    is_compressed,
)
from sam_moelora_ros.pipeline.event_stream import EventSlice, EventStream
from sam_moelora_ros.pipeline.kinds import CLOUD as CLOUD_KIND
from sam_moelora_ros.pipeline.kinds import (
    COMPRESSED,
    EVENT_ARRAY,
    EVENT_PACKET,
    SUPPORTED_TYPES,
    kind_of,
)
from sam_moelora_ros.pipeline.kinds import IMAGE as IMAGE_KIND
from sam_moelora_ros.sensors.compressed import CompressedImageError, compressed_size
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT
from sam_moelora_ros.sensors.image import image_size
from sam_moelora_ros.sensors.limits import Limits
from sam_moelora_ros.sync.synchronizer import Frame, SensorSpec, SyncConfig

__all__ = [
    "CLOUD",
    "IMAGE",
    "SUPPORTED_TYPES",
    "SYNC_MAX_BUFFER",
    "SensorDecoders",
    "frame_inputs",
    "sync_config",
]

SYNC_MAX_BUFFER = 8
"""Messages kept per sensor by the synchroniser (bounds memory: decoded images are held)."""

IMAGE, CLOUD = IMAGE_KIND, CLOUD_KIND
"""Message kinds: ``sensor_msgs/Image`` and ``sensor_msgs/PointCloud2`` (see ``kinds`` for all)."""
_ACCEPTS: dict[str, tuple[str, ...]] = {
    "rgb": (IMAGE_KIND, COMPRESSED),
    "depth": (IMAGE_KIND, COMPRESSED),
    "event": (IMAGE_KIND, COMPRESSED, CLOUD_KIND, EVENT_PACKET, EVENT_ARRAY),
    "lidar": (CLOUD_KIND,),
}
"""Sensor -> the message kinds its decoder takes (the kinds of :data:`SUPPORTED_TYPES`)."""


def sync_config(cfg: NodeConfig) -> SyncConfig:
    """The synchroniser configuration the node's parameters describe (all four sensors listed,
    disabled ones with ``enabled=False``, so diagnostics can report them as disabled)."""
    sensors = tuple(
        SensorSpec(
            name=s.name,
            tolerance_s=s.tolerance,
            max_wait_s=s.max_wait,
            stale_timeout_s=s.stale_timeout,
            enabled=s.enabled,
        )
        for s in (cfg.sensors[n] for n in MODALITIES)
    )
    return SyncConfig(
        sensors=sensors,
        anchor=cfg.anchor,
        fallback_anchors=cfg.fallback_anchors,
        anchor_timeout_s=cfg.anchor_timeout,
        max_buffer=SYNC_MAX_BUFFER,
    )


class SensorDecoders:
    """Admit and decode sensor messages as the node does; holds the camera model and last sizes.

    The one entry point for every supported message of a sensor: :meth:`admit` dispatches on
    the message's fields (:func:`~.kinds.kind_of`), so it takes rclpy messages, rosbags
    dataclasses and plain namespaces of any type in :data:`SUPPORTED_TYPES` -- Image and
    CompressedImage (``format``) for rgb, depth and event frames; PointCloud2 for lidar and
    event clouds; EventPacket (``encoding``, ``events`` bytes, ``time_base``) and dvs
    EventArray (an ``events`` list) for event packets. Check a topic's type once with
    :func:`~.kinds.check_type` (replay before reading, the node at discovery); a message of a
    kind its sensor cannot take is a :class:`BadMessage` here.

    Two steps (``admission``'s docstring says why): :meth:`admit` runs the cheap checks on
    arrival and returns a :class:`~.admission.Pending` holding the raw message and a snapshot of
    the camera, reference size and extrinsic; the synchroniser holds it; :meth:`release` cuts
    the events of each released frame; :func:`~.admission.decode_frame` (the inference worker)
    does the full decode. :meth:`decode` is both steps at once, for one message.

    Event packets: :meth:`admit` adds the packet's events to the sensor's
    :class:`~.event_stream.EventStream` and returns an :class:`~.event_stream.EventSlice` with
    no image yet; :meth:`release` gives each released frame the events of
    ``sensors.event.window`` seconds up to the anchor's stamp, rendered when the frame is
    decoded (:meth:`complete` renders them at once). Do not make event packets an anchor
    (``fallback_anchors``): each packet would be a frame.

    Args:
        cfg: the node's parameters (encodings, limits, event window, scale_to_camera).
        extrinsic: ``T_cam_from_lidar`` (4x4), or a callable ``cloud message -> 4x4`` (the node
            looks it up in tf2 per cloud when configured to), called on admission.

    :meth:`admit` does not record the image size: the node records it only for messages it
    accepts (also after the stamp check), via :meth:`accept`; :meth:`decode_and_accept` does both.
    Not thread-safe: admit, accept and release on one thread (the node's executor thread).
    """

    def __init__(
        self, cfg: NodeConfig, extrinsic: np.ndarray | Callable[[Any], np.ndarray]
    ) -> None:
        self.cfg = cfg
        self._extrinsic = extrinsic
        self.camera: Camera | None = None
        self.last_size: dict[str, tuple[int, int]] = {}
        self.limits = cfg.limits
        self.settings = DecodeSettings(cfg.encodings, cfg.limits, cfg.lidar_labelled)
        event = cfg.encodings["event"]
        self.events = EventStream(
            event if event.live else DEFAULT_CONTRACT["event"],
            cfg.event_scale_to_camera,
            cfg.limits,
        )

    def camera_size(self) -> tuple[int, int] | None:
        return None if self.camera is None else (self.camera.height, self.camera.width)

    def reference_size(self) -> tuple[int, int] | None:
        """The camera's size: camera_info when known, else the last RGB (or depth) image."""
        return self.camera_size() or self.last_size.get("rgb") or self.last_size.get("depth")

    def camera_info(self, msg: Any) -> Camera:
        """Decode and keep a CameraInfo; raises :class:`BadMessage` (the camera is kept)."""
        self.camera = decode_camera_info(msg, self.limits)
        return self.camera

    def extrinsic(self, msg: Any) -> np.ndarray:
        T = self._extrinsic(msg) if callable(self._extrinsic) else self._extrinsic
        return np.asarray(T, dtype=np.float64)

    def admit(self, sensor: str, msg: Any) -> Decoded:
        """``sensor``'s message, checked cheaply and kept raw with its decode's snapshot.

        Raises :class:`BadMessage` for what can be told without decoding: the wrong kind, an
        image whose fields or header are unusable, over a budget or of the wrong aspect ratio, a
        cloud over ``limits.max_points`` or before the camera it needs is known.
        """
        if sensor not in _ACCEPTS:
            raise ValueError(f"unknown sensor {sensor!r} (known: {', '.join(MODALITIES)})")
        if msg is None:
            raise BadMessage(f"{sensor} message could not be deserialised")
        kind = kind_of(msg)
        if kind not in _ACCEPTS[sensor]:
            name = getattr(msg, "__msgtype__", None) or type(msg).__name__
            raise BadMessage(
                f"the {sensor} sensor cannot take a {name} message ({kind or 'unknown kind'}); "
                f"it takes {', '.join(SUPPORTED_TYPES[sensor])}"
            )
        settings = self.settings
        if kind in (EVENT_PACKET, EVENT_ARRAY):
            return self.events.add(msg, kind, self.reference_size())
        if sensor == "lidar":
            if self.camera is None:
                raise BadMessage(
                    "lidar cloud arrived but no camera_info has been received (needed for K)"
                )
            _check_cloud(msg, "lidar cloud", self.limits.check_points)
            T = self.extrinsic(msg)
            return Pending.of(msg, sensor, kind, settings, camera=self.camera, extrinsic=T)
        if kind == CLOUD_KIND:
            reference = self.reference_size()
            if reference is None:
                raise BadMessage(
                    "event cloud arrived before the image size is known (no camera_info, no "
                    "camera image)"
                )
            _check_cloud(msg, "event cloud", self.limits.check_events)
            return Pending.of(msg, sensor, kind, settings, reference_hw=reference)
        reference = self.camera_size() if sensor == "rgb" else self.reference_size()
        declared = declared_size(msg, sensor, self.limits)
        check_aspect(declared, reference, sensor)
        return Pending.of(msg, sensor, kind, settings, declared_hw=declared, reference_hw=reference)

    def decode(self, sensor: str, msg: Any) -> Decoded:
        """``sensor``'s message -> its network image at once (:meth:`admit`, then its decode);
        raises :class:`BadMessage` when unusable."""
        return decode_entry(self.admit(sensor, msg))

    def accept(self, sensor: str, decoded: Decoded) -> None:
        """Record an accepted message's size (the reference for depth and event images)."""
        if isinstance(decoded, Pending):
            if decoded.declared_hw is not None:
                self.last_size[sensor] = decoded.declared_hw
        elif not isinstance(decoded, EventSlice):
            self.last_size[sensor] = decoded.size_hw

    def decode_and_accept(self, sensor: str, msg: Any) -> Decoded:
        decoded = self.decode(sensor, msg)
        self.accept(sensor, decoded)
        return decoded

    def release(self, frames: Sequence[Frame]) -> list[Frame]:
        """The synchroniser's released frames, each event-packet entry given its events.

        A frame whose event entry is an :class:`~.event_stream.EventSlice` gets the events
        within ``sensors.event.window`` before its anchor's header stamp (the anchor packet's
        own stamp when event packets anchor the frame), cut now (later packets cannot change
        them) and rendered by the frame's decode. Other frames pass unchanged.
        """
        out = []
        for frame in frames:
            entry = frame.messages.get("event")
            if isinstance(entry, EventSlice) and entry.pending and entry.cut is None:
                size = self.reference_size() or self.events.sensor_hw
                if size is None:  # cannot happen: a packet is only accepted with a size
                    raise RuntimeError("event packets accepted before any camera size")
                anchor = frame.messages[frame.anchor]
                cut = self.events.cut(_stamp_ns(anchor.header, frame.stamp), size)
                frame = replace(
                    frame, messages={**frame.messages, "event": replace(entry, cut=cut)}
                )
            out.append(frame)
        return out

    def complete(self, frames: Sequence[Frame]) -> list[Frame]:
        """:meth:`release`, with the event images rendered at once (frames decoded otherwise)."""
        out = []
        for frame in self.release(frames):
            entry = frame.messages.get("event")
            if isinstance(entry, EventSlice):
                frame = replace(frame, messages={**frame.messages, "event": decode_entry(entry)})
            out.append(frame)
        return out


def declared_size(msg: Any, sensor: str, limits: Limits) -> tuple[int, int]:
    """The ``(height, width)`` an Image or CompressedImage of ``sensor`` declares, its fields
    and header checked (nothing decoded); raises :class:`BadMessage`."""
    if is_compressed(msg):
        fmt = str(msg.format)
        if sensor != "depth" and "compressedDepth" in fmt:
            raise BadMessage(
                f"{sensor} image: CompressedImage format {fmt!r} is a compressedDepth depth "
                f"image; remap the {sensor} topic to the camera's colour stream"
            )
        try:
            return compressed_size(msg, limits)
        except CompressedImageError as exc:
            raise BadMessage(f"{sensor} image: {exc}") from exc
    if sensor == "depth" and str(msg.encoding) not in DEPTH_ENCODINGS:
        raise BadMessage(
            f"depth image encoding {msg.encoding!r} is not one of {list(DEPTH_ENCODINGS)}"
        )
    if int(msg.height) <= 0 or int(msg.width) <= 0:
        raise BadMessage(f"{sensor} image is empty ({msg.height}x{msg.width})")
    try:
        return image_size(msg, limits)
    except ValueError as exc:  # LimitError is one
        raise BadMessage(
            f"{sensor} image ({msg.encoding}, {msg.height}x{msg.width}): {exc}"
        ) from exc


def _check_cloud(msg: Any, what: str, budget: Callable[[str, int], None]) -> None:
    count = int(msg.width) * int(msg.height)
    if count == 0:
        raise BadMessage(f"{what} is empty")
    try:
        budget(what, count)
    except ValueError as exc:
        raise BadMessage(f"{what}: {exc}") from exc


def _stamp_ns(header: Any, fallback_s: float) -> int:
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return round(fallback_s * 1e9)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def frame_inputs(
    frame: Frame, modalities: Sequence[str]
) -> tuple[tuple[str, ...], dict[str, np.ndarray], Decoded]:
    """(modalities present that the model knows, their images, the anchor's decoded message).

    The labels are produced at the anchor's size and carry its header.
    """
    present = tuple(n for n in frame.present if n in modalities)
    images = {n: frame.messages[n].image for n in present}
    pending = [
        n for n in present if isinstance(frame.messages[n], EventSlice) and not images[n].size
    ]
    if pending:
        raise ValueError(
            f"frame holds event packets not rendered yet ({pending}): pass the synchroniser's "
            "frames through SensorDecoders.complete() first"
        )
    return present, images, frame.messages[frame.anchor]

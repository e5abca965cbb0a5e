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
from sam_moelora_ros.pipeline.decode import (
    BadMessage,
    Camera,
    Decoded,
    decode_camera_info,
    decode_depth,
    decode_event_cloud,
    decode_event_image,
    decode_lidar,
    decode_rgb,
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
from sam_moelora_ros.pipeline.labelled_cloud import CloudDecoded, LidarSource
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT
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
    """Decode sensor messages as the node does; holds the camera model and last image sizes.

    The one entry point for every supported message of a sensor: :meth:`decode` dispatches on
    the message's fields (:func:`~.kinds.kind_of`), so it takes rclpy messages, rosbags
    dataclasses and plain namespaces of any type in :data:`SUPPORTED_TYPES` -- Image and
    CompressedImage (``format``) for rgb, depth and event frames; PointCloud2 for lidar and
    event clouds; EventPacket (``encoding``, ``events`` bytes, ``time_base``) and dvs
    EventArray (an ``events`` list) for event packets. Check a topic's type once with
    :func:`~.kinds.check_type` (replay before reading, the node at discovery); a message of a
    kind its sensor cannot take is a :class:`BadMessage` here.

    Event packets: :meth:`decode` adds the packet's events to the sensor's
    :class:`~.event_stream.EventStream` and returns an :class:`~.event_stream.EventSlice` with
    no image yet, which is what the synchroniser holds; pass every frame it releases through
    :meth:`complete` (``SensorIntake`` and replay do), which renders the events of
    ``sensors.event.window`` seconds up to the anchor's stamp. Do not make event packets an
    anchor (``fallback_anchors``): each packet would be a frame.

    Args:
        cfg: the node's parameters (event representation, window, scale_to_camera).
        extrinsic: ``T_cam_from_lidar`` (4x4), or a callable ``cloud message -> 4x4`` (the node
            looks it up in tf2 per cloud when configured to).

    :meth:`decode` does not record the image size: the node records it only for messages it
    accepts (also after the stamp check), via :meth:`accept`; :meth:`decode_and_accept` does both.
    Not thread-safe: call it from one thread (the node's executor thread).
    """

    def __init__(
        self, cfg: NodeConfig, extrinsic: np.ndarray | Callable[[Any], np.ndarray]
    ) -> None:
        self.cfg = cfg
        self._extrinsic = extrinsic
        self.camera: Camera | None = None
        self.last_size: dict[str, tuple[int, int]] = {}
        self.limits = cfg.limits
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
        return self._extrinsic(msg) if callable(self._extrinsic) else self._extrinsic

    def decode(self, sensor: str, msg: Any) -> Decoded:
        """``sensor``'s message -> its network image; raises :class:`BadMessage` when unusable."""
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
        if sensor == "rgb":
            return decode_rgb(msg, self.camera_size(), self.limits)
        if sensor == "depth":
            return decode_depth(
                msg, self.reference_size(), self.limits, encoding=self.cfg.encodings["depth"]
            )
        if sensor == "lidar":
            T = self.extrinsic(msg)
            decoded = decode_lidar(
                msg, self.camera, T, self.limits, encoding=self.cfg.encodings["lidar"]
            )
            if not self.cfg.lidar_labelled or self.camera is None:
                return decoded
            # ~/lidar/labelled reads the labels back at the points projected with this camera/T
            source = LidarSource(msg, self.camera, np.asarray(T, dtype=np.float64))
            return CloudDecoded(decoded.image, decoded.header, source=source)
        if kind == CLOUD_KIND:
            return decode_event_cloud(
                msg, self.reference_size(), self.cfg.encodings["event"], self.limits
            )
        if kind in (EVENT_PACKET, EVENT_ARRAY):
            return self.events.add(msg, kind, self.reference_size())
        return decode_event_image(msg, self.reference_size(), self.limits)

    def accept(self, sensor: str, decoded: Decoded) -> None:
        """Record an accepted message's size (the reference for depth and event images)."""
        if not isinstance(decoded, EventSlice):
            self.last_size[sensor] = decoded.size_hw

    def decode_and_accept(self, sensor: str, msg: Any) -> Decoded:
        decoded = self.decode(sensor, msg)
        self.accept(sensor, decoded)
        return decoded

    def complete(self, frames: Sequence[Frame]) -> list[Frame]:
        """The synchroniser's released frames, with their event packets rendered.

        A frame whose event entry is an :class:`~.event_stream.EventSlice` gets the image of
        the events within ``sensors.event.window`` before its anchor's header stamp (the anchor
        packet's own stamp when event packets anchor the frame). Other frames pass unchanged.
        """
        out = []
        for frame in frames:
            entry = frame.messages.get("event")
            if isinstance(entry, EventSlice) and entry.pending:
                size = self.reference_size() or self.events.sensor_hw
                if size is None:  # cannot happen: a packet is only accepted with a size
                    raise RuntimeError("event packets accepted before any camera size")
                anchor = frame.messages[frame.anchor]
                image = self.events.render(_stamp_ns(anchor.header, frame.stamp), size)
                messages = {**frame.messages, "event": replace(entry, image=image)}
                frame = replace(frame, messages=messages)
            out.append(frame)
        return out


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

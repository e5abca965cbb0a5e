"""What the node's subscription callbacks do with a message: decode, check, count, push. No rclpy.

Why here and not in the node: bad input must never kill the node, and every way a message can be
bad (an unusable message, an exception from a codec, a stamp that went backwards) has to end as a
throttled warning and a /diagnostics count. That is policy worth a unit test, so it lives in pure
code; the node only passes each message and its receive time in.

Warnings go to the ``sam_moelora_ros`` logger (the node forwards it to its ROS logger), at most
one per sensor and kind of problem per :data:`WARN_PERIOD_S`, with the suppressed count.
Everything here runs on one thread (the node's executor thread), as :class:`SensorDecoders`
requires.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.pipeline.assembly import SensorDecoders
from sam_moelora_ros.pipeline.decode import BadMessage, stamp_seconds
from sam_moelora_ros.pipeline.runtime import SensorHealth, Throttle
from sam_moelora_ros.sync.synchronizer import Frame, Synchronizer

WARN_PERIOD_S = 5.0
"""At most one warning per sensor and kind of problem per this many seconds."""

_log = logging.getLogger(__name__)


class SensorIntake:
    """Sensor messages in (with their receive time), frames out to ``submit``.

    Args:
        decoders: the node's decoders (they also hold the camera model from camera_info).
        sync: the synchroniser the decoded messages are pushed into.
        submit: called with the frames each push or poll releases (the inference worker's).
        sensors: the sensors that get a :class:`SensorHealth` (reported on /diagnostics).
    """

    def __init__(
        self,
        decoders: SensorDecoders,
        sync: Synchronizer,
        submit: Callable[[list[Frame]], None],
        sensors: Iterable[str] = MODALITIES,
        warn_period_s: float = WARN_PERIOD_S,
    ) -> None:
        self.decoders = decoders
        self.sync = sync
        self._submit = submit
        self.health = {name: SensorHealth(name) for name in sensors}
        self.camera_health = SensorHealth("camera_info")
        self._newest: dict[str, float] = {}
        self._throttle = Throttle(warn_period_s)

    def warn(self, key: str, text: str) -> None:
        """Log ``text`` unless ``key`` warned within the period; say how many were suppressed."""
        allowed, suppressed = self._throttle.allow(key, time.monotonic())
        if allowed:
            more = f" ({suppressed} similar suppressed)" if suppressed else ""
            _log.warning(f"{text}{more}")

    def _reject(self, health: SensorHealth, reason: str, now_s: float) -> None:
        """Count a bad message and warn, throttled per sensor and kind of problem."""
        health.reject(reason, now_s)
        kind = re.sub(r"[-+0-9.e]+", "#", reason)[:80]  # numbers vary; the problem does not
        self.warn(f"{health.name}:{kind}", f"rejected {health.name} message: {reason}")

    def sensor(self, name: str, msg: Any, now_s: float) -> None:
        """One message of sensor ``name`` received at ``now_s``; never raises."""
        health = self.health[name]
        try:
            decoded = self.decoders.decode(name, msg)
            stamp = stamp_seconds(msg.header)
        except BadMessage as exc:
            self._reject(health, str(exc), now_s)
            return
        except Exception as exc:  # never let one message take the node down
            self._reject(health, f"{type(exc).__name__}: {exc}", now_s)
            return
        last = self._newest.get(name)
        if last is not None and stamp < last:
            self.warn(
                f"{name}_stamp",
                f"{name} stamp went backwards ({last:.3f} -> {stamp:.3f} s); the synchroniser "
                "reorders small steps, drops stale ones and resets on big jumps",
            )
            health.reject(f"stamp went backwards ({last:.3f} -> {stamp:.3f} s)", now_s)
        self._newest[name] = stamp
        health.ok()
        outside = decoded.outside
        if outside:  # events beyond the sensor (packet or cloud): dropped, never silently
            note = f"dropped {outside} events outside the sensor in the last message"
            health.drop("events_outside_sensor", outside, note, now_s)
            self.warn(f"{name}:outside", f"{name}: {note} (corrupt packets or a wrong size?)")
        self.decoders.accept(name, decoded)
        self._release(self.sync.push(name, stamp, decoded, now_s))

    def camera_info(self, msg: Any, now_s: float) -> None:
        """A CameraInfo received at ``now_s`` (the decoders keep the camera); never raises."""
        try:
            self.decoders.camera_info(msg)
        except BadMessage as exc:
            self._reject(self.camera_health, str(exc), now_s)
            return
        except Exception as exc:
            self._reject(self.camera_health, f"{type(exc).__name__}: {exc}", now_s)
            return
        self.camera_health.ok()

    def poll(self, now_s: float) -> None:
        """The poll timer: release frames whose waits ran out."""
        self._release(self.sync.poll(now_s))

    def _release(self, frames: list[Frame]) -> None:
        """Render the frames' event packets (``SensorDecoders.complete``), then submit them."""
        if frames:
            self._submit(self.decoders.complete(frames))

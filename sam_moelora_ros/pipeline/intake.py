"""What the node's subscription callbacks do with a message: admit, check, count, push. No rclpy.

Why here and not in the node: bad input must never kill the node, and every way a message can be
bad (an unusable message, an exception from a codec, a stamp that went backwards) has to end as a
throttled warning and a /diagnostics count. That is policy worth a unit test, so it lives in pure
code; the node only passes each message and its receive time in.

Warnings go to the ``sam_moelora_ros`` logger (the node forwards it to its ROS logger), at most
one per sensor and kind of problem per :data:`WARN_PERIOD_S`, with the suppressed count.
A message is admitted here, not decoded (``admission``'s docstring says why): the full decode
runs on the inference worker for the frames it segments, and what it rejects comes back through
:meth:`SensorIntake.decode_problems`, counted on the sensor the message came from as if it had
been rejected on arrival. Everything else here runs on one thread (the node's executor thread),
as :class:`SensorDecoders` requires.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.pipeline.admission import DecodeProblem
from sam_moelora_ros.pipeline.assembly import SensorDecoders
from sam_moelora_ros.pipeline.decode import BadMessage, stamp_seconds
from sam_moelora_ros.pipeline.ports import FramePort
from sam_moelora_ros.pipeline.runtime import SensorHealth, Throttle
from sam_moelora_ros.sync.synchronizer import Frame, Synchronizer

WARN_PERIOD_S = 5.0
"""At most one warning per sensor and kind of problem per this many seconds."""

_log = logging.getLogger(__name__)


class SensorIntake:
    """Sensor messages in (with their receive time), frames out to the port's ``submit``.

    Args:
        decoders: the node's decoders (they also hold the camera model from camera_info).
        sync: the synchroniser the admitted messages are pushed into.
        port: the host (:class:`~.ports.FramePort`): its clock and where released frames go.
        sensors: the sensors that get a :class:`SensorHealth` (reported on /diagnostics).
    """

    def __init__(
        self,
        decoders: SensorDecoders,
        sync: Synchronizer,
        port: FramePort,
        sensors: Iterable[str] = MODALITIES,
        warn_period_s: float = WARN_PERIOD_S,
    ) -> None:
        self.decoders = decoders
        self.sync = sync
        self.port = port
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

    def sensor(self, name: str, msg: Any, now_s: float | None = None) -> bool:
        """One message of sensor ``name`` received at ``now_s`` (default: the port's clock);
        never raises. Returns whether it was admitted (pushed into the synchroniser)."""
        now_s = self.port.now() if now_s is None else now_s
        health = self.health[name]
        try:
            decoded = self.decoders.admit(name, msg)
            stamp = stamp_seconds(msg.header)
        except BadMessage as exc:
            self._reject(health, str(exc), now_s)
            return False
        except Exception as exc:  # never let one message take the node down
            self._reject(health, f"{type(exc).__name__}: {exc}", now_s)
            return False
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
        self._outside(name, decoded.outside, now_s)
        self.decoders.accept(name, decoded)
        self._release(self.sync.push(name, stamp, decoded, now_s))
        return True

    def _outside(self, name: str, outside: int, now_s: float) -> None:
        """Events beyond the sensor (a packet's, or a cloud's at its decode): dropped, counted."""
        if outside:
            note = f"dropped {outside} events outside the sensor in the last message"
            self.health[name].drop("events_outside_sensor", outside, note, now_s)
            self.warn(f"{name}:outside", f"{name}: {note} (corrupt packets or a wrong size?)")

    def decode_problems(self, problems: Sequence[DecodeProblem], now_s: float) -> None:
        """What the worker's decode of a frame found (any thread): each rejection is counted on
        its sensor and warned as one on arrival would be; events outside the image likewise."""
        for problem in problems:
            if problem.reason is not None:
                self._reject(self.health[problem.sensor], problem.reason, now_s)
            self._outside(problem.sensor, problem.outside, now_s)

    def camera_info(self, msg: Any, now_s: float | None = None) -> bool:
        """A CameraInfo received at ``now_s`` (the decoders keep the camera); never raises.
        Returns whether it was accepted (a rejected one keeps the camera there was)."""
        now_s = self.port.now() if now_s is None else now_s
        try:
            self.decoders.camera_info(msg)
        except BadMessage as exc:
            self._reject(self.camera_health, str(exc), now_s)
            return False
        except Exception as exc:
            self._reject(self.camera_health, f"{type(exc).__name__}: {exc}", now_s)
            return False
        self.camera_health.ok()
        return True

    def poll(self, now_s: float | None = None) -> None:
        """The poll timer: release frames whose waits ran out."""
        self._release(self.sync.poll(self.port.now() if now_s is None else now_s))

    def flush(self) -> None:
        """Release every frame still held (the end of a bag)."""
        self._release(self.sync.flush())

    def _release(self, frames: list[Frame]) -> None:
        """Cut the frames' events (``SensorDecoders.release``), then submit them."""
        if frames:
            self.port.submit(self.decoders.release(frames))

"""Anchor-driven multi-sensor synchroniser that never stalls because one sensor stopped.

Unlike message_filters' ApproximateTimeSynchronizer (which emits only when *every* input has
a message), each message of the anchor sensor yields exactly one :class:`Frame`, holding for
every other sensor its buffered message nearest in time, or the reason it is absent. The
segmentation router then simply weighs the modalities that are present.

Pure and deterministic: no rclpy, no threads of its own, no wall clock. The caller passes two
times with every call, so tests and bag replay reproduce exact timelines:

* ``stamp_s``: the message's header stamp (the sensor's clock), used for matching.
* ``now_s``: the receive clock (the node's ROS clock; in offline replay, the stamp itself),
  used for waiting, liveness and rates. ``now`` never runs backwards inside: a step back up to
  ``time_jump_s`` is clamped to the latest ``now``; a bigger one resets (see below).

Timing semantics, for an anchor message with stamp ``t`` pushed at ``now = n0``:

1. Match. Sensor ``s`` matches with its buffered message nearest to ``t`` (distances within
   1 ns are a tie, won by the older) provided ``|stamp - t| <= tolerance_s(s)``. A message
   may serve several frames (a 10 Hz LiDAR sits in two frames of a 20 Hz camera).
2. Settled. ``s`` is settled for this frame once any of these holds: it is disabled; it has
   never spoken (``never_seen``); it is stale (silent for more than ``stale_timeout_s(s)`` of
   receive time, or it is an anchor that timed out); it has delivered a stamp ``>= t``
   (nothing nearer can come from an in-order sensor; a message overtaken in transport and
   arriving after the frame left is kept for later frames, not added to that one); or
   ``now >= n0 + max_wait_s(s)`` (the bounded wait is over).
3. Emission. The frame is emitted from the ``push``/``poll`` call in which its last sensor
   settles (so with ``max_wait_s = 0`` or all sensors ahead, from the anchor's own ``push``).
   A message is stored before waits are evaluated, so a sensor arriving exactly at the
   deadline is still used. Pending frames leave in anchor-stamp order (an anchor message
   overtaken within the wait is slotted in before the newer one). ``flush()`` and a pending queue
   longer than ``max_pending`` release frames early, marked ``forced``.
4. Absence reasons, decided at emission (:class:`Absence`):
   ``late``: alive, but nothing within tolerance and it had not reached ``t`` by the deadline
   (it is behind: latency above ``max_wait_s``, or a dropped message);
   ``no_match``: alive and already past ``t``, but no message within tolerance (a gap, a
   clock offset, or a tolerance smaller than the sensor's period allows);
   ``stale``: seen before, silent longer than ``stale_timeout_s`` (or an anchor that timed
   out while a fallback drives frames); it is not waited for, so a dead sensor costs at most
   one ``stale_timeout_s`` of ``late`` frames, then none;
   ``never_seen``: no message since construction (not waited for either);
   ``disabled``: switched off by configuration or :meth:`Synchronizer.set_enabled`.
   A sensor that comes back is live again from its next message and is used in the next frame
   whose anchor stamp it matches.

Anchor fallback: the active anchor is the first enabled member of ``(anchor, *fallback_anchors)``
that spoke within ``anchor_timeout_s`` (at start-up and after a reset every member gets that
long). So when the anchor goes silent, the next alive fallback drives frames from its next
message; the original anchor takes back over with its first message after its return. Messages
of a non-active chain member are ordinary frame members.

Time resets: a stamp more than ``time_jump_s`` older than the same sensor's newest stamp, or a
``now`` more than ``time_jump_s`` behind the latest ``now``, means time went backwards (a bag
looping, a sim clock restarting). Pending frames are flushed (returned, ``forced``), every
buffer is cleared, a warning is logged and ``status().resets`` / ``last_reset_reason`` record
it. Sensors that were alive stay alive (they are waited for again); counters are kept.
Smaller steps back are reordering: inserted in stamp order, or rejected as ``too_old`` past
``max_age_s``. Duplicate stamps keep the first message (``duplicate``). An anchor message not
newer than the last frame that anchor emitted is rejected (``out_of_order``): frames of one
anchor leave strictly in stamp order.

Memory is bounded whatever the input rate: ``max_buffer`` messages and ``max_age_s`` of stamps
per sensor, ``max_pending`` waiting anchors, a fixed number of arrival times for rates.

Callers: the ROS node calls :meth:`Synchronizer.push` from subscriptions, :meth:`poll` from a
timer (so late-sensor deadlines fire without traffic) and :meth:`status` for /diagnostics.
Offline replay pushes in stamp order with ``now_s = stamp`` and calls :meth:`flush` at the end.
Every public method takes an internal lock, so calls from several threads are safe.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .config import SensorSpec, SyncConfig
from .track import SensorStatus, SensorTrack, SyncStatus

__all__ = [
    "Absence",
    "Frame",
    "SensorSpec",
    "SensorStatus",
    "SyncConfig",
    "SyncStatus",
    "Synchronizer",
]

logger = logging.getLogger(__name__)

EPS_S = 1e-9
"""Slack on tolerance and deadline comparisons: ROS time's resolution (1 ns), so stamps that are
exactly ``tolerance_s`` apart in nanoseconds still match after float rounding."""


class Absence(str, Enum):
    """Why a sensor is missing from a frame (compares equal to its string value)."""

    LATE = "late"
    NO_MATCH = "no_match"
    STALE = "stale"
    NEVER_SEEN = "never_seen"
    DISABLED = "disabled"
    REJECTED = "rejected"
    """Matched, but its message failed the full decode on the inference worker."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Frame:
    """One anchor message and, for every other sensor, its match or why it has none.

    ``messages`` and ``stamps`` hold the present sensors (the anchor included) in configured
    order; ``absent`` maps each other sensor to an :class:`Absence`. ``arrival_s`` and
    ``emitted_s`` are receive-clock times of the anchor's push and of the frame's release (their
    difference is the synchronisation latency); ``forced`` marks a frame released before all
    sensors settled (flush, reset, pending overflow).
    """

    anchor: str
    stamp: float
    messages: dict[str, Any]
    stamps: dict[str, float]
    absent: dict[str, Absence]
    arrival_s: float
    emitted_s: float
    forced: bool = False

    @property
    def present(self) -> tuple[str, ...]:
        """The sensors in this frame, in configured order."""
        return tuple(self.messages)

    @property
    def wait_s(self) -> float:
        """How long the anchor waited for the other sensors (receive clock)."""
        return self.emitted_s - self.arrival_s


@dataclass
class _Pending:
    """An anchor message waiting for the other sensors to settle."""

    stamp: float
    seq: int
    anchor: str
    msg: Any
    arrival: float
    key: tuple[float, int] = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.stamp, self.seq)


def _as_seconds(value: Any) -> float:
    """``value`` as a plain float (numpy scalars included); NaN when it is not a number."""
    if isinstance(value, (str, bytes, bool)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _throttled(count: int) -> bool:
    """Log the 1st, 10th, 100th ... occurrence: deterministic throttling without a clock."""
    digits = str(count)
    return digits[0] == "1" and not digits[1:].strip("0")


class Synchronizer:
    """Groups multi-sensor messages into anchor-driven :class:`Frame` s (see module docstring).

    Args:
        config: sensors, anchor chain and bounds; validated on construction.
    """

    def __init__(self, config: SyncConfig) -> None:
        if not isinstance(config, SyncConfig):
            raise ValueError(f"Synchronizer needs a SyncConfig, got {type(config).__name__}")
        self._config = config
        self._lock = threading.Lock()
        self._tracks: dict[str, SensorTrack] = {
            s.name: SensorTrack(s, config.max_buffer, config.max_age_s) for s in config.sensors
        }
        self._active = config.anchor
        self._silent_anchors: frozenset[str] = frozenset()
        self._pending: list[_Pending] = []
        self._seq = 0
        self._last_emitted: dict[str, float] = {}
        self._now: float | None = None
        self._epoch_start: float | None = None
        self._frames_emitted = 0
        self._frames_forced = 0
        self._anchor_switches = 0
        self._resets = 0
        self._last_reset: tuple[str, float | None] | None = None
        self._last_present: tuple[str, ...] = ()

    # ----------------------------------------------------------------------------- public API

    @property
    def config(self) -> SyncConfig:
        """The (immutable) configuration."""
        return self._config

    @property
    def active_anchor(self) -> str:
        """The sensor currently driving frames."""
        with self._lock:
            return self._active

    def push(self, sensor: str, stamp_s: float, msg: Any, now_s: float) -> list[Frame]:
        """Store one message of ``sensor`` and return the frames that became ready.

        Bad data (non-finite stamp, duplicate, too old, disabled sensor) is rejected, counted in
        the sensor's status and logged (throttled); it never raises. An unknown sensor name or a
        non-finite ``now_s`` is a programming error and raises ``ValueError``.
        """
        with self._lock:
            track = self._track(sensor)
            out: list[Frame] = []
            now = self._tick(now_s, out)
            track.received += 1
            stamp = _as_seconds(stamp_s)
            if not math.isfinite(stamp):
                self._reject(track, "invalid_stamp", stamp_s)
            elif not track.enabled:
                self._reject(track, "disabled", stamp)
            else:
                if track.newest is not None and stamp < track.newest - self._config.time_jump_s:
                    self._reset(
                        f"stamp of {sensor!r} jumped back from {track.newest:.3f} s to "
                        f"{stamp:.3f} s",
                        now,
                        out,
                    )
                track.mark_arrival(now)
                is_anchor = self._update_anchor(now) == sensor
                last = self._last_emitted.get(sensor)
                if is_anchor and last is not None and stamp <= last:
                    self._reject(track, "out_of_order", stamp)
                else:
                    reason = track.add(stamp, msg)
                    if reason is not None:
                        self._reject(track, reason, stamp)
                    elif is_anchor:
                        self._enqueue(sensor, stamp, msg, now, out)
            self._advance(now, out)
            return out

    def poll(self, now_s: float) -> list[Frame]:
        """Advance the receive clock: release frames whose waits ran out, update the anchor."""
        with self._lock:
            out: list[Frame] = []
            now = self._tick(now_s, out)
            self._advance(now, out)
            return out

    def flush(self, now_s: float | None = None) -> list[Frame]:
        """Release every pending frame now (``forced``), with what is buffered; e.g. end of a bag.

        ``now_s`` (optional) advances the clock first, so absence reasons reflect that time.
        """
        with self._lock:
            out: list[Frame] = []
            if now_s is not None:
                now = self._tick(now_s, out)
                self._advance(now, out)
            self._flush_pending(out)
            return out

    def reset(self, reason: str = "requested") -> list[Frame]:
        """Flush pending frames and clear all buffers (e.g. on a ROS time-jump callback)."""
        with self._lock:
            out: list[Frame] = []
            self._reset(reason, self._now, out)
            return out

    def set_enabled(self, sensor: str, enabled: bool) -> None:
        """Switch a sensor on or off at run time (a disabled sensor's buffer is dropped).

        Raises ``ValueError`` if that would leave no enabled member of the anchor chain.
        """
        with self._lock:
            track = self._track(sensor)
            if not enabled and sensor in self._config.anchor_chain:
                others = [n for n in self._config.anchor_chain if n != sensor]
                if not any(self._tracks[n].enabled for n in others):
                    raise ValueError(
                        f"set_enabled({sensor!r}, False) would disable the anchor and every "
                        "fallback anchor; enable another anchor first"
                    )
            track.enabled = bool(enabled)
            if not enabled:
                track.stamps.clear()
                track.msgs.clear()

    def status(self, now_s: float | None = None) -> SyncStatus:
        """A snapshot for diagnostics at ``now_s`` (read-only: it triggers no reset or frame)."""
        with self._lock:
            now = self._now if now_s is None or not math.isfinite(now_s) else now_s
            if now is not None and self._now is not None:
                now = max(now, self._now)
            reason, reset_at = self._last_reset if self._last_reset else (None, None)
            window = self._config.rate_window_s
            return SyncStatus(
                now_s=now,
                anchor=self._config.anchor,
                active_anchor=self._active,
                anchor_switches=self._anchor_switches,
                frames_emitted=self._frames_emitted,
                frames_forced=self._frames_forced,
                pending=len(self._pending),
                resets=self._resets,
                last_reset_reason=reason,
                last_reset_now_s=reset_at,
                last_frame_present=self._last_present,
                sensors={
                    n: t.snapshot(now, window, silent=n in self._silent_anchors)
                    for n, t in self._tracks.items()
                },
            )

    # ------------------------------------------------------------------------------ internals

    def _track(self, sensor: str) -> SensorTrack:
        track = self._tracks.get(sensor)
        if track is None:
            known = ", ".join(self._tracks)
            raise ValueError(f"unknown sensor {sensor!r} (known: {known}); add a SensorSpec")
        return track

    def _tick(self, now_s: float, out: list[Frame]) -> float:
        """Validate ``now``, reset on a big step back, clamp a small one; return the clock."""
        now = _as_seconds(now_s)
        if not math.isfinite(now):
            raise ValueError(f"now_s must be a finite number of seconds, got {now_s!r}")
        if self._now is None:
            self._now = self._epoch_start = now
        elif now < self._now - self._config.time_jump_s:
            self._reset(f"clock jumped back from {self._now:.3f} s to {now:.3f} s", now, out)
        elif now > self._now:
            self._now = now
        return self._now

    def _reject(self, track: SensorTrack, reason: str, stamp: object) -> None:
        track.rejected[reason] += 1
        count = track.rejected[reason]
        if _throttled(count):
            logger.warning(
                "sync: rejected %s message of %r (stamp %r); %d so far",
                reason,
                track.spec.name,
                stamp,
                count,
            )

    def _update_anchor(self, now: float) -> str:
        """Pick the first enabled chain member that spoke within ``anchor_timeout_s``."""
        chosen = None
        first_enabled = None
        chain = self._config.anchor_chain
        for name in chain:
            track = self._tracks[name]
            if not track.enabled:
                continue
            first_enabled = first_enabled or name
            ref = track.last_arrival if track.last_arrival is not None else self._epoch_start
            if ref is not None and now - ref <= self._config.anchor_timeout_s:
                chosen = name
                break
        if chosen is None:  # nobody alive: keep the current one while it is enabled
            chosen = self._active if self._tracks[self._active].enabled else first_enabled
        assert chosen is not None  # SyncConfig and set_enabled keep one chain member enabled
        self._silent_anchors = frozenset(chain[: chain.index(chosen)])
        if chosen != self._active:
            self._anchor_switches += 1
            level = logging.INFO if chosen == self._config.anchor else logging.WARNING
            logger.log(level, "sync: anchor %r -> %r at now=%.3f s", self._active, chosen, now)
            self._active = chosen
        return chosen

    def _enqueue(self, sensor: str, stamp: float, msg: Any, now: float, out: list[Frame]) -> None:
        self._seq += 1
        pending = _Pending(stamp, self._seq, sensor, msg, now)
        bisect.insort(self._pending, pending, key=lambda p: p.key)
        while len(self._pending) > self._config.max_pending:
            out.append(self._emit(self._pending.pop(0), now, forced=True))

    def _settled(self, track: SensorTrack, pending: _Pending, now: float) -> bool:
        return (
            not track.enabled
            or not track.seen_ever
            or track.is_stale(now)
            or track.spec.name in self._silent_anchors
            or (track.newest is not None and track.newest >= pending.stamp)
            or now >= pending.arrival + track.spec.max_wait_s - EPS_S
        )

    def _advance(self, now: float, out: list[Frame]) -> None:
        """Update the anchor, then release head frames whose sensors have all settled."""
        self._update_anchor(now)
        while self._pending:
            head = self._pending[0]
            if not all(
                self._settled(t, head, now) for n, t in self._tracks.items() if n != head.anchor
            ):
                break
            out.append(self._emit(self._pending.pop(0), now, forced=False))

    def _flush_pending(self, out: list[Frame]) -> None:
        now = self._now if self._now is not None else 0.0
        while self._pending:
            out.append(self._emit(self._pending.pop(0), now, forced=True))

    def _absence(self, track: SensorTrack, stamp: float, now: float) -> Absence:
        if not track.enabled:
            return Absence.DISABLED
        if not track.seen_ever:
            return Absence.NEVER_SEEN
        if track.is_stale(now) or track.spec.name in self._silent_anchors:
            return Absence.STALE
        if track.newest is not None and track.newest >= stamp:
            return Absence.NO_MATCH
        return Absence.LATE

    def _emit(self, pending: _Pending, now: float, *, forced: bool) -> Frame:
        messages: dict[str, Any] = {}
        stamps: dict[str, float] = {}
        absent: dict[str, Absence] = {}
        for name, track in self._tracks.items():
            if name == pending.anchor:
                messages[name], stamps[name] = pending.msg, pending.stamp
                track.used += 1
                track.last_absence = None
                continue
            hit = None
            if track.enabled:
                hit = track.nearest(pending.stamp, track.spec.tolerance_s, EPS_S)
            if hit is not None:
                stamps[name], messages[name] = hit
                track.used += 1
                track.last_absence = None
            else:
                reason = self._absence(track, pending.stamp, now)
                absent[name] = reason
                track.absent[reason.value] += 1
                track.last_absence = reason.value
        self._last_emitted[pending.anchor] = pending.stamp
        self._frames_emitted += 1
        self._frames_forced += forced
        self._last_present = tuple(messages)
        return Frame(
            anchor=pending.anchor,
            stamp=pending.stamp,
            messages=messages,
            stamps=stamps,
            absent=absent,
            arrival_s=pending.arrival,
            emitted_s=now,
            forced=forced,
        )

    def _reset(self, reason: str, new_now: float | None, out: list[Frame]) -> None:
        """Flush pending frames at the old clock, then clear buffers and restart time."""
        flushed = len(out)
        self._flush_pending(out)
        flushed = len(out) - flushed
        old_now = self._now
        for track in self._tracks.values():
            alive = old_now is not None and track.seen_ever and not track.is_stale(old_now)
            track.clear(keep_alive_at=new_now if alive else None)
        self._last_emitted.clear()
        self._now = self._epoch_start = new_now
        self._resets += 1
        self._last_reset = (reason, new_now)
        logger.warning(
            "sync: time reset (%s); buffers cleared, %d frame(s) flushed", reason, flushed
        )

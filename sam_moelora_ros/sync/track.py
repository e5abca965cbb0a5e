"""Per-sensor bookkeeping of the synchroniser: a bounded stamp-sorted buffer, counters, status.

This is mechanism only (bisect, eviction, counting, rate estimation); the policy of when a frame
is ready and who the anchor is lives in :mod:`.synchronizer`. Keeping it apart keeps each
file readable and lets the status types be imported by diagnostics code on their own.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from .config import SensorSpec

RATE_SAMPLES = 256
"""Arrival times kept per sensor for the rate estimate (bounds memory at kHz rates)."""


@dataclass(frozen=True)
class SensorStatus:
    """One sensor as /diagnostics shows it, at the ``now`` given to ``Synchronizer.status``.

    ``state`` is one of:
    ``ok`` (alive and in the last frame, or no frame decided since it spoke),
    ``missing`` (alive, but the last frame left it out as ``late`` or ``no_match``: a timing,
    clock-offset or tolerance problem), ``stale`` (seen, but silent for longer than its
    ``stale_timeout_s``), ``never_seen`` and ``disabled``.

    Counters are cumulative (they survive resets): ``received`` every push, ``used`` frames that
    included the sensor (one LiDAR message may serve two camera frames), ``dropped`` messages
    pushed out by the ``max_buffer`` bound (a buffer too small for the rate), ``rejected`` per
    reason (``duplicate``, ``too_old``, ``out_of_order``, ``invalid_stamp``, ``disabled``),
    ``absent`` frames that left it out, per :class:`~sam_moelora_ros.sync.Absence` reason.
    ``silence_s`` is the receive time since its last message; ``rate_hz`` counts arrivals
    over the configured ``rate_window_s`` and decays to 0 after it stops.
    """

    name: str
    state: str
    enabled: bool
    rate_hz: float
    last_stamp_s: float | None
    last_arrival_s: float | None
    silence_s: float | None
    received: int
    used: int
    buffered: int
    dropped: int
    reordered: int
    rejected: dict[str, int]
    absent: dict[str, int]


@dataclass(frozen=True)
class SyncStatus:
    """The synchroniser as a whole: anchor, frame counters, resets, and every sensor.

    ``last_reset_reason`` explains the latest buffer reset (e.g. a bag loop);
    ``frames_forced`` counts frames released before every sensor had settled (flush, reset or
    pending overflow); ``sensors`` is keyed by name in configured order.
    """

    now_s: float | None
    anchor: str
    active_anchor: str
    anchor_switches: int
    frames_emitted: int
    frames_forced: int
    pending: int
    resets: int
    last_reset_reason: str | None
    last_reset_now_s: float | None
    last_frame_present: tuple[str, ...]
    sensors: dict[str, SensorStatus]


class SensorTrack:
    """The buffer and counters of one sensor.

    Messages are kept sorted by stamp (reordered arrivals are inserted, not appended) so that
    the nearest match is a bisection. ``newest`` is the largest stamp accepted since the last
    reset, even once that message is evicted, so "has the sensor passed the anchor time" and
    "did its time jump back" stay answerable.
    """

    __slots__ = (
        "absent",
        "arrivals",
        "dropped",
        "enabled",
        "last_absence",
        "last_arrival",
        "max_age_s",
        "max_buffer",
        "msgs",
        "newest",
        "received",
        "rejected",
        "reordered",
        "seen_ever",
        "spec",
        "stamps",
        "used",
    )

    def __init__(self, spec: SensorSpec, max_buffer: int, max_age_s: float) -> None:
        self.spec = spec
        self.enabled = spec.enabled
        self.max_buffer = max_buffer
        self.max_age_s = max_age_s
        self.stamps: list[float] = []
        self.msgs: list[Any] = []
        self.newest: float | None = None
        self.last_arrival: float | None = None
        self.seen_ever = False
        self.arrivals: deque[float] = deque(maxlen=RATE_SAMPLES)
        self.received = 0
        self.used = 0
        self.dropped = 0
        self.reordered = 0
        self.rejected: Counter[str] = Counter()
        self.absent: Counter[str] = Counter()
        self.last_absence: str | None = None

    def mark_arrival(self, now: float) -> None:
        """Record that the sensor spoke at ``now`` (liveness and rate, accepted or not)."""
        self.last_arrival = now
        self.seen_ever = True
        self.arrivals.append(now)

    def add(self, stamp: float, msg: Any) -> str | None:
        """Insert a message in stamp order; return a rejection reason, or None if kept."""
        if self.newest is not None and stamp < self.newest - self.max_age_s:
            return "too_old"
        stamps = self.stamps
        i = bisect.bisect_left(stamps, stamp)
        if i < len(stamps):
            if stamps[i] == stamp:
                return "duplicate"
            self.reordered += 1
            stamps.insert(i, stamp)
            self.msgs.insert(i, msg)
        else:
            stamps.append(stamp)
            self.msgs.append(msg)
            self.newest = stamp if self.newest is None else max(self.newest, stamp)
        self._evict()
        return None

    def _evict(self) -> None:
        """Apply the count bound (counted as drops) and the age bound (normal expiry)."""
        excess = len(self.stamps) - self.max_buffer
        if excess > 0:
            del self.stamps[:excess], self.msgs[:excess]
            self.dropped += excess
        horizon = self.stamps[-1] - self.max_age_s  # the last stamp is the newest
        old = bisect.bisect_left(self.stamps, horizon)
        if old:
            del self.stamps[:old], self.msgs[:old]

    def nearest(self, t: float, tolerance: float, slack: float) -> tuple[float, Any] | None:
        """The buffered message nearest to ``t`` within ``tolerance`` (+ ``slack``).

        Distances within ``slack`` of each other are a tie, and ties go to the older message,
        so the choice does not depend on float rounding of equidistant stamps.
        """
        stamps = self.stamps
        i = bisect.bisect_left(stamps, t)
        limit = tolerance + slack
        older = t - stamps[i - 1] if i > 0 else math.inf
        newer = stamps[i] - t if i < len(stamps) else math.inf
        if older <= limit and older <= newer + slack:
            j = i - 1
        elif newer <= limit:
            j = i
        else:
            return None
        return stamps[j], self.msgs[j]

    def clear(self, *, keep_alive_at: float | None) -> None:
        """Forget buffered messages and time (reset); optionally restart liveness at a time."""
        self.stamps.clear()
        self.msgs.clear()
        self.newest = None
        self.arrivals.clear()
        self.last_absence = None
        self.last_arrival = keep_alive_at

    def rate_hz(self, now: float, window: float) -> float:
        """Messages per second over the arrivals in ``[now - window, now]``.

        ``(n - 1) / (now - first)`` rather than ``(n - 1) / (last - first)`` so the estimate
        decays towards 0 once the sensor stops, instead of freezing at its old value.
        """
        start = now - window
        arr = self.arrivals
        i = bisect.bisect_left(arr, start) if arr and arr[0] < start else 0
        n = len(arr) - i
        if n < 2:
            return 0.0
        span = now - arr[i]
        return (n - 1) / span if span > 0 else 0.0

    def is_stale(self, now: float) -> bool:
        """Seen before but silent longer than ``stale_timeout_s`` (or not since a reset)."""
        if self.last_arrival is None:
            return self.seen_ever
        return now - self.last_arrival > self.spec.stale_timeout_s

    def snapshot(
        self, now: float | None, rate_window_s: float, *, silent: bool = False
    ) -> SensorStatus:
        """Freeze this track into a :class:`SensorStatus` at ``now``.

        ``silent`` marks an anchor that timed out (a fallback drives frames): it reports
        ``stale`` even if its own ``stale_timeout_s`` is longer than the anchor timeout.
        """
        if not self.enabled:
            state = "disabled"
        elif not self.seen_ever:
            state = "never_seen"
        elif now is None or silent or self.is_stale(now):
            state = "stale"
        elif self.last_absence in ("late", "no_match"):
            state = "missing"
        else:
            state = "ok"
        silence = None
        if now is not None and self.last_arrival is not None:
            silence = now - self.last_arrival
        return SensorStatus(
            name=self.spec.name,
            state=state,
            enabled=self.enabled,
            rate_hz=0.0 if now is None else self.rate_hz(now, rate_window_s),
            last_stamp_s=self.newest,
            last_arrival_s=self.last_arrival,
            silence_s=silence,
            received=self.received,
            used=self.used,
            buffered=len(self.stamps),
            dropped=self.dropped,
            reordered=self.reordered,
            rejected=dict(self.rejected),
            absent=dict(self.absent),
        )

"""Small thread-safe pieces the perception node wires together; no rclpy, so they unit-test alone.

* :class:`LatestSlots`: the bounded queue between the executor and the inference worker, one
  slot per camera. A new frame replaces a pending one (latest wins) and the replacement is counted
  as a drop, so memory and latency stay bounded whatever the input rate.
* :class:`Throttle`: at most one warning per key per period (a sensor spewing garbage at 100 Hz
  must not flood the log), with the suppressed count reported in the next warning.
* :class:`SensorHealth`: the node's own view of one sensor -- decode counts and last error.
* :class:`FramePresence`: which sensors the last few frames left out, so diagnostics judge a
  sensor over a window instead of over the last frame alone.
* :class:`InferenceStats`: what the inference worker reports.

Message rates are not measured here: the synchroniser's per-sensor track already estimates them
(``SensorStatus.rate_hz``, every arrival, decaying to 0 when a sensor stops), and /diagnostics
reports that one estimate.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")
T = TypeVar("T")


class LatestSlots(Generic[K, T]):
    """One queue of capacity one per key (a camera), where ``put`` overwrites; one consumer.

    Why keyed with one condition: a node with several cameras runs one model, so its worker must
    wake for whichever camera has a frame and take every frame pending at that moment (the frames
    that are ready together, segmented as one batch). Per key the newest frame wins and a
    replaced one is counted as a drop, so memory and latency stay bounded whatever the input rate.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: dict[K, T] = {}
        self._closed = False
        self.dropped: Counter[K] = Counter()
        self.accepted: Counter[K] = Counter()

    def put(self, key: K, item: T) -> bool:
        """Store ``item`` for ``key``; return True when it displaced an item never taken."""
        with self._cond:
            displaced = key in self._items
            if displaced:
                self.dropped[key] += 1
            self._items[key] = item
            self.accepted[key] += 1
            self._cond.notify()
            return displaced

    def take(self, timeout: float | None = None) -> dict[K, T]:
        """Take every pending item (in the order their keys were first put), waiting up to
        ``timeout`` s for one; empty on timeout or when closed with nothing pending."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            items, self._items = self._items, {}
            return items

    def close(self) -> None:
        """Wake the consumer for shutdown; later ``take`` calls return what is pending."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Throttle:
    """Allow one event per ``key`` every ``period_s``; count what was suppressed in between."""

    def __init__(self, period_s: float = 5.0) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now_s: float) -> tuple[bool, int]:
        """Return ``(allowed, suppressed_since_last_allowed)``."""
        with self._lock:
            last = self._last.get(key)
            if last is None or now_s - last >= self.period_s:
                self._last[key] = now_s
                return True, self._suppressed.pop(key, 0)
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False, 0


@dataclass
class SensorHealth:
    """Per-sensor decode counters for diagnostics (updated by the executor thread on arrival and
    by the inference worker for rejections of the full decode; ``lock`` keeps them apart)."""

    name: str
    received: int = 0
    rejected: int = 0
    last_error: str = ""
    last_error_s: float | None = None
    counts: Counter[str] = field(default_factory=Counter)
    """Things dropped from accepted messages, by kind (``events_outside_sensor``)."""
    last_count: str = ""
    last_count_s: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def ok(self) -> None:
        """Count an admitted message (its rate and liveness are the synchroniser's to report)."""
        with self.lock:
            self.received += 1

    def drop(self, kind: str, n: int, note: str, now_s: float) -> None:
        """Count ``n`` parts of an accepted message dropped as ``kind``, with a note for WARN."""
        with self.lock:
            self.counts[kind] += n
            self.last_count, self.last_count_s = note, now_s

    def reject(self, reason: str, now_s: float) -> None:
        with self.lock:
            self.rejected += 1
            self.last_error = reason
            self.last_error_s = now_s


PRESENCE_WINDOW = 10
"""Frames over which /diagnostics judges whether a sensor keeps missing the anchor's frames."""
MISSED = frozenset({"late", "no_match"})
"""Absence reasons that mean "alive but not in the frame" (stale / never seen have own states)."""


class FramePresence:
    """Which sensors each of the last ``window`` frames left out as ``late`` or ``no_match``.

    Why: the synchroniser's ``missing`` state describes the last frame only, so a sensor at its
    nominal rate whose message misses one frame's tolerance would flap OK/WARN on every such
    frame. Judging over a window of frames is what diagnostic_updater's FrequencyStatus does for
    rates. Fed by the executor thread with every frame the synchroniser emits (dropped ones too:
    they were assembled), read by the diagnostics timer; a lock keeps the two apart.
    """

    def __init__(self, window: int = PRESENCE_WINDOW) -> None:
        if window < 1:
            raise ValueError(f"FramePresence window must be at least 1 frame, got {window}")
        self.window = window
        self._missed: deque[frozenset[str]] = deque(maxlen=window)
        self._lock = threading.Lock()

    def record(self, absent: Mapping[str, str]) -> None:
        """Add one frame, given its ``Frame.absent`` (sensor -> absence reason)."""
        missed = frozenset(name for name, reason in absent.items() if str(reason) in MISSED)
        with self._lock:
            self._missed.append(missed)

    def missed(self, name: str) -> tuple[int, int]:
        """``(frames that left name out as late/no_match, frames in the window)``."""
        with self._lock:
            return sum(name in frame for frame in self._missed), len(self._missed)


@dataclass
class InferenceStats:
    """What the worker reports about the last frames it segmented (guarded by ``lock``).

    ``failures`` counts every failed frame for good; ``consecutive_failures`` is reset by the
    next frame that succeeds, so /diagnostics can tell "failing now" from "failed once, recovered"
    (``last_error`` and ``last_error_s`` keep the latest failure's text and time for the report).
    """

    frames_in: int = 0
    frames_out: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_modalities: tuple[str, ...] = ()
    last_anchor: str = ""
    last_latency_s: float = 0.0
    last_inference_s: float = 0.0
    last_wait_s: float = 0.0
    """Anchor arrival -> the worker starts the frame (waiting for late sensors, the queue)."""
    last_decode_s: float = 0.0
    """The worker's decode of the frame's messages (of every camera's frame in its batch)."""
    last_publish_s: float = 0.0
    """Segmenter done -> ``~/labels`` handed to the middleware (encoding, publish call)."""
    last_batch_size: int = 0
    """Frames (one per camera) segmented in the same worker step as the last one; those with
    the same modality set share one forward pass."""
    max_latency_s: float = 0.0
    last_error: str = ""
    last_error_s: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failed(self, error: str, now_s: float) -> None:
        """Count a failed frame (call with ``lock`` held)."""
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error, self.last_error_s = error, now_s

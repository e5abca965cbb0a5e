"""Small thread-safe pieces the perception node wires together; no rclpy, so they unit-test alone.

* :class:`LatestSlot`: the bounded queue of one between the executor and the inference worker.
  A new frame replaces a pending one (latest wins) and the replacement is counted as a drop, so
  memory and latency stay bounded whatever the input rate.
* :class:`RateMeter`: per-sensor message rate over a sliding window (for diagnostics).
* :class:`Throttle`: at most one warning per key per period (a sensor spewing garbage at 100 Hz
  must not flood the log), with the suppressed count reported in the next warning.
* :class:`SensorHealth`: what diagnostics says about one sensor -- counts, last error, rate.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A queue of capacity one where ``put`` overwrites: the consumer always gets the newest."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self.dropped = 0
        self.accepted = 0

    def put(self, item: T) -> bool:
        """Store ``item``; return True when it displaced an item the consumer never took."""
        with self._cond:
            displaced = self._has_item
            if displaced:
                self.dropped += 1
            self._item, self._has_item = item, True
            self.accepted += 1
            self._cond.notify()
            return displaced

    def get(self, timeout: float | None = None) -> T | None:
        """Take the pending item, waiting up to ``timeout`` s; None on timeout or when closed."""
        with self._cond:
            if not self._has_item and not self._closed:
                self._cond.wait(timeout)
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            return item

    def close(self) -> None:
        """Wake the consumer for shutdown; later ``get`` calls return pending items then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class RateMeter:
    """Messages per second over the last ``window_s`` seconds (bounded memory)."""

    def __init__(self, window_s: float = 5.0, max_samples: int = 1000) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=max_samples)
        self._lock = threading.Lock()

    def tick(self, now_s: float) -> None:
        with self._lock:
            self._times.append(now_s)

    def rate(self, now_s: float) -> float:
        """Rate in Hz; 0 with fewer than two samples in the window."""
        with self._lock:
            while self._times and now_s - self._times[0] > self.window_s:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            span = max(now_s - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0


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
    """Per-sensor counters for diagnostics (updated by the executor thread only)."""

    name: str
    received: int = 0
    rejected: int = 0
    last_error: str = ""
    last_error_s: float | None = None
    last_ok_s: float | None = None
    rate: RateMeter = field(default_factory=RateMeter)

    def ok(self, now_s: float) -> None:
        self.received += 1
        self.last_ok_s = now_s
        self.rate.tick(now_s)

    def reject(self, reason: str, now_s: float) -> None:
        self.rejected += 1
        self.last_error = reason
        self.last_error_s = now_s


@dataclass
class InferenceStats:
    """What the worker reports about the last frames it segmented (guarded by ``lock``)."""

    frames_in: int = 0
    frames_out: int = 0
    failures: int = 0
    last_modalities: tuple[str, ...] = ()
    last_anchor: str = ""
    last_router: dict[str, float] = field(default_factory=dict)
    last_latency_s: float = 0.0
    last_inference_s: float = 0.0
    last_wait_s: float = 0.0
    """Anchor arrival -> the worker starts the frame (waiting for late sensors, the queue)."""
    last_publish_s: float = 0.0
    """Segmenter done -> ``~/labels`` handed to the middleware (encoding, publish call)."""
    max_latency_s: float = 0.0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

"""The events of a time window before each camera frame, from a stream of small packets.

Why: event drivers publish a packet about every millisecond (``event_packets.py``), while the
network takes one event image per camera frame, built from the events of the ``window_ns``
before the frame's stamp. :class:`EventWindow` keeps the decoded packets as they come and
answers ``window(anchor_t)`` with every event in ``[anchor_t - window_ns, anchor_t]``.

Memory stays bounded: a packet is dropped once its newest event is older than the newest event
seen minus ``keep_ns`` (default two windows: room for a camera frame that arrives up to one
window later than the events of its time), once a query's window has moved past it (anchors are
expected to be non-decreasing, as camera stamps are), and, oldest first, while more than
``max_events`` events are held.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from .event_packets import Events

__all__ = ["EventWindow"]


class _Chunk(NamedTuple):
    events: Events
    t_min: int
    t_max: int


class EventWindow:
    """Accumulates :class:`Events` (any order of packets) and cuts time windows out of them."""

    def __init__(
        self, window_ns: int, *, keep_ns: int | None = None, max_events: int | None = None
    ) -> None:
        if window_ns <= 0:
            raise ValueError(f"window_ns must be > 0, got {window_ns}")
        keep = 2 * int(window_ns) if keep_ns is None else int(keep_ns)
        if keep < window_ns:
            raise ValueError(f"keep_ns ({keep}) must be at least window_ns ({window_ns})")
        if max_events is not None and max_events <= 0:
            raise ValueError(f"max_events must be > 0 or None, got {max_events}")
        self.window_ns, self.keep_ns, self.max_events = int(window_ns), keep, max_events
        self._chunks: deque[_Chunk] = deque()
        self._count = 0
        self._newest: int | None = None

    def __len__(self) -> int:
        """Events held now."""
        return self._count

    def clear(self) -> None:
        self._chunks.clear()
        self._count, self._newest = 0, None

    def add(self, events: Events) -> None:
        """Keep one packet's events (``t`` in the same clock as the anchors of ``window``)."""
        if events.t.size == 0:
            return
        chunk = _Chunk(events, int(events.t.min()), int(events.t.max()))
        self._chunks.append(chunk)
        self._count += events.t.size
        self._newest = chunk.t_max if self._newest is None else max(self._newest, chunk.t_max)
        self._drop_older_than(self._newest - self.keep_ns)
        while self.max_events is not None and self._count > self.max_events and self._chunks:
            self._count -= self._chunks.popleft().events.t.size

    def _drop_older_than(self, t: int) -> None:
        if any(c.t_max < t for c in self._chunks):
            kept = [c for c in self._chunks if c.t_max >= t]
            self._chunks = deque(kept)
            self._count = sum(c.events.t.size for c in kept)

    def window(self, anchor_t: int) -> Events:
        """Every held event with ``anchor_t - window_ns <= t <= anchor_t``, in arrival order.

        Packets wholly before this window are then dropped (a later, smaller anchor cannot
        get them back).
        """
        lo, hi = int(anchor_t) - self.window_ns, int(anchor_t)
        parts: list[Events] = []
        for c in self._chunks:
            if c.t_max < lo or c.t_min > hi:
                continue
            if lo <= c.t_min and c.t_max <= hi:
                parts.append(c.events)
                continue
            keep = (c.events.t >= lo) & (c.events.t <= hi)
            parts.append(Events(*(a[keep] for a in c.events)))
        self._drop_older_than(lo)
        return Events.concatenate(parts)

    def span(self) -> tuple[int, int] | None:
        """(oldest, newest) event time held, or None when empty."""
        if not self._chunks:
            return None
        return min(c.t_min for c in self._chunks), max(c.t_max for c in self._chunks)

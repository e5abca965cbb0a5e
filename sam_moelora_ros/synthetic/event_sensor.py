"""Event camera model after ESIM (Rebecq et al. 2018): events from log-intensity changes.

Between two event frames the camera is rendered at ``substeps`` poses; per pixel the log
intensity is interpolated linearly between samples, and every crossing of the contrast
threshold ``C`` (per-pixel threshold mismatch included) emits an event with an interpolated
timestamp, as ESIM does. A refractory period suppresses events that follow too closely at the
same pixel, and background-activity noise events (Poisson per pixel at
``Condition.event_noise_hz``, much higher at night, as leak and shot-noise events are on real
sensors in the dark) are mixed in. The state (reference log intensity, last event time)
persists across frames within a sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722])


@dataclass(frozen=True)
class EventConfig:
    """Contrast threshold, its pixel-to-pixel spread, refractory period and sub-steps."""

    threshold: float = 0.18
    threshold_sigma: float = 0.03
    refractory_s: float = 0.001
    substeps: int = 4
    log_eps: float = 0.01


@dataclass
class Events:
    """An event stream: column, row, time (float seconds from the sequence start), polarity."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


class EventSimulator:
    """Per-pixel ESIM state for one sequence at one resolution."""

    def __init__(
        self, first_radiance: np.ndarray, t0: float, seed: int, config: EventConfig
    ) -> None:
        h, w = first_radiance.shape[:2]
        rng = np.random.default_rng(seed)
        self.config = config
        self.c = np.clip(rng.normal(config.threshold, config.threshold_sigma, (h, w)), 0.05, None)
        self.ref = self._log(first_radiance)
        self.last_log = self.ref.copy()
        self.last_t = t0
        self.last_event = np.full((h, w), -np.inf)

    def _log(self, radiance: np.ndarray) -> np.ndarray:
        return np.log(radiance @ LUMA + self.config.log_eps)

    def step(self, radiance: np.ndarray, t: float) -> Events:
        """Advance to a new sample at time ``t``; return the events in (last_t, t], time-sorted."""
        cur = self._log(radiance)
        prev, t_prev = self.last_log, self.last_t
        diff = cur - self.ref
        n = np.floor(np.abs(diff) / self.c).astype(np.int64)
        ys, xs = np.nonzero(n)
        counts = n[ys, xs]
        sign = np.sign(diff[ys, xs])
        rep = np.repeat(np.arange(len(ys)), counts)
        k = np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        ey, ex, es = ys[rep], xs[rep], sign[rep]
        level = self.ref[ey, ex] + es * k * self.c[ey, ex]
        span = cur[ey, ex] - prev[ey, ex]
        frac = np.where(
            np.abs(span) > 1e-9, (level - prev[ey, ex]) / np.where(span == 0, 1, span), 1.0
        )
        et = t_prev + np.clip(frac, 0.0, 1.0) * (t - t_prev)
        self.ref[ys, xs] += sign * counts * self.c[ys, xs]
        order = np.lexsort((et, ey * cur.shape[1] + ex))
        ex, ey, et, es = ex[order], ey[order], et[order], es[order]
        lin = ey * cur.shape[1] + ex
        prev_t = np.empty_like(et)
        prev_t[1:] = et[:-1]
        first = np.ones(len(lin), dtype=bool)
        first[1:] = lin[1:] != lin[:-1]
        prev_t[first] = self.last_event[ey[first], ex[first]]
        keep = et - prev_t >= self.config.refractory_s
        ex, ey, et, es = ex[keep], ey[keep], et[keep], es[keep]
        self.last_event[ey, ex] = et  # sorted by time per pixel: the last write is the latest
        self.last_log, self.last_t = cur, t
        return Events(ex.astype(np.int32), ey.astype(np.int32), et, es.astype(np.int8))


def noise_events(
    h: int, w: int, t0: float, t1: float, rate_hz: float, rng: np.random.Generator
) -> Events:
    """Background-activity noise: Poisson per pixel at ``rate_hz``, random polarity and time."""
    n = int(rng.poisson(rate_hz * (t1 - t0) * h * w))
    return Events(
        rng.integers(0, w, n).astype(np.int32),
        rng.integers(0, h, n).astype(np.int32),
        rng.uniform(t0, t1, n),
        rng.choice(np.array([-1, 1], dtype=np.int8), n),
    )


def merge(parts: list[Events]) -> Events:
    """Concatenate event batches and sort by time (stable, so equal times keep batch order)."""
    if not parts:
        empty = np.empty(0)
        return Events(empty.astype(np.int32), empty.astype(np.int32), empty, empty.astype(np.int8))
    ev = Events(*(np.concatenate([getattr(e, f) for e in parts]) for f in "xytp"))
    order = np.argsort(ev.t, kind="stable")
    return Events(ev.x[order], ev.y[order], ev.t[order], ev.p[order])

"""What the perception node reports on /diagnostics, computed without rclpy.

One status per sensor (state from the synchroniser -- ok / missing / stale / never_seen /
disabled -- plus the node's own decode rejections), one for camera_info when LiDAR or event
clouds need it, and one for inference. The node turns the :class:`Report` items into
``diagnostic_msgs/DiagnosticStatus``; keeping the policy here lets tests pin the levels and keys.

Levels follow diagnostic_msgs: OK 0, WARN 1, ERROR 2. A sensor is WARN when it is stale (silent
longer than its ``stale_timeout``), never seen, left out (``late`` / ``no_match``) of most of the
last :data:`~.runtime.PRESENCE_WINDOW` frames, or rejected a message -- or dropped part of one,
such as events outside the sensor (``events_outside_sensor``, a running count) -- within the last
:data:`RECENT_REJECT_S` seconds. One missed frame does not make a sensor WARN: its ``state`` value
still says ``missing`` (the synchroniser's view of the last frame), but the level is judged over
the window, as diagnostic_updater judges rates, so a healthy sensor does not flap OK/WARN.

The inference status is ERROR while the latest frame failed, WARN for :data:`RECENT_FAILURE_S`
after a failure that later frames recovered from (and before the first output), OK otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sam_moelora_ros.pipeline.runtime import FramePresence, InferenceStats, SensorHealth
from sam_moelora_ros.sync.track import SyncStatus

OK, WARN, ERROR = 0, 1, 2
RECENT_REJECT_S = 5.0
"""A rejected message keeps its sensor at WARN for this long."""
RECENT_FAILURE_S = 5.0
"""A failed frame keeps the inference status at WARN this long after later frames succeed."""


@dataclass
class Report:
    """One DiagnosticStatus: level, name, message and key/value pairs (all strings)."""

    level: int
    name: str
    message: str
    values: dict[str, str] = field(default_factory=dict)


def sensor_reports(
    prefix: str,
    status: SyncStatus,
    health: dict[str, SensorHealth],
    topics: dict[str, str],
    now_s: float,
    presence: FramePresence,
) -> list[Report]:
    """One :class:`Report` per configured sensor; ``presence`` holds the node's recent frames."""
    reports = []
    for name, sensor in status.sensors.items():
        record = health.get(name)
        state = sensor.state
        missed, frames = presence.missed(name)
        if state in ("ok", "missing"):
            # most of the window, or (no frame recorded yet) the synchroniser's last-frame view
            mostly_missed = 2 * missed > frames if frames else state == "missing"
            level = WARN if mostly_missed else OK
        else:
            level = OK if state == "disabled" else WARN
        message = state
        if state in ("ok", "missing") and missed:
            message = f"{state}; left out of {missed} of the last {frames} frames"
        values = {
            "state": state,
            "topic": topics.get(name, ""),
            "rate_hz": f"{sensor.rate_hz:.2f}",
            "received": str(sensor.received),
            "used_in_frames": str(sensor.used),
            "silence_s": "" if sensor.silence_s is None else f"{sensor.silence_s:.3f}",
            "sync_rejected": ",".join(f"{k}={v}" for k, v in sorted(sensor.rejected.items())),
            "absent_from_frames": ",".join(f"{k}={v}" for k, v in sorted(sensor.absent.items())),
            "missed_recent_frames": f"{missed}/{frames}",
        }
        if record is not None:
            values["decode_rejected"] = str(record.rejected)
            values["last_error"] = record.last_error
            if record.rejected and state == "never_seen":
                message = "never_seen (every message so far was rejected)"
            recent = (
                record.last_error_s is not None and now_s - record.last_error_s < RECENT_REJECT_S
            )
            if recent:
                level = max(level, WARN)
                message = f"{message}; rejected: {record.last_error}"
            values.update({kind: str(n) for kind, n in sorted(record.counts.items())})
            noted = record.last_count_s
            if noted is not None and now_s - noted < RECENT_REJECT_S:
                level = max(level, WARN)
                message = f"{message}; {record.last_count}"
        reports.append(Report(level, f"{prefix}: sensor {name}", message, values))
    return reports


def camera_info_report(
    prefix: str, needed: bool, health: SensorHealth, size_hw: tuple[int, int] | None, now_s: float
) -> Report:
    """camera_info is required for LiDAR projection and event clouds: report whether it came."""
    values = {
        "received": str(health.received),
        "size": "" if size_hw is None else f"{size_hw[0]}x{size_hw[1]}",
        "decode_rejected": str(health.rejected),
        "last_error": health.last_error,
    }
    if health.received == 0:
        level = WARN if needed else OK
        message = "never received" + (" (LiDAR cannot be projected)" if needed else "")
    else:
        level, message = OK, "ok"
    if health.last_error_s is not None and now_s - health.last_error_s < RECENT_REJECT_S:
        level, message = WARN, f"rejected: {health.last_error}"
    return Report(level, f"{prefix}: camera_info", message, values)


def inference_report(
    prefix: str,
    stats: InferenceStats,
    router_means: dict[str, float],
    dropped: int,
    device: str,
    status: SyncStatus,
    now_s: float,
) -> Report:
    """The worker's state: modalities used, router weights, latency, drops, device.

    ``now_s`` is on the worker's clock (the one ``InferenceStats.last_error_s`` was taken on).
    """
    with stats.lock:
        values = {
            "device": device,
            "modalities": ",".join(stats.last_modalities),
            "anchor": stats.last_anchor,
            "active_anchor": status.active_anchor,
            "anchor_switches": str(status.anchor_switches),
            "latency_ms": f"{stats.last_latency_s * 1e3:.1f}",
            "max_latency_ms": f"{stats.max_latency_s * 1e3:.1f}",
            "inference_ms": f"{stats.last_inference_s * 1e3:.1f}",
            "wait_ms": f"{stats.last_wait_s * 1e3:.1f}",
            "decode_ms": f"{stats.last_decode_s * 1e3:.1f}",
            "publish_ms": f"{stats.last_publish_s * 1e3:.1f}",
            "batch_size": str(stats.last_batch_size),
            "frames_in": str(stats.frames_in),
            "frames_out": str(stats.frames_out),
            "frames_dropped": str(dropped),
            "failures": str(stats.failures),
            "sync_resets": str(status.resets),
            "last_error": stats.last_error,
        }
        values.update({f"router_weight.{m}": f"{w:.3f}" for m, w in router_means.items()})
        since = None if stats.last_error_s is None else now_s - stats.last_error_s
        if stats.consecutive_failures:
            level, message = ERROR, f"inference failed: {stats.last_error}"
        elif since is not None and since < RECENT_FAILURE_S:
            level = WARN
            message = f"recovered; a frame failed {since:.1f} s ago: {stats.last_error}"
        elif stats.frames_out == 0:
            level, message = WARN, "no frame segmented yet"
        else:
            level = OK
            message = f"using {'+'.join(stats.last_modalities)} (anchor {stats.last_anchor})"
    return Report(level, f"{prefix}: inference", message, values)

"""What the perception node reports on /diagnostics, computed without rclpy.

One status per sensor (state from the synchroniser -- ok / missing / stale / never_seen /
disabled -- plus the node's own decode rejections), one for camera_info when LiDAR or event
clouds need it, and one for inference. The node turns the :class:`Report` items into
``diagnostic_msgs/DiagnosticStatus``; keeping the policy here lets tests pin the levels and keys.

Levels follow diagnostic_msgs: OK 0, WARN 1, ERROR 2. A sensor is WARN when it is stale,
missing from frames, never seen, or rejected a message within the last ``recent_s`` seconds; the
inference status is ERROR when the last frame failed and WARN before the first output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sam_moelora_ros.node_runtime import InferenceStats, SensorHealth
from sam_moelora_ros.sync_track import SyncStatus

OK, WARN, ERROR = 0, 1, 2
RECENT_REJECT_S = 5.0
"""A rejected message keeps its sensor at WARN for this long."""


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
) -> list[Report]:
    """One :class:`Report` per configured sensor."""
    reports = []
    for name, sensor in status.sensors.items():
        record = health.get(name)
        state = sensor.state
        level = OK if state in ("ok", "disabled") else WARN
        message = state
        values = {
            "state": state,
            "topic": topics.get(name, ""),
            "rate_hz": f"{sensor.rate_hz:.2f}",
            "received": str(sensor.received),
            "used_in_frames": str(sensor.used),
            "silence_s": "" if sensor.silence_s is None else f"{sensor.silence_s:.3f}",
            "sync_rejected": ",".join(f"{k}={v}" for k, v in sorted(sensor.rejected.items())),
            "absent_from_frames": ",".join(f"{k}={v}" for k, v in sorted(sensor.absent.items())),
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
) -> Report:
    """The worker's state: modalities used, router weights, latency, drops, device."""
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
            "publish_ms": f"{stats.last_publish_s * 1e3:.1f}",
            "frames_in": str(stats.frames_in),
            "frames_out": str(stats.frames_out),
            "frames_dropped": str(dropped),
            "failures": str(stats.failures),
            "sync_resets": str(status.resets),
            "last_error": stats.last_error,
        }
        values.update({f"router_weight.{m}": f"{w:.3f}" for m, w in router_means.items()})
        if stats.failures and stats.last_error:
            level, message = ERROR, f"inference failed: {stats.last_error}"
        elif stats.frames_out == 0:
            level, message = WARN, "no frame segmented yet"
        else:
            level = OK
            message = f"using {'+'.join(stats.last_modalities)} (anchor {stats.last_anchor})"
    return Report(level, f"{prefix}: inference", message, values)

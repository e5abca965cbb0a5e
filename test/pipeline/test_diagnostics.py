"""The /diagnostics policy on real synchroniser timelines: levels, messages and keys, no DDS.

Two regressions are pinned here: a sensor at its nominal rate that misses one frame's tolerance
must not turn WARN (the level is judged over a window of frames), and one failed frame must not
keep the inference status at ERROR after later frames succeed.
"""

from __future__ import annotations

import pytest

from sam_moelora_ros.pipeline.diagnostics import (
    ERROR,
    OK,
    RECENT_FAILURE_S,
    RECENT_REJECT_S,
    WARN,
    inference_report,
    sensor_reports,
)
from sam_moelora_ros.pipeline.runtime import FramePresence, InferenceStats, SensorHealth
from sam_moelora_ros.sync.synchronizer import SensorSpec, SyncConfig, Synchronizer

HZ = 10.0
TOPICS = {"rgb": "camera/image", "depth": "depth/image"}


def run_frames(misses: set[int], n: int = 10) -> tuple[Synchronizer, FramePresence, float]:
    """RGB (the anchor) and depth at 10 Hz, each frame's depth message on time except in the
    frames numbered in ``misses``: there it arrives 60 ms late, after the frame's 50 ms
    ``max_wait`` (a real ``late`` absence). Returns the synchroniser, the presence and now."""
    sync = Synchronizer(SyncConfig(sensors=(SensorSpec("rgb"), SensorSpec("depth"))))
    presence = FramePresence()
    now = 0.0
    for i in range(n):
        stamp = now = 1.0 + i / HZ
        frames = []
        if i not in misses:
            frames += sync.push("depth", stamp, "d", now)
        frames += sync.push("rgb", stamp, "c", now)
        if i in misses:
            now += 0.06
            frames += sync.poll(now)  # the frame leaves without depth ...
            frames += sync.push("depth", stamp, "d", now)  # ... which then arrives
        for frame in frames:
            presence.record(frame.absent)
    assert presence.missed("rgb") == (0, n)  # every frame recorded
    return sync, presence, now


def depth_report(misses: set[int]) -> tuple[str, int, str, dict[str, str]]:
    sync, presence, now = run_frames(misses)
    status = sync.status(now)
    health = {n: SensorHealth(n) for n in TOPICS}
    reports = {r.name: r for r in sensor_reports("n", status, health, TOPICS, now, presence)}
    report = reports["n: sensor depth"]
    return status.sensors["depth"].state, report.level, report.message, report.values


def test_one_missed_frame_does_not_make_a_healthy_sensor_warn() -> None:
    state, level, message, values = depth_report(misses={9})  # the very last frame
    assert state == "missing"  # the synchroniser's view of the last frame, unchanged
    assert level == OK, message
    assert message == "missing; left out of 1 of the last 10 frames"
    assert values["missed_recent_frames"] == "1/10" and values["state"] == "missing"


def test_a_sensor_missing_most_frames_warns_even_when_the_last_frame_had_it() -> None:
    state, level, message, values = depth_report(misses={2, 3, 4, 5, 6, 7})
    assert state == "ok"
    assert level == WARN and "left out of 6 of the last 10 frames" in message
    assert values["missed_recent_frames"] == "6/10"


def test_a_sensor_in_every_frame_is_ok_and_reports_the_synchronisers_rate() -> None:
    sync, presence, now = run_frames(misses=set())
    status = sync.status(now)
    health = {n: SensorHealth(n) for n in TOPICS}
    reports = sensor_reports("n", status, health, TOPICS, now, presence)
    assert [r.level for r in reports] == [OK, OK]
    assert [r.message for r in reports] == ["ok", "ok"]
    for report, name in zip(reports, TOPICS, strict=True):
        assert report.values["rate_hz"] == f"{status.sensors[name].rate_hz:.2f}"
    assert float(reports[0].values["rate_hz"]) == pytest.approx(HZ, rel=0.05)


def test_stale_never_seen_and_recent_rejections_still_warn() -> None:
    sync = Synchronizer(SyncConfig(sensors=(SensorSpec("rgb"), SensorSpec("depth"))))
    sync.push("depth", 1.0, "d", 1.0)
    sync.push("rgb", 1.0, "c", 1.0)
    health = {n: SensorHealth(n) for n in TOPICS}
    now = 3.0  # both silent for 2 s, past their 0.5 s stale timeout
    reports = sensor_reports("n", sync.status(now), health, TOPICS, now, FramePresence())
    assert [(r.level, r.values["state"]) for r in reports] == [(WARN, "stale"), (WARN, "stale")]

    fresh = Synchronizer(SyncConfig(sensors=(SensorSpec("rgb"), SensorSpec("depth"))))
    fresh.push("rgb", 1.0, "c", 1.0)
    health["rgb"].reject("truncated", 1.0)
    rgb, depth = sensor_reports("n", fresh.status(1.1), health, TOPICS, 1.1, FramePresence())
    assert depth.values["state"] == "never_seen" and depth.level == WARN
    assert rgb.level == WARN and rgb.message.endswith("rejected: truncated")
    later = 1.0 + RECENT_REJECT_S + 0.1
    fresh.push("rgb", later, "c", later)
    rgb, _ = sensor_reports("n", fresh.status(later), health, TOPICS, later, FramePresence())
    assert rgb.level == OK and rgb.values["decode_rejected"] == "1"


def test_inference_error_clears_once_frames_succeed_again() -> None:
    status = Synchronizer(SyncConfig(sensors=(SensorSpec("rgb"),))).status(0.0)
    stats = InferenceStats()

    def level_and_message(now: float) -> tuple[int, str]:
        report = inference_report("n", stats, {"rgb": 1.0}, 0, "cpu float32", status, now)
        return report.level, report.message

    assert level_and_message(0.0) == (WARN, "no frame segmented yet")
    with stats.lock:
        stats.failed("RuntimeError: CUDA out of memory", 10.0)
    assert level_and_message(10.1) == (ERROR, "inference failed: RuntimeError: CUDA out of memory")
    with stats.lock:  # what the worker records for a frame that succeeded
        stats.frames_out += 1
        stats.consecutive_failures = 0
        stats.last_modalities, stats.last_anchor = ("rgb",), "rgb"
    level, message = level_and_message(11.0)
    assert level == WARN and message.startswith("recovered; a frame failed 1.0 s ago")
    assert level_and_message(10.0 + RECENT_FAILURE_S + 0.1) == (OK, "using rgb (anchor rgb)")
    report = inference_report("n", stats, {}, 0, "cpu float32", status, 60.0)
    assert report.values["failures"] == "1"
    assert report.values["last_error"] == "RuntimeError: CUDA out of memory"

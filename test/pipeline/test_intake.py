"""What the node's callbacks do with a message, without DDS: plain messages, real decoders/sync."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros.params import build_config
from sam_moelora_ros.pipeline.assembly import SensorDecoders, sync_config
from sam_moelora_ros.pipeline.intake import SensorIntake
from sam_moelora_ros.pipeline.ports import FrameCollector
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync.synchronizer import Frame, Synchronizer


def rgb(stamp: float) -> SimpleNamespace:
    sec = int(stamp)
    header = plain_header(sec, round((stamp - sec) * 1e9), "camera")
    return numpy_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8", header=header)


def camera_info(fx: float) -> SimpleNamespace:
    return SimpleNamespace(
        height=48,
        width=64,
        k=[fx, 0.0, 32.0, 0.0, fx, 24.0, 0.0, 0.0, 1.0],
        d=[0.0] * 5,
        distortion_model="plumb_bob",
        header=plain_header(0, 0, "camera"),
    )


@pytest.fixture
def intake() -> tuple[SensorIntake, list[Frame]]:
    cfg = build_config({})
    out: list[Frame] = []
    return SensorIntake(
        SensorDecoders(cfg, np.eye(4)), Synchronizer(sync_config(cfg)), FrameCollector(frames=out)
    ), out


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_good_message_is_counted_and_becomes_a_frame(intake) -> None:
    sensors, frames = intake
    sensors.sensor("rgb", rgb(1.0), now_s=1.0)
    assert sensors.health["rgb"].received == 1 and sensors.health["rgb"].rejected == 0
    assert [f.anchor for f in frames] == ["rgb"] and frames[0].stamp == 1.0
    assert sensors.decoders.last_size["rgb"] == (48, 64)


def test_bad_messages_are_counted_warned_once_per_kind_and_never_raise(intake, caplog) -> None:
    sensors, frames = intake
    truncated = rgb(1.0)
    truncated.data = bytes(100)
    with caplog.at_level(logging.WARNING, logger="sam_moelora_ros"):
        sensors.sensor("rgb", truncated, now_s=1.0)
        sensors.sensor("rgb", truncated, now_s=1.1)  # same kind: suppressed
        sensors.sensor("rgb", None, now_s=1.2)  # undeserialisable
        sensors.sensor("depth", SimpleNamespace(), now_s=1.3)  # not even a message
    health = sensors.health
    assert health["rgb"].rejected == 3 and health["rgb"].received == 0
    assert health["rgb"].last_error == "rgb message could not be deserialised"
    assert health["rgb"].last_error_s == 1.2
    assert (
        health["depth"].rejected == 1 and "depth sensor cannot take" in health["depth"].last_error
    )
    logged = warnings(caplog)
    assert len(logged) == 3, logged
    assert "rejected rgb message" in logged[0] and "truncated" in logged[0]
    assert frames == []


def test_a_stamp_going_backwards_is_warned_and_counted_but_the_message_used(intake, caplog) -> None:
    sensors, frames = intake
    with caplog.at_level(logging.WARNING, logger="sam_moelora_ros"):
        sensors.sensor("rgb", rgb(5.0), now_s=5.0)
        sensors.sensor("rgb", rgb(4.9), now_s=5.1)
    health = sensors.health["rgb"]
    assert (health.received, health.rejected) == (2, 1)
    assert health.last_error == "stamp went backwards (5.000 -> 4.900 s)"
    assert any("rgb stamp went backwards" in text for text in warnings(caplog))
    assert frames[0].stamp == 5.0


def test_camera_info_is_kept_or_rejected_with_its_reason(intake) -> None:
    sensors, _ = intake
    sensors.camera_info(camera_info(0.0), now_s=1.0)
    assert (
        sensors.camera_health.rejected == 1 and "focal length" in sensors.camera_health.last_error
    )
    assert sensors.decoders.camera is None
    sensors.camera_info(camera_info(40.0), now_s=2.0)
    assert sensors.camera_health.received == 1
    assert sensors.decoders.camera_size() == (48, 64)


def test_poll_releases_a_frame_whose_wait_ran_out(intake) -> None:
    sensors, frames = intake
    sensors.sensor("rgb", rgb(1.0), now_s=1.0)
    depth = numpy_to_image(np.full((48, 64), 2.0, np.float32), "32FC1", header=rgb(1.0).header)
    sensors.sensor("depth", depth, now_s=1.0)  # depth is alive now ...
    assert sensors.health["depth"].received == 1
    frames.clear()
    sensors.sensor("rgb", rgb(1.1), now_s=1.1)  # ... so this frame waits for it
    assert frames == []
    sensors.poll(now_s=1.3)
    assert [f.stamp for f in frames] == [1.1] and "depth" in frames[0].absent

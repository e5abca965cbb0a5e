"""Messages are admitted on arrival and decoded only for the frames the worker segments.

Real decoders, synchroniser, intake and worker (a real tiny Segmenter); the port is the
collecting one replay uses. Each bad message here passes every check that is cheap on arrival
and fails only its full decode (a depth image without one valid pixel, an rgb image in a depth
encoding), which is what moved from the executor thread to the worker.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sam_moelora_ros.params import build_config
from sam_moelora_ros.pipeline.admission import Pending, decode_frame
from sam_moelora_ros.pipeline.assembly import SensorDecoders, sync_config
from sam_moelora_ros.pipeline.intake import SensorIntake
from sam_moelora_ros.pipeline.ports import FrameCollector
from sam_moelora_ros.pipeline.worker import CameraOutput, InferenceWorker, OutputOptions
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync.synchronizer import Synchronizer

H, W = 48, 64
PARAMS = {"sensors.event.enabled": False, "sensors.lidar.enabled": False}


def header(stamp: float):
    sec = int(stamp)
    return plain_header(sec, round((stamp - sec) * 1e9), "camera")


def rgb(stamp: float, encoding: str = "rgb8"):
    if encoding == "32FC1":  # a depth encoding on the rgb topic: its layout is fine
        return numpy_to_image(np.ones((H, W), np.float32), "32FC1", header=header(stamp))
    return numpy_to_image(np.full((H, W, 3), 80, np.uint8), encoding, header=header(stamp))


def depth(stamp: float, valid: bool = True):
    values = np.full((H, W), 5.0 if valid else np.nan, np.float32)
    return numpy_to_image(values, "32FC1", header=header(stamp))


class ReportingPort(FrameCollector):
    """The collecting port, reporting decode problems back to the intake as the node's does."""

    intake: SensorIntake | None = None

    def decode_problems(self, problems) -> None:
        super().decode_problems(problems)
        assert self.intake is not None
        self.intake.decode_problems(problems, self.now())


@pytest.fixture
def wired(segmenter):
    cfg = build_config(PARAMS)
    port = ReportingPort()
    intake = SensorIntake(SensorDecoders(cfg, np.eye(4)), Synchronizer(sync_config(cfg)), port)
    port.intake = intake
    worker = InferenceWorker(
        segmenter,
        np.zeros((25, 3), np.uint8),
        [CameraOutput("", port)],
        None,
        port.now,
        OutputOptions(color=False, color_alpha=1.0, confidence=False),
    )
    return intake, port, worker


def push_pair(intake: SensorIntake, stamp: float, depth_valid: bool = True, **rgb_kw) -> None:
    intake.sensor("depth", depth(stamp, depth_valid), stamp)
    intake.sensor("rgb", rgb(stamp, **rgb_kw), stamp + 0.01)


def test_arrival_admits_without_decoding_and_the_frame_holds_raw_messages(wired) -> None:
    intake, port, _ = wired
    push_pair(intake, 1.0, depth_valid=False)
    (frame,) = port.take_frames()
    assert all(isinstance(m, Pending) and m.image.size == 0 for m in frame.messages.values())
    assert intake.health["depth"].rejected == 0  # the all-NaN image was not decoded yet
    assert intake.decoders.last_size["rgb"] == (H, W)  # the declared size is the reference


def test_a_message_failing_its_decode_leaves_the_frame_and_is_counted_on_its_sensor(
    wired, caplog
) -> None:
    intake, port, worker = wired
    push_pair(intake, 1.0, depth_valid=False)
    (frame,) = port.take_frames()
    decoded, problems = decode_frame(frame)
    assert decoded is not None and decoded.present == ("rgb",)
    assert str(decoded.absent["depth"]) == "rejected"
    assert [(p.sensor, p.reason) for p in problems] == [
        ("depth", "depth image has no valid pixel (all 0/NaN/Inf)")
    ]
    with caplog.at_level(logging.WARNING, logger="sam_moelora_ros"):
        assert worker.process(frame) is True  # labelled from RGB alone
    health = intake.health["depth"]
    assert health.rejected == 1 and "no valid pixel" in health.last_error
    assert any("rejected depth message" in r.getMessage() for r in caplog.records)
    assert worker.outputs[""].stats.last_modalities == ("rgb",)
    assert [key for key, _ in port.published] == ["labels"]


def test_an_anchor_failing_its_decode_loses_its_frame_not_the_worker(wired) -> None:
    intake, port, worker = wired
    push_pair(intake, 1.0, encoding="32FC1")
    (bad,) = port.take_frames()
    assert worker.process(bad) is False
    stats = worker.outputs[""].stats
    assert stats.failures == 0 and stats.frames_out == 0  # a rejected message, not inference
    assert intake.health["rgb"].rejected == 1
    assert "'32FC1' is not a colour/mono encoding" in intake.health["rgb"].last_error
    assert port.published == []
    push_pair(intake, 1.1)
    (good,) = port.take_frames()
    assert worker.process(good) is True and stats.frames_out == 1


def test_frames_the_worker_drops_are_never_decoded(wired) -> None:
    """Latest wins: of three frames submitted while the worker is busy only the newest is
    decoded, so the bad depth images of the two dropped ones are never rejected."""
    intake, port, worker = wired
    for stamp in (1.0, 1.1, 1.2):
        push_pair(intake, stamp, depth_valid=stamp == 1.2)
        worker.submit(port.take_frames())
    pending = worker.slots.take(timeout=0)
    assert worker.slots.dropped[""] == 2
    assert worker.process_batch(pending) == {"": True}
    assert intake.health["depth"].rejected == 0 and port.problems == []
    assert worker.outputs[""].stats.last_modalities == ("rgb", "depth")

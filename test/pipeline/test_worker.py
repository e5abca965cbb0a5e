"""The inference worker without DDS: a real tiny Segmenter, frames from a real Synchronizer.

``publish`` collects into a list (the node passes its publishers' ``publish``) and the clock is
a settable number (the node passes its ROS clock), so statistics and the failure policy are
checked exactly.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from sam_moelora_ros.pipeline import worker as worker_module
from sam_moelora_ros.pipeline.decode import Camera, Decoded
from sam_moelora_ros.pipeline.diagnostics import ERROR, OK, RECENT_FAILURE_S, WARN
from sam_moelora_ros.pipeline.ports import FrameCollector
from sam_moelora_ros.pipeline.worker import (
    CameraOutput,
    InferenceWorker,
    OutputOptions,
    RouterHistory,
    output_header,
)
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync.synchronizer import Frame, SensorSpec, SyncConfig, Synchronizer

H, W = 48, 64
SENSORS = ("rgb", "depth", "lidar")


class Clock:
    """A settable receive clock (seconds)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def decoded(stamp: float, frame_id: str, channels: int = 3, seed: int = 0) -> Decoded:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (H, W, channels), dtype=np.uint8)
    sec = int(stamp)
    return Decoded(image, plain_header(sec, round((stamp - sec) * 1e9), frame_id))


def frames(
    stamps: list[float], anchor: str = "rgb", channels: int = 3, skip: tuple[str, ...] = ()
) -> list[Frame]:
    """One frame per stamp from a real synchroniser; ``skip``ped sensors never publish."""
    specs = tuple(SensorSpec(n) for n in SENSORS)
    sync = Synchronizer(SyncConfig(sensors=specs, anchor=anchor))
    out: list[Frame] = []
    order = sorted(SENSORS, key=lambda n: n == anchor)  # the anchor last: the others are in
    for stamp in stamps:
        for name in order:
            if name not in skip:
                frame_id = "lidar" if name == "lidar" else "camera"
                image_channels = channels if name == anchor else 3
                msg = decoded(stamp, frame_id, image_channels)
                out += sync.push(name, stamp, msg, stamp)
    return out + sync.flush()


@pytest.fixture
def make_worker(segmenter):
    def make(options: OutputOptions | None = None):
        port = FrameCollector()
        published = port.published
        clock = Clock()
        output = CameraOutput("", port)
        worker = InferenceWorker(
            segmenter,
            np.arange(25 * 3, dtype=np.uint8).reshape(25, 3),
            [output],
            None,
            clock,
            options or OutputOptions(color=True, color_alpha=0.5, confidence=True),
        )
        return worker, published, clock

    return make


def only(worker: InferenceWorker) -> CameraOutput:
    """The one camera of a node without ``cameras`` (named "")."""
    return worker.outputs[""]


def status():
    return Synchronizer(SyncConfig(sensors=(SensorSpec("rgb"),))).status(0.0)


def test_labels_go_out_first_with_the_anchor_header_then_the_extras(make_worker) -> None:
    worker, published, clock = make_worker()
    (frame,) = frames([10.25])
    clock.now = frame.arrival_s + 0.5
    assert worker.process(frame) is True
    assert [key for key, _ in published] == ["labels", "labels_color", "confidence"]
    labels = published[0][1]
    assert (labels.height, labels.width, labels.encoding) == (H, W, "mono8")
    assert labels.header is frame.messages["rgb"].header
    assert (published[1][1].encoding, published[2][1].encoding) == ("rgb8", "32FC1")
    stats = only(worker).stats
    assert (stats.frames_out, stats.last_anchor, stats.failures) == (1, "rgb", 0)
    assert stats.last_modalities == ("rgb", "depth", "lidar")
    assert stats.last_latency_s == pytest.approx(0.5) and stats.last_wait_s == pytest.approx(0.5)
    means = only(worker).router.means()
    assert set(means) == {"rgb", "depth", "lidar"} and sum(means.values()) == pytest.approx(1.0)


def test_images_nobody_subscribed_to_are_not_built(make_worker, monkeypatch) -> None:
    """image_pipeline's lazy outputs: ``labels`` always, the rest while someone listens."""
    worker, published, _ = make_worker()
    port = only(worker).port
    assert isinstance(port, FrameCollector)
    painted: list[int] = []
    real_colorize = worker_module.colorize
    monkeypatch.setattr(
        worker_module, "colorize", lambda *a: painted.append(1) or real_colorize(*a)
    )
    first, second, third = frames([1.0, 2.0, 3.0])
    port.unwanted = frozenset({"labels_color"})
    worker.process(first)
    assert [key for key, _ in published] == ["labels", "confidence"] and not painted
    port.unwanted = frozenset({"labels_color", "confidence"})
    published.clear()
    worker.process(second)
    assert [key for key, _ in published] == ["labels"]
    port.unwanted = frozenset()  # a viewer subscribed: the next frame has its colour again
    published.clear()
    worker.process(third)
    assert [key for key, _ in published] == ["labels", "labels_color", "confidence"]
    assert painted == [1]


def test_output_options_apply_to_the_next_frame(make_worker) -> None:
    options = OutputOptions(color=True, color_alpha=1.0, confidence=True)
    worker, published, _ = make_worker(options)
    first, second = frames([1.0, 2.0])
    worker.process(first)
    options.color, options.confidence = False, False  # ros2 param set output.* false
    published.clear()
    worker.process(second)
    assert [key for key, _ in published] == ["labels"]


def test_lidar_anchored_labels_are_in_the_cameras_frame() -> None:
    (frame,) = frames([5.5], anchor="lidar")
    camera = Camera(H, W, np.eye(3), None, "camera_optical")
    header = output_header(frame, camera)
    assert header.frame_id == "camera_optical"
    assert (header.stamp.sec, header.stamp.nanosec) == (5, 500_000_000)
    # no camera_info: the frame's RGB (else depth) image names the camera's frame
    assert output_header(frame, None).frame_id == frame.messages["rgb"].header.frame_id
    (alone,) = frames([5.5], anchor="lidar", skip=("rgb", "depth"))
    assert output_header(alone, None) is alone.messages["lidar"].header
    (rgb_frame,) = frames([5.5])
    assert output_header(rgb_frame, camera) is rgb_frame.messages["rgb"].header


def test_a_failed_frame_is_error_until_a_frame_succeeds(make_worker, caplog) -> None:
    """Regression: ``last_error`` was never cleared, so one bad frame meant ERROR for good."""
    worker, published, clock = make_worker()
    (bad,) = frames([1.0], channels=2)  # an H x W x 2 image: the Segmenter refuses it
    (good,) = frames([2.0])
    with caplog.at_level(logging.WARNING, logger="sam_moelora_ros"):
        assert worker.process(bad) is False
        assert worker.process(bad) is False
    assert published == []
    failed = [r.getMessage() for r in caplog.records if "inference failed" in r.getMessage()]
    assert len(failed) == 1 and "SegmenterError" in failed[0]  # throttled: one per period
    report = worker.report("n", status())
    assert report.level == ERROR and "expected an H x W x 3 image" in report.message
    assert (only(worker).stats.failures, only(worker).stats.consecutive_failures) == (2, 2)

    clock.now += 1.0
    assert worker.process(good) is True
    report = worker.report("n", status())
    assert report.level == WARN and report.message.startswith("recovered; a frame failed 1.0 s")
    clock.now += RECENT_FAILURE_S
    report = worker.report("n", status())
    assert report.level == OK and report.message == "using rgb+depth+lidar (anchor rgb)"
    assert report.values["failures"] == "2" and report.values["frames_out"] == "1"


def test_submit_counts_every_frame_keeps_the_newest_and_records_presence(make_worker) -> None:
    worker, published, _ = make_worker()
    batch = frames([1.0, 2.0, 3.0], skip=("depth",))
    assert all("depth" in f.absent for f in batch)
    worker.submit(batch)
    assert (only(worker).stats.frames_in, worker.slots.dropped[""]) == (3, 2)
    assert only(worker).presence.missed("depth") == (
        0,
        3,
    )  # never seen: not "missed", its own state
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while only(worker).stats.frames_out < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.close(timeout_s=10)
    assert only(worker).stats.frames_out == 1
    labels = published[0][1]
    assert labels.header.stamp.sec == 3  # latest wins
    assert worker._thread is not None and not worker._thread.is_alive()
    report = worker.report("n", status())
    assert report.values["frames_in"] == "3" and report.values["frames_dropped"] == "2"


def test_router_history_averages_each_modality_over_the_frames_that_had_it() -> None:
    history = RouterHistory(window=3)
    history.add({"rgb": 0.5, "depth": 0.5})
    history.add({"rgb": 1.0})
    assert history.means() == {"rgb": 0.75, "depth": 0.5}
    history.add({"rgb": 0.25, "lidar": 0.75})
    history.add({"rgb": 0.25, "lidar": 0.75})  # the first frame leaves the window
    assert history.means() == {"rgb": 0.5, "lidar": 0.75}


def two_camera_worker(segmenter, clock: Clock):
    """A worker serving cameras ``front`` and ``rear``, each collecting its own images."""
    ports = {name: FrameCollector() for name in ("front", "rear")}
    published = {name: port.published for name, port in ports.items()}
    outputs = [CameraOutput(name, port) for name, port in ports.items()]
    worker = InferenceWorker(
        segmenter,
        np.arange(25 * 3, dtype=np.uint8).reshape(25, 3),
        outputs,
        None,
        clock,
        OutputOptions(color=True, color_alpha=0.5, confidence=True),
    )
    return worker, published


def test_frames_of_two_cameras_ready_together_share_one_batch(segmenter) -> None:
    """Each camera's labels go to its own publishers with its own frame's header, from one
    forward pass of two frames; each camera keeps its own statistics."""
    clock = Clock()
    worker, published = two_camera_worker(segmenter, clock)
    (front,) = frames([4.0])
    (rear,) = frames([4.5], skip=("depth",))
    worker.submit([front], "front")
    worker.submit([rear], "rear")
    assert worker.process_batch(worker.slots.take(0)) == {"front": True, "rear": True}
    for name, frame in (("front", front), ("rear", rear)):
        keys = [key for key, _ in published[name]]
        assert keys == ["labels", "labels_color", "confidence"]
        assert published[name][0][1].header is frame.messages["rgb"].header
        stats = worker.outputs[name].stats
        assert (stats.frames_in, stats.frames_out, stats.last_batch_size) == (1, 1, 2)
    assert worker.outputs["rear"].stats.last_modalities == ("rgb", "lidar")
    report = worker.report("n/rear", status(), "rear")
    assert report.name == "n/rear: inference" and report.values["batch_size"] == "2"
    assert set(worker.outputs["rear"].router.means()) == {"rgb", "lidar"}


def test_one_cameras_bad_frame_does_not_cost_the_other_camera_its_labels(segmenter) -> None:
    worker, published = two_camera_worker(segmenter, Clock())
    (bad,) = frames([1.0], channels=2)  # the Segmenter refuses an H x W x 2 image
    (good,) = frames([1.0])
    assert worker.process_batch({"front": bad, "rear": good}) == {"front": False, "rear": True}
    assert published["front"] == [] and published["rear"][0][0] == "labels"
    assert worker.outputs["front"].stats.consecutive_failures == 1
    assert worker.outputs["rear"].stats.failures == 0


def test_the_worker_thread_serves_every_camera(segmenter) -> None:
    worker, published = two_camera_worker(segmenter, Clock())
    worker.start()
    try:
        worker.submit(frames([1.0, 2.0]), "front")
        worker.submit(frames([3.0]), "rear")
        deadline = time.monotonic() + 30
        while not (published["front"] and published["rear"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.close(timeout_s=10)
    assert published["front"] and published["rear"]
    assert published["rear"][0][1].header.stamp.sec == 3
    assert worker.outputs["front"].stats.frames_in == 2


def test_the_worker_thread_warms_itself_up_before_its_first_frame(make_worker) -> None:
    """torch's thread pool and allocator arena are per thread: the worker's own thread runs one
    blank frame at start, so the first real frame is not the one that pays for them."""
    worker, published, _ = make_worker()
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.warmed_on is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.close(timeout_s=10)
    assert worker._thread is not None and worker.warmed_on == worker._thread.ident
    assert (
        published == [] and only(worker).stats.frames_out == 0 and only(worker).stats.failures == 0
    )


def test_a_publish_that_raises_is_a_failed_frame_not_a_dead_worker(segmenter) -> None:
    """A publisher error (a DDS failure, a context gone) on the labels used to end the worker
    thread with a traceback, so the node never labelled again; now the frame counts as failed."""
    published: list[tuple[str, object]] = []
    refuse = [True]

    class RefusingPort(FrameCollector):
        def publish(self, key: str, msg: object) -> None:
            if refuse[0]:
                raise RuntimeError("Failed to publish: publisher's context is invalid")
            published.append((key, msg))

    worker = InferenceWorker(
        segmenter,
        np.arange(25 * 3, dtype=np.uint8).reshape(25, 3),
        [CameraOutput("", RefusingPort())],
        None,
        Clock(),
        OutputOptions(color=True, color_alpha=0.5, confidence=True),
    )
    worker.start()
    try:
        worker.submit(frames([1.0]))
        deadline = time.monotonic() + 30
        while only(worker).stats.failures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        refuse[0] = False
        worker.submit(frames([2.0]))
        while not published and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.close(timeout_s=10)
    assert only(worker).stats.failures == 1 and "context is invalid" in str(
        only(worker).stats.last_error
    )
    assert [key for key, _ in published] == ["labels", "labels_color", "confidence"]

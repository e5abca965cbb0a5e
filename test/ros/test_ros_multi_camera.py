"""Two cameras, one node, one model, over Fast DDS (``cameras`` parameter).

``front`` has all four sensors (raw Images), ``rear`` a JPEG camera (image_transport's
``compressed`` topic, as drivers publish it) and the LiDAR; the LiDAR is one topic both groups
name (one sensor projected into each camera). Each camera's labels must come out under
its own namespace with its own frame's header, /diagnostics must report each camera on its own,
frames the two cameras deliver together must share a batch, and one camera going silent must not
stop the other (nor its own group's LiDAR, which takes over as that group's anchor).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ros_harness import (
    BUILDERS,
    TOPICS,
    TYPES,
    Harness,
    NodeProcess,
    camera_info_msg,
    domain_of,
    header,
    node_args,
    running_node,
    stamp_of,
    values,
    wait_until,
)
from sensor_msgs.msg import CompressedImage

from sam_moelora_ros.sensors.compressed import encode_compressed_image

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

NODE = "sam_moelora_perception"
LIDAR_TOPIC = "/shared/lidar/points"
REAR_RGB_TOPIC = "/rear_cam/image_raw/compressed"
"""The rear camera as image_transport's ``compressed`` plugin publishes it (JPEG); the front
camera's images are raw, so each group's ``message_type: auto`` finds its own topic's type."""
FRONT = ("rgb", "depth", "event", "lidar")
REAR = ("rgb", "lidar")


@pytest.fixture(scope="module")
def node(ros_env: dict[str, str], tiny_adapter: Path) -> Iterator[NodeProcess]:
    args = node_args(
        tiny_adapter,
        "cameras:=[front, rear]",
        "cameras.rear.sensors:=[rgb, lidar]",
        f"cameras.front.lidar.topic:={LIDAR_TOPIC}",
        f"cameras.rear.lidar.topic:={LIDAR_TOPIC}",
        f"cameras.rear.rgb.topic:={REAR_RGB_TOPIC}",
    )
    with running_node(args, ros_env) as proc:
        yield proc


@pytest.fixture(scope="module")
def harness(node: NodeProcess, ros_env: dict[str, str]) -> Iterator[Harness]:
    h = Harness(domain_of(ros_env), cameras=("front", "rear"))
    for camera, sensors in (("front", FRONT), ("rear", REAR)):
        for name in (*sensors, "camera_info"):
            if (camera, name) == ("rear", "rgb"):
                h.publisher("rear/rgb", CompressedImage, REAR_RGB_TOPIC)
            elif name != "lidar":  # the group's default topics: <camera>/ + the shared ones
                h.publisher(f"{camera}/{name}", TYPES[name], f"{camera}/{TOPICS[name]}")
    h.publisher("lidar", TYPES["lidar"], LIDAR_TOPIC)
    h.wait_matched()

    def both_have_camera_info() -> bool:
        for camera in ("front", "rear"):
            h.pubs[f"{camera}/camera_info"].publish(camera_info(camera, time.time()))
        statuses = [h.latest_status(f"{NODE}/{c}: camera_info") for c in ("front", "rear")]
        return all(s is not None and int(values(s)["received"]) > 0 for s in statuses)

    wait_until(both_have_camera_info, 30, "both cameras' first camera_info", step=0.2)
    yield h
    h.close()


def camera_info(camera: str, stamp: float):
    msg = camera_info_msg(stamp)
    msg.header.frame_id = f"{camera}_optical"
    return msg


def jpeg(stamp: float) -> CompressedImage:
    image = np.random.default_rng(int(stamp * 1e3) % 1000).integers(0, 256, (48, 64, 3), np.uint8)
    return encode_compressed_image(
        image, "rgb8", "jpeg", header=header(stamp), msg_type=CompressedImage
    )


def publish_tick(h: Harness, cameras: tuple[str, ...], stamp: float) -> None:
    """One tick: each camera's images with its own frame_id; the shared cloud once."""
    h.pubs["lidar"].publish(BUILDERS["lidar"](stamp))
    for camera in cameras:
        h.pubs[f"{camera}/camera_info"].publish(camera_info(camera, stamp))
        sensors = FRONT if camera == "front" else REAR
        for name in sensors:
            if name == "lidar":
                continue
            msg = jpeg(stamp) if (camera, name) == ("rear", "rgb") else BUILDERS[name](stamp)
            msg.header.frame_id = f"{camera}_optical"
            h.pubs[f"{camera}/{name}"].publish(msg)


def stream(h: Harness, cameras: tuple[str, ...], seconds: float, rate: float = 15.0) -> set:
    stamps = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        stamp = time.time()
        publish_tick(h, cameras, stamp)
        stamps.add(round(stamp, 6))
        time.sleep(1.0 / rate)
    return stamps


def batch_sizes(h: Harness, camera: str) -> set[str]:
    """Every ``batch_size`` the camera's inference status reported so far."""
    sizes = set()
    for array in h.messages("diagnostics"):
        for status in array.status:
            if status.name == f"{NODE}/{camera}: inference":
                sizes.add(values(status)["batch_size"])
    return sizes


def test_each_camera_gets_its_own_labels_from_one_model(harness: Harness) -> None:
    stamps = stream(harness, ("front", "rear"), 3.0)
    for camera in ("front", "rear"):
        wait_until(lambda c=camera: harness.count(f"{c}/labels") >= 3, 30, f"{camera} labels")
        for msg in harness.messages(f"{camera}/labels"):
            assert msg.header.frame_id == f"{camera}_optical"
            assert round(stamp_of(msg), 6) in stamps
            assert (msg.encoding, msg.height, msg.width) == ("mono8", 48, 64)
        assert harness.count(f"{camera}/labels_color") >= 1

    def modalities(camera: str) -> str:
        status = harness.latest_status(f"{NODE}/{camera}: inference")
        return "" if status is None else values(status)["modalities"]

    # the rear group has only rgb + the shared LiDAR, projected with its own camera_info
    wait_until(lambda: modalities("rear") == "rgb,lidar", 20, "rear frames with rgb + lidar")
    stream(harness, ("front", "rear"), 1.0)
    assert modalities("front") == "rgb,depth,event,lidar"
    front_depth = harness.latest_status(f"{NODE}/front: sensor depth")
    assert front_depth is not None and values(front_depth)["topic"] == "front/depth/image"
    rear_lidar = harness.latest_status(f"{NODE}/rear: sensor lidar")
    assert rear_lidar is not None and values(rear_lidar)["topic"] == LIDAR_TOPIC
    rear_rgb = harness.latest_status(f"{NODE}/rear: sensor rgb")
    assert rear_rgb is not None
    assert values(rear_rgb)["message_type"] == "sensor_msgs/msg/CompressedImage"
    front_rgb = harness.latest_status(f"{NODE}/front: sensor rgb")
    assert front_rgb is not None and values(front_rgb)["message_type"] == "sensor_msgs/msg/Image"
    # one model, one worker: the two cameras' frames, ready together, share forward passes
    assert "2" in batch_sizes(harness, "front") | batch_sizes(harness, "rear")


def test_a_silent_camera_does_not_stop_the_other(harness: Harness) -> None:
    stream(harness, ("front", "rear"), 1.0)
    harness.clear()
    stamps = stream(harness, ("front",), 2.5)
    alone = lambda: [m for m in harness.messages("front/labels") if round(stamp_of(m), 6) in stamps]  # noqa: E731
    wait_until(lambda: len(alone()) >= 3, 30, "front labels of frames sent alone")
    rear_rgb = wait_until(
        lambda: (
            (s := harness.latest_status(f"{NODE}/rear: sensor rgb"))
            and values(s)["state"] == "stale"
            and s
        ),
        20,
        "the rear camera reported stale",
    )
    assert rear_rgb.level != b"\x00"
    # the rear group's LiDAR (shared, still live) takes over as its anchor: LiDAR-only labels,
    # still in the rear camera's frame (its last camera_info)
    harness.clear()
    stream(harness, ("front",), 1.5)
    rear = harness.latest_status(f"{NODE}/rear: inference")
    assert rear is not None and values(rear)["modalities"] == "lidar"
    assert values(rear)["anchor"] == "lidar"
    rear_labels = harness.messages("rear/labels")
    assert rear_labels and rear_labels[-1].header.frame_id == "rear_optical"


def test_each_camera_has_its_own_latched_class_table(harness: Harness) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import LabelInfo

    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    for camera in ("front", "rear"):  # joined long after the node published them
        topic = f"/{NODE}/{camera}/label_info"
        harness.subscribe(f"{camera}/label_info", LabelInfo, topic, latched)
    for camera in ("front", "rear"):
        (info,) = wait_until(
            lambda c=camera: harness.messages(f"{c}/label_info"), 20, f"{camera}'s LabelInfo"
        )
        assert [c.class_id for c in info.class_map] == list(range(25))

"""The outputs downstream nodes use, and the message packages PyPI lacks, over Fast DDS.

One node (rgb anchor, LiDAR with the identity extrinsic, event packets, PNG labels on) serves the
module. vision_msgs, event_camera_msgs and tf2_msgs are the ones `make venv` builds from
ros_msgs/, so these are the real types a robot's nodes exchange:

- a subscriber that joins after the node started still gets ``~/label_info`` (transient local);
- ``~/lidar/labelled`` carries, at each point's pixel, the label of the label image of the same
  stamp (known camera, identity extrinsic: the pixel is computed here by hand), beside
  ``~/labels/camera_info`` and the lossless ``~/labels/compressed``;
- EventPacket topics, evt3 and mono, are decoded and used in frames;
- an output topic is built for while a subscriber is matched to it, and only then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy
from event_camera_msgs.msg import EventPacket
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import (
    RELIABLE,
    H,
    Harness,
    K,
    NodeProcess,
    W,
    camera_info_msg,
    domain_of,
    header,
    lidar_msg,
    node_args,
    rgb_msg,
    running_node,
    stamp_of,
    values,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from vision_msgs.msg import LabelInfo

from sam_moelora_ros.params import build_config, load_palette
from sam_moelora_ros.ros.camera_channel import CameraChannel
from sam_moelora_ros.ros.startup import StartupError, make_executor
from sam_moelora_ros.sensors.compressed import decode_compressed_image
from sam_moelora_ros.sensors.event_packets import encode_mono
from sam_moelora_ros.sensors.evt3 import encode_evt3
from sam_moelora_ros.sensors.image import image_to_numpy
from sam_moelora_ros.sensors.lidar import read_points

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

NS = "/sam_moelora_perception"
EVENT_TOPIC = "/event/packets"


@pytest.fixture(scope="module")
def node(ros_env: dict[str, str], tiny_adapter: Path) -> Iterator[NodeProcess]:
    extra = (
        "sensors.depth.enabled:=false",
        f"sensors.event.topic:={EVENT_TOPIC}",
        "output.labels_compressed:=true",
        "fallback_anchors:=[lidar]",
    )
    with running_node(node_args(tiny_adapter, *extra), ros_env) as proc:
        yield proc


@pytest.fixture(scope="module")
def harness(node: NodeProcess, ros_env: dict[str, str]) -> Iterator[Harness]:
    h = Harness(domain_of(ros_env))
    h.publisher("rgb", Image, "/camera/image")
    h.publisher("lidar", PointCloud2, "/lidar/points")
    h.publisher("camera_info", CameraInfo, "/camera/camera_info")
    h.subscribe("labelled", PointCloud2, f"{NS}/lidar/labelled")
    h.subscribe("label_camera_info", CameraInfo, f"{NS}/labels/camera_info")
    h.subscribe("compressed", CompressedImage, f"{NS}/labels/compressed")
    yield h
    h.close()


def publish_until(h: Harness, builders: dict[str, Any], done: Any, what: str) -> list[float]:
    """Publish every builder's message with one stamp per tick (10 Hz) until ``done()``."""
    stamps: list[float] = []

    def tick() -> Any:
        stamp = time.time()
        for name, build in builders.items():
            h.pubs[name].publish(build(stamp, len(stamps)))
        stamps.append(stamp)
        time.sleep(0.1)
        return done()

    wait_until(tick, 60, what, step=0.0)
    return stamps


def by_stamp(h: Harness, key: str) -> dict[float, Any]:
    return {round(stamp_of(m), 6): m for m in h.messages(key)}


def test_a_late_subscriber_gets_the_class_table(node: NodeProcess, harness: Harness) -> None:
    time.sleep(1.0)  # the node published it at start, before this subscriber exists
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    harness.subscribe("label_info", LabelInfo, f"{NS}/label_info", latched)
    (info,) = wait_until(lambda: harness.messages("label_info"), 20, "a latched LabelInfo")
    names, _ = load_palette("", 25)
    assert [(c.class_id, c.class_name) for c in info.class_map] == list(enumerate(names))
    assert info.threshold == 0.0
    assert info.header.stamp.sec > 0


def test_the_labelled_cloud_holds_the_label_at_each_points_pixel(
    node: NodeProcess, harness: Harness
) -> None:
    h = harness
    h.wait_matched()
    builders = {
        "camera_info": lambda s, _: camera_info_msg(s),
        "rgb": lambda s, i: rgb_msg(s, seed=i),
        "lidar": lambda s, _: lidar_msg(s),
    }

    def matched() -> list[float]:
        labels, clouds = by_stamp(h, "labels"), by_stamp(h, "labelled")
        infos, pngs = by_stamp(h, "label_camera_info"), by_stamp(h, "compressed")
        return sorted(set(labels) & set(clouds) & set(infos) & set(pngs))

    publish_until(h, builders, matched, "labels, labelled cloud, camera_info and PNG of a stamp")
    stamp = matched()[-1]
    labels_msg = by_stamp(h, "labels")[stamp]
    labels = image_to_numpy(labels_msg)
    cloud = by_stamp(h, "labelled")[stamp]
    assert cloud.header.frame_id == "lidar"  # the LiDAR's own frame and stamp
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "label", "confidence"]
    points = read_points(cloud)
    assert points.size == 640  # every point of lidar_msg lies in the image
    # identity extrinsic: u = fx x / z + cx, pixel floor(u + 0.5)
    cols = np.floor(K[0] * points["x"] / points["z"] + K[2] + 0.5).astype(int)
    rows = np.floor(K[4] * points["y"] / points["z"] + K[5] + 0.5).astype(int)
    np.testing.assert_array_equal(points["label"], labels[rows, cols])
    assert np.all((points["confidence"] > 0) & (points["confidence"] <= 1))
    info = by_stamp(h, "label_camera_info")[stamp]
    assert info.header == labels_msg.header and (info.height, info.width) == (H, W)
    assert list(info.k) == list(K)
    png = by_stamp(h, "compressed")[stamp]
    assert png.format == "mono8; png compressed " and png.header == labels_msg.header
    decoded, _ = decode_compressed_image(png)
    np.testing.assert_array_equal(decoded, labels)


def evt3_packet(stamp: float, index: int) -> EventPacket:
    """A 2 ms EVT 3.0 packet: sensor time runs on (100 ms per packet), stamped at its first
    event, like metavision_driver's."""
    base_us = 1_000_000 + 100_000 * index
    xs, ys = np.array([3, 10, 20, 40]), np.array([2, 8, 16, 30])
    t_us = base_us + np.array([0, 500, 1000, 2000])
    data = encode_evt3(xs, ys, t_us, np.array([1, 0, 1, 1]))
    return EventPacket(
        header=header(stamp - 0.003, "event_camera"), height=H, width=W, seq=index,
        time_base=0, encoding="evt3", is_bigendian=False, events=data,
    )  # fmt: skip


def mono_packet(stamp: float, index: int) -> EventPacket:
    xs, ys = np.array([5, 6, 30]), np.array([4, 4, 20])
    data = encode_mono(xs, ys, np.array([0, 1_000_000, 2_000_000]), np.array([1, 1, 0]))
    return EventPacket(
        header=header(stamp - 0.003, "event_camera"), height=H, width=W, seq=index,
        time_base=math.floor(stamp * 1e9), encoding="mono", is_bigendian=False, events=data,
    )  # fmt: skip


@pytest.mark.parametrize("encoding", ["evt3", "mono"])
def test_event_packets_arrive_decode_and_join_frames(
    node: NodeProcess, harness: Harness, encoding: str
) -> None:
    h = harness
    name = f"events_{encoding}"
    publisher = h.publisher(name, EventPacket, EVENT_TOPIC)
    try:
        node.wait_for_log(rf"sensor event: subscribed to {EVENT_TOPIC} as event_camera_msgs/msg/"
                          "EventPacket", timeout=30)  # fmt: skip
        packet = evt3_packet if encoding == "evt3" else mono_packet
        first = h.latest_status("sensor event")
        before = int(values(first)["used_in_frames"]) if first is not None else 0

        def used() -> bool:
            status = h.latest_status("sensor event")
            inference = h.latest_status(": inference")
            if status is None or inference is None:
                return False
            vals = values(status)
            return int(vals["used_in_frames"]) >= before + 3 and "event" in values(inference)[
                "modalities"
            ].split(",")

        builders = {"rgb": lambda s, i: rgb_msg(s, seed=i), name: packet}
        publish_until(h, builders, used, f"{encoding} packets used in frames")
        vals = values(h.latest_status("sensor event"))
        assert vals["decode_rejected"] == "0", vals["last_error"]
    finally:
        h.node.destroy_publisher(publisher)
        h.pubs.pop(name)


@pytest.fixture
def probe(ros_env: dict[str, str]) -> Iterator[Node]:
    """A plain rclpy node in a context of its own, on the module's domain."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_of(ros_env))
    node = Node("probe", context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_an_output_is_wanted_while_a_subscriber_is_matched(probe: Node) -> None:
    """The worker asks the channel (``wants``) before it builds colour, confidence, PNG or
    labelled-cloud messages: a topic nobody listens to costs the robot no CPU."""
    channel = CameraChannel(probe, "", build_config({}))
    channel.create_outputs(probe.create_publisher, RELIABLE)
    assert not any(channel.wants(key) for key in channel.pub)
    assert not channel.wants("no/such/output")
    topic = "/probe/labels_color"
    viewer = probe.create_subscription(Image, topic, lambda _: None, RELIABLE)
    wait_until(lambda: channel.wants("labels_color"), 20, f"a subscriber matched on {topic}")
    assert not channel.wants("confidence") and not channel.wants("lidar/labelled")
    probe.destroy_subscription(viewer)
    wait_until(lambda: not channel.wants("labels_color"), 20, "the viewer to leave")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("events", "EventsExecutor"), ("single_threaded", "SingleThreadedExecutor")],
)
def test_the_executor_parameter_picks_the_executor(probe: Node, kind: str, expected: str) -> None:
    """``executor``: rclpy's C++ EventsExecutor by default (this rclpy has it), else the Python
    one; a value validation missed (the lifecycle node reads it before configure) is refused."""
    probe.declare_parameter("executor", kind)
    executor = make_executor(probe)
    assert type(executor).__name__ == expected
    executor.add_node(probe)
    fired: list[int] = []
    timer = probe.create_timer(0.01, lambda: fired.append(1))
    deadline = time.monotonic() + 10
    while not fired and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    assert fired, f"{expected} ran no timer callback"
    probe.destroy_timer(timer)
    executor.remove_node(probe)
    probe.set_parameters([Parameter("executor", value="many")])
    with pytest.raises(StartupError, match=r"parameter 'executor' = 'many': must be one of"):
        make_executor(probe)

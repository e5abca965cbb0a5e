"""Real robots' topics over Fast DDS: compressed transports, auto types, a wrong type, /tf_static.

One node serves the module's main tests, started as deployed: the default input QoS
(``sensor_data``, best effort) and ``message_type: auto`` for every sensor. The test publishes
like drivers do (best effort), so the first messages may be lost to discovery: it publishes
until what must arrive has arrived, bounded by a time-out, and never counts best-effort traffic.

- rgb is an image_transport ``compressed`` topic (JPEG, ``rgb8; jpeg compressed bgr8``) reached
  by a remapping (``-r``), depth a ``compressedDepth`` topic (``16UC1; compressedDepth png``)
  named by parameter; LiDAR is the anchor, so the labels must be in the camera's frame.
- the event topic first carries CameraInfo, a type the event sensor cannot take: one error,
  logged once, ERROR on /diagnostics, however many such messages come; then a real event
  publisher appears, the node subscribes, and with LiDAR silent the event camera anchors frames
  (labels again in the camera's frame).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_harness import (
    REPO,
    H,
    Harness,
    NodeProcess,
    W,
    camera_info_msg,
    domain_of,
    event_msg,
    header,
    lidar_msg,
    node_args,
    running_node,
    stamp_of,
    tf_link,
    values,
    wait_until,
    without_packages,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from sam_moelora_ros.sensors.compressed import encode_compressed_depth, encode_compressed_image

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

CAMERA_FRAME = "camera_optical"
RGB_TOPIC = "/camera/image/compressed"
DEPTH_TOPIC = "/camera/depth/image/compressedDepth"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
ERROR = b"\x02"


def deployed_args(adapter: Path, *extra: str) -> list[str]:
    """The shipped params file and the tiny model; input QoS left at its default."""
    args = [
        "--params-file",
        str(REPO / "config" / "perception.yaml"),
        *("-p", f"model.adapter:={adapter}", "-p", "model.device:=cpu"),
        *("-p", "model.torch_threads:=1", "-p", "diagnostics.period:=0.25"),
    ]
    for item in extra:
        args += ["-r", item[3:]] if item.startswith("-r ") else ["-p", item]
    return args


def rgb_compressed(stamp: float) -> CompressedImage:
    rng = np.random.default_rng(int(stamp * 1e3) % 1000)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return encode_compressed_image(
        image, "rgb8", "jpeg", header=header(stamp, CAMERA_FRAME), msg_type=CompressedImage
    )


def depth_compressed(stamp: float) -> CompressedImage:
    mm = np.linspace(500, 8000, H * W).reshape(H, W).astype(np.uint16)
    return encode_compressed_depth(
        mm, "16UC1", "png", header=header(stamp, CAMERA_FRAME), msg_type=CompressedImage
    )


def camera_info(stamp: float) -> CameraInfo:
    msg = camera_info_msg(stamp)
    msg.header.frame_id = CAMERA_FRAME
    return msg


def event_image(stamp: float) -> Image:
    msg = event_msg(stamp)
    msg.header.frame_id = "event_camera"
    return msg


@pytest.fixture(scope="module")
def node(ros_env: dict[str, str], tiny_adapter: Path) -> Iterator[NodeProcess]:
    extra = (
        f"-r /camera/image:={RGB_TOPIC}",  # the rgb topic reached by remapping
        f"sensors.depth.topic:={DEPTH_TOPIC}",
        "anchor:=lidar",
        "fallback_anchors:=[event]",
    )
    with running_node(deployed_args(tiny_adapter, *extra), ros_env) as proc:
        yield proc


@pytest.fixture(scope="module")
def harness(node: NodeProcess, ros_env: dict[str, str]) -> Iterator[Harness]:
    h = Harness(domain_of(ros_env))
    sensor_qos = qos_profile_sensor_data  # what drivers publish with
    h.publisher("rgb", CompressedImage, RGB_TOPIC, sensor_qos)
    h.publisher("depth", CompressedImage, DEPTH_TOPIC, sensor_qos)
    h.publisher("lidar", PointCloud2, "/lidar/points", sensor_qos)
    h.publisher("camera_info", CameraInfo, "/camera/camera_info", sensor_qos)
    # a type the event sensor cannot take: the node must never subscribe to it
    h.publisher("wrong_event", CameraInfo, "/event/image", sensor_qos)
    yield h
    h.close()


def subscribed(node: NodeProcess, sensor: str, topic: str, type_name: str) -> None:
    pattern = rf"sensor {sensor}: subscribed to {re.escape(topic)} as {type_name} \(as advertised\)"
    node.wait_for_log(pattern, timeout=30)


def publish_until(
    h: Harness, sensors: dict[str, Any], done: Any, timeout: float, what: str
) -> list[float]:
    """Publish ``sensors`` (name -> builder) with one stamp per tick at 10 Hz until
    ``done(stamps published so far)``; returns those stamps."""
    stamps: list[float] = []

    def tick() -> Any:
        stamp = time.time()
        for name, build in sensors.items():
            h.pubs[name].publish(build(stamp))
        stamps.append(stamp)
        time.sleep(0.1)
        return done(stamps)

    try:
        wait_until(tick, timeout, what, step=0.0)
    except AssertionError as exc:
        diagnostics = [f"{s.name}: {s.message}" for s in h.messages("diagnostics")[-1].status]
        raise AssertionError(f"{exc}; last /diagnostics: {diagnostics}") from None
    return stamps


def labels_at(h: Harness, stamps: list[float]) -> list[Image]:
    wanted = {round(s, 6) for s in stamps}
    return [m for m in h.messages("labels") if round(stamp_of(m), 6) in wanted]


def test_compressed_topics_with_auto_types_give_labels_in_the_cameras_frame(
    node: NodeProcess, harness: Harness
) -> None:
    subscribed(node, "rgb", RGB_TOPIC, COMPRESSED)
    subscribed(node, "depth", DEPTH_TOPIC, COMPRESSED)
    subscribed(node, "lidar", "/lidar/points", "sensor_msgs/msg/PointCloud2")
    sensors = {
        "camera_info": camera_info,
        "rgb": rgb_compressed,
        "depth": depth_compressed,
        "lidar": lidar_msg,
        "wrong_event": camera_info,
    }

    def three_sensor_labels(stamps: list[float]) -> bool:
        status = harness.latest_status(": inference")
        modalities = values(status).get("modalities", "") if status else ""
        return bool(labels_at(harness, stamps)) and modalities == "rgb,depth,lidar"

    stamps = publish_until(harness, sensors, three_sensor_labels, 90, "labels from 3 sensors")
    label = labels_at(harness, stamps)[-1]
    assert label.header.frame_id == CAMERA_FRAME  # the anchor's cloud is in frame "lidar"
    assert (label.height, label.width) == (H, W)
    for sensor in ("rgb", "depth"):
        status = harness.latest_status(f"sensor {sensor}")
        assert status is not None and values(status)["message_type"] == COMPRESSED
        assert int(values(status)["decode_rejected"]) == 0, values(status)["last_error"]


def test_a_topic_of_the_wrong_type_is_one_error(node: NodeProcess, harness: Harness) -> None:
    # the previous test published ~10 CameraInfo messages per second on the event topic
    node.wait_for_log(r"sensor event: topic /event/image carries", timeout=5)
    errors = re.findall(r"sensor event: topic /event/image carries .*", node.output)
    assert len(errors) == 1, errors
    assert "['sensor_msgs/msg/CameraInfo'], which the event sensor cannot take" in errors[0]
    assert "Traceback" not in node.output
    status = wait_until(lambda: harness.latest_status("sensor event"), 10, "an event sensor status")
    assert status.level == ERROR and "cannot take" in status.message
    assert values(status)["message_type"] == "auto (no publisher yet)"


def test_the_right_publisher_clears_the_error_and_event_anchored_labels_use_the_camera(
    node: NodeProcess, harness: Harness, ros_env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    h = harness
    h.node.destroy_publisher(h.pubs.pop("wrong_event"))
    # a driver process of its own (one DDS participant cannot hold a topic under two types)
    driver = Harness(domain_of(ros_env))
    request.addfinalizer(driver.close)
    h.pubs["event"] = driver.publisher("event", Image, "/event/image", qos_profile_sensor_data)
    subscribed(node, "event", "/event/image", "sensor_msgs/msg/Image")
    node.wait_for_log(r"sensor event: the type problem on /event/image is gone", timeout=10)
    sensors = {
        "camera_info": camera_info,
        "rgb": rgb_compressed,
        "depth": depth_compressed,
        "event": event_image,
    }

    def event_anchored(stamps: list[float]) -> bool:
        status = h.latest_status(": inference")
        return (
            bool(labels_at(h, stamps))
            and status is not None
            and (values(status).get("anchor") == "event")
        )

    # LiDAR is silent: after anchor_timeout the event camera anchors the frames
    stamps = publish_until(h, sensors, event_anchored, 60, "event-anchored labels")
    label = labels_at(h, stamps)[-1]
    assert label.header.frame_id == CAMERA_FRAME  # not the event camera's "event_camera"
    status = h.latest_status("sensor event")
    assert status is not None and status.level != ERROR


def test_asking_for_event_packets_without_their_package_is_a_startup_error(
    ros_env: dict[str, str], tiny_adapter: Path, tmp_path: Path
) -> None:
    extra = "sensors.event.message_type:=event_camera_msgs/msg/EventPacket"
    env = without_packages(ros_env, ["event_camera_msgs"], tmp_path)
    proc = NodeProcess(node_args(tiny_adapter, extra), env)
    code = proc.proc.wait(60)
    proc.stop()
    assert code == 2, proc.output
    proc.wait_for_log(
        r"cannot start: parameter 'sensors.event.message_type' = "
        r"'event_camera_msgs/msg/EventPacket': .*'event_camera_msgs'.*"
        r"sudo apt install ros-\$ROS_DISTRO-event-camera-msgs",
        timeout=1,
    )
    assert "Traceback" not in proc.output


def test_use_tf_without_tf2_is_a_startup_error_saying_what_to_do(
    ros_env: dict[str, str], tiny_adapter: Path, tmp_path: Path
) -> None:
    env = without_packages(ros_env, ["tf2_ros", "tf2_msgs"], tmp_path)
    proc = NodeProcess(node_args(tiny_adapter, "lidar.use_tf:=true"), env)
    code = proc.proc.wait(60)
    proc.stop()
    assert code == 2, proc.output
    proc.wait_for_log(
        r"cannot start: parameter 'lidar.use_tf' = True: neither tf2_ros nor tf2_msgs.*"
        r"lidar.use_tf: false",
        timeout=1,
    )


def test_a_multi_hop_tf_static_chain_sets_the_extrinsic(
    ros_env: dict[str, str], tiny_adapter: Path
) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from tf2_msgs.msg import TFMessage

    identity, optical = (0.0, 0.0, 0.0, 1.0), (-0.5, 0.5, -0.5, 0.5)
    yaw = (0.0, 0.0, math.sin(math.pi / 8), math.cos(math.pi / 8))
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    h = Harness(domain_of(ros_env))
    try:
        # published latched before the node exists: the node must still get it
        tf_pub = h.node.create_publisher(TFMessage, "/tf_static", latched)
        chain = [
            tf_link("base_link", "lidar_mount", (0.2, 0.0, 0.4), yaw),
            tf_link("lidar_mount", "os_lidar", (0.0, 0.0, 0.05), identity),
            tf_link("base_link", "camera_link", (0.3, 0.0, 0.3), identity),
            tf_link("camera_link", CAMERA_FRAME, (0.0, 0.0, 0.0), optical),
        ]
        tf_pub.publish(TFMessage(transforms=chain))
        with running_node(node_args(tiny_adapter, "lidar.use_tf:=true"), ros_env) as proc:
            h.publisher("lidar", PointCloud2, "/lidar/points")
            h.publisher("camera_info", CameraInfo, "/camera/camera_info")
            h.wait_matched()

            def cloud(stamp: float) -> PointCloud2:
                msg = lidar_msg(stamp)
                msg.header.frame_id = "os_lidar"
                return msg

            publish_until(
                h,
                {"camera_info": camera_info, "lidar": cloud},
                lambda _: "T_cam_from_lidar from" in proc.output,
                60,
                "the node's tf chain",
            )
            proc.wait_for_log(
                r"lidar.use_tf: T_cam_from_lidar from (/tf_static|tf2_ros), chain os_lidar -> "
                rf"lidar_mount -> base_link -> camera_link -> {CAMERA_FRAME}",
                timeout=5,
            )
    finally:
        h.close()

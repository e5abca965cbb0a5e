"""The node's topic-type decisions and its own /tf_static chains, without DDS (pure parts)."""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from ros_harness import tf_link

from sam_moelora_ros.params import ParameterError, build_config
from sam_moelora_ros.pipeline.kinds import SUPPORTED_TYPES
from sam_moelora_ros.pipeline.worker import output_header
from sam_moelora_ros.ros.message_types import (
    AUTO,
    MessagePackageMissing,
    choose_type,
    message_class,
    requested_type,
)
from sam_moelora_ros.ros.subscriptions import needs_camera_info
from sam_moelora_ros.ros.tf_static import StaticTransforms, frame_chain
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix
from sam_moelora_ros.sensors.tf_chain import TfError

IMAGE, COMPRESSED = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"
CLOUD, PACKET = "sensor_msgs/msg/PointCloud2", "event_camera_msgs/msg/EventPacket"


def test_message_type_parameter_defaults_to_auto_and_keeps_the_old_aliases() -> None:
    cfg = build_config({})
    assert {s.message_type for s in cfg.sensors.values()} == {AUTO}
    cfg = build_config({"sensors.event.message_type": "cloud", "sensors.rgb.message_type": "image"})
    assert cfg.sensors["event"].message_type == CLOUD
    assert cfg.sensors["rgb"].message_type == IMAGE
    # ROS 1 style names are read as pkg/msg/Name
    cfg = build_config({"sensors.rgb.message_type": "sensor_msgs/CompressedImage"})
    assert requested_type("rgb", cfg.sensors["rgb"].message_type, SUPPORTED_TYPES) == COMPRESSED
    with pytest.raises(ParameterError, match=r"'sensors.depth.message_type' = 'jpeg': must be"):
        build_config({"sensors.depth.message_type": "jpeg"})


def test_a_type_the_sensor_cannot_take_names_the_parameter_and_the_choices() -> None:
    with pytest.raises(ParameterError, match=r"'sensors.lidar.message_type'.*PointCloud2"):
        requested_type("lidar", IMAGE, SUPPORTED_TYPES)
    assert requested_type("event", "image", SUPPORTED_TYPES) == IMAGE
    assert requested_type("event", PACKET, SUPPORTED_TYPES) == PACKET


def test_auto_takes_the_advertised_type_and_waits_without_a_publisher() -> None:
    supported = SUPPORTED_TYPES["rgb"]
    assert choose_type("rgb", "/cam", AUTO, [], supported).type_name is None
    choice = choose_type("rgb", "/cam", AUTO, [COMPRESSED, COMPRESSED], supported)
    assert (choice.type_name, choice.error, choice.note) == (COMPRESSED, "", "")
    both = choose_type("rgb", "/cam", AUTO, [COMPRESSED, IMAGE], supported)
    assert both.type_name == supported[0] and "has publishers of" in both.note


def test_a_wrong_topic_type_is_one_clear_error() -> None:
    choice = choose_type(
        "rgb", "/cam", AUTO, ["sensor_msgs/msg/CameraInfo"], SUPPORTED_TYPES["rgb"]
    )
    assert choice.type_name is None
    assert "topic /cam carries ['sensor_msgs/msg/CameraInfo']" in choice.error
    assert (
        "the rgb sensor cannot take" in choice.error and "remap sensors.rgb.topic" in choice.error
    )
    # an explicit type that the publishers do not use: DDS would never match them
    explicit = choose_type("depth", "/d", IMAGE, [COMPRESSED], SUPPORTED_TYPES["depth"])
    assert explicit.type_name == IMAGE and "no message can arrive" in explicit.error
    assert not choose_type("depth", "/d", IMAGE, [IMAGE], SUPPORTED_TYPES["depth"]).error


def test_a_missing_message_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("event_camera_msgs", "event_camera_msgs.msg"):  # as on a robot without it
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MessagePackageMissing, match=r"ros-\$ROS_DISTRO-event-camera-msgs"):
        message_class(PACKET)
    assert message_class(COMPRESSED).__name__ == "CompressedImage"


def test_camera_info_is_needed_for_lidar_and_raw_events_only() -> None:
    assert needs_camera_info("lidar", CLOUD) and needs_camera_info("event", PACKET)
    assert needs_camera_info("event", CLOUD)
    assert not needs_camera_info("event", IMAGE) and not needs_camera_info("rgb", COMPRESSED)


Q_Z90 = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))
Q_OPTICAL = (-0.5, 0.5, -0.5, 0.5)  # REP 103 body frame -> optical frame (z forward)
ID = (0.0, 0.0, 0.0, 1.0)


def test_static_transforms_compose_a_multi_hop_chain_and_reject_a_zero_quaternion() -> None:
    links = [
        tf_link("base_link", "lidar_mount", (1.0, 0.0, 0.5), Q_Z90),
        tf_link("lidar_mount", "os_lidar", (0.0, 0.0, 0.1), ID),
        tf_link("base_link", "camera_link", (1.2, 0.1, 0.3), ID),
        tf_link("camera_link", "camera_optical", (0.0, 0.0, 0.0), Q_OPTICAL),
    ]
    tf = StaticTransforms()
    assert tf.add_message(SimpleNamespace(transforms=links)) == []
    matrix, chain = tf.lookup("camera_optical", "os_lidar")
    assert chain == ["os_lidar", "lidar_mount", "base_link", "camera_link", "camera_optical"]
    m = {f"{x.header.frame_id}>{x.child_frame_id}": x for x in links}

    def T(key: str) -> np.ndarray:
        tr = m[key].transform
        t, q = tr.translation, tr.rotation
        return extrinsic_matrix([t.x, t.y, t.z, q.x, q.y, q.z, q.w])

    base_from_lidar = T("base_link>lidar_mount") @ T("lidar_mount>os_lidar")
    base_from_cam = T("base_link>camera_link") @ T("camera_link>camera_optical")
    np.testing.assert_allclose(matrix, np.linalg.inv(base_from_cam) @ base_from_lidar, atol=1e-9)
    assert frame_chain({"a": "root", "b": "root", "c": "b"}, "c", "a") == ["a", "root", "b", "c"]

    bad = StaticTransforms()
    errors = bad.add_message(
        SimpleNamespace(
            transforms=[links[0], tf_link("lidar_mount", "os_lidar", (0, 0, 0), (0,) * 4)]
        )
    )
    assert len(errors) == 1 and "zero quaternion" in errors[0]
    with pytest.raises(TfError, match=r"not in /tf_static.*rejected links.*zero quaternion"):
        bad.lookup("base_link", "os_lidar")


def test_lidar_or_event_anchored_labels_carry_the_cameras_frame() -> None:
    from sam_moelora_ros.sync.synchronizer import Frame

    def header(frame_id: str) -> SimpleNamespace:
        return SimpleNamespace(stamp=SimpleNamespace(sec=3, nanosec=5), frame_id=frame_id)

    def decoded(frame_id: str) -> SimpleNamespace:
        return SimpleNamespace(header=header(frame_id))

    messages = {"event": decoded("event_cam"), "rgb": decoded("cam_optical")}
    frame = Frame("event", 3.0, messages, stamps={}, absent={}, arrival_s=0.0, emitted_s=0.0)
    assert output_header(frame, None).frame_id == "cam_optical"

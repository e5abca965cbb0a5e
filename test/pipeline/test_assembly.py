"""The frame-assembly wiring shared by the node and offline replay (no rclpy, no DDS).

These pin down the choices that used to be duplicated between ``node.py`` and
``replay/pipeline.py``: which reference size each decoder gets, when sizes are recorded, and the
synchroniser configuration built from the node's parameters.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.params import build_config
from sam_moelora_ros.pipeline.assembly import (
    SensorDecoders,
    frame_inputs,
    sync_config,
)
from sam_moelora_ros.pipeline.decode import BadMessage, Decoded
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.lidar import create_cloud, make_fields
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync.synchronizer import Synchronizer

HDR = plain_header(3, 0, "camera")


def image(array: np.ndarray, encoding: str) -> SimpleNamespace:
    return numpy_to_image(array, encoding, header=HDR)


def camera_info(h: int = 48, w: int = 64) -> SimpleNamespace:
    return SimpleNamespace(
        height=h,
        width=w,
        k=[40.0, 0.0, w / 2, 0.0, 40.0, h / 2, 0.0, 0.0, 1.0],
        d=[0.0] * 5,
        distortion_model="plumb_bob",
        header=HDR,
    )


def ahead_cloud() -> SimpleNamespace:
    fields = make_fields([("x", 7), ("y", 7), ("z", 7)])
    points = np.array([[0.0, 0.0, 5.0]], dtype=np.float32)
    return create_cloud(plain_header(3, 0, "lidar"), fields, points)


def test_sync_config_follows_the_parameters() -> None:
    cfg = build_config(
        {
            "anchor": "depth",
            "fallback_anchors": ["rgb"],
            "anchor_timeout": 0.75,
            "sensors.lidar.tolerance": 0.2,
            "sensors.lidar.max_wait": 0.3,
            "sensors.lidar.stale_timeout": 2.0,
            "sensors.event.enabled": False,
        }
    )
    config = sync_config(cfg)
    assert [s.name for s in config.sensors] == list(MODALITIES)  # disabled ones listed too
    lidar = next(s for s in config.sensors if s.name == "lidar")
    assert (lidar.tolerance_s, lidar.max_wait_s, lidar.stale_timeout_s) == (0.2, 0.3, 2.0)
    assert not next(s for s in config.sensors if s.name == "event").enabled
    assert config.anchor == "depth" and tuple(config.fallback_anchors) == ("rgb",)
    assert config.anchor_timeout_s == 0.75
    sync = Synchronizer(config)  # a valid configuration, and one whose memory is bounded:
    for i in range(20):  # 20 LiDAR clouds with no anchor to match them: only 8 are kept
        sync.push("lidar", 3.0 + 0.01 * i, f"cloud {i}", 3.0 + 0.01 * i)
    lidar_status = sync.status(3.2).sensors["lidar"]
    assert (lidar_status.buffered, lidar_status.dropped) == (8, 12)


def test_reference_size_is_camera_info_then_last_accepted_rgb_then_depth() -> None:
    decoders = SensorDecoders(build_config({}), np.eye(4))
    assert decoders.reference_size() is None
    depth = decoders.decode("depth", image(np.ones((6, 8), np.float32), "32FC1"))
    assert decoders.reference_size() is None, "decode() alone records nothing"
    decoders.accept("depth", depth)
    assert decoders.reference_size() == (6, 8)
    decoders.decode_and_accept("rgb", image(np.zeros((12, 16, 3), np.uint8), "rgb8"))
    assert decoders.reference_size() == (12, 16)
    decoders.camera_info(camera_info(48, 64))
    assert decoders.camera_size() == decoders.reference_size() == (48, 64)
    # An RGB image is checked against camera_info only; a depth image against the reference.
    with pytest.raises(BadMessage, match="aspect"):
        decoders.decode("rgb", image(np.zeros((10, 40, 3), np.uint8), "rgb8"))
    with pytest.raises(BadMessage, match="aspect"):
        decoders.decode("depth", image(np.ones((10, 40), np.float32), "32FC1"))


def test_rgb_before_camera_info_is_not_size_checked() -> None:
    decoders = SensorDecoders(build_config({}), np.eye(4))
    decoders.accept("depth", Decoded(np.zeros((6, 8, 3), np.uint8), HDR))
    decoded = decoders.decode("rgb", image(np.zeros((10, 40, 3), np.uint8), "rgb8"))
    assert decoded.size_hw == (10, 40)


def test_lidar_needs_camera_info_and_uses_the_extrinsic_per_message() -> None:
    seen: list[str] = []

    def extrinsic(msg: object) -> np.ndarray:
        seen.append(msg.header.frame_id)  # type: ignore[attr-defined]
        return np.eye(4)

    decoders = SensorDecoders(build_config({}), extrinsic)
    with pytest.raises(BadMessage, match="camera_info"):
        decoders.decode("lidar", ahead_cloud())
    decoders.camera_info(camera_info())
    decoded = decoders.decode("lidar", ahead_cloud())
    assert decoded.size_hw == (48, 64) and decoded.image[24, 32, 0] > 0
    assert seen == ["lidar"]  # looked up per admitted cloud, not for one refused before it


def test_event_cloud_uses_the_reference_size() -> None:
    decoders = SensorDecoders(build_config({"sensors.event.message_type": "cloud"}), np.eye(4))
    points = np.zeros(2, dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<f8"), ("polarity", "u1")])
    points["x"], points["y"], points["polarity"] = [0, 3], [0, 2], [1, 0]
    cloud = create_cloud(HDR, make_fields([("x", 4), ("y", 4), ("t", 8), ("polarity", 2)]), points)
    with pytest.raises(BadMessage, match="image size"):
        decoders.decode("event", cloud)
    decoders.camera_info(camera_info(4, 6))
    assert decoders.decode("event", cloud).size_hw == (4, 6)


def test_unusable_messages_raise_bad_message() -> None:
    decoders = SensorDecoders(build_config({}), np.eye(4))
    with pytest.raises(BadMessage, match="deserialised"):
        decoders.decode("rgb", None)
    with pytest.raises(ValueError, match="unknown sensor"):
        decoders.decode("radar", image(np.zeros((2, 2), np.uint8), "mono8"))
    with pytest.raises(BadMessage):
        decoders.camera_info(camera_info(0, 0))
    assert decoders.camera is None


def test_frame_inputs_keep_the_models_modalities_and_the_anchor() -> None:
    sync = Synchronizer(sync_config(build_config({})))
    rgb = Decoded(np.zeros((4, 6, 3), np.uint8), HDR)
    depth = Decoded(np.ones((4, 6, 3), np.uint8), HDR)
    assert sync.push("depth", 3.0, depth, 3.0) == []
    (frame,) = sync.push("rgb", 3.0, rgb, 3.0) + sync.flush()
    present, images, anchor = frame_inputs(frame, ("rgb", "lidar"))
    assert present == ("rgb",) and list(images) == ["rgb"] and anchor is rgb
    present, images, _ = frame_inputs(frame, MODALITIES)
    assert set(present) == {"rgb", "depth"} and images["depth"] is depth.image


def test_node_and_replay_use_this_module() -> None:
    """The node's and the replay's wiring is this module's (no second copy to drift)."""
    from sam_moelora_ros.replay import pipeline

    assert pipeline.SensorDecoders is SensorDecoders and pipeline.sync_config is sync_config
    channel = pytest.importorskip("sam_moelora_ros.ros.camera_channel")  # needs rclpy
    assert channel.SensorDecoders is SensorDecoders and channel.sync_config is sync_config

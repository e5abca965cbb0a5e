"""/tf_static chains: Ouster and RealSense-style trees composed against hand-written matrices."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sam_moelora_ros.sensors.tf_chain import TfError, TransformTree


def tf(parent: str, child: str, xyz=(0.0, 0.0, 0.0), q=(0.0, 0.0, 0.0, 1.0)) -> SimpleNamespace:
    return SimpleNamespace(
        header=SimpleNamespace(frame_id=parent),
        child_frame_id=child,
        transform=SimpleNamespace(
            translation=SimpleNamespace(x=xyz[0], y=xyz[1], z=xyz[2]),
            rotation=SimpleNamespace(x=q[0], y=q[1], z=q[2], w=q[3]),
        ),
    )


def rigid(r: np.ndarray, t) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, t
    return m


RZ180 = np.diag([-1.0, -1.0, 1.0])  # q = (0, 0, 1, 0)
# Optical frame axes in camera_link: x = -y_link, y = -z_link, z = x_link (REP 103 / 105);
# q = (-0.5, 0.5, -0.5, 0.5) is this rotation.
OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
ROBOT = [
    tf("base_link", "os_sensor", (0.1, 0.0, 0.5)),
    tf("os_sensor", "os_lidar", (0.0, 0.0, 0.036), (0.0, 0.0, 1.0, 0.0)),
    tf("base_link", "camera_link", (0.25, 0.02, 0.3)),
    tf("camera_link", "camera_color_optical_frame", (0.0, 0.015, 0.0), (-0.5, 0.5, -0.5, 0.5)),
]


def test_lidar_to_camera_through_base_link() -> None:
    tree = TransformTree(ROBOT)
    t, chain = tree.lookup("camera_color_optical_frame", "os_lidar")
    assert chain == [
        "os_lidar",
        "os_sensor",
        "base_link",
        "camera_link",
        "camera_color_optical_frame",
    ]
    base_from_lidar = rigid(np.eye(3), (0.1, 0, 0.5)) @ rigid(RZ180, (0, 0, 0.036))
    base_from_optical = rigid(np.eye(3), (0.25, 0.02, 0.3)) @ rigid(OPTICAL, (0, 0.015, 0))
    np.testing.assert_allclose(t, np.linalg.inv(base_from_optical) @ base_from_lidar, atol=1e-12)
    # The point (5, 0, 0.5) of base_link: the lidar (at 0.1, 0, 0.536, turned 180 deg about z)
    # sees it at (-4.9, 0, -0.036); relative to the lens (0.25, 0.035, 0.3) it is 4.75 m ahead,
    # 0.035 m to the right (optical x = -y) and 0.2 m up (optical y = -z).
    p_lidar = np.array([-4.9, 0.0, -0.036, 1.0])
    np.testing.assert_allclose(t @ p_lidar, [0.035, -0.2, 4.75, 1.0], atol=1e-12)
    back, chain_back = tree.lookup("os_lidar", "camera_color_optical_frame")
    np.testing.assert_allclose(back @ t, np.eye(4), atol=1e-12)
    assert chain_back == chain[::-1]


def test_ancestor_lookups_and_identity() -> None:
    tree = TransformTree(ROBOT)
    t, chain = tree.lookup("base_link", "os_lidar")
    assert chain == ["os_lidar", "os_sensor", "base_link"]
    np.testing.assert_allclose(t[:3, :3], RZ180, atol=1e-12)
    np.testing.assert_allclose(t[:3, 3], [0.1, 0.0, 0.536])
    t, chain = tree.lookup("os_lidar", "os_sensor")
    assert chain == ["os_sensor", "os_lidar"]
    np.testing.assert_allclose(t, np.linalg.inv(rigid(RZ180, (0, 0, 0.036))), atol=1e-12)
    assert tree.lookup("camera_link", "camera_link") == (pytest.approx(np.eye(4)), ["camera_link"])


def test_zero_quaternion_is_an_error_not_identity() -> None:
    with pytest.raises(TfError, match="base_link -> os_sensor has a zero quaternion"):
        TransformTree([tf("base_link", "os_sensor", q=(0.0, 0.0, 0.0, 0.0))])
    with pytest.raises(TfError, match="unnormalised quaternion"):
        TransformTree([tf("a", "b", q=(0.0, 0.0, 0.0, 1.2))])
    slightly = TransformTree([tf("a", "b", q=(0.0, 0.0, 0.0, 1.002))])  # within tf2's tolerance
    np.testing.assert_allclose(slightly.lookup("a", "b")[0], np.eye(4), atol=1e-12)
    with pytest.raises(TfError, match="non-finite"):
        TransformTree([tf("a", "b", xyz=(np.nan, 0, 0))])


def test_missing_frames_and_links_name_what_is_known() -> None:
    tree = TransformTree([*ROBOT[:2], tf("odom", "camera_link")])
    with pytest.raises(
        TfError, match=r"'velodyne' is not in /tf_static; known frames: \['base_link'"
    ):
        tree.lookup("base_link", "velodyne")
    with pytest.raises(TfError, match="rooted at 'base_link'.*rooted at 'odom'"):
        tree.lookup("camera_link", "os_lidar")
    with pytest.raises(TfError, match="would make a loop"):
        tree.add(tf("os_lidar", "base_link"))
    with pytest.raises(TfError, match="links a frame to itself"):
        tree.add(tf("a", "a"))
    with pytest.raises(TfError, match="empty child"):
        tree.add(tf("a", ""))


def test_leading_slash_newer_link_and_tf_messages() -> None:
    tree = TransformTree.from_messages(
        [
            SimpleNamespace(transforms=[tf("/base_link", "/laser", (1.0, 0.0, 0.0))]),
            SimpleNamespace(transforms=[tf("base_link", "laser", (2.0, 0.0, 0.0))]),
        ]
    )
    t, chain = tree.lookup("/base_link", "laser")
    assert chain == ["laser", "base_link"] and t[0, 3] == 2.0
    assert tree.frames == ["base_link", "laser"]


def test_rosbags_tf_message() -> None:
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    ty = store.types
    stamp = ty["builtin_interfaces/msg/Time"](sec=0, nanosec=0)

    def stamped(parent: str, child: str, xyz, q) -> object:
        return ty["geometry_msgs/msg/TransformStamped"](
            header=ty["std_msgs/msg/Header"](stamp=stamp, frame_id=parent),
            child_frame_id=child,
            transform=ty["geometry_msgs/msg/Transform"](
                translation=ty["geometry_msgs/msg/Vector3"](x=xyz[0], y=xyz[1], z=xyz[2]),
                rotation=ty["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
            ),
        )

    msg = ty["tf2_msgs/msg/TFMessage"](
        transforms=[
            stamped(
                f.header.frame_id,
                f.child_frame_id,
                (f.transform.translation.x, f.transform.translation.y, f.transform.translation.z),
                (
                    f.transform.rotation.x,
                    f.transform.rotation.y,
                    f.transform.rotation.z,
                    f.transform.rotation.w,
                ),
            )
            for f in ROBOT
        ]
    )
    raw = store.serialize_cdr(msg, "tf2_msgs/msg/TFMessage")
    back = store.deserialize_cdr(raw, "tf2_msgs/msg/TFMessage")
    t1, _ = TransformTree.from_messages([back]).lookup("camera_color_optical_frame", "os_lidar")
    t2, _ = TransformTree(ROBOT).lookup("camera_color_optical_frame", "os_lidar")
    np.testing.assert_allclose(t1, t2, atol=1e-12)

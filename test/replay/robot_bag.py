"""Test helper: a rosbag2 recorded the way a RealSense + Ouster + Prophesee robot records it.

Contents come from the package's synthetic scenes (``synthetic.frames.SequenceRenderer``), so the
geometry of every sensor is consistent (rendered RGB, depth, LiDAR sweep and ESIM events of one
street), and are written as the drivers publish them:

- ``/camera/camera/color/image_raw/compressed``: ``sensor_msgs/CompressedImage``, JPEG, format
  ``"rgb8; jpeg compressed bgr8"`` (realsense2_camera through image_transport ``compressed``);
- ``/camera/camera/aligned_depth_to_color/image_raw/compressedDepth``: ``"16UC1;
  compressedDepth png"`` (``compressed_depth_image_transport``, its 10 m default depth_max);
- ``/camera/camera/color/camera_info``: plumb_bob, frame ``camera_color_optical_frame``;
- ``/ouster/points``: an organised cloud (rings x columns, highest beam first) in ``os_lidar``
  with ouster-ros' 48-byte point layout, ``(0, 0, 0)`` for no return and ``is_dense`` true,
  at 10 Hz;
- ``/event_camera/events``: ``event_camera_msgs/EventPacket`` EVT 3.0 packets of about 1 ms,
  stamped at their first event, at half the camera's resolution, the sensor clock wrapping its
  24-bit microseconds during the recording (metavision_driver);
- ``/tf_static``: three latched TFMessages as three static broadcasters publish them:
  ``base_link -> os_sensor``, ``base_link -> camera_link`` (robot description), ``os_sensor ->
  os_lidar`` (180 deg about z, the Ouster driver), ``camera_link ->
  camera_color_optical_frame`` (the RealSense driver).

Types not in rosbags' default store (EventPacket) are registered from their ``.msg`` text, so
the bag embeds their definitions as ``ros2 bag record`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from sam_moelora_ros.bag import BagWriter
from sam_moelora_ros.sensors.compressed import encode_compressed_depth, encode_compressed_image
from sam_moelora_ros.sensors.depth import meters_to_depth
from sam_moelora_ros.sensors.evt3 import encode_evt3
from sam_moelora_ros.sensors.lidar import FLOAT32, UINT16, UINT32
from sam_moelora_ros.synthetic.frames import GeneratorConfig, SequenceRenderer, SequenceSpec
from sam_moelora_ros.synthetic.transforms import (
    OPTICAL_FROM_BODY,
    LidarConfig,
    Rig,
    invert,
    make_transform,
    quaternion_xyzw,
    rot_y,
    rot_z,
)

EVENT_PACKET_MSG = """std_msgs/Header header
uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""
"""event_camera_msgs/msg/EventPacket.msg (ros-event-camera)."""

TOPICS = {
    "rgb": "/camera/camera/color/image_raw/compressed",
    "depth": "/camera/camera/aligned_depth_to_color/image_raw/compressedDepth",
    "camera_info": "/camera/camera/color/camera_info",
    "lidar": "/ouster/points",
    "event": "/event_camera/events",
    "tf_static": "/tf_static",
}
TYPES = {
    "rgb": "sensor_msgs/msg/CompressedImage",
    "depth": "sensor_msgs/msg/CompressedImage",
    "camera_info": "sensor_msgs/msg/CameraInfo",
    "lidar": "sensor_msgs/msg/PointCloud2",
    "event": "event_camera_msgs/msg/EventPacket",
    "tf_static": "tf2_msgs/msg/TFMessage",
}
BASE_NS = 1_700_000_000_000_000_000
CAMERA_FRAME, LIDAR_FRAME = "camera_color_optical_frame", "os_lidar"
OS_SENSOR_FROM_OS_LIDAR = make_transform(rot_z(np.pi), (0.0, 0.0, 0.03618))
"""Ouster's os_sensor -> os_lidar: 180 deg about z, the beam origin 36.18 mm above."""
COLOR_OFFSET = np.array([0.0, 0.015, 0.0])
"""camera_link -> colour optical origin (RealSense: the colour imager sits 15 mm to the side)."""
SENSOR_CLOCK_US = 2**24 - 120_000
"""The event camera's clock at the bag's origin: it wraps 24 bits 0.12 s in."""
OUSTER_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "intensity", "t", "reflectivity", "ring", "ambient", "range"],
        "formats": ["<f4", "<f4", "<f4", "<f4", "<u4", "<u2", "<u2", "<u2", "<u4"],
        "offsets": [0, 4, 8, 16, 20, 24, 26, 28, 32],
        "itemsize": 48,
    }
)
"""ouster-ros' point (EIGEN-aligned): x y z at 0 4 8, intensity 16, t 20, reflectivity 24,
ring 26, ambient 28, range 32; point_step 48."""
OUSTER_FIELDS = [
    ("x", 0, FLOAT32),
    ("y", 4, FLOAT32),
    ("z", 8, FLOAT32),
    ("intensity", 16, FLOAT32),
    ("t", 20, UINT32),
    ("reflectivity", 24, UINT16),
    ("ring", 26, UINT16),
    ("ambient", 28, UINT16),
    ("range", 32, UINT32),
]


@dataclass
class RobotBag:
    """What was written: the bag, its topics, the rig and the rendered frames' stamps."""

    path: Path
    rig: Rig
    stamps_ns: list[int]
    counts: dict[str, int] = field(default_factory=dict)
    event_size_wh: tuple[int, int] = (0, 0)
    event_frames: list[np.ndarray] = field(default_factory=list)
    """The generator's own event frame of each camera frame (what training data holds)."""


def _ns(seconds: float) -> int:
    return BASE_NS + round(seconds * 1e9)


class _Msgs:
    """Builds rosbags messages of one typestore."""

    def __init__(self, store: Any) -> None:
        self.t = store.types

    def header(self, ns: int, frame_id: str) -> Any:
        stamp = self.t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
        return self.t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def transform(self, parent: str, child: str, matrix: np.ndarray, zero_q: bool = False) -> Any:
        x, y, z, w = (0.0, 0.0, 0.0, 0.0) if zero_q else quaternion_xyzw(matrix[:3, :3])
        t = self.t
        tf = t["geometry_msgs/msg/Transform"](
            translation=t["geometry_msgs/msg/Vector3"](*(float(v) for v in matrix[:3, 3])),
            rotation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        )
        return t["geometry_msgs/msg/TransformStamped"](
            header=self.header(BASE_NS, parent), child_frame_id=child, transform=tf
        )

    def camera_info(self, ns: int, rig: Rig) -> Any:
        k = rig.intrinsics()
        p = np.zeros((3, 4))
        p[:, :3] = k
        return self.t["sensor_msgs/msg/CameraInfo"](
            header=self.header(ns, CAMERA_FRAME),
            height=rig.height,
            width=rig.width,
            distortion_model="plumb_bob",
            d=np.zeros(5),
            k=k.reshape(-1),
            r=np.eye(3).reshape(-1),
            p=p.reshape(-1),
            binning_x=0,
            binning_y=0,
            roi=self.t["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False),
        )

    def ouster_cloud(self, ns: int, grid: np.ndarray) -> Any:
        fields = [
            self.t["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=1)
            for n, o, d in OUSTER_FIELDS
        ]
        return self.t["sensor_msgs/msg/PointCloud2"](
            header=self.header(ns, LIDAR_FRAME),
            height=grid.shape[0],
            width=grid.shape[1],
            fields=fields,
            is_bigendian=False,
            point_step=48,
            row_step=48 * grid.shape[1],
            data=grid.view(np.uint8).reshape(-1).copy(),
            is_dense=True,  # as ouster-ros claims, although no-return points are (0, 0, 0)
        )


def ouster_grid(points: np.ndarray, config: LidarConfig, sensor_from_cloud: np.ndarray) -> Any:
    """Synthetic returns (in os_sensor) -> the organised Ouster grid in ``os_lidar``.

    Each return sits at its beam's row (highest first) and azimuth column, recovered from its
    direction (range noise does not move it); cells without a return stay (0, 0, 0).
    """
    rings, cols = config.rings, config.columns
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float64)
    azimuth = np.arctan2(xyz[:, 1], xyz[:, 0])
    col = np.rint((np.pi - azimuth) * cols / (2 * np.pi) - 0.5).astype(np.int64) % cols
    row = rings - 1 - points["ring"].astype(np.int64)
    lin, first = np.unique(row * cols + col, return_index=True)  # one return per cell
    cloud_from_sensor = invert(sensor_from_cloud)
    local = xyz[first] @ cloud_from_sensor[:3, :3].T + cloud_from_sensor[:3, 3]
    grid = np.zeros(rings * cols, dtype=OUSTER_DTYPE)
    grid["x"][lin], grid["y"][lin], grid["z"][lin] = local[:, 0], local[:, 1], local[:, 2]
    grid["intensity"][lin] = points["intensity"][first]
    grid["reflectivity"][lin] = np.clip(points["intensity"][first], 0, 255)
    grid["range"][lin] = np.rint(np.linalg.norm(xyz[first], axis=1) * 1000.0)
    grid["ring"] = np.repeat(np.arange(rings, dtype=np.uint16), cols)
    grid["t"] = np.tile(np.arange(cols, dtype=np.uint32) * (100_000_000 // cols), rings)
    return grid.reshape(rings, cols)


def _tf_messages(msgs: _Msgs, rig: Rig, zero_quaternion: bool) -> list[Any]:
    base_from_link = make_transform(
        rot_y(np.deg2rad(rig.camera_pitch_deg)),
        np.asarray(rig.camera_xyz) - rot_y(np.deg2rad(rig.camera_pitch_deg)) @ COLOR_OFFSET,
    )
    link_from_optical = make_transform(OPTICAL_FROM_BODY, COLOR_OFFSET)
    assert np.allclose(base_from_link @ link_from_optical, rig.base_from_camera)
    tfm = msgs.t["tf2_msgs/msg/TFMessage"]
    return [
        tfm(  # robot_state_publisher: the robot description
            transforms=[
                msgs.transform("base_link", "os_sensor", rig.base_from_lidar),
                msgs.transform("base_link", "camera_link", base_from_link),
            ]
        ),
        tfm(  # the Ouster driver
            transforms=[
                msgs.transform(
                    "os_sensor", "os_lidar", OS_SENSOR_FROM_OS_LIDAR, zero_q=zero_quaternion
                ),
                msgs.transform(
                    "os_sensor", "os_imu", make_transform(np.eye(3), (0.006, -0.012, 0.007))
                ),
            ]
        ),
        tfm(  # the RealSense driver
            transforms=[msgs.transform("camera_link", CAMERA_FRAME, link_from_optical)]
        ),
    ]


def _event_packets(
    msgs: _Msgs, store: Any, events: Any, size_hw: tuple[int, int], seq0: int
) -> list[tuple[int, Any]]:
    """EVT 3.0 packets of 1 ms of the sensor clock, stamped at their first event."""
    cls = store.types["event_camera_msgs/msg/EventPacket"]
    t_us = np.rint(events.t * 1e6).astype(np.int64) + SENSOR_CLOCK_US
    order = np.argsort(t_us, kind="stable")
    x, y, t_us, p = events.x[order], events.y[order], t_us[order], events.p[order] > 0
    out = []
    bucket = t_us // 1000
    for i, start in enumerate(np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])):
        stop = np.searchsorted(bucket, bucket[start], side="right")
        data = encode_evt3(x[start:stop], y[start:stop], t_us[start:stop], p[start:stop])
        stamp = BASE_NS + (int(t_us[start]) - SENSOR_CLOCK_US) * 1000
        out.append(
            (
                stamp,
                cls(
                    header=msgs.header(stamp, "event_camera_optical_frame"),
                    height=size_hw[0],
                    width=size_hw[1],
                    seq=seq0 + i,
                    time_base=0,
                    encoding="evt3",
                    is_bigendian=False,
                    events=np.frombuffer(data, np.uint8).copy(),
                ),
            )
        )
    return out


def write_robot_bag(
    path: Path,
    *,
    frames: int = 6,
    size_wh: tuple[int, int] = (128, 64),
    seed: int = 3,
    zero_quaternion: bool = False,
    storage: str = "sqlite3",
) -> RobotBag:
    """Render ``frames`` camera frames at 20 Hz and write them as the robot records them."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    store.register(get_types_from_msg(EVENT_PACKET_MSG, "event_camera_msgs/msg/EventPacket"))
    msgs = _Msgs(store)
    rig = Rig(width=size_wh[0], height=size_wh[1], lidar=LidarConfig(columns=512))
    renderer = SequenceRenderer(
        SequenceSpec("robot", seed, "sun", None, frames, start=1.0), GeneratorConfig(rig=rig)
    )
    event_wh = rig.size(rig.event_scale)
    records: list[tuple[int, str, Any]] = []  # (receive ns, role, message)
    for tf in _tf_messages(msgs, rig, zero_quaternion):
        records.append((_ns(0.9), "tf_static", tf))
    stamps, seq, event_frames = [], 0, []
    compressed = store.types["sensor_msgs/msg/CompressedImage"]
    for k, frame in enumerate(renderer):
        ns = _ns(frame.stamp)
        stamps.append(ns)
        event_frames.append(frame.event_frame)
        header = msgs.header(ns, CAMERA_FRAME)
        rgb = encode_compressed_image(
            frame.rgb, "rgb8", "jpeg", quality=95, header=header, msg_type=compressed
        )
        depth_mm = meters_to_depth(frame.depth, "16UC1")
        depth = encode_compressed_depth(
            depth_mm, "16UC1", "png", header=header, msg_type=compressed
        )
        records += [
            (ns + 9_000_000, "rgb", rgb),
            (ns + 9_000_000, "camera_info", msgs.camera_info(ns, rig)),
            (ns + 14_000_000, "depth", depth),
        ]
        if k % 2 == 0 and frame.lidar is not None:
            grid = ouster_grid(frame.lidar, rig.lidar, OS_SENSOR_FROM_OS_LIDAR)
            records.append((ns + 12_000_000, "lidar", msgs.ouster_cloud(ns, grid)))
        packets = _event_packets(msgs, store, frame.events, (event_wh[1], event_wh[0]), seq)
        seq += len(packets)
        records += [(stamp + 2_000_000, "event", packet) for stamp, packet in packets]
    records.sort(key=lambda r: r[0])
    counts: dict[str, int] = {}
    with BagWriter(path, storage, typestore=store) as writer:
        for role, topic in TOPICS.items():
            writer.add_topic(topic, TYPES[role], latched=role == "tf_static")
        for when, role, msg in records:
            writer.write(TOPICS[role], when, msg)
            counts[role] = counts.get(role, 0) + 1
    return RobotBag(path, rig, stamps, counts, event_wh, event_frames)

"""rosbag2 writer for synthetic sequences (rosbags; sqlite3 or mcap), through the sensor codecs.

Messages are built with the same ``sensors`` codecs the node uses to read them (one code path)
as rosbags dataclasses and serialised to CDR with the typestore. Header stamps are capture
times; the bag's receive timestamps add a small per-sensor transport latency with jitter, like a
real recording. Messages are written in receive-time order. ``/tf_static`` is written once, first,
with transient-local QoS so replays latch it. A dropout window silences one modality's topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.typesys import Stores, get_typestore

from sam_moelora_ros.bag import LATCHED_QOS, STORAGES, RosbagWriter
from sam_moelora_ros.sensors import (
    FLOAT32,
    UINT16,
    create_cloud,
    make_fields,
    meters_to_depth,
    numpy_to_image,
)
from sam_moelora_ros.synthetic import topics as tp
from sam_moelora_ros.synthetic.frames import Frame
from sam_moelora_ros.synthetic.transforms import Rig, quaternion_xyzw

STORE = Stores.ROS2_HUMBLE
"""Message definitions written into the bag (identical for these types up to Kilted)."""

LATENCY_S = {"camera": 0.008, "depth": 0.012, "event": 0.004, "lidar": 0.015}


@dataclass(frozen=True)
class Dropout:
    """Silence ``modality`` for bag times in ``[start, end)`` seconds from the bag start."""

    modality: str
    start: float
    end: float

    @classmethod
    def parse(cls, text: str) -> Dropout:
        """Parse ``lidar@4:9`` (modality @ start seconds : end seconds)."""
        try:
            mod, _, window = text.partition("@")
            start, end = (float(v) for v in window.split(":"))
        except ValueError:
            raise ValueError(
                f"bad dropout {text!r}; expected MODALITY@START:END, e.g. lidar@4:9"
            ) from None
        if mod not in tp.MODALITY_TOPICS or not end > start >= 0:
            raise ValueError(
                f"bad dropout {text!r}: modality must be one of {sorted(tp.MODALITY_TOPICS)} "
                f"and 0 <= start < end"
            )
        return cls(mod, start, end)


def to_ns(seconds: float) -> int:
    """Bag-relative seconds -> absolute nanoseconds on the bag clock."""
    return tp.BASE_STAMP_NS + round(seconds * 1e9)


class SyntheticBagWriter:
    """Context manager writing frames of any number of sequences into one rosbag2."""

    def __init__(
        self,
        path: Path,
        rig: Rig,
        storage: str = "sqlite3",
        depth_encoding: str = "16UC1",
        dropouts: tuple[Dropout, ...] = (),
        seed: int = 0,
    ) -> None:
        if depth_encoding not in ("16UC1", "32FC1"):
            raise ValueError(f"depth encoding must be 16UC1 or 32FC1, got {depth_encoding!r}")
        plugin = STORAGES.get(storage)
        if plugin is None:
            raise ValueError(f"storage must be sqlite3 or mcap, got {storage!r}")
        self.path, self.rig, self.depth_encoding = Path(path), rig, depth_encoding
        self.dropouts = dropouts
        self.ts = get_typestore(STORE)
        self.writer = RosbagWriter(self.path, version=9, storage_plugin=plugin)
        self.rng = np.random.default_rng([seed, 99])
        self.conns: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.last_ns = 0
        self.tf_written = False

    def __enter__(self) -> SyntheticBagWriter:
        self.writer.open()
        for topic, msgtype in tp.TOPIC_TYPES.items():
            qos = [LATCHED_QOS] if topic == tp.TF_STATIC_TOPIC else []
            self.conns[topic] = self.writer.add_connection(
                topic, msgtype, typestore=self.ts, offered_qos_profiles=qos
            )
            self.counts[topic] = 0
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.close()

    def _header(self, stamp: float, frame_id: str) -> Any:
        ns = to_ns(stamp)
        time = self.ts.types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
        return self.ts.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)

    def _dropped(self, topic: str, t: float) -> bool:
        return any(
            t >= d.start and t < d.end and topic in tp.MODALITY_TOPICS[d.modality]
            for d in self.dropouts
        )

    def _latency(self, sensor: str) -> float:
        return LATENCY_S[sensor] * (1.0 + 0.25 * float(self.rng.uniform(-1, 1)))

    def tf_static(self, stamp: float) -> object:
        """The TFMessage with base_link -> camera optical frame and base_link -> LiDAR frame."""
        t = self.ts.types
        out = []
        for child, mat in (
            (tp.CAMERA_FRAME, self.rig.base_from_camera),
            (tp.LIDAR_FRAME, self.rig.base_from_lidar),
        ):
            x, y, z, w = quaternion_xyzw(mat[:3, :3])
            tr = t["geometry_msgs/msg/Transform"](
                translation=t["geometry_msgs/msg/Vector3"](*(float(v) for v in mat[:3, 3])),
                rotation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
            )
            out.append(
                t["geometry_msgs/msg/TransformStamped"](
                    header=self._header(stamp, tp.BASE_FRAME), child_frame_id=child, transform=tr
                )
            )
        return t["tf2_msgs/msg/TFMessage"](transforms=out)

    def camera_info(self, stamp: float) -> object:
        """CameraInfo of the RGB camera (plumb_bob, zero distortion, P = [K | 0])."""
        k = self.rig.intrinsics()
        p = np.zeros((3, 4))
        p[:, :3] = k
        roi = self.ts.types["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False)
        return self.ts.types["sensor_msgs/msg/CameraInfo"](
            header=self._header(stamp, tp.CAMERA_FRAME),
            height=self.rig.height,
            width=self.rig.width,
            distortion_model="plumb_bob",
            d=np.zeros(5),
            k=k.reshape(-1),
            r=np.eye(3).reshape(-1),
            p=p.reshape(-1),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

    def write_frame(self, frame: Frame) -> None:
        """Serialise and write every message belonging to ``frame`` in receive-time order."""
        t = self.ts.types
        img_t = t["sensor_msgs/msg/Image"]
        s = frame.stamp
        msgs: list[tuple[float, str, object]] = []
        if not self.tf_written:
            msgs.append((s - 0.001, tp.TF_STATIC_TOPIC, self.tf_static(s)))
            self.tf_written = True
        hdr = self._header(s, tp.CAMERA_FRAME)
        lat = self._latency("camera")
        msgs.append((s + lat, tp.CAMERA_TOPIC, numpy_to_image(frame.rgb, "rgb8", img_t, hdr)))
        msgs.append((s + lat, tp.CAMERA_INFO_TOPIC, self.camera_info(s)))
        msgs.append((s + lat, tp.LABELS_TOPIC, numpy_to_image(frame.labels, "mono8", img_t, hdr)))
        msgs.append((s + lat, tp.CONDITION_TOPIC, t["std_msgs/msg/String"](data=frame.spec.tag)))
        depth = meters_to_depth(frame.depth, self.depth_encoding)
        msgs.append(
            (
                s + self._latency("depth"),
                tp.DEPTH_TOPIC,
                numpy_to_image(depth, self.depth_encoding, img_t, hdr),
            )
        )
        ev = cv2.resize(
            frame.event_frame, (self.rig.width, self.rig.height), interpolation=cv2.INTER_NEAREST
        )
        msgs.append(
            (s + self._latency("event"), tp.EVENT_TOPIC, numpy_to_image(ev, "rgb8", img_t, hdr))
        )
        fields = make_fields(
            [
                ("x", FLOAT32),
                ("y", FLOAT32),
                ("z", FLOAT32),
                ("intensity", FLOAT32),
                ("ring", UINT16),
            ],
            t["sensor_msgs/msg/PointCloud2"],
        )
        for stamp, points in frame.sweeps:
            cloud = create_cloud(
                self._header(stamp, tp.LIDAR_FRAME),
                fields,
                points,
                t["sensor_msgs/msg/PointCloud2"],
            )
            msgs.append((stamp + self._latency("lidar"), tp.LIDAR_TOPIC, cloud))
        msgs.sort(key=lambda m: m[0])
        for when, topic, msg in msgs:
            if topic != tp.TF_STATIC_TOPIC and self._dropped(topic, when):
                continue
            ns = max(to_ns(when), self.last_ns)
            data = self.ts.serialize_cdr(msg, tp.TOPIC_TYPES[topic])
            self.writer.write(self.conns[topic], ns, data)
            self.last_ns = ns
            self.counts[topic] += 1

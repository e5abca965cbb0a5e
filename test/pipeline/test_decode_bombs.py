"""One bomb message never takes the node down: it is one rejection naming the sensor, the size and
the limit, and the next normal message is labelled as before. Messages go through rosbags CDR (as
a bag or DDS delivers them) into the node's real decoders, synchroniser and intake."""

from __future__ import annotations

import logging
import struct
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from sam_moelora_ros.params import build_config
from sam_moelora_ros.pipeline.admission import decode_entry
from sam_moelora_ros.pipeline.assembly import SensorDecoders, sync_config
from sam_moelora_ros.pipeline.decode import BadMessage, decode_camera_info, decode_lidar
from sam_moelora_ros.pipeline.diagnostics import WARN, sensor_reports
from sam_moelora_ros.pipeline.intake import SensorIntake
from sam_moelora_ros.pipeline.ports import FrameCollector
from sam_moelora_ros.pipeline.runtime import FramePresence
from sam_moelora_ros.sensors.compressed import encode_compressed_image
from sam_moelora_ros.sensors.event_packets import encode_mono
from sam_moelora_ros.sensors.lidar import FLOAT32, create_cloud, make_fields
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync.synchronizer import Frame, Synchronizer

TS = get_typestore(Stores.ROS2_HUMBLE)
COMPRESSED = TS.types["sensor_msgs/msg/CompressedImage"]
CLOUD = TS.types["sensor_msgs/msg/PointCloud2"]
H, W = 48, 64


def cdr(msg: Any) -> Any:
    name = msg.__msgtype__
    return TS.deserialize_cdr(TS.serialize_cdr(msg, name), name)


def header(stamp: float) -> SimpleNamespace:
    sec = int(stamp)
    return plain_header(sec, round((stamp - sec) * 1e9), "camera")


def jpeg(stamp: float) -> Any:
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([xx * 4, yy * 5, 255 - xx * 4], axis=-1).astype(np.uint8)
    return cdr(
        encode_compressed_image(rgb, "rgb8", "jpeg", header=header(stamp), msg_type=COMPRESSED)
    )


def jpeg_bomb(stamp: float) -> Any:
    """A real JPEG whose frame header says 16000 x 12000 (the red team's 631 bytes)."""
    msg = jpeg(stamp)
    data = bytearray(msg.data.tobytes())
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", 12000, 16000)
    return cdr(COMPRESSED(header=msg.header, format=msg.format, data=np.frombuffer(data, np.uint8)))


@pytest.fixture
def intake() -> tuple[SensorIntake, list[Frame]]:
    cfg = build_config({"sensors.depth.enabled": False, "sensors.lidar.enabled": False})
    out: list[Frame] = []
    decoders = SensorDecoders(cfg, np.eye(4))
    return SensorIntake(decoders, Synchronizer(sync_config(cfg)), FrameCollector(frames=out)), out


def test_a_jpeg_bomb_is_one_rejection_and_labelling_goes_on(intake, caplog) -> None:
    sensors, frames = intake
    with caplog.at_level(logging.WARNING, logger="sam_moelora_ros"):
        sensors.sensor("rgb", jpeg_bomb(1.0), now_s=1.0)
        sensors.sensor("rgb", jpeg(1.1), now_s=1.1)
    health = sensors.health["rgb"]
    assert health.rejected == 1 and health.received == 1
    assert health.last_error.startswith("rgb image: ")
    assert "16000x12000" in health.last_error and "limits.max_image_pixels" in health.last_error
    assert [f.stamp for f in frames] == [pytest.approx(1.1)]
    assert decode_entry(frames[0].messages["rgb"]).image.shape == (H, W, 3)


def test_the_limits_parameters_reach_every_decoder() -> None:
    cfg = build_config({"limits.max_points": 10, "limits.max_image_pixels": 1000})
    decoders = SensorDecoders(cfg, np.eye(4))
    with pytest.raises(BadMessage, match=r"rgb image: .*64x48 = 3072 pixels.*= 1000"):
        decoders.decode("rgb", jpeg(1.0))
    info = SimpleNamespace(
        height=48,
        width=64,
        k=[50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0],
        d=[0.0] * 5,
        distortion_model="plumb_bob",
        header=header(0.0),
    )
    with pytest.raises(BadMessage, match=r"camera_info: CameraInfo declares 64x48"):
        decoders.camera_info(info)
    rng = np.random.default_rng(0)
    points = rng.uniform((-0.2, -0.2, 2.0), (0.2, 0.2, 5.0), (20, 3)).astype(np.float32)
    fields = make_fields([("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32)], CLOUD)
    cloud = cdr(create_cloud(header(1.0), fields, points, CLOUD))
    camera = decode_camera_info(info)
    with pytest.raises(BadMessage, match=r"lidar cloud: .*20 points.*limits.max_points = 10"):
        decode_lidar(cloud, camera, np.eye(4), cfg.limits)
    assert decode_lidar(cloud, camera, np.eye(4)).image.shape == (48, 64, 3)


def test_camera_info_100x_the_image_is_refused() -> None:
    info = SimpleNamespace(
        height=4800,
        width=6400,
        k=[5000.0, 0.0, 3200.0, 0.0, 5000.0, 2400.0, 0.0, 0.0, 1.0],
        d=[0.0] * 5,
        distortion_model="plumb_bob",
        header=header(0.0),
    )
    decoders = SensorDecoders(build_config({}), np.eye(4))
    decoders.camera_info(info)  # within the budget on its own ...
    with pytest.raises(BadMessage, match="rgb image is 48x64 but the camera is 4800x6400: more"):
        decoders.decode("rgb", jpeg(1.0))  # ... but not this camera's
    info.height, info.width = 48000, 64000
    with pytest.raises(BadMessage, match=r"64000x48000.*limits.max_image_pixels"):
        decoders.camera_info(info)


def mono_packet(stamp: float, xs: list[int]) -> SimpleNamespace:
    n = len(xs)
    return SimpleNamespace(
        header=header(stamp),
        height=H,
        width=W,
        seq=int(stamp * 100),
        time_base=0,
        encoding="mono",
        is_bigendian=False,
        events=np.frombuffer(encode_mono(xs, [3] * n, [0] * n, [1] * n), np.uint8),
    )


def test_events_outside_the_sensor_are_counted_on_diagnostics() -> None:
    cfg = build_config(
        {
            "sensors.depth.enabled": False,
            "sensors.lidar.enabled": False,
            "sensors.event.message_type": "event_camera_msgs/msg/EventPacket",
        }
    )
    out: list[Frame] = []
    sensors = SensorIntake(
        SensorDecoders(cfg, np.eye(4)), Synchronizer(sync_config(cfg)), FrameCollector(frames=out)
    )
    sensors.sensor("rgb", jpeg(1.0), now_s=1.0)
    sensors.sensor("event", mono_packet(1.0, [1, 2, 64, 900]), now_s=1.0)
    health = sensors.health["event"]
    assert health.received == 1 and health.counts["events_outside_sensor"] == 2
    status = sensors.sync.status(1.0)
    topics = {n: "" for n in status.sensors}
    report = next(
        r
        for r in sensor_reports("p", status, sensors.health, topics, 1.5, FramePresence())
        if r.name == "p: sensor event"
    )
    assert report.values["events_outside_sensor"] == "2"
    assert report.level == WARN and "2 events outside the sensor" in report.message


def test_a_truncated_jpeg_is_rejected_not_labelled_grey(intake) -> None:
    sensors, frames = intake
    good = jpeg(1.0)
    cut = cdr(COMPRESSED(header=good.header, format=good.format, data=good.data[:-200]))
    sensors.sensor("rgb", cut, now_s=1.0)
    assert sensors.health["rgb"].rejected == 1 and frames == []
    assert "cut off" in sensors.health["rgb"].last_error
    sensors.sensor("rgb", jpeg(1.1), now_s=1.1)
    assert len(frames) == 1

"""SUPPORTED_TYPES and the decoders agree; event packets become one windowed image per frame.

Every message is a rosbags message of the real type (EventPacket and dvs EventArray registered
from their ``.msg`` text) after a CDR round trip, as a bag or DDS delivers it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from sam_moelora_ros.params import build_config
from sam_moelora_ros.pipeline.admission import decode_frame
from sam_moelora_ros.pipeline.assembly import (
    SUPPORTED_TYPES,
    SensorDecoders,
    frame_inputs,
    sync_config,
)
from sam_moelora_ros.pipeline.decode import BadMessage
from sam_moelora_ros.pipeline.event_stream import EventSlice
from sam_moelora_ros.pipeline.intake import SensorIntake
from sam_moelora_ros.pipeline.kinds import UnsupportedType, check_type, kind_of
from sam_moelora_ros.pipeline.ports import FrameCollector
from sam_moelora_ros.sensors.compressed import encode_compressed_depth, encode_compressed_image
from sam_moelora_ros.sensors.event_packets import encode_mono
from sam_moelora_ros.sensors.events import events_to_representation
from sam_moelora_ros.sensors.evt3 import encode_evt3
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.lidar import FLOAT32, create_cloud, make_fields
from sam_moelora_ros.sync.synchronizer import Synchronizer

TS = get_typestore(Stores.ROS2_HUMBLE)
TS.register(
    get_types_from_msg(
        "std_msgs/Header header\nuint32 height\nuint32 width\nuint64 seq\nuint64 time_base\n"
        "string encoding\nbool is_bigendian\nuint8[] events\n",
        "event_camera_msgs/msg/EventPacket",
    )
)
TS.register(
    get_types_from_msg(
        "uint16 x\nuint16 y\nbuiltin_interfaces/Time ts\nbool polarity\n", "dvs_msgs/msg/Event"
    )
)
TS.register(
    get_types_from_msg(
        "std_msgs/Header header\nuint32 height\nuint32 width\ndvs_msgs/Event[] events\n",
        "dvs_msgs/msg/EventArray",
    )
)
T = TS.types
H, W = 24, 32
SEC = 1_000_000_000
BASE = 50 * SEC


def cdr(msg: Any) -> Any:
    return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def header(ns: int, frame: str = "cam") -> Any:
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=ns // SEC, nanosec=ns % SEC), frame_id=frame
    )


def mono_packet(ns: int, x, y, dt_ns, p, seq: int = 0, size: tuple[int, int] = (H, W)) -> Any:
    data = np.frombuffer(encode_mono(x, y, dt_ns, p), np.uint8)
    return cdr(
        T["event_camera_msgs/msg/EventPacket"](
            header=header(ns, "ev"), height=size[0], width=size[1], seq=seq, time_base=0,
            encoding="mono", is_bigendian=False, events=data,
        )
    )  # fmt: skip


def rgb(ns: int) -> Any:
    return cdr(numpy_to_image(np.zeros((H, W, 3), np.uint8), "rgb8", T["sensor_msgs/msg/Image"],
                              header(ns)))  # fmt: skip


def one_of_each(depth: bool = False) -> dict[str, Any]:
    """A valid message of every type in SUPPORTED_TYPES (``depth``: images of depth)."""
    img = np.zeros((H, W, 3), np.uint8)
    cloud_t = T["sensor_msgs/msg/PointCloud2"]
    xyz = make_fields([("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32)], cloud_t)
    events = make_fields([("x", 4), ("y", 4), ("t", 8), ("polarity", 2)], cloud_t)
    ev = np.zeros(2, dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<f8"), ("polarity", "u1")])
    dvs = [
        T["dvs_msgs/msg/Event"](x=1, y=2, ts=T["builtin_interfaces/msg/Time"](sec=50, nanosec=0),
                                polarity=True)
    ]  # fmt: skip
    compressed = T["sensor_msgs/msg/CompressedImage"]
    if depth:
        mm = np.full((H, W), 1500, np.uint16)
        image = numpy_to_image(mm, "16UC1", T["sensor_msgs/msg/Image"], header(BASE))
        images = {
            "sensor_msgs/msg/Image": cdr(image),
            "sensor_msgs/msg/CompressedImage": cdr(
                encode_compressed_depth(mm, header=header(BASE), msg_type=compressed)
            ),
        }
    else:
        images = {
            "sensor_msgs/msg/Image": rgb(BASE),
            "sensor_msgs/msg/CompressedImage": cdr(
                encode_compressed_image(
                    img, "rgb8", "png", header=header(BASE), msg_type=compressed
                )
            ),
        }
    return {
        **images,
        "sensor_msgs/msg/PointCloud2": cdr(
            create_cloud(header(BASE), xyz, np.array([[0.0, 0.0, 5.0]], np.float32), cloud_t)
        ),
        "event_cloud": cdr(create_cloud(header(BASE), events, ev, cloud_t)),
        "event_camera_msgs/msg/EventPacket": mono_packet(BASE, [1], [2], [0], [1]),
        "dvs_msgs/msg/EventArray": cdr(
            T["dvs_msgs/msg/EventArray"](header=header(BASE), height=H, width=W, events=dvs)
        ),
    }


def camera_info() -> Any:
    k = [20.0, 0.0, W / 2, 0.0, 20.0, H / 2, 0.0, 0.0, 1.0]
    return cdr(T["sensor_msgs/msg/CameraInfo"](
        header=header(BASE), height=H, width=W, distortion_model="plumb_bob", d=np.zeros(5),
        k=np.array(k), r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False),
    ))  # fmt: skip


@pytest.mark.parametrize("sensor", sorted(SUPPORTED_TYPES))
def test_every_supported_type_decodes_and_no_other_does(sensor: str) -> None:
    messages = one_of_each(depth=sensor == "depth")
    decoders = SensorDecoders(build_config({}), np.eye(4))
    decoders.camera_info(camera_info())
    for type_name, msg in messages.items():
        name = "sensor_msgs/msg/PointCloud2" if type_name == "event_cloud" else type_name
        if sensor == "lidar" and type_name == "event_cloud":
            continue  # a PointCloud2 all the same: the lidar decoder wants x, y, z
        if sensor == "event" and type_name == "sensor_msgs/msg/PointCloud2":
            continue  # an event cloud needs x, y, t, polarity
        assert kind_of(msg) is not None
        if name in SUPPORTED_TYPES[sensor]:
            assert check_type(sensor, "/t", name) == name
            decoders.decode(sensor, msg)  # decodes (raises nothing)
        else:
            with pytest.raises(UnsupportedType, match=f"the {sensor} role cannot take"):
                check_type(sensor, "/t", name)
            with pytest.raises(BadMessage, match=f"the {sensor} sensor cannot take"):
                decoders.decode(sensor, msg)


def test_ros1_style_type_names_are_read_as_ros2() -> None:
    name = check_type("rgb", "/c", "sensor_msgs/CompressedImage")
    assert name == "sensor_msgs/msg/CompressedImage"


def decoders(**params: Any) -> SensorDecoders:
    cfg = build_config({"sensors.event.window": 0.01, **params})
    out = SensorDecoders(cfg, np.eye(4))
    out.camera_info(camera_info())
    return out


def test_a_frame_gets_every_event_of_every_packet_in_the_window() -> None:
    """Events 1 ms apart in 1 ms packets; the frame at BASE + 20 ms takes (10 ms, 20 ms]."""
    dec = decoders()
    sync = Synchronizer(sync_config(dec.cfg))
    frames = []
    rng = np.random.default_rng(0)
    xs, ys, ps = rng.integers(0, W, 30), rng.integers(0, H, 30), rng.integers(0, 2, 30)
    for ms in range(30):  # packets stamped at their first event
        ns = BASE + ms * 1_000_000
        packet = mono_packet(ns, [xs[ms]], [ys[ms]], [0], [ps[ms]], seq=ms)
        slice_ = dec.decode_and_accept("event", packet)
        assert isinstance(slice_, EventSlice) and slice_.pending and slice_.events == 1
        frames += dec.complete(sync.push("event", ns * 1e-9, slice_, ns * 1e-9))
        if ms == 20:
            camera = dec.decode("rgb", rgb(ns))
            frames += dec.complete(sync.push("rgb", ns * 1e-9, camera, ns * 1e-9))
    assert len(frames) == 1
    image = frames[0].messages["event"].image
    inside = slice(10, 21)  # t in [anchor - 10 ms, anchor]
    expected = events_to_representation(xs[inside], ys[inside], np.zeros(11), ps[inside], (H, W))
    np.testing.assert_array_equal(image, expected)
    present, images, _ = frame_inputs(frames[0], ("rgb", "event"))
    assert present == ("rgb", "event") and images["event"] is image


def test_evt3_packets_and_dvs_arrays_fill_the_same_window() -> None:
    xs, ys, ps = np.array([3, 4, 5]), np.array([1, 2, 3]), np.array([1, 0, 1])
    t_us = np.array([100, 600, 1100])  # sensor clock; the packet is stamped at its first event
    data = np.frombuffer(encode_evt3(xs, ys, t_us, ps), np.uint8)
    evt3 = cdr(T["event_camera_msgs/msg/EventPacket"](
        header=header(BASE, "ev"), height=H, width=W, seq=0, time_base=0, encoding="evt3",
        is_bigendian=False, events=data))  # fmt: skip
    stamps = [T["builtin_interfaces/msg/Time"](sec=50, nanosec=int(t - 100) * 1000) for t in t_us]
    dvs = cdr(T["dvs_msgs/msg/EventArray"](header=header(BASE), height=H, width=W, events=[
        T["dvs_msgs/msg/Event"](x=int(x), y=int(y), ts=s, polarity=bool(p))
        for x, y, s, p in zip(xs, ys, stamps, ps, strict=True)]))  # fmt: skip
    images = []
    for msg in (evt3, dvs):
        dec = decoders()
        dec.decode("event", msg)
        images.append(dec.events.render(BASE + 999_000, (H, W)))  # the last is 1 ms in
    np.testing.assert_array_equal(images[0], images[1])
    expected = events_to_representation(xs[:2], ys[:2], np.zeros(2), ps[:2], (H, W))
    np.testing.assert_array_equal(images[0], expected)


def test_event_sensor_size_must_match_unless_scaled() -> None:
    small = mono_packet(BASE, [1, 15], [0, 11], [0, 10], [1, 0], size=(H // 2, W // 2))
    with pytest.raises(BadMessage, match="event camera is 16x12 but the camera is 32x24"):
        decoders().decode("event", small)
    dec = decoders(**{"sensors.event.scale_to_camera": True})
    dec.decode("event", small)
    image = dec.events.render(BASE + 1000, (H, W))
    native = events_to_representation(np.array([1, 15]), np.array([0, 11]), np.zeros(2),
                                      np.array([1, 0]), (H // 2, W // 2))  # fmt: skip
    np.testing.assert_array_equal(image, np.repeat(np.repeat(native, 2, axis=0), 2, axis=1))
    wide = mono_packet(BASE, [1], [0], [0], [1], size=(H // 2, W))
    with pytest.raises(BadMessage, match="aspect ratios differ"):
        dec.decode("event", wide)


def test_packets_before_the_camera_size_and_unrendered_frames_are_refused() -> None:
    dec = SensorDecoders(build_config({}), np.eye(4))
    with pytest.raises(BadMessage, match="before the camera size is known"):
        dec.decode("event", mono_packet(BASE, [1], [1], [0], [1]))
    dec.camera_info(camera_info())
    slice_ = dec.decode("event", mono_packet(BASE, [1], [1], [0], [1]))
    sync = Synchronizer(sync_config(dec.cfg))
    sync.push("event", BASE * 1e-9, slice_, BASE * 1e-9)
    (frame,) = sync.push("rgb", BASE * 1e-9, dec.decode("rgb", rgb(BASE)), BASE * 1e-9)
    with pytest.raises(ValueError, match="SensorDecoders.complete"):
        frame_inputs(frame, ("rgb", "event"))


def test_intake_cuts_event_packets_and_the_frame_decode_renders_them() -> None:
    dec = decoders()
    submitted: list = []
    intake = SensorIntake(dec, Synchronizer(sync_config(dec.cfg)), FrameCollector(frames=submitted))
    for ms in range(5):
        ns = BASE + ms * 1_000_000
        intake.sensor("event", mono_packet(ns, [ms], [ms], [0], [1], seq=ms), ns * 1e-9)
    intake.sensor("rgb", rgb(BASE + 3_000_000), (BASE + 4_000_000) * 1e-9)
    assert len(submitted) == 1
    cut = submitted[0].messages["event"]
    assert cut.pending and cut.cut is not None  # cut on release, rendered by the worker
    frame, problems = decode_frame(submitted[0])
    assert frame is not None and problems == []
    event = frame.messages["event"]
    assert not event.pending and (event.image[:, :, 2] > 0).sum() == 4  # events at 0..3 ms
    assert intake.health["event"].rejected == 0

"""Hostile messages against the codecs: sizes are checked before allocation, lies are refused.

Each message is built the way a driver (or a red team) sends it: a real JPEG / PNG / RVL stream
with its header rewritten, a real cloud with one field changed, EVT 3.0 words as a sensor writes
them. Each test fails on the code before the decode budgets: there, the same message allocates
gigabytes, decodes to grey, or is accepted with wrong values.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sam_moelora_ros.sensors.camera_models import CameraModel, CameraModelError
from sam_moelora_ros.sensors.compressed import (
    CompressedImageError,
    decode_compressed_depth,
    decode_compressed_image,
    encode_compressed_depth,
    encode_compressed_image,
)
from sam_moelora_ros.sensors.event_packets import (
    EventPacketDecoder,
    EventPacketError,
    encode_mono,
    events_from_dvs_array,
    inside_sensor,
)
from sam_moelora_ros.sensors.evt3 import Evt3Error, decode_evt3, encode_evt3
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix
from sam_moelora_ros.sensors.image import image_to_numpy, numpy_to_image
from sam_moelora_ros.sensors.image_header import ImageHeaderError, check_decoded, read_header
from sam_moelora_ros.sensors.lidar import (
    FLOAT32,
    UINT16,
    create_cloud,
    lidar_returns,
    make_fields,
    read_points,
)
from sam_moelora_ros.sensors.limits import LimitError, Limits
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sensors.tf_chain import TfError, TransformTree

HUGE = Limits(max_image_pixels=2**31 - 1)
"""No budget to speak of: what the stream checks catch on their own."""


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def jpeg(image: np.ndarray, *params: int) -> bytearray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95, *params])
    assert ok
    return bytearray(buf.tobytes())


def with_sof_size(data: bytearray, height: int, width: int) -> bytes:
    """The JPEG with its frame header (SOF0 / SOF2) declaring another size."""
    at = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def compressed(fmt: str, data: bytes) -> SimpleNamespace:
    return SimpleNamespace(header=plain_header(), format=fmt, data=np.frombuffer(data, np.uint8))


# --- JPEG / PNG -------------------------------------------------------------------------


def test_a_tiny_jpeg_declaring_16000x12000_is_refused_by_the_budget() -> None:
    bomb = with_sof_size(jpeg(np.full((16, 16, 3), 90, np.uint8)), 12000, 16000)
    assert len(bomb) < 1000  # the red team's 631-byte JPEG
    tracemalloc.start()
    with pytest.raises(CompressedImageError, match=r"16000x12000.*limits.max_image_pixels"):
        decode_compressed_image(compressed("rgb8; jpeg compressed bgr8", bomb))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20_000_000, peak  # decoding it: 576 MB


def test_a_jpeg_header_larger_than_its_data_is_refused_not_decoded_grey() -> None:
    lying = with_sof_size(jpeg(noise(16, 16)), 480, 640)
    with pytest.raises(CompressedImageError, match="header does not describe this data"):
        decode_compressed_image(compressed("jpeg", lying))
    with pytest.raises(ImageHeaderError, match="header does not describe"):  # any budget
        read_header(with_sof_size(jpeg(noise(16, 16)), 12000, 16000))


def test_a_jpeg_cut_short_is_refused() -> None:
    whole = bytes(jpeg(noise(480, 640)))
    for cut in (len(whole) // 2, len(whole) - 2, 300):
        with pytest.raises(CompressedImageError, match="cut off"):
            decode_compressed_image(compressed("jpeg", whole[:cut]))


@pytest.mark.parametrize("progressive", [False, True])
def test_real_jpegs_pass_the_stream_checks(progressive: bool) -> None:
    """The lower bound is one no valid stream breaks: flat black compresses best."""
    params = (cv2.IMWRITE_JPEG_PROGRESSIVE, 1) if progressive else ()
    for image in (np.zeros((480, 640, 3), np.uint8), noise(48, 64)):
        data = jpeg(image, cv2.IMWRITE_JPEG_QUALITY, 10, *params)
        assert read_header(data)[1:] == image.shape[:2]
    msg = encode_compressed_image(np.zeros((480, 640), np.uint8), "mono8", "jpeg", quality=5)
    array, encoding = decode_compressed_image(msg)
    assert array.shape == (480, 640) and encoding == "mono8"


def png(image: np.ndarray) -> bytearray:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return bytearray(buf.tobytes())


def test_a_png_declaring_16000x12000_is_refused_before_decoding() -> None:
    data = png(noise(48, 64))
    data[16:24] = struct.pack(">II", 16000, 12000)
    with pytest.raises(CompressedImageError, match=r"16000x12000.*limits.max_image_pixels"):
        decode_compressed_image(compressed("png", bytes(data)))
    with pytest.raises(ImageHeaderError, match="fewer than deflate can pack"):
        read_header(bytes(data))  # whatever the budget: 12 KB of IDAT cannot hold it


def test_a_png_cut_short_is_refused() -> None:
    data = bytes(png(noise(48, 64)))
    with pytest.raises(CompressedImageError, match="no IEND chunk"):
        decode_compressed_image(compressed("png", data[:-12]))


def test_a_decoded_size_other_than_the_header_is_refused() -> None:
    header = read_header(png(noise(48, 64)))
    check_decoded(header, np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ImageHeaderError, match="decoded to 16x16 but its header declares 64x48"):
        check_decoded(header, np.zeros((16, 16, 3), np.uint8))


def test_a_raw_image_over_the_budget_is_refused() -> None:
    msg = numpy_to_image(np.zeros((40, 50, 3), np.uint8), "rgb8")
    with pytest.raises(LimitError, match=r"50x40 = 2000 pixels.*max_image_pixels = 1000"):
        image_to_numpy(msg, limits=Limits(max_image_pixels=1000))


# --- compressedDepth RVL --------------------------------------------------------------


def rvl_with_size(cols: int, rows: int, extra: bytes = b"") -> SimpleNamespace:
    msg = encode_compressed_depth(np.full((4, 4), 1000, np.uint16), "16UC1", "rvl")
    data = bytearray(msg.data.tobytes())
    data[12:20] = struct.pack("<II", cols, rows)
    return compressed(msg.format, bytes(data) + extra)


def test_32_bytes_of_rvl_declaring_16000x12000_are_refused_by_the_budget() -> None:
    bomb = rvl_with_size(16000, 12000)
    assert bomb.data.size < 40
    tracemalloc.start()
    with pytest.raises(CompressedImageError, match=r"RVL header declares 16000x12000"):
        decode_compressed_depth(bomb)
    assert tracemalloc.get_traced_memory()[1] < 20_000_000  # decoding it: 384 MB
    tracemalloc.stop()


def test_an_rvl_stream_longer_than_its_image_can_need_is_refused() -> None:
    with pytest.raises(CompressedImageError, match="longer than a 1x1 image can need"):
        decode_compressed_depth(rvl_with_size(1, 1, bytes(4000)))


# --- PointCloud2 ------------------------------------------------------------------------


def xyz_cloud(n: int = 64, big: bool = False) -> SimpleNamespace:
    rng = np.random.default_rng(1)
    points = rng.uniform(0.5, 40.0, (n, 3)).astype(np.float32)
    fields = make_fields([("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32)])
    return create_cloud(plain_header(), fields, points, is_bigendian=big)


def test_a_field_count_of_2_32_minus_1_is_refused_before_building_columns() -> None:
    cloud = xyz_cloud(100)
    cloud.fields = [SimpleNamespace(name="x", offset=0, datatype=FLOAT32, count=2**32 - 1)]
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"'x' \(offset 0, count 4294967295\).*point_step 12"):
        read_points(cloud)
    assert time.perf_counter() - start < 0.5


def test_overlapping_and_repeated_fields_are_refused() -> None:
    cloud = xyz_cloud()
    cloud.fields = [
        SimpleNamespace(name="x", offset=0, datatype=FLOAT32, count=1),
        SimpleNamespace(name="ring", offset=2, datatype=UINT16, count=1),
    ]
    with pytest.raises(ValueError, match=r"'x' and 'ring' overlap \(bytes 2..3"):
        read_points(cloud)
    cloud.fields = make_fields([("x", FLOAT32), ("x", FLOAT32), ("z", FLOAT32)])
    with pytest.raises(ValueError, match="'x' is listed twice"):
        read_points(cloud)


def test_width_times_height_must_describe_the_data() -> None:
    cloud = xyz_cloud(64)
    cloud.width, cloud.row_step = 32, 32 * cloud.point_step
    with pytest.raises(ValueError, match="32 x 1 points.*does not describe the data"):
        read_points(cloud)


def test_a_flipped_is_bigendian_is_refused_and_a_true_one_read() -> None:
    for big in (False, True):
        good = xyz_cloud(big=big)
        assert lidar_returns(good)[0].shape == (64, 3)
        flipped = xyz_cloud(big=big)
        flipped.is_bigendian = not big
        with pytest.raises(ValueError, match=f"is_bigendian is {not big} but its x, y, z read"):
            lidar_returns(flipped)


def test_a_cloud_over_the_point_budget_is_refused() -> None:
    with pytest.raises(LimitError, match=r"64 points, over the limit limits.max_points = 10"):
        read_points(xyz_cloud(64), limits=Limits(max_points=10))


# --- events ---------------------------------------------------------------------------


def evt3_packet(data: bytes, width: int = 640, height: int = 480) -> SimpleNamespace:
    return SimpleNamespace(
        header=plain_header(1, 0, "ev"),
        height=height,
        width=width,
        seq=0,
        time_base=0,
        encoding="evt3",
        is_bigendian=False,
        events=np.frombuffer(data, np.uint8),
    )


def test_an_evt3_packet_of_vector_words_is_refused_before_expanding() -> None:
    head = np.array([0x8000, 0x6000, 0x0000, 0x3000], "<u2")  # TIME_HIGH, LOW, ADDR_Y, BASE_X
    vectors = np.full(200_000, 0x4FFF, "<u2")  # VECT_12, all 12 bits: 2.4 M events
    data = np.concatenate([head, vectors]).tobytes()
    tracemalloc.start()
    with pytest.raises(EventPacketError, match=r"declares 2400000 events.*max_events = 1000000"):
        EventPacketDecoder(limits=Limits(max_events=1_000_000)).decode(evt3_packet(data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40_000_000, peak  # the events alone would be 2.4 M x 13 bytes = 31 MB
    with pytest.raises(Evt3Error, match="declares 2400000 events"):
        decode_evt3(data, max_events=2_399_999)


def test_evt3_events_outside_the_sensor_are_counted() -> None:
    data = encode_evt3([5, 700, 10, 639], [5, 5, 479, 480], [100, 100, 200, 300], [1, 0, 1, 1])
    decoder = EventPacketDecoder()
    events = decoder.decode(evt3_packet(data))
    assert sorted(zip(events.x.tolist(), events.y.tolist(), strict=True)) == [(5, 5), (10, 479)]
    assert decoder.last_outside == 2 and decoder.outside_events == 2
    assert decode_evt3(data, width=640, height=480)[0].outside == 2


def test_mono_and_dvs_budgets_and_the_outside_filter() -> None:
    raw = encode_mono(np.arange(11), np.zeros(11), np.zeros(11), np.ones(11))
    msg = evt3_packet(raw)
    msg.encoding = "mono"
    with pytest.raises(EventPacketError, match=r"mono EventPacket holds 11 events.*= 10"):
        EventPacketDecoder(limits=Limits(max_events=10)).decode(msg)
    kept, outside = inside_sensor(EventPacketDecoder().decode(msg), 8, 1)
    assert kept.x.tolist() == list(range(8)) and outside == 3
    dvs = SimpleNamespace(events=[SimpleNamespace()] * 11)
    with pytest.raises(EventPacketError, match="dvs EventArray holds 11 events"):
        events_from_dvs_array(dvs, Limits(max_events=10))


# --- camera_info, tf --------------------------------------------------------------------


def camera_info(h: int, w: int, k: list[float]) -> SimpleNamespace:
    return SimpleNamespace(
        height=h, width=w, k=k, d=[0.0] * 5, distortion_model="plumb_bob", header=plain_header()
    )


def test_camera_info_over_the_budget_or_with_a_broken_k_is_refused() -> None:
    k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    assert CameraModel.from_camera_info(camera_info(480, 640, k)).size == (480, 640)
    with pytest.raises(CameraModelError, match=r"64000x48000.*limits.max_image_pixels"):
        CameraModel.from_camera_info(camera_info(48000, 64000, k))
    with pytest.raises(CameraModelError, match="not a camera matrix"):
        CameraModel.from_camera_info(camera_info(480, 640, [*k[:6], 0.0, 0.0, 2.0]))
    with pytest.raises(CameraModelError, match="principal point .* far outside"):
        CameraModel.from_camera_info(camera_info(480, 640, [*k[:2], 32000.0, *k[3:]]))


def tf(parent: str, child: str, x: float = 0.1) -> SimpleNamespace:
    return SimpleNamespace(
        header=SimpleNamespace(frame_id=parent),
        child_frame_id=child,
        transform=SimpleNamespace(
            translation=SimpleNamespace(x=x, y=0.0, z=0.0),
            rotation=SimpleNamespace(x=0.0, y=0.0, z=0.0, w=1.0),
        ),
    )


def test_a_translation_of_1e30_is_refused() -> None:
    with pytest.raises(TfError, match="base_link -> lidar has a translation of 1e\\+30 m"):
        TransformTree([tf("base_link", "lidar", 1e30)])


def test_a_long_chain_loads_in_linear_time_and_loops_are_still_refused() -> None:
    n = 20_000  # the quadratic check walked 2e8 ancestors here
    links = [tf(f"f{i}", f"f{i + 1}") for i in range(n)]
    start = time.perf_counter()
    tree = TransformTree(links)
    TransformTree(reversed(links))
    assert time.perf_counter() - start < 5.0
    with pytest.raises(TfError, match=f"f{n} -> f0 would make a loop"):
        tree.add(tf(f"f{n}", "f0"))
    tree.add(tf("elsewhere", "f100"))  # a move: f100..f{n} now hang below elsewhere
    tree.add(tf(f"f{n}", "f0"))  # so this is no loop any more
    with pytest.raises(TfError, match="would make a loop"):
        tree.add(tf("f50", "elsewhere"))  # elsewhere -> f100 .. f{n} -> f0 .. f50: a loop
    matrix, chain = tree.lookup("f0", "f1")
    assert chain == ["f1", "f0"] and matrix[0, 3] == pytest.approx(0.1)


def test_a_reflection_is_no_extrinsic() -> None:
    mirror = np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="reflection"):
        extrinsic_matrix(mirror.reshape(-1))

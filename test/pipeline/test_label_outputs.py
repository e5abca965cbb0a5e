"""The outputs downstream nodes use: labelled cloud, labels' camera_info, PNG labels, class table.

The labelled cloud is checked against a projection written out here (pinhole, pixel ``floor(u +
0.5)``), not against the module's own projection, for a known camera and extrinsic.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sam_moelora_ros.params import build_config
from sam_moelora_ros.pipeline.admission import DecodeSettings, Pending
from sam_moelora_ros.pipeline.decode import Camera, decode_lidar
from sam_moelora_ros.pipeline.kinds import IMAGE
from sam_moelora_ros.pipeline.labelled_cloud import CloudDecoded, LidarSource, label_cloud
from sam_moelora_ros.pipeline.outputs import (
    class_table,
    compressed_labels,
    label_camera_info,
    png_format,
)
from sam_moelora_ros.pipeline.ports import FrameCollector
from sam_moelora_ros.pipeline.worker import (
    CAMERA_INFO,
    COMPRESSED,
    LABELLED_CLOUD,
    CameraOutput,
    InferenceWorker,
    OutputOptions,
)
from sam_moelora_ros.sensors.compressed import decode_compressed_image
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.lidar import FLOAT32, UINT16, create_cloud, make_fields, read_points
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sync.synchronizer import Frame

H, W = 48, 64
K = np.array([[40.0, 0.0, 31.5], [0.0, 40.0, 23.5], [0.0, 0.0, 1.0]])
# LiDAR x forward, y left, z up -> camera z forward, x right, y down; LiDAR 0.1 m above the camera
T = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.1], [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 1.0]])
CAMERA = Camera(H, W, K, None, "camera_optical", "plumb_bob")


def lidar_cloud(big_endian: bool = False) -> tuple[Any, np.ndarray]:
    """An organised 2 x 150 cloud (x y z intensity + ring, 4 bytes of padding): points in front,
    behind, to the side, NaN and (0, 0, 0) no-returns; returns (cloud, its points)."""
    rng = np.random.default_rng(3)
    n = 300
    xyz = np.stack(
        [rng.uniform(-4, 12, n), rng.uniform(-8, 8, n), rng.uniform(-3, 3, n)], axis=1
    ).astype(np.float32)
    xyz[5] = np.nan
    xyz[6] = 0.0
    fields = make_fields([("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32), ("intensity", FLOAT32)])
    fields += [SimpleNamespace(name="ring", offset=20, datatype=UINT16, count=1)]
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "intensity", "ring"],
            "formats": ["f4"] * 4 + ["u2"],
            "offsets": [0, 4, 8, 12, 20],
            "itemsize": 24,
        }
    )
    points = np.zeros(n, dtype=dtype)
    for i, name in enumerate("xyz"):
        points[name] = xyz[:, i]
    points["intensity"] = np.arange(n, dtype=np.float32)
    points["ring"] = np.arange(n) % 16
    cloud = create_cloud(
        plain_header(7, 500, "os_lidar"),
        fields,
        points.reshape(2, 150),
        point_step=24,
        is_bigendian=big_endian,
    )
    return cloud, points


def expected_pixels(points: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> dict[int, int]:
    """point index -> linear pixel, by hand: camera = R p + t, u = fx x/z + cx, col floor(u+.5)."""
    out = {}
    for i, p in enumerate(points):
        xyz = np.array([p["x"], p["y"], p["z"]], dtype=np.float64)
        if not np.all(np.isfinite(xyz)) or not np.any(xyz):
            continue
        cam = T[:3, :3] @ xyz + T[:3, 3]
        if cam[2] <= 1e-6:
            continue
        col = int(np.floor(K[0, 0] * cam[0] / cam[2] + K[0, 2] + 0.5))
        row = int(np.floor(K[1, 1] * cam[1] / cam[2] + K[1, 2] + 0.5))
        if 0 <= col < size[1] and 0 <= row < size[0]:
            out[i] = row * size[1] + col
    return out


def images(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    labels = (np.arange(h * w) % 23).astype(np.uint8).reshape(h, w)
    confidence = np.linspace(0.05, 1.0, h * w, dtype=np.float32).reshape(h, w)
    return labels, confidence


@pytest.mark.parametrize("big_endian", [False, True])
def test_each_point_carries_the_label_and_confidence_at_its_pixel(big_endian: bool) -> None:
    cloud, points = lidar_cloud(big_endian)
    labels, confidence = images((H, W))
    out = label_cloud(cloud, CAMERA, T, labels, confidence)
    want = expected_pixels(points, K, (H, W))
    assert 20 < len(want) < 200  # some points land, many do not
    assert (out.height, out.width, out.header.frame_id) == (1, len(want), "os_lidar")
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (7, 500)
    assert bool(out.is_bigendian) == big_endian
    names = [f.name for f in out.fields]
    assert names == ["x", "y", "z", "intensity", "ring", "label", "confidence"]
    got = read_points(out)
    index = [int(i) for i in got["intensity"]]  # intensity = the original point's index
    assert index == sorted(want)
    pixel = np.array([want[i] for i in index])
    np.testing.assert_array_equal(got["label"], labels.reshape(-1)[pixel])
    np.testing.assert_array_equal(got["confidence"], confidence.reshape(-1)[pixel])
    np.testing.assert_array_equal(got["ring"], points["ring"][index])
    np.testing.assert_array_equal(got["x"], points["x"][index])


def test_a_label_image_of_another_size_reads_the_scaled_camera() -> None:
    cloud, points = lidar_cloud()
    labels, confidence = images((H // 2, W // 2))
    out = label_cloud(cloud, CAMERA, T, labels, confidence)
    # half size: f / 2 and c' = (c + 0.5) / 2 - 0.5 (pixel centres on the same rays)
    half = np.array([[20.0, 0.0, 15.5], [0.0, 20.0, 11.5], [0.0, 0.0, 1.0]])
    want = expected_pixels(points, half, (H // 2, W // 2))
    got = read_points(out)
    index = [int(i) for i in got["intensity"]]
    assert index == sorted(want)
    np.testing.assert_array_equal(got["label"], labels.reshape(-1)[[want[i] for i in index]])


def test_the_decodes_projection_labels_the_cloud_as_a_second_projection_would() -> None:
    # the worker passes the pixels the decode found (no second projection per frame); they must
    # give the very cloud a projection of its own gives, and a label image of another size must
    # not read them
    cloud, _ = lidar_cloud()
    decoded = decode_lidar(cloud, CAMERA, T)
    assert decoded.hits is not None and decoded.hits.size_hw == (H, W)
    for size in ((H, W), (H // 2, W // 2)):
        labels, confidence = images(size)
        reused = label_cloud(cloud, CAMERA, T, labels, confidence, hits=decoded.hits)
        projected = label_cloud(cloud, CAMERA, T, labels, confidence)
        assert bytes(reused.data) == bytes(projected.data) and reused.width == projected.width
    labels, confidence = images((H, W))
    projected = read_points(label_cloud(cloud, CAMERA, T, labels, confidence))
    wrong = replace(decoded.hits, pixel=decoded.hits.pixel[::-1].copy())
    out = read_points(label_cloud(cloud, CAMERA, T, labels, confidence, hits=wrong))
    assert not np.array_equal(out["label"], projected["label"])  # the hits are what is read


def test_more_than_256_classes_label_as_uint16_and_an_old_label_field_is_replaced() -> None:
    cloud, _ = lidar_cloud()
    old_label = SimpleNamespace(name="label", offset=20, datatype=UINT16, count=1)
    cloud.fields = [*cloud.fields[:4], old_label]
    labels = np.full((H, W), 300, dtype=np.uint16)
    out = label_cloud(cloud, CAMERA, T, labels, np.ones((H, W), np.float32))
    assert [f.name for f in out.fields] == ["x", "y", "z", "intensity", "label", "confidence"]
    assert {int(v) for v in read_points(out)["label"]} == {300}
    with pytest.raises(ValueError, match="same H x W"):
        label_cloud(cloud, CAMERA, T, labels, np.ones((H, W + 1), np.float32))


def camera_info() -> SimpleNamespace:
    return SimpleNamespace(
        header=plain_header(1, 2, "camera_optical"),
        height=H,
        width=W,
        distortion_model="plumb_bob",
        d=[0.1, 0.0, 0.0, 0.0, 0.0],
        k=list(K.reshape(-1)),
        r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
        p=[40.0, 0.0, 31.5, -4.0, 0.0, 40.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0],
        binning_x=0,
        binning_y=0,
        roi=SimpleNamespace(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def test_the_labels_camera_info_has_their_header_and_is_scaled_to_their_size() -> None:
    info = camera_info()
    header = plain_header(9, 8, "camera_optical")
    same = label_camera_info(info, header, (H, W), None)
    assert same.header is header and same.k == info.k and same.p == info.p and same.d == info.d
    half = label_camera_info(info, header, (H // 2, W // 2), None)
    assert (half.height, half.width) == (H // 2, W // 2)
    assert half.k == [20.0, 0.0, 15.5, 0.0, 20.0, 11.5, 0.0, 0.0, 1.0]
    assert half.p == [20.0, 0.0, 15.5, -2.0, 0.0, 20.0, 11.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert half.distortion_model == "plumb_bob" and half.d == info.d


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_labels_are_lossless_with_image_transports_format(dtype: type) -> None:
    labels: np.ndarray = (
        (np.arange(H * W) % (25 if dtype is np.uint8 else 700)).astype(dtype).reshape(H, W)
    )
    msg = compressed_labels(labels, plain_header(3, 4, "camera"))
    encoding = "mono8" if dtype is np.uint8 else "16UC1"
    assert msg.format == png_format(encoding) == f"{encoding}; png compressed "
    decoded, got_encoding = decode_compressed_image(msg)
    assert got_encoding == encoding and decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, labels)


def test_the_class_table_maps_each_label_value_to_its_name() -> None:
    assert class_table(("road", "car", "person")) == [(0, "road"), (1, "car"), (2, "person")]


def test_the_worker_publishes_camera_info_png_labels_and_the_labelled_cloud(segmenter) -> None:
    cloud, points = lidar_cloud()
    lidar_image = np.zeros((H, W, 3), dtype=np.uint8)
    source = LidarSource(cloud, CAMERA, T)
    rgb = numpy_to_image(
        np.full((H, W, 3), 90, np.uint8), "rgb8", header=plain_header(7, 500, "camera_optical")
    )
    cfg = build_config({})
    settings = DecodeSettings(cfg.encodings, cfg.limits, cfg.lidar_labelled)
    # the rgb message as the executor thread admits it: raw, with the camera of its arrival
    camera = replace(CAMERA, msg=camera_info())
    messages = {
        "rgb": Pending.of(rgb, "rgb", IMAGE, settings, camera=camera, declared_hw=(H, W)),
        "lidar": CloudDecoded(lidar_image, cloud.header, source=source),
    }
    frame = Frame("rgb", 7.0, messages, stamps={}, absent={}, arrival_s=1.0, emitted_s=1.0)
    port = FrameCollector()
    published = port.published
    options = OutputOptions(color=False, color_alpha=1.0, confidence=False)
    worker = InferenceWorker(
        segmenter,
        np.zeros((25, 3), np.uint8),
        [CameraOutput("", port)],
        None,
        lambda: 2.0,
        options,
        message_types={CAMERA_INFO: None, COMPRESSED: None, LABELLED_CLOUD: None},
    )
    assert worker.process(frame)
    assert [k for k, _ in published] == ["labels", CAMERA_INFO, LABELLED_CLOUD]
    labels_msg, info, labelled = (m for _, m in published)
    assert info.header is labels_msg.header
    got = read_points(labelled)
    labels = np.frombuffer(bytes(labels_msg.data), np.uint8).reshape(H, W)
    want = expected_pixels(points, K, (H, W))
    index = [int(i) for i in got["intensity"]]
    np.testing.assert_array_equal(got["label"], labels.reshape(-1)[[want[i] for i in index]])
    options.labels_compressed = True  # ros2 param set output.labels_compressed true
    published.clear()
    worker.process(frame)
    assert [k for k, _ in published] == ["labels", CAMERA_INFO, COMPRESSED, LABELLED_CLOUD]
    # nobody subscribed to the cloud and the compressed labels: neither is built
    port.unwanted = frozenset({LABELLED_CLOUD, COMPRESSED})
    published.clear()
    worker.process(frame)
    assert [k for k, _ in published] == ["labels", CAMERA_INFO]

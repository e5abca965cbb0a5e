"""Conversion speeds of the sensor codecs (a benchmark, not a test).

Run: ``.venv/bin/python bench/bench_codecs.py [--quick] [--no-medians]``. Prints the median of
repeated runs in milliseconds for: 1 M events -> frame / voxel image, a 130 k-point cloud ->
read_points + project_points, 1280x720 rgb8 / bgr8 / yuv422 -> numpy, and the ways of handing
``data`` to an rclpy message (why ``messages.py`` uses ``array.array.frombytes``).

Then the codecs of real robots' topics as ratios against one tiny-model forward (four
modalities, batch 1, as ``bench_model.py`` builds it), every variant timed in turn in the same
rounds (``common.interleaved``): a 640x480 ``rgb8; jpeg compressed bgr8`` CompressedImage ->
RGB, and a 1 M-event EVT 3.0 EventPacket -> x, y, t, p. The table is printed and written as
``bench/results/codecs-cpu-<time>.json`` (``common.write_json``'s format).
"""

from __future__ import annotations

import argparse
import array
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Ratio, interleaved, min_ms, paired_ratio, summary

from sam_moelora_ros.sensors import (
    FLOAT32,
    UINT16,
    create_cloud,
    events_to_representation,
    image_to_numpy,
    lidar_to_network_image,
    make_fields,
    numpy_to_image,
    project_points,
    read_points,
    read_points_numpy,
)
from sam_moelora_ros.sensors.compressed import decode_compressed_image, encode_compressed_image
from sam_moelora_ros.sensors.event_packets import EventPacketDecoder
from sam_moelora_ros.sensors.evt3 import encode_evt3


def median_ms(fn: Callable[[], object], repeat: int = 7) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def report(name: str, ms: float) -> None:
    print(f"{name:<58s} {ms:9.2f} ms")


def bench_events(rng: np.random.Generator) -> None:
    n, h, w = 1_000_000, 720, 1280
    x = rng.integers(0, w, n).astype(np.uint16)
    y = rng.integers(0, h, n).astype(np.uint16)
    t = np.sort(rng.integers(0, 50_000_000, n)).astype(np.int64)  # 50 ms in ns
    p = rng.integers(0, 2, n).astype(np.int8)
    for kind in ("frame", "voxel"):
        report(
            f"1M events -> {kind} 1280x720x3",
            median_ms(lambda k=kind: events_to_representation(x, y, t, p, (h, w), kind=k)),
        )


def bench_cloud(rng: np.random.Generator) -> None:
    n = 130_000
    spec = [("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32), ("intensity", FLOAT32)]
    fields = make_fields([*spec, ("ring", UINT16)])
    pts = np.zeros(
        n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4"), ("ring", "u2")]
    )
    az = rng.uniform(-np.pi, np.pi, n)
    r = rng.uniform(2, 60, n)
    pts["x"], pts["y"] = r * np.cos(az), r * np.sin(az)
    pts["z"] = rng.uniform(-2, 2, n)
    pts["intensity"] = rng.uniform(0, 255, n)
    cloud = create_cloud(None, fields, pts, point_step=32)  # Velodyne-like padded points
    k = np.array([[900.0, 0, 640], [0, 900.0, 360], [0, 0, 1]])
    t = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    d = [-0.1, 0.01, 0.0, 0.0, 0.0]
    report("130k cloud -> read_points (view)", median_ms(lambda: read_points(cloud)))
    xyz = read_points_numpy(cloud, ["x", "y", "z"], skip_nans=True)
    report(
        "130k cloud -> read_points_numpy xyz N x 3",
        median_ms(lambda: read_points_numpy(cloud, ["x", "y", "z"], skip_nans=True)),
    )
    report(
        "130k points -> project_points 1280x720",
        median_ms(lambda: project_points(xyz, k, t, (720, 1280))),
    )
    report(
        "130k points -> project_points 1280x720 + plumb_bob",
        median_ms(lambda: project_points(xyz, k, t, (720, 1280), D=d)),
    )

    def full() -> object:
        xyz_ = read_points_numpy(cloud, ["x", "y", "z"], skip_nans=True)
        depth, _ = project_points(xyz_, k, t, (720, 1280), D=d)
        return lidar_to_network_image(depth)

    report("130k cloud -> read + project + lidar_to_network_image", median_ms(full))


def bench_images(rng: np.random.Generator) -> None:
    h, w = 720, 1280
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for enc in ("rgb8", "bgr8"):
        msg = numpy_to_image(rgb, enc)
        msg.data = msg.data.tobytes()  # as bytes, like a deserialised message
        report(f"1280x720 {enc} -> numpy (view)", median_ms(lambda m=msg: image_to_numpy(m)))
    yuv = numpy_to_image(rgb, "yuv422")
    report("1280x720 yuv422 -> numpy RGB", median_ms(lambda: image_to_numpy(yuv)))
    bayer = numpy_to_image(rgb, "bayer_rggb8")
    report("1280x720 bayer_rggb8 -> numpy RGB", median_ms(lambda: image_to_numpy(bayer)))
    try:
        from sensor_msgs.msg import Image
    except ImportError:
        return
    report(
        "numpy -> rclpy Image rgb8 (numpy_to_image)",
        median_ms(lambda: numpy_to_image(rgb, "rgb8", Image)),
    )
    raw = rgb.tobytes()

    def assign(value_fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            m = Image()
            m.data = value_fn()
            return m

        return run

    def frombytes() -> array.array:
        a = array.array("B")
        a.frombytes(memoryview(rgb).cast("B"))
        return a

    report("rclpy data = array.array frombytes(memoryview)", median_ms(assign(frombytes)))
    report("rclpy data = array.array('B', bytes)", median_ms(assign(lambda: array.array("B", raw))))
    report("rclpy data = bytes (setter converts)", median_ms(assign(lambda: raw), repeat=3))
    small = rgb[:90, :160]  # the numpy path is per element: time a 1/64 image only
    report(
        "rclpy data = numpy array, 160x90 only (!)",
        median_ms(assign(lambda: small.reshape(-1)), repeat=3),
    )


def jpeg_message(rng: np.random.Generator, h: int = 480, w: int = 640) -> Any:
    """A camera-like 640x480 JPEG (smooth structure plus sensor noise), quality 90."""
    base = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 6)
    base = base.astype(np.float64)
    stretched = (base - base.min()) * (255.0 / max(1.0, float(base.max() - base.min())))
    image = np.clip(stretched + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    return encode_compressed_image(image, "rgb8", "jpeg", quality=90)


def evt3_packet(rng: np.random.Generator, n: int = 1_000_000) -> Any:
    """1 M random events over 640x480 and 50 ms (worst case: one EVT_ADDR_X word per event)."""
    x, y = rng.integers(0, 640, n), rng.integers(0, 480, n)
    t_us, p = np.sort(rng.integers(0, 50_000, n)), rng.integers(0, 2, n)
    data = encode_evt3(x, y, t_us, p)
    return SimpleNamespace(
        header=SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=0), frame_id="events"),
        height=480,
        width=640,
        seq=0,
        time_base=0,
        encoding="evt3",
        is_bigendian=False,
        events=data,
    )


def run_codecs(quick: bool = False) -> tuple[list[Ratio], dict[str, Any]]:
    """JPEG decode and EVT 3.0 decode, each against one tiny forward timed in the same rounds."""
    import torch
    from bench_model import MODALITIES, build_model

    rng = np.random.default_rng(0)
    jpeg, packet = jpeg_message(rng), evt3_packet(rng)
    model = build_model()
    model.merge_lora()
    torch.manual_seed(1)
    size = model.cfg.image_size
    inputs = {m: torch.randn(1, 3, size, size) for m in MODALITIES}

    def forward() -> object:
        with torch.inference_mode():
            return model(inputs)

    variants = {
        "jpeg": lambda: decode_compressed_image(jpeg),
        "evt3": lambda: EventPacketDecoder().decode(packet),
        "forward4": forward,
    }
    times = interleaved(variants, 3 if quick else 10)
    events = EventPacketDecoder().decode(packet)
    figures: dict[str, Any] = {
        "ms": summary(times),
        "jpeg_bytes": int(np.asarray(jpeg.data).size),
        "evt3_words": len(packet.events) // 2,
        "evt3_events": int(events.x.size),
        "preset": "tiny",
        "image_size": size,
    }
    ratios = []
    # JPEG: a camera frame's decode should vanish beside the network (the preprocessing
    # target of bench_model.py). EVT 3.0: 1 M events (a busy 50 ms) should decode in tens of
    # ms, i.e. in less than one tiny forward.
    rows = (("jpeg", "JPEG decode 640x480", 0.10), ("evt3", "EVT 3.0 decode, 1 M events", 1.0))
    for key, name, limit in rows:
        value = paired_ratio(times, key, "forward4")
        ratios.append(
            Ratio(
                f"{name} / tiny forward",
                value,
                f"< {limit:.2f}",
                value < limit,
                f"{min_ms(times[key]):.1f} ms vs {min_ms(times['forward4']):.0f} ms",
            )
        )
    return ratios, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--no-medians", action="store_true", help="only the ratio table")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}")
    if not args.no_medians:
        bench_events(rng)
        bench_cloud(rng)
        bench_images(rng)
    from common import machine, print_table, write_json

    ratios, figures = run_codecs(args.quick)
    print_table(ratios)
    print(write_json("codecs-cpu", machine(), ratios, figures))


if __name__ == "__main__":
    main()

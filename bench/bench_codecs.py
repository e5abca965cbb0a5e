"""Conversion speeds of the sensor codecs (a benchmark, not a test).

Run: ``.venv/bin/python bench/bench_codecs.py``. Prints the median of repeated runs in
milliseconds for: 1 M events -> frame / voxel image, a 130 k-point cloud -> read_points +
project_points, 1280x720 rgb8 / bgr8 / yuv422 -> numpy, and the ways of handing ``data`` to an
rclpy message (why ``messages.py`` uses ``array.array.frombytes``).
"""

from __future__ import annotations

import array
import statistics
import time
from collections.abc import Callable

import numpy as np

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
    pts = np.zeros(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4"),
                             ("ring", "u2")])  # fmt: skip
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
    report("130k cloud -> read_points_numpy xyz N x 3", median_ms(
        lambda: read_points_numpy(cloud, ["x", "y", "z"], skip_nans=True)))  # fmt: skip
    report("130k points -> project_points 1280x720", median_ms(
        lambda: project_points(xyz, k, t, (720, 1280))))  # fmt: skip
    report("130k points -> project_points 1280x720 + plumb_bob", median_ms(
        lambda: project_points(xyz, k, t, (720, 1280), D=d)))  # fmt: skip

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
    report("numpy -> rclpy Image rgb8 (numpy_to_image)", median_ms(
        lambda: numpy_to_image(rgb, "rgb8", Image)))  # fmt: skip
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
    report("rclpy data = array.array('B', bytes)", median_ms(
        assign(lambda: array.array("B", raw))))  # fmt: skip
    report("rclpy data = bytes (setter converts)", median_ms(assign(lambda: raw), repeat=3))
    small = rgb[:90, :160]  # the numpy path is per element: time a 1/64 image only
    report("rclpy data = numpy array, 160x90 only (!)", median_ms(
        assign(lambda: small.reshape(-1)), repeat=3))  # fmt: skip


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}")
    bench_events(rng)
    bench_cloud(rng)
    bench_images(rng)


if __name__ == "__main__":
    main()

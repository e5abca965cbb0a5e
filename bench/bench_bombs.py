"""One bomb message costs the decode path a bounded amount of memory and time (a benchmark).

Run: ``.venv/bin/python bench/bench_bombs.py [--quick]`` (``bench/run.py`` runs it too). Each
codec gets a normal message, as a driver sends it, and the red team's bomb of the same kind: a
631-byte JPEG and a PNG whose headers declare 16000x12000, 32 bytes of RVL declaring
16000x12000, a PointCloud2 field with ``count = 2^32 - 1``, a 10 MB EVT 3.0 packet of vector
words (60 M events), a camera_info 100x the camera. Both go through the node's decode path
(``SensorDecoders``, default ``limits.*``) in turn; the bomb must be refused, and its peak
traced memory (``tracemalloc``: numpy and OpenCV arrays) and time are printed as ratios against
the normal message's, measured in the same run, with the process's ``ru_maxrss`` growth. Before
the budgets, each of these allocated hundreds of MB to GB. Results: ``bench/results/bombs-cpu-
<time>.json`` (``common.write_json``'s format).
"""

from __future__ import annotations

import argparse
import resource
import struct
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this checkout's package

from common import Ratio

from sam_moelora_ros.params import build_config
from sam_moelora_ros.pipeline.assembly import SensorDecoders
from sam_moelora_ros.pipeline.decode import BadMessage
from sam_moelora_ros.sensors.compressed import encode_compressed_depth, encode_compressed_image
from sam_moelora_ros.sensors.evt3 import encode_evt3
from sam_moelora_ros.sensors.lidar import FLOAT32, create_cloud, make_fields
from sam_moelora_ros.sensors.messages import plain_header

H, W = 480, 640
MEMORY_TARGET = 2.0
"""A bomb may peak at most this many times the memory of the normal message of its kind ..."""
MEMORY_FLOOR = 16 * 2**20
"""... or this much, whichever is more (tiny normal messages make tiny denominators)."""
TIME_TARGET = 2.0
TIME_FLOOR_S = 0.02


def _header() -> Any:
    return plain_header(1, 0, "camera")


def _camera(scale: int = 1) -> SimpleNamespace:
    f = 500.0 * scale
    k = [f, 0.0, W * scale / 2, 0.0, f, H * scale / 2, 0.0, 0.0, 1.0]
    return SimpleNamespace(
        height=H * scale,
        width=W * scale,
        k=k,
        d=[0.0] * 5,
        distortion_model="plumb_bob",
        header=_header(),
    )


def _picture(rng: np.random.Generator) -> np.ndarray:
    base = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (0, 0), 6)
    return np.clip(base.astype(np.int16) + rng.integers(-4, 5, base.shape), 0, 255).astype(np.uint8)


def _resized(msg: Any, marker: bytes, at: int, fmt: str, first: int, second: int) -> Any:
    """``msg`` with the two numbers ``at`` bytes after ``marker`` rewritten (a header's size)."""
    data = bytearray(np.asarray(msg.data).tobytes())
    where = data.find(marker) + at
    data[where : where + struct.calcsize(fmt)] = struct.pack(fmt, first, second)
    return SimpleNamespace(header=msg.header, format=msg.format, data=np.frombuffer(data, "u1"))


def _evt3(data: bytes) -> SimpleNamespace:
    return SimpleNamespace(
        header=_header(),
        height=H,
        width=W,
        seq=0,
        time_base=0,
        encoding="evt3",
        is_bigendian=False,
        events=np.frombuffer(data, np.uint8),
    )


def cases(rng: np.random.Generator) -> list[tuple[str, str, Any, Any]]:
    """``(name, sensor, normal message, bomb)`` per codec."""
    picture = _picture(rng)
    jpeg = encode_compressed_image(picture, "rgb8", "jpeg", quality=90, header=_header())
    small = encode_compressed_image(picture[:16, :16].copy(), "rgb8", "jpeg", header=_header())
    jpeg_bomb = _resized(small, b"\xff\xc0", 5, ">HH", 12000, 16000)  # SOF0: height, width
    png = encode_compressed_image(picture, "rgb8", "png", header=_header())
    png_bomb = _resized(png, b"IHDR", 4, ">II", 16000, 12000)  # IHDR: width, height
    depth = rng.integers(300, 9000, (H, W)).astype(np.uint16)
    rvl = encode_compressed_depth(depth, "16UC1", "rvl", header=_header())
    flat = encode_compressed_depth(np.full((4, 4), 1000, np.uint16), "16UC1", "rvl")
    rvl_bytes = bytearray(np.asarray(flat.data).tobytes())
    rvl_bytes[12:20] = struct.pack("<II", 16000, 12000)  # cols, rows after the ConfigHeader
    rvl_bomb = SimpleNamespace(
        header=_header(), format=flat.format, data=np.frombuffer(rvl_bytes, "u1")
    )
    points = rng.uniform((-20, -5, 1), (20, 5, 60), (131_072, 3)).astype(np.float32)
    fields = make_fields([("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32)])
    cloud = create_cloud(_header(), fields, points)
    cloud_bomb = create_cloud(_header(), fields, points[:140])  # 1.7 KB
    cloud_bomb.fields = [SimpleNamespace(name="x", offset=0, datatype=FLOAT32, count=2**32 - 1)]
    n = 1_000_000
    x, y = rng.integers(0, W, n), rng.integers(0, H, n)
    events = encode_evt3(x, y, np.sort(rng.integers(0, 50_000, n)), rng.integers(0, 2, n))
    head = np.array([0x8000, 0x6000, 0x0000, 0x3000], "<u2")
    vectors = np.full(5_000_000, 0x4FFF, "<u2")  # 10 MB of VECT_12: 60 M events
    evt3_bomb = np.concatenate([head, vectors]).tobytes()
    return [
        ("JPEG 16000x12000 header (631 B)", "rgb", jpeg, jpeg_bomb),
        ("PNG 16000x12000 header", "rgb", png, png_bomb),
        ("RVL 16000x12000 (32 B)", "depth", rvl, rvl_bomb),
        ("PointCloud2 count 2^32-1 (1.7 KB)", "lidar", cloud, cloud_bomb),
        ("EVT 3.0 10 MB of vectors (60 M events)", "event", _evt3(events), _evt3(evt3_bomb)),
        ("camera_info 100x the camera", "camera_info", _camera(), _camera(100)),
    ]


def _decoders() -> SensorDecoders:
    cfg = build_config({"sensors.event.message_type": "event_camera_msgs/msg/EventPacket"})
    decoders = SensorDecoders(cfg, np.eye(4))
    decoders.camera_info(_camera())
    return decoders


def measure(decode: Callable[[], object]) -> tuple[float, int, bool, str]:
    """``(seconds, peak traced bytes, refused, reason)`` of one decode."""
    tracemalloc.start()
    start = time.perf_counter()
    refused, reason = False, ""
    try:
        decode()
    except BadMessage as exc:
        refused, reason = True, str(exc)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, refused, reason


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run_bombs(quick: bool = False) -> tuple[list[Ratio], dict[str, Any]]:
    """Each bomb against its normal message: memory and time ratios, in the same run."""
    rng = np.random.default_rng(0)
    rounds = 2 if quick else 5
    ratios, figures = [], {}
    for name, sensor, normal, bomb in cases(rng):

        def decode(msg: Any, sensor: str = sensor) -> Callable[[], object]:
            decoders = _decoders()
            if sensor == "camera_info":
                return lambda: decoders.camera_info(msg)
            return lambda: decoders.decode(sensor, msg)

        normal_runs = [measure(decode(normal)) for _ in range(rounds)]
        rss_before = _maxrss_bytes()
        bomb_runs = [measure(decode(bomb)) for _ in range(rounds)]
        rss_growth = _maxrss_bytes() - rss_before
        normal_s = min(r[0] for r in normal_runs)
        normal_peak = max(r[1] for r in normal_runs)
        bomb_s = min(r[0] for r in bomb_runs)
        bomb_peak = max(r[1] for r in bomb_runs)
        refused = all(r[2] for r in bomb_runs) and not any(r[2] for r in normal_runs)
        memory_ratio = bomb_peak / max(normal_peak, 1)
        time_ratio = bomb_s / max(normal_s, 1e-9)
        memory_ok = bomb_peak <= max(MEMORY_TARGET * normal_peak, MEMORY_FLOOR)
        time_ok = bomb_s <= max(TIME_TARGET * normal_s, TIME_FLOOR_S)
        figures[name] = {
            "sensor": sensor,
            "normal_ms": normal_s * 1e3,
            "bomb_ms": bomb_s * 1e3,
            "normal_peak_bytes": normal_peak,
            "bomb_peak_bytes": bomb_peak,
            "bomb_maxrss_growth_bytes": rss_growth,
            "refused": refused,
            "reason": bomb_runs[0][3],
        }
        mib = 2**20
        ratios.append(
            Ratio(
                f"bomb memory / normal: {name}",
                memory_ratio,
                f"< {MEMORY_TARGET:.0f} (or < {MEMORY_FLOOR // mib} MiB), refused",
                memory_ok and refused,
                f"{bomb_peak / mib:.1f} vs {normal_peak / mib:.1f} MiB; maxrss "
                f"+{rss_growth / mib:.0f} MiB",
            )
        )
        ratios.append(
            Ratio(
                f"bomb time / normal: {name}",
                time_ratio,
                f"< {TIME_TARGET:.0f} (or < {TIME_FLOOR_S * 1e3:.0f} ms)",
                time_ok,
                f"{bomb_s * 1e3:.1f} vs {normal_s * 1e3:.1f} ms",
            )
        )
    return ratios, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    from common import machine, print_table, write_json

    ratios, figures = run_bombs(args.quick)
    for name, fig in figures.items():
        print(f"{name}: {fig['reason'][:150]}")
    print_table(ratios)
    print(write_json("bombs-cpu", machine(), ratios, figures))


if __name__ == "__main__":
    main()

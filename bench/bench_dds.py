"""Fast DDS transport of image-sized messages: the default profile against the shipped one.

Why it is measured: Fast DDS moves a message between two processes of one machine through the
publisher's shared-memory segment, 512 KiB unless configured; larger messages go in pieces.
``sam_moelora_ros/resources/fastdds_large_messages.xml`` enlarges the segment (README, "Large
messages over Fast DDS"). For a 640x480 rgb8 image (900 KiB) and a 130 k-point cloud's worth of
bytes (4 MiB), a publisher process and a subscriber process (reliable, keep last 5) exchange
``--messages`` messages at 10 Hz under each profile; the figure is the median of (arrival -
stamp). Each configuration gets fresh processes, since Fast DDS reads its profile once per
process.

Run through ``bench/run.py`` (``make bench``) or alone inside a private network namespace:
``unshare -n sh -c 'ip link set lo up && exec "$@"' sh .venv/bin/python bench/bench_dds.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Ratio  # noqa: E402

SIZES = {"640x480 rgb8 image (900 KiB)": 640 * 480 * 3, "130 k-point cloud (4 MiB)": 130_000 * 32}
QOS_DEPTH = 5


def _qos() -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE
    )


def _subscribe(count: int, timeout_s: float) -> None:
    """Role: receive ``count`` images; print the latencies (s) as JSON."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_dds_sub")
    latency: list[float] = []

    def on_image(msg: Image) -> None:
        latency.append(time.time() - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    node.create_subscription(Image, "bench_dds", on_image, _qos())
    deadline = time.monotonic() + timeout_s
    while len(latency) < count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(latency), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def _publish(count: int, size: int) -> None:
    """Role: once matched, publish ``count`` images of ``size`` bytes at 10 Hz."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_dds_pub")
    pub = node.create_publisher(Image, "bench_dds", _qos())
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # discovery settles on both sides
    msg = Image(height=1, width=size, encoding="mono8", step=size)
    msg.data = bytes(size)
    for _ in range(count):
        now = time.time()
        msg.header.stamp.sec = int(now)
        msg.header.stamp.nanosec = int((now - int(now)) * 1e9)
        pub.publish(msg)
        time.sleep(0.1)
    time.sleep(1.0)  # reliable delivery of the last ones
    node.destroy_node()
    rclpy.try_shutdown()


def _exchange(size: int, count: int, profile: bool, domain: int) -> list[float]:
    """Latencies of one publisher/subscriber pair of fresh processes."""
    from sam_moelora_ros.ros.dds_profile import PROFILE_ENV_VARS, with_large_message_profile

    env = {k: v for k, v in os.environ.items() if k not in PROFILE_ENV_VARS}
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(domain))
    env.pop("ROS_STATIC_PEERS", None)
    if profile:
        env = with_large_message_profile(env)
    me = [sys.executable, str(Path(__file__).resolve())]
    timeout = 30 + 0.1 * count
    sub = subprocess.Popen(
        [*me, "--role", "subscribe", "--messages", str(count), "--timeout", str(timeout)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    pub = subprocess.Popen(
        [*me, "--role", "publish", "--messages", str(count), "--size", str(size)], env=env
    )
    out, _ = sub.communicate(timeout=timeout + 30)
    pub.wait(timeout=60)
    return json.loads(out.strip().splitlines()[-1])


def run_dds(quick: bool = False) -> tuple[list[Ratio], dict[str, Any]]:
    """Median transport latency per message size, default profile vs the shipped one."""
    from bench_node import isolated

    if not isolated():
        message = "DDS benchmark needs a private network namespace (only loopback): `make bench`"
        print(f"[bench] {message}")
        return [Ratio("Fast DDS transport", None, "", None, message)], {"skipped": message}
    count = 10 if quick else 40
    figures: dict[str, Any] = {"messages": count}
    ratios = []
    domain = 150 + os.getpid() % 50
    for name, size in SIZES.items():
        medians = {}
        for profile in (False, True):
            latency = _exchange(size, count, profile, domain)
            domain += 1
            key = "shipped_profile" if profile else "default"
            medians[key] = statistics.median(latency) * 1e3 if latency else float("nan")
            figures[f"{name}: {key}"] = {"received": len(latency), "median_ms": medians[key]}
        value = medians["shipped_profile"] / medians["default"]
        ratios.append(
            Ratio(
                f"DDS transport, {name}: shipped profile / default",
                value,
                "(info)",
                None,
                f"{medians['shipped_profile']:.1f} ms vs {medians['default']:.1f} ms (median)",
            )
        )
    return ratios, figures


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("bench", "subscribe", "publish"), default="bench")
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.role == "subscribe":
        _subscribe(args.messages, args.timeout)
    elif args.role == "publish":
        _publish(args.messages, args.size)
    else:
        from common import machine, print_table, write_json

        ratios, figures = run_dds(args.quick)
        print_table(ratios)
        print(write_json("dds", machine(), ratios, figures))


if __name__ == "__main__":
    main()

"""Several cameras on one node: memory and throughput of 2 camera groups against 1.

Run through ``bench/run.py`` (``make bench``), or alone inside a private network namespace:
``unshare -n sh -c 'ip link set lo up && exec "$@"' sh .venv/bin/python bench/bench_cameras.py
[--quick]``. The node runs as on a robot (its own process, ``config/perception.yaml``, the tiny
model, reliable QoS) twice: once with ``cameras: [cam0]``, once with ``cameras: [cam0, cam1]``.
Each group gets its own four 640x480 sensors at their nominal rates (camera, depth, events
20 Hz, LiDAR 10 Hz, as in ``bench_node.py``) for the run's length. Figures:

* **memory**: the node's peak resident memory during the run, 2 groups / 1 group. One process
  and one model serve every camera, so the second camera should cost its buffers only.
* **throughput**: labels per second per camera, and the share of frames segmented in batches of
  two (the frames of both cameras ready together share the forward pass).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "test" / "ros"))

from bench_model import build_model  # noqa: E402
from bench_node import _messages, isolated, sensors_at_rates  # noqa: E402
from common import REPO, Ratio  # noqa: E402

NODE = "sam_moelora_perception"


def _run_groups(
    cameras: list[str], adapter: Path, env: dict[str, str], threads: int, duration: float
) -> dict[str, Any]:
    """One node with ``cameras``; every group's sensors at nominal rates for ``duration`` s."""
    from ros_harness import TOPICS, TYPES, Harness, NodeProcess, values, wait_until

    args = ["--params-file", str(REPO / "config" / "perception.yaml")]
    for p in (
        f"model.adapter:={adapter}",
        "model.device:=cpu",
        f"model.torch_threads:={threads}",
        "qos.profile:=reliable",
        "diagnostics.period:=0.5",
        f"cameras:=[{', '.join(cameras)}]",
    ):
        args += ["-p", p]
    node = NodeProcess(args, env)
    harness = Harness(int(env["ROS_DOMAIN_ID"]), cameras=cameras)
    msgs, _ = _messages()
    try:
        node.wait_for_log("warm-up took", timeout=300)
        startup_mb = node.rss_mb()
        for camera in cameras:
            for name in msgs:
                harness.publisher(f"{camera}/{name}", TYPES[name], f"{camera}/{TOPICS[name]}")
        harness.wait_matched(60)
        for camera in cameras:  # LiDAR needs K first
            harness.pubs[f"{camera}/camera_info"].publish(msgs["camera_info"])
        time.sleep(0.5)

        def send(name: str) -> None:
            for camera in cameras:
                harness.pubs[f"{camera}/{name}"].publish(msgs[name])

        with sensors_at_rates(msgs, send):
            for camera in cameras:  # every group running before the clock starts
                wait_until(
                    lambda c=camera: harness.count(f"{c}/labels") > 0, 120, f"{camera} labels"
                )
            harness.clear()
            rss = [node.rss_mb()]
            start = time.monotonic()
            while time.monotonic() - start < duration:
                time.sleep(min(2.0, duration / 5))
                rss.append(node.rss_mb())
        elapsed = time.monotonic() - start
        time.sleep(1.0)
        batches: dict[str, int] = {}
        for array in harness.messages("diagnostics"):
            for status in array.status:
                if status.name.endswith(": inference"):
                    size = values(status).get("batch_size", "?")
                    batches[size] = batches.get(size, 0) + 1
        return {
            "cameras": cameras,
            "rss_mb_after_startup": startup_mb,
            "rss_mb_peak": max(rss),
            "rss_mb": [round(m, 1) for m in rss],
            "labels_hz": {c: harness.count(f"{c}/labels") / elapsed for c in cameras},
            "batch_size_reports": batches,
            "duration_s": elapsed,
        }
    finally:
        harness.close()
        node.stop()


def run_cameras(quick: bool = False, threads: int = 0) -> tuple[list[Ratio], dict[str, Any]]:
    """Both runs and their ratios; skipped (with a message) outside a private namespace."""
    if not isolated():
        message = "camera benchmarks need a private network namespace: run `make bench`"
        print(f"[bench] {message}")
        return [Ratio("several cameras", None, "", None, message)], {"skipped": message}
    from sam_moelora_ros.model import save_adapter
    from sam_moelora_ros.ros.dds_profile import ros_environment, with_large_message_profile

    threads = threads or (os.cpu_count() or 1)
    env = dict(os.environ)
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(150 + os.getpid() % 50),
        PYTHONUNBUFFERED="1",
        RMW_IMPLEMENTATION=env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp"),
    )
    env.pop("ROS_STATIC_PEERS", None)
    env = with_large_message_profile(env)
    duration = 10.0 if quick else 60.0
    with tempfile.TemporaryDirectory() as tmp, ros_environment(env):
        adapter = Path(tmp) / "tiny.safetensors"
        save_adapter(build_model("tiny", None), adapter, include_backbone=True)
        one = _run_groups(["cam0"], adapter, env, threads, duration)
        two = _run_groups(["cam0", "cam1"], adapter, env, threads, duration)
    memory = two["rss_mb_peak"] / one["rss_mb_peak"]
    rate_one = one["labels_hz"]["cam0"]
    rates_two = two["labels_hz"]
    per_camera = sum(rates_two.values()) / len(rates_two)
    figures = {"threads": threads, "one_camera": one, "two_cameras": two}
    return [
        Ratio(
            "node peak memory, 2 cameras / 1 camera (one model)",
            memory,
            "<= 1.2",
            memory <= 1.2,
            f"{two['rss_mb_peak']:.0f} MB vs {one['rss_mb_peak']:.0f} MB (tiny, 640x480, "
            f"4 sensors per camera, {duration:.0f} s each)",
        ),
        Ratio(
            "labels rate per camera (Hz), 2 cameras",
            per_camera,
            "(info)",
            None,
            ", ".join(f"{c} {r:.2f} Hz" for c, r in rates_two.items())
            + f"; 1 camera {rate_one:.2f} Hz; batch sizes reported "
            + f"{two['batch_size_reports']}",
        ),
        Ratio(
            "labels rate, 2 cameras together / 1 camera",
            sum(rates_two.values()) / rate_one if rate_one else None,
            "(info)",
            None,
            f"{sum(rates_two.values()):.2f} Hz vs {rate_one:.2f} Hz: on a CPU a batch of two "
            "costs about two frames' compute; the batch pays off on a GPU",
        ),
    ], figures


def main() -> None:
    import argparse

    from common import machine, print_table, write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    ratios, figures = run_cameras(args.quick, args.threads)
    print_table(ratios)
    print(write_json("cameras-cpu", machine(), ratios, figures))


if __name__ == "__main__":
    main()

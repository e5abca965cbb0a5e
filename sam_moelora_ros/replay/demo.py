"""``make demo``: the package's main job end to end on the shipped default model. No rclpy.

Generates a small synthetic bag (several weather/light conditions, a recorded LiDAR dropout and
an event dropout window), replays it offline through the node's pipeline with
``sam_moelora_ros/models/default_tiny.safetensors``, prints a short table and writes everything
to ``demo_output/``. Sized to finish in well under 5 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sam_moelora_ros.cli_types import positive_int

FRAMES = 48
SEQ_LEN = 12
SIZE = "256x128"
CONDITIONS = "sun,night,rain,fog"
LIDAR_DROPOUT = "lidar@0.15:0.45"
"""Recorded into the bag: the LiDAR is silent there (seconds from the bag start)."""
EVENT_DROP = "event@3.3:3.7"
"""Applied at replay time (``--drop``): the event camera goes silent there."""


def main(argv: Sequence[str] | None = None) -> int:
    from sam_moelora_ros.inference.default_model import (
        default_adapter_path,
        default_model_location,
    )

    p = argparse.ArgumentParser(prog="python -m sam_moelora_ros.replay.demo", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("demo_output"))
    p.add_argument("--adapter", default="", help="model (default: the shipped default model)")
    p.add_argument("--frames", type=positive_int, default=FRAMES, help="frames to generate")
    args = p.parse_args(argv)
    adapter = args.adapter or default_adapter_path()
    if adapter is None:
        print(
            f"make demo: the default model {default_model_location()} is missing; it is "
            "produced by training (see README, 'Training the default model'), or run: "
            "python -m sam_moelora_ros.replay.demo --adapter PATH.safetensors",
            file=sys.stderr,
        )
        return 2
    from sam_moelora_ros.evaluation import format_table
    from sam_moelora_ros.replay.cli import evaluate_bag
    from sam_moelora_ros.replay.report import summary_rows
    from sam_moelora_ros.replay.scenarios import Scenario
    from sam_moelora_ros.synthetic.cli import main as synthesize

    start = time.perf_counter()
    data = args.out / "data"
    if data.exists():
        shutil.rmtree(data)
    print(f"[1/2] generating a synthetic bag ({args.frames} frames, {CONDITIONS}) ...")
    code = synthesize(
        [
            "--out", str(data), "--frames", str(args.frames), "--seq-len", str(SEQ_LEN),
            "--seed", "7", "--size", SIZE, "--conditions", CONDITIONS, "--bag",
            "--dropout", LIDAR_DROPOUT, "--no-deliver", "--no-progress",
        ]
    )  # fmt: skip
    if code:
        return code
    bag = data / "bags" / "synthetic_train_seed7"
    print(f"[2/2] replaying {bag} through the perception pipeline ({adapter}) ...")
    outcome = evaluate_bag(
        bag,
        args.out,
        adapter=adapter,
        scenario=Scenario.parse(drop=[EVENT_DROP, LIDAR_DROPOUT]),
        output_bag=True,
    )
    print(format_table(summary_rows(outcome.metrics), float_format="{:.1f}"))
    print(
        f"\nwrote {args.out}/: metrics.json, confusion.png, robustness.png, overlays/ + "
        f"overlays.gif, labels_bag/ (open in Foxglove)  [{time.perf_counter() - start:.0f} s]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

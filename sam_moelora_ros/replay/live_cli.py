"""Console script ``replay_live``: a bag through the real node over DDS, then scored.

Starts the perception node in its own process with the bag's topics and extrinsic, plays the bag
into it, records its ``~/labels`` and scores them against the bag's ground truth
(``OUT/live_metrics.json``; the node's output in ``OUT/node.log``). ``--demo`` first generates
the demo bag. Run it in a private network namespace (docs/replay.md, "DDS settings").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from sam_moelora_ros.bag import BagError
from sam_moelora_ros.replay.live import run_live
from sam_moelora_ros.replay.pipeline import parse_topic_overrides
from sam_moelora_ros.replay.scenarios import Scenario
from sam_moelora_ros.safe_yaml import load_yaml

DEMO_BAG = "synthetic_train_seed7"
DEMO_ARGS = (
    "--frames", "24", "--seq-len", "12", "--seed", "7", "--size", "256x128",
    "--conditions", "sun,night", "--bag", "--no-deliver", "--no-progress",
    "--dropout", "lidar@0.3:0.8",
)  # fmt: skip
"""The synthetic generator's arguments for the demo bag (``make demo-live``)."""


def _demo_bag(out: Path) -> Path:
    """Generate the demo bag under ``out/data`` unless it is there already."""
    from sam_moelora_ros.synthetic.cli import main as synthesize

    data = out / "data"
    if not (data / "bags" / DEMO_BAG).exists():
        synthesize(["--out", str(data), *DEMO_ARGS])
    return data / "bags" / DEMO_BAG


def main(argv: Sequence[str] | None = None) -> int:
    """Node + player + recorder, then the score; exit 2 when ``--demo`` has no model."""
    p = argparse.ArgumentParser(prog="replay_live", description=__doc__)
    p.add_argument("--bag", type=Path)
    p.add_argument("--adapter", default="")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--drop", action="append", default=[])
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="node parameter override (YAML value), e.g. sensors.lidar.max_wait=0.2",
    )
    p.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="ROLE=TOPIC",
        help="the bag's topic for a role (rgb, depth, event, lidar, camera_info, tf_static, "
        "labels), e.g. rgb=/camera/camera/color/image_raw/compressed",
    )
    p.add_argument("--demo", action="store_true", help="generate the demo bag first")
    args = p.parse_args(argv)
    bag = args.bag
    if args.demo:
        from sam_moelora_ros.inference.segmenter import default_adapter_path

        if not (args.adapter or default_adapter_path()):
            print(
                "replay_live: the shipped default model is missing; pass --adapter", file=sys.stderr
            )
            return 2
        bag = _demo_bag(args.out)
    if bag is None:
        p.error("--bag is required (or --demo)")
    overrides = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            p.error(f"--param {item!r}: expected NAME=VALUE")
        try:
            overrides[name] = load_yaml(value)
        except yaml.YAMLError as exc:
            p.error(f"--param {item!r}: the value is not YAML ({exc})")
    try:
        topics = parse_topic_overrides(args.topic)
    except ValueError as exc:
        p.error(str(exc))
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # DDS stays on loopback
    try:
        recorded = run_live(
            bag,
            args.adapter,
            args.out,
            rate=args.rate,
            env=env,
            scenario=Scenario.parse(drop=args.drop),
            node_params=overrides,
            topics=topics,
        )
    except BagError as exc:  # a missing topic, a damaged or truncated bag: one line, exit 2
        print(f"replay_live: error: {exc}", file=sys.stderr)
        return 2
    print(json.loads((args.out / "live_metrics.json").read_text()), f"({len(recorded)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

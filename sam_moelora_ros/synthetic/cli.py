"""Command line: ``python -m sam_moelora_ros.synthetic --out DIR --frames N --seed S ...``.

Plans sequences (conditions and failure cases assigned round-robin, one street per sequence),
renders them with a progress bar, writes the DELIVER layout and/or a rosbag2, and prints a
summary with per-condition counts and class frequencies.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sam_moelora_ros.datasets.contract import write_contract
from sam_moelora_ros.synthetic.conditions import (
    CONDITIONS,
    FAILURES,
    condition_params,
    failure_params,
)
from sam_moelora_ros.synthetic.deliver import GENERATOR_CONTRACT, write_deliver_frame
from sam_moelora_ros.synthetic.frames import Frame, GeneratorConfig, SequenceRenderer, SequenceSpec
from sam_moelora_ros.synthetic.summary import RunStats
from sam_moelora_ros.synthetic.transforms import LidarConfig, Rig

SPLITS = ("train", "val", "test")
SEQUENCE_GAP_S = 1.0


def plan_sequences(
    frames: int,
    seed: int,
    conditions: Sequence[str],
    failures: Sequence[str] = (),
    seq_len: int = 16,
    split: str = "train",
    fps: float = 20.0,
) -> list[SequenceSpec]:
    """Split ``frames`` into sequences (condition i % C, failure (i + i // C) % F, so every
    condition meets every failure); each sequence gets its own street seed per split."""
    if frames <= 0 or seq_len <= 0:
        raise ValueError(f"frames and seq_len must be positive, got {frames} and {seq_len}")
    for c in conditions:
        condition_params(c)
    for f in failures:
        failure_params(f)
    specs: list[Any] = []
    start, i = 0.0, 0
    split_id = SPLITS.index(split) if split in SPLITS else 99
    while sum(s.frames for s in specs) < frames:
        n = min(seq_len, frames - sum(s.frames for s in specs))
        fail = failures[(i + i // len(conditions)) % len(failures)] if failures else None
        sub = int(np.random.SeedSequence([seed, split_id, i]).generate_state(1)[0])
        specs.append(
            SequenceSpec(
                f"SYN{seed}_seq{i:04d}",
                sub,
                conditions[i % len(conditions)],
                None if fail in (None, "none") else fail,
                n,
                start,
            )
        )
        start += n / fps + SEQUENCE_GAP_S
        i += 1
    return specs


def render(specs: Sequence[SequenceSpec], config: GeneratorConfig) -> Iterator[Frame]:
    """Yield the frames of all sequences in order."""
    for spec in specs:
        yield from SequenceRenderer(spec, config)


def parse_size(text: str) -> tuple[int, int]:
    """``512x256`` -> (512, 256)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x256, got {text!r}") from None
    if w < 16 or h < 8:
        raise argparse.ArgumentTypeError(f"size must be at least 16x8, got {text!r}")
    return w, h


def _csv(choices: Sequence[str]):
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"{bad or text!r} not in {', '.join(choices)}")
        return items

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m sam_moelora_ros.synthetic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, help="output root directory")
    p.add_argument("--frames", type=int, required=True, help="number of camera frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conditions", type=_csv(CONDITIONS), default=list(CONDITIONS))
    p.add_argument("--size", type=parse_size, default=(512, 256), help="WxH (default 512x256)")
    p.add_argument("--split", choices=SPLITS, default="train")
    p.add_argument("--seq-len", type=int, default=16, help="frames per sequence (one street)")
    p.add_argument(
        "--failures",
        type=_csv(("none", *FAILURES)),
        default=[],
        help="failure cases assigned round-robin per sequence ('none' = clean)",
    )
    p.add_argument("--bag", action="store_true", help="also write a rosbag2 under OUT/bags/")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    p.add_argument("--depth-encoding", choices=("16UC1", "32FC1"), default="16UC1")
    p.add_argument(
        "--dropout",
        action="append",
        default=[],
        help="silence a sensor in the bag, MODALITY@START:END seconds, e.g. lidar@4:9",
    )
    p.add_argument("--lidar-rings", type=int, default=32)
    p.add_argument("--no-deliver", action="store_true", help="skip the DELIVER PNG layout")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; returns the process exit code."""
    from sam_moelora_ros.synthetic.rosbag import Dropout, SyntheticBagWriter

    args = build_parser().parse_args(argv)
    try:
        dropouts = tuple(Dropout.parse(d) for d in args.dropout)
        specs = plan_sequences(
            args.frames, args.seed, args.conditions, args.failures, args.seq_len, args.split
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rig = Rig(width=args.size[0], height=args.size[1], lidar=LidarConfig(rings=args.lidar_rings))
    deliver = not args.no_deliver
    config = GeneratorConfig(rig=rig, sync_lidar=deliver, lidar_sweeps=args.bag)
    outputs, stats, t0 = [], RunStats(), time.perf_counter()
    bag_path = args.out / "bags" / f"synthetic_{args.split}_seed{args.seed}"
    if args.bag and bag_path.exists():
        print(
            f"error: {bag_path} exists; delete it or choose another --out/--seed", file=sys.stderr
        )
        return 2
    bag = None
    if args.bag:
        bag_path.parent.mkdir(parents=True, exist_ok=True)
        bag = SyntheticBagWriter(
            bag_path, rig, args.storage, args.depth_encoding, dropouts, args.seed
        ).__enter__()
        outputs.append(str(bag_path))
    if deliver:
        write_contract(args.out, GENERATOR_CONTRACT)
        outputs.append(f"{args.out} (DELIVER layout, split {args.split})")
    bar = tqdm(total=args.frames, unit="frame", disable=args.no_progress)
    try:
        for frame in render(specs, config):
            if deliver:
                write_deliver_frame(args.out, frame, args.split, rig)
            if bag is not None:
                bag.write_frame(frame)
            n_pts = (
                len(frame.lidar)
                if frame.lidar is not None
                else sum(len(p) for _, p in frame.sweeps)
            )
            stats.add(frame.labels, frame.spec.tag, n_pts, len(frame.events))
            bar.update(1)
    finally:
        bar.close()
        if bag is not None:
            bag.__exit__(None, None, None)
    print(stats.format(time.perf_counter() - t0, outputs))
    return 0

"""``make bench``: every benchmark, one table of ratios against targets, one JSON file.

Usage: ``.venv/bin/python bench/run.py [--quick] [--device cpu|cuda] [--compile MODE]``.

* ``--quick``: a ~1-minute smoke run (fewer rounds, a 15 s sustained run).
* ``--device cuda``: the GPU figures (vit_b, 4 modalities, 512 px, bf16: latency p50/p99 at batch
  1, batched frames/s, peak memory) and the node on the GPU; without CUDA this says so and skips.

On the CPU, ``bench_onnx.py`` then compares the ONNX Runtime backend with torch eager (tiny;
vit_b at 512 px); ``--only onnx`` runs that module alone.

``bench_bombs.py`` checks that one bomb message (a JPEG / PNG / RVL header declaring 16000x12000,
a cloud field of ``count`` 2^32 - 1, 10 MB of EVT 3.0 vectors, a camera_info 100x the camera)
costs the decode path no more memory and time than a normal message (``--only bombs`` alone).

Then ``bench_cameras.py`` runs the node with one camera group and with two (memory, labels rate
per camera); ``--only cameras`` runs it alone.

``bench_train.py`` times a training step of the shipped default model's recipe against the new
one (``training/configs/synthetic_tiny_v2.yaml``), with each step's GFLOP/s against a matmul peak
measured in the same run; ``--only train`` runs it alone.

After them, ``bench_dds.py`` times Fast DDS transport of a 900 KiB image and a 4 MiB cloud
between two processes with the default profile and with the shipped large-message one.

The node and DDS benchmarks start rclpy nodes, which must only ever talk over loopback: when this
process is not already in a private network namespace it re-runs itself in one (``unshare -n``
as root, ``unshare -rn`` otherwise, as ``make pytest`` does); where that is impossible the node
benchmarks are skipped, not run on the machine's network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Ratio, machine, print_table, write_json

REEXEC_FLAG = "SAM_MOELORA_BENCH_NETNS"


def netns_prefix(euid: int) -> list[str]:
    """The command prefix that runs a program in a private network namespace with loopback up:
    ``unshare -n`` as root, ``unshare -rn`` (inside a user namespace of one's own) otherwise, where
    a plain ``unshare -n`` is "Operation not permitted". The Makefile's ``NETNS`` is the same."""
    flags = "-n" if euid == 0 else "-rn"
    return ["unshare", flags, "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def ensure_private_netns() -> None:
    """Re-exec under :func:`netns_prefix` (loopback only) unless already there or impossible."""
    from bench_node import isolated

    if isolated() or os.environ.get(REEXEC_FLAG) or shutil.which("unshare") is None:
        return
    os.environ[REEXEC_FLAG] = "1"
    argv = [*netns_prefix(os.geteuid()), sys.executable, *sys.argv]
    try:
        os.execvp("unshare", argv)
    except OSError as exc:  # pragma: no cover - no permission: node benches will be skipped
        print(f"[bench] cannot enter a private network namespace ({exc})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--compile", default="none", help="Segmenter compile mode (cuda mode)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--duration", type=float, default=None, help="sustained run seconds")
    parser.add_argument("--skip-node", action="store_true", help="model benchmarks only")
    parser.add_argument(
        "--only",
        choices=("onnx", "cameras", "bombs", "train"),
        help="run one benchmark module alone",
    )
    args = parser.parse_args()
    if not args.skip_node and args.only not in ("onnx", "bombs", "train"):
        ensure_private_netns()
    import torch
    from bench_bombs import run_bombs
    from bench_cameras import run_cameras
    from bench_dds import run_dds
    from bench_model import run_backbones, run_cpu, run_cuda
    from bench_node import run_node
    from bench_onnx import run_onnx
    from bench_train import run_train

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    meta = machine()
    print(f"[bench] {meta['cpu']} x{meta['cpu_count']}, load {meta['load_average_1_5_15']}, "
          f"torch {meta['torch']}, commit {meta['git_commit']}")  # fmt: skip
    start = time.monotonic()
    ratios: list[Ratio] = []
    figures: dict[str, object] = {"args": vars(args)}
    if args.only == "onnx":
        r, figures["onnx_cpu"] = run_onnx(args.quick, args.threads)
        ratios += r
    elif args.only == "bombs":
        r, figures["bombs_cpu"] = run_bombs(args.quick)
        ratios += r
    elif args.only == "cameras":
        r, figures["cameras_cpu"] = run_cameras(args.quick, args.threads)
        ratios += r
    elif args.only == "train":
        r, figures["train_cpu"] = run_train(args.quick)
        ratios += r
    elif args.device == "cuda":
        r, figures["model_cuda"] = run_cuda(args.quick, args.compile)
        ratios += r
        r, figures["backbones_cuda"] = run_backbones(args.quick, "cuda")
        ratios += r
        if torch.cuda.is_available() and not args.skip_node:
            # the GPU node: vit_b at 512 px, camera/depth/events at 5x nominal (100 Hz)
            r, figures["node_cuda"] = run_node(
                args.quick, args.threads, "cuda", "vit_b", args.duration, rate_scale=5.0
            )
            ratios += r
    else:
        print("[bench] model benchmarks (tiny preset, CPU) ...", flush=True)
        r, figures["model_cpu"] = run_cpu(args.quick)
        ratios += r
        print("[bench] SAM 2 Hiera-B+ vs SAM 1 ViT-B (4 modalities, 512 px) ...", flush=True)
        r, figures["backbones_cpu"] = run_backbones(args.quick, "cpu")
        ratios += r
        r, figures["onnx_cpu"] = run_onnx(args.quick, args.threads)
        ratios += r
        print("[bench] bomb messages vs normal ones through the decode path ...", flush=True)
        r, figures["bombs_cpu"] = run_bombs(args.quick)
        ratios += r
        print("[bench] training step: shipped recipe vs synthetic_tiny_v2 ...", flush=True)
        r, figures["train_cpu"] = run_train(args.quick)
        ratios += r
        if not args.skip_node:
            print("[bench] node benchmarks (DDS in a private netns) ...", flush=True)
            r, figures["node_cpu"] = run_node(args.quick, args.threads, duration_s=args.duration)
            ratios += r
            print("[bench] several cameras: 2 camera groups vs 1, one node ...", flush=True)
            r, figures["cameras_cpu"] = run_cameras(args.quick, args.threads)
            ratios += r
    if not (args.skip_node or args.only):
        print("[bench] Fast DDS transport: default vs shipped profile ...", flush=True)
        r, figures["dds"] = run_dds(args.quick)
        ratios += r
    figures["wall_s"] = time.monotonic() - start
    meta["load_average_1_5_15_end"] = list(os.getloadavg())
    print_table(ratios)
    kind = "-".join(["bench", args.device, *([args.only] if args.only else [])])
    path = write_json(f"{kind}{'-quick' if args.quick else ''}", meta, ratios, figures)
    print(f"[bench] {figures['wall_s']:.0f} s; results: {path.relative_to(Path.cwd())}"
          if path.is_relative_to(Path.cwd()) else f"[bench] results: {path}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Which threads the Segmenter's own work runs on (segmenter module docstring, "short-lived").

The node builds and warms its Segmenter on the executor thread and segments on its worker thread.
torch's OpenMP runtime keeps a pool of helper threads for every thread that starts parallel work,
and with two live pools on a machine with as many CPUs as torch threads every op of the worker
put its helpers to sleep and woke them again (~880 context switches per tiny frame, 1.3-1.5x
slower). So loading, merging and the CPU warm-up run on a passing thread and leave no pool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from segmenter_helpers import tiny_model

from sam_moelora_ros.inference.passing_thread import on_passing_thread
from sam_moelora_ros.model import save_adapter

HERE = Path(__file__).resolve().parent

# A fresh process (OpenMP pools are process state): the threads it has before and after building
# and warming a 2-thread CPU Segmenter on its main thread, then while a worker thread segments.
_THREADS = """
import json, os, sys, threading, time
import numpy as np, torch
torch.set_num_threads(2)
from sam_moelora_ros.inference.segmenter import Segmenter

def count():
    return len(os.listdir("/proc/self/task"))

before = count()
seg = Segmenter.from_files(sys.argv[1], device="cpu")
seg.warmup((48, 64))
deadline = time.monotonic() + 10
while count() > before and time.monotonic() < deadline:  # exiting helpers take a moment
    time.sleep(0.05)
after = count()
frame = {"rgb": np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)}
seen = {}
def work():
    seg(frame)
    seen["while_segmenting"] = count()
worker = threading.Thread(target=work)
worker.start()
worker.join()
print(json.dumps({"before": before, "after": after, **seen}))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_building_and_warming_up_leaves_the_calling_thread_without_an_openmp_pool(
    tmp_path: Path,
) -> None:
    """Without the passing threads the main thread kept a pool (one more thread here) after
    ``from_files`` + ``warmup``, and the worker's frames then ran with two pools alive."""
    adapter = tmp_path / "tiny.safetensors"
    save_adapter(tiny_model(), adapter, include_backbone=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    run = subprocess.run(
        [sys.executable, "-c", _THREADS, str(adapter)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=env,
    )
    counts = json.loads(run.stdout.strip().splitlines()[-1])
    assert counts["after"] == counts["before"], counts
    # The worker's own pool exists (it segments with 2 threads): the check above is not vacuous.
    assert counts["while_segmenting"] >= counts["before"] + 2, counts


def test_on_passing_thread_runs_elsewhere_and_returns_the_result() -> None:
    caller = threading.get_ident()
    ident, value = on_passing_thread(lambda: (threading.get_ident(), 42))
    assert value == 42
    assert ident != caller


def test_on_passing_thread_reraises_the_work_s_exception() -> None:
    error = ValueError("non-finite merged weights")

    def fail() -> None:
        raise error

    with pytest.raises(ValueError) as raised:
        on_passing_thread(fail)
    assert raised.value is error


def test_on_passing_thread_keeps_the_caller_s_grad_mode() -> None:
    """Grad mode is thread-local in torch: a new thread would otherwise record autograd graphs
    for work its caller ran under ``no_grad``."""
    with torch.no_grad():
        assert on_passing_thread(torch.is_grad_enabled) is False
    assert on_passing_thread(torch.is_grad_enabled) is True

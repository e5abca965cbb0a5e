"""torchrun with two CPU processes (gloo): a few DDP steps, and the ranks agree on the weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .conftest import run_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_torchrun_two_ranks_agree(deliver_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cfg = run_config(
        deliver_tree, out, optim={"max_steps": 3, "accumulate": 2}, run={"val_every": 3}
    )
    config = tmp_path / "ddp.yaml"
    cfg.save(config)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(Path(__file__).with_name("ddp_worker.py")), "--config", str(config),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "world size 2" in proc.stdout
    rank0 = load_file(str(out / "rank0.safetensors"))
    rank1 = load_file(str(out / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    adapter = load_file(str(out / "checkpoints" / "last.safetensors"))
    for key, value in adapter.items():
        assert torch.equal(value, rank0[key]), key
    lora_b = [k for k in rank0 if k.endswith("lora_B")]
    assert lora_b and any(rank0[k].abs().sum() > 0 for k in lora_b)  # training happened
    # Only rank 0 wrote: one metrics file, with the run's world size.
    assert (out / "metrics.jsonl").read_text().count('"world_size": 2') == 1

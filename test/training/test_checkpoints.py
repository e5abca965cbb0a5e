"""Checkpoints survive a crash: the adapter and the state of one step are committed together.

The first test kills a real training process between the adapter write and the state write (the
red team's crash); before step folders, ``--resume`` then continued from step-4 weights with the
step-2 optimizer, schedule and data position without a word. The others damage step folders on
disk as a bad copy or a full disk would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.checkpoints import resume_point, write_checkpoint
from training.data import build_datasets
from training.loop import Trainer
from training.state import TrainStateError

from .conftest import run_config

SECTIONS = {
    "optim": {"max_steps": 6, "warmup_steps": 1},
    "data": {"val_split": None},
    "run": {"ckpt_every": 2, "progress": False},
}

CRASHING_RUN = textwrap.dedent(
    """
    import os, shutil, sys, importlib
    from pathlib import Path
    from training.config import TrainConfig
    from training.data import build_datasets
    from training.loop import Trainer

    cfg = TrainConfig.load(sys.argv[1])
    out = Path(cfg.run.out)
    trainer = Trainer(cfg, build_datasets(cfg)[0], out_dir=out)
    trainer.train(stop_at=2)
    shutil.copyfile(out / "checkpoints" / "last.safetensors", out / "step2_adapter.safetensors")

    def power_cut(*args, **kwargs):  # the process dies after the adapter, before the state
        os._exit(3)

    for name in ("training.checkpoints", "training.loop", "training.state"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # an older layout without the module
            continue
        if hasattr(module, "save_state"):
            module.save_state = power_cut
    trainer.train(stop_at=4)
    """
)


def test_a_crash_between_adapter_and_state_resumes_the_previous_complete_step(
    deliver_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    cfg = run_config(deliver_tree, out, **SECTIONS)
    config = tmp_path / "run.yaml"
    cfg.save(config)
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_RUN)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script), str(config)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 3, done.stderr[-2000:]
    trainer = Trainer(cfg, build_datasets(cfg)[0], out_dir=out)
    trainer.resume(out)
    assert trainer.step == 2
    step2 = load_file(str(out / "step2_adapter.safetensors"))
    weights = trainer.model.state_dict()
    changed = [k for k, v in step2.items() if k in weights and not torch.equal(weights[k], v)]
    assert changed == []  # the weights of step 2, not the half-written step 4
    err = capsys.readouterr().err
    assert "resume: skipped .step_00000004.tmp: the write never finished" in err
    assert "resuming from step_00000002" in err


def _state(step: int) -> dict:
    return {"step": step, "weights": torch.full((4,), float(step))}


def _adapter(step: int):
    def write(path: Path) -> None:
        from safetensors.torch import save_file

        save_file({"w": torch.full((3,), float(step))}, str(path))

    return write


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    folder = tmp_path / "checkpoints"
    for step in (2, 4):
        write_checkpoint(folder, step, _adapter(step), _state(step))
    return folder


def test_steps_are_committed_as_folders_and_the_last_files_follow(ckpt: Path) -> None:
    write_checkpoint(ckpt, 6, _adapter(6), _state(6))
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "last.safetensors",
        "last_state.safetensors",
        "step_00000004",
        "step_00000006",
    ]
    assert load_file(str(ckpt / "last.safetensors"))["w"][0] == 6
    manifest = json.loads((ckpt / "step_00000006" / "manifest.json").read_text())
    assert manifest["step"] == 6 and set(manifest["files"]) == {
        "adapter.safetensors",
        "state.safetensors",
    }
    point = resume_point(ckpt.parent)
    assert point.state["step"] == 6 and point.skipped == []


def test_a_mismatched_pair_falls_back_to_the_previous_step_saying_so(ckpt: Path) -> None:
    newest = ckpt / "step_00000004"
    (newest / "adapter.safetensors").unlink()  # a copy of another step's adapter put in its place
    _adapter(2)(newest / "adapter.safetensors")
    point = resume_point(ckpt / "last_state.safetensors")
    assert point.state["step"] == 2 and point.adapter == ckpt / "step_00000002/adapter.safetensors"
    assert point.notes() == [
        "resume: skipped step_00000004: adapter.safetensors differs from the one written with the "
        "step (damaged or replaced); resuming from step_00000002"
    ]


def test_a_state_of_another_step_is_a_mismatch(ckpt: Path, tmp_path: Path) -> None:
    from training.checkpoints import _digest

    newest = ckpt / "step_00000004"
    from training.state import save_state

    save_state(newest / "state.safetensors", _state(3))
    manifest = json.loads((newest / "manifest.json").read_text())  # rewritten to match, by hand
    entry = manifest["files"]["state.safetensors"]
    entry["bytes"] = (newest / "state.safetensors").stat().st_size
    entry["sha256"] = _digest(newest / "state.safetensors")
    (newest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TrainStateError, match=r"step_00000004 is incomplete: .* holds step 3"):
        resume_point(newest)  # asked for by name: refused, no fallback
    assert resume_point(ckpt).state["step"] == 2


def test_damaged_states_everywhere_are_one_line(ckpt: Path) -> None:
    for folder in ckpt.glob("step_*"):
        state = folder / "state.safetensors"
        state.write_bytes(state.read_bytes()[:100])  # truncated: a full disk
    with pytest.raises(TrainStateError) as info:
        resume_point(ckpt)
    text = str(info.value)
    assert "\n" not in text and "no complete checkpoint in" in text
    assert "step_00000004: state.safetensors differs" in text and "start the run afresh" in text


def test_a_truncated_last_state_on_train_resume_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deliver_tree: Path
) -> None:
    """A run folder written before step folders: its own last_state.safetensors, cut short."""
    from training.state import save_state
    from training.train import main

    ckpt = tmp_path / "run" / "checkpoints"
    save_state(ckpt / "last_state.safetensors", _state(2))
    state = ckpt / "last_state.safetensors"
    state.write_bytes(state.read_bytes()[:60])
    config = tmp_path / "run.yaml"
    run_config(deliver_tree, tmp_path / "run", **SECTIONS).save(config)
    code = main(["--config", str(config), "--resume", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: training state ") and "last_state.safetensors" in err
    assert err.count("\n") == 1

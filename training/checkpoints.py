"""Crash-safe ``last`` checkpoints: the adapter and the training state of one step, committed
together, and the resume point that checks they belong together.

Why: the adapter and the state used to be two files rewritten one after the other. A crash
between the two writes left step-4 weights beside the step-2 optimizer, schedule and data
position, and ``--resume`` continued from that mix without a word. Now a checkpoint is a *step
folder*, written whole under a temporary name and committed by one ``rename``::

    checkpoints/step_00000004/adapter.safetensors   the adapter (save_adapter)
    checkpoints/step_00000004/state.safetensors     the training state (training.state)
    checkpoints/step_00000004/manifest.json         step, size and SHA-256 of both, written last

A crash before the rename leaves a ``.step_*.tmp`` folder that nothing reads; the previous step
folder is untouched (the newest :data:`KEEP` committed folders are kept). After the commit,
``checkpoints/last.safetensors`` and ``last_state.safetensors`` are replaced (atomically, as hard
links where the file system has them) by the new folder's files, for the node, export and older
tools. :func:`resume_point` picks the newest step folder whose manifest, files and stored step
agree, and says which newer folder it skipped and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .state import TrainStateError, load_state, save_state

__all__ = ["KEEP", "ResumePoint", "resume_point", "write_checkpoint"]

KEEP = 2
"""Committed step folders kept: the newest, and the one before in case the newest is damaged."""
MANIFEST = "manifest.json"
ADAPTER = "adapter.safetensors"
STATE = "state.safetensors"
FORMAT = "sam_moelora_ros.checkpoint"
FIX = "resume from an earlier run folder, or start the run afresh in another --out"


def _step_dir(ckpt_dir: Path, step: int) -> Path:
    return ckpt_dir / f"step_{step:08d}"


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a folder) to disk, so a power cut cannot reorder the writes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _publish(source: Path, target: Path) -> None:
    """Atomically make ``target`` hold ``source``'s bytes (a hard link, else a copy)."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    tmp.replace(target)


def write_checkpoint(
    ckpt_dir: Path, step: int, write_adapter: Callable[[Path], Any], state: dict[str, Any]
) -> Path:
    """Write step ``step``'s adapter (``write_adapter(path)``) and ``state`` as one step folder.

    Returns the committed folder. Also refreshes ``last.safetensors`` / ``last_state.safetensors``
    and removes step folders older than the newest :data:`KEEP`.
    """
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / f".step_{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write_adapter(tmp / ADAPTER)
    save_state(tmp / STATE, state)
    files = {}
    for name in (ADAPTER, STATE):
        _fsync(tmp / name)
        files[name] = {"bytes": (tmp / name).stat().st_size, "sha256": _digest(tmp / name)}
    manifest = {"format": FORMAT, "format_version": 1, "step": step, "files": files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _fsync(tmp / MANIFEST)
    _fsync(tmp)
    final = _step_dir(ckpt_dir, step)
    if final.exists():  # the same step saved again (a resumed run that was already done)
        old = ckpt_dir / f".step_{step:08d}.old"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    _fsync(ckpt_dir)
    _publish(final / ADAPTER, ckpt_dir / "last.safetensors")
    _publish(final / STATE, ckpt_dir / "last_state.safetensors")
    for stale in [*_step_folders(ckpt_dir)[KEEP:], *ckpt_dir.glob(".step_*.tmp")]:
        shutil.rmtree(stale, ignore_errors=True)  # older steps; writes a crash left unfinished
    return final


def _step_folders(ckpt_dir: Path) -> list[Path]:
    """Committed step folders, newest first."""
    found = [p for p in ckpt_dir.glob("step_*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]), reverse=True)


def _manifest_problem(folder: Path) -> str | None:
    """Why ``folder``'s files are not the complete pair its manifest lists, or None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or not isinstance(manifest.get("step"), int):
            return f"{MANIFEST} is not a checkpoint manifest"
        listed = manifest["files"]
    except FileNotFoundError:
        return f"no {MANIFEST} (the write did not finish)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"{MANIFEST} is unreadable ({exc})"
    if manifest["step"] != int(folder.name[5:]):
        return f"{MANIFEST} is for step {manifest['step']}"
    for name in (ADAPTER, STATE):
        entry = listed.get(name) if isinstance(listed, dict) else None
        path = folder / name
        if not isinstance(entry, dict) or not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != entry.get("bytes") or _digest(path) != entry.get("sha256"):
            return f"{name} differs from the one written with the step (damaged or replaced)"
    return None


@dataclass
class ResumePoint:
    """What ``--resume`` continues from: one step's adapter and loaded state.

    ``skipped`` lists newer checkpoints that were not usable (``"step_00000006: why"``), which
    the caller reports: the run goes on from an earlier step than the user may expect.
    """

    adapter: Path
    state_path: Path
    state: dict[str, Any]
    skipped: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        """One line per skipped checkpoint, naming the step resumed instead."""
        return [
            f"resume: skipped {note}; resuming from {self.state_path.parent.name}"
            for note in self.skipped
        ]


def _load_checked(folder: Path) -> ResumePoint:
    """``folder``'s pair, or TrainStateError saying why it is not a complete pair."""
    problem = _manifest_problem(folder)
    if problem is None:
        state = load_state(folder / STATE)
        step = state.get("step") if isinstance(state, dict) else None
        if step == int(folder.name[5:]):
            return ResumePoint(folder / ADAPTER, folder / STATE, state)
        problem = f"{STATE} holds step {step}"
    raise TrainStateError(f"checkpoint {folder} is incomplete: {problem}")


def resume_point(path: str | Path) -> ResumePoint:
    """The checkpoint ``--resume path`` continues from.

    ``path``: a run folder, its ``checkpoints/`` folder, a step folder, or a state file
    (``last_state.safetensors`` means "the run's newest complete step"). The newest step folder
    whose manifest, files and stored step agree wins; newer ones are listed in ``skipped``. A
    run written before step folders existed resumes from its ``last_state.safetensors`` and
    ``last.safetensors`` as before. Raises :class:`TrainStateError` (one line) when nothing is
    usable.
    """
    path = Path(path)
    if path.is_dir() and (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    if path.is_dir() and (path / MANIFEST).exists():
        return _load_checked(path)  # one step folder, asked for by name: no fallback
    if path.is_file() and (path.parent / MANIFEST).exists():
        return _load_checked(path.parent)
    ckpt_dir = path if path.is_dir() else path.parent
    folders = _step_folders(ckpt_dir)
    if not folders:  # a run from before step folders, or a state file given by hand
        state_path = path / "last_state.safetensors" if path.is_dir() else path
        state = load_state(state_path)
        return ResumePoint(state_path.with_name("last.safetensors"), state_path, state)
    unfinished = [(_tmp_step(tmp), tmp.name) for tmp in ckpt_dir.glob(".step_*.tmp")]
    skipped: list[str] = []
    for folder in folders:
        step = int(folder.name[5:])
        skipped += [f"{name}: the write never finished" for s, name in unfinished if s > step]
        unfinished = [(s, name) for s, name in unfinished if s <= step]
        try:
            point = _load_checked(folder)
        except TrainStateError as exc:
            skipped.append(str(exc).replace(f"checkpoint {folder} is incomplete", folder.name))
            continue
        point.skipped = skipped
        return point
    raise TrainStateError(f"no complete checkpoint in {ckpt_dir} ({'; '.join(skipped)}); {FIX}")


def _tmp_step(tmp: Path) -> int:
    digits = tmp.name[len(".step_") : -len(".tmp")]
    return int(digits) if digits.isdigit() else -1

"""TensorBoard event files beside ``metrics.jsonl`` (optional: needs the ``tensorboard`` package).

With ``run.tensorboard: true`` the :class:`~training.loop.Trainer` writes every ``train`` and
``val`` record it logs to ``metrics.jsonl`` also as TensorBoard scalars, into the same run folder
(``tensorboard --logdir runs/`` then shows one run per folder). :func:`scalars` is the one
mapping from a record to tags, used for writing and for reading ``metrics.jsonl`` back, so the
plots (:mod:`training.plots`) draw the same curves from either source:

* ``train/<key>`` for each number of a train record: ``loss``, ``loss_main``, ``loss_aux``,
  ``loss_avg``, ``lr``, ``grad_norm``, ``modalities`` (how many were kept);
* ``val/miou``, ``val/per_condition/<condition>`` (mIoU %, all sensors),
  ``val/subsets/<rgb+depth>`` (with ``run.val_subsets``) and ``val/router/<modality>`` (mean
  router weight with all sensors present).

Bookkeeping (``step`` is the x axis; ``epoch``, ``elapsed_s``) is not a curve. TensorBoard stores
scalars as float32, so values read back from event files agree with ``metrics.jsonl`` to about
7 significant digits.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sam_moelora_ros.errors import SamMoeLoraError

KINDS = ("train", "val")
"""Record kinds that become scalars (``start`` / ``end`` hold no curve)."""
BOOKKEEPING = frozenset({"kind", "step", "epoch", "elapsed_s"})
EVENT_GLOB = "events.out.tfevents.*"
INSTALL_HINT = (
    "pip install tensorboard (requirements-dev.txt pins it) or set run.tensorboard: false"
)

Series = dict[str, list[tuple[int, float]]]
"""tag -> [(step, value), ...] in step order."""


class TensorBoardUnavailable(SamMoeLoraError, RuntimeError):
    """``run.tensorboard: true`` (or reading event files) without the ``tensorboard`` package."""


def available() -> bool:
    """Whether event files can be written and read (``tensorboard`` is importable)."""
    return importlib.util.find_spec("tensorboard") is not None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The TensorBoard scalars of one ``metrics.jsonl`` record: ``{tag: value}`` (may be empty)."""
    kind = record.get("kind")
    if kind not in KINDS:
        return {}
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in BOOKKEEPING:
            continue
        if _number(value):
            out[f"{kind}/{key}"] = float(value)
        elif isinstance(value, Mapping):
            for sub, v in value.items():
                if _number(v):
                    out[f"{kind}/{key}/{sub}"] = float(v)
    return out


def _append(series: Series, tag: str, step: int, value: float) -> None:
    """Add a point; a step at or before the last one (a resumed run) replaces what followed."""
    points = series.setdefault(tag, [])
    while points and points[-1][0] >= step:
        points.pop()
    points.append((step, value))


def _purge_after(series: Series, step: int) -> None:
    for points in series.values():
        while points and points[-1][0] > step:
            points.pop()


class EventWriter:
    """Scalars of logged records into TensorBoard event files in ``log_dir``.

    ``purge_step``: when resuming from a checkpoint taken at step ``s``, pass ``s + 1``; events
    an interrupted run wrote after its last checkpoint are then hidden, as the resumed run logs
    those steps again.
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        if not available():
            raise TensorBoardUnavailable(
                f"run.tensorboard: true, but the tensorboard package is not installed; "
                f"{INSTALL_HINT}"
            )
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def write(self, record: Mapping[str, Any]) -> None:
        """Write ``record``'s scalars at ``record["step"]`` and flush (as metrics.jsonl does)."""
        values = scalars(record)
        if not values:
            return
        step = int(record["step"])
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def read_jsonl(path: str | Path) -> Series:
    """The scalars of a ``metrics.jsonl`` file, as :class:`EventWriter` would have written them."""
    series: Series = {}
    with Path(path).open() as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if record.get("kind") == "start":  # a resumed run: as TensorBoard's purge_step
                    _purge_after(series, int(record["step"]))
                for tag, value in scalars(record).items():
                    _append(series, tag, int(record["step"]), value)
    return series


def read_events(run_dir: str | Path) -> Series:
    """The scalars of the TensorBoard event files in ``run_dir`` (tensorboard's own reader)."""
    if not available():
        raise TensorBoardUnavailable(f"reading event files needs tensorboard; {INSTALL_HINT}")
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})  # 0: keep every point
    acc.Reload()
    series: Series = {}
    for tag in acc.Tags()["scalars"]:
        for event in acc.Scalars(tag):
            _append(series, tag, int(event.step), float(event.value))
    return series


def has_events(run_dir: str | Path) -> bool:
    return any(Path(run_dir).glob(EVENT_GLOB))


def load_run(run_dir: str | Path, source: str = "auto") -> Series:
    """A run's curves from ``metrics.jsonl`` or its event files.

    ``source``: ``jsonl``, ``tensorboard``, or ``auto`` (event files when the folder has some and
    tensorboard is installed, else ``metrics.jsonl``).
    """
    run = Path(run_dir)
    if source not in ("auto", "jsonl", "tensorboard"):
        raise ValueError(f"source must be auto, jsonl or tensorboard, got {source!r}")
    if source == "auto":
        source = "tensorboard" if has_events(run) and available() else "jsonl"
    if source == "tensorboard":
        if not has_events(run):
            raise FileNotFoundError(
                f"{run} holds no TensorBoard event files ({EVENT_GLOB}); train with "
                "run.tensorboard: true, or read metrics.jsonl (source jsonl)"
            )
        return read_events(run)
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {run} is not a training run folder")
    return read_jsonl(path)

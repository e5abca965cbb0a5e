"""What ``--resume`` accepts: the run's own config, up to where things live and how it reports.

A training state continues one trajectory (weights, optimizer moments, learning-rate schedule,
data order, augmentation and dropout draws). Resuming it under another learning rate, batch
size, split or model would silently give a run that neither config describes, so
:func:`check_resume_config` compares the config stored in the state file with the one given and
refuses, naming every differing ``section.key``. :data:`RESUME_FREE_KEYS` may differ: paths
(data and checkpoints move between machines), the device, and progress/logging options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import TrainConfig, TrainConfigError

__all__ = ["RESUME_FREE_KEYS", "check_resume_config", "flat_config"]

RESUME_FREE_KEYS = frozenset(
    {
        "run.out",
        "run.progress",
        "run.log_every",
        "run.threads",
        "run.device",
        "run.tensorboard",
        "data.num_workers",
        "data.root",
        "data.val_root",
        "model.sam_checkpoint",
    }
)
"""Keys a resumed run may change: where things are and how progress is shown, not what is
trained (the data order is a function of seed, epoch and position, not of the worker count)."""


def flat_config(tree: dict[str, Any]) -> dict[str, Any]:
    """``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}`` (``model.overrides`` stays one value)."""
    out: dict[str, Any] = {}
    for section, values in tree.items():
        if isinstance(values, dict):
            out.update({f"{section}.{key}": value for key, value in values.items()})
        else:
            out[section] = values
    return out


def check_resume_config(path: Path, stored: Any, cfg: TrainConfig, run_dir: Path) -> None:
    """Raise :class:`TrainConfigError` unless ``cfg`` equals the state's ``stored`` config.

    Args:
        path: the state file (named in the message).
        stored: the config dict the state file holds (``TrainConfig.to_dict`` of the run).
        cfg: the config given for the resumed run.
        run_dir: the run's folder (its ``config.yaml`` is named as the fix).
    """
    try:
        before = flat_config(TrainConfig.from_dict(stored).to_dict())
    except TrainConfigError as exc:
        raise TrainConfigError(f"{path}: the run's stored config is unusable: {exc}") from exc
    now = flat_config(cfg.to_dict())
    changed = sorted(
        key
        for key in set(before) | set(now)
        if key not in RESUME_FREE_KEYS and before.get(key) != now.get(key)
    )
    if changed:
        listed = ", ".join(f"{k}: run={before.get(k)!r} now={now.get(k)!r}" for k in changed)
        raise TrainConfigError(
            f"cannot resume {path} under a different config ({listed}); resume with the run's "
            f"own config ({run_dir / 'config.yaml'}) or start a new run in another --out"
        )

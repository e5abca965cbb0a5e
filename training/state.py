"""Resumable training state as safetensors + JSON: no pickle anywhere.

``torch.save(optimizer.state_dict())`` would pickle; instead every nested structure (the
optimizer's ``state_dict``, the AMP grad-scaler, RNG states, counters) is *flattened*: each
tensor is stored in a safetensors file under a dotted key and replaced in the structure by a
``{"__tensor__": key}`` reference; the remaining structure (numbers, strings, lists, dicts with
string keys) is JSON in the file's metadata. Integer dict keys (the optimizer's parameter ids)
survive as ``{"__int_keys__": {...}}``; tuples come back as lists, which AdamW accepts.

The file holds ``{"format": "sam_moelora_ros.train_state", "format_version": "1", "state": JSON}``
metadata; :func:`load_state` rejects anything else with a message naming the file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.model.safetensors_io import SafetensorsFormat, read_safetensors

STATE_FORMAT = "sam_moelora_ros.train_state"
STATE_FORMAT_VERSION = "1"
TRAIN_STATE = SafetensorsFormat(STATE_FORMAT, STATE_FORMAT_VERSION, writer="save_state()")


class TrainStateError(SamMoeLoraError, RuntimeError):
    """A training-state file is missing, unreadable, truncated or not ours."""


# ---------------------------------------------------------------------- flattening
def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Move every tensor of ``obj`` into ``tensors``; return the JSON-able remainder."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        return flatten(torch.from_numpy(np.ascontiguousarray(obj)), tensors, prefix)
    if isinstance(obj, dict):
        if obj and all(isinstance(k, int) for k in obj):
            return {
                "__int_keys__": {
                    str(k): flatten(v, tensors, f"{prefix}.{k}") for k, v in obj.items()
                }
            }
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"cannot store dict key {k!r} ({type(k).__name__}) at {prefix}")
            out[k] = flatten(v, tensors, f"{prefix}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} at {prefix} without pickle")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__int_keys__"}:
            return {int(k): unflatten(v, tensors) for k, v in obj["__int_keys__"].items()}
        return {k: unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


# ---------------------------------------------------------------------- files
def save_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts/lists of tensors, numbers, strings) atomically."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    structure = flatten(state, tensors, "s")
    metadata = {
        "format": STATE_FORMAT,
        "format_version": STATE_FORMAT_VERSION,
        "state": json.dumps(structure, sort_keys=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a file written by :func:`save_state`."""
    metadata, tensors = read_safetensors(
        path,
        what="training state",
        error=TrainStateError,
        fix="resume from another checkpoint of the run, or start the run afresh",
        missing_fix="pass a run folder or file",
        expect=TRAIN_STATE,
    )
    return unflatten(json.loads(metadata["state"]), tensors)


# ---------------------------------------------------------------------- RNG
def global_rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch CPU (and current CUDA device) RNG states."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`global_rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8))

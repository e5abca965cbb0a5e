"""A dataset folder's input contract file: which encoding each modality's stored images hold.

Why a file: a DELIVER-layout folder holds network images, and the folder alone cannot say whether
its ``lidar/`` PNGs are the node's range/intensity images (the synthetic generator, a robot's
recordings exported by ``replay_eval --export-dataset``) or DELIVER's own pre-rendered ones. The
writer of such a folder records the contract beside it, as ``input_encodings.json`` (the JSON of
:class:`~sam_moelora_ros.sensors.encodings.InputContract`); the reader takes it, and training
records it in the adapter. A folder without the file is the real dataset, whose encodings its
reader names itself.
"""

from __future__ import annotations

from pathlib import Path

from sam_moelora_ros.sensors.encodings import METADATA_KEY, EncodingError, InputContract

from .errors import DatasetError

CONTRACT_FILE = f"{METADATA_KEY}.json"
"""The contract's file name at a dataset root."""
MAX_CONTRACT_BYTES = 100_000


def write_contract(root: Path, contract: InputContract) -> Path:
    """Record ``contract`` at ``root`` (atomically: a reader never sees half a file)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / CONTRACT_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(contract.to_json() + "\n")
    tmp.replace(path)
    return path


def read_contract(root: Path) -> InputContract | None:
    """The contract recorded at ``root``, or None when there is none (a real dataset)."""
    path = root / CONTRACT_FILE
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_CONTRACT_BYTES:
        raise DatasetError(f"{path} is {path.stat().st_size} bytes; a contract is a few hundred")
    try:
        return InputContract.from_json(path.read_text(), source=str(path))
    except (OSError, UnicodeDecodeError, EncodingError) as exc:
        raise DatasetError(
            f"{exc}; rewrite {CONTRACT_FILE} (the generator and replay_eval --export-dataset "
            "write it) or delete it if the folder is the real dataset"
        ) from exc

"""Adapters record their input contract (metadata ``input_encodings``) and give it back."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from sam_moelora_ros.model import CheckpointError, load_segmentor, save_adapter
from sam_moelora_ros.model.checkpoint import read_adapter_encodings
from sam_moelora_ros.model.summary import main as summary_main
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT, METADATA_KEY

from .conftest import small_config


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as handle:
        return dict(handle.metadata())


def _rewrite(path: Path, **changes: str | None) -> None:
    """The same tensors with metadata keys changed (None: removed), as an older writer left it."""
    tensors, metadata = load_file(str(path)), _metadata(path)
    for key, value in changes.items():
        metadata.pop(key, None) if value is None else metadata.__setitem__(key, value)
    save_file(tensors, str(path), metadata=metadata)


def test_the_models_contract_is_recorded_and_read_back(small_model, tmp_path: Path) -> None:
    small_model.input_encodings = DEFAULT_CONTRACT.replace("depth", max_range=10.0)
    path = save_adapter(small_model, tmp_path / "a.safetensors")
    stored = json.loads(_metadata(path)[METADATA_KEY])
    assert stored["depth"] == {"name": "linear", "max_range": 10.0}
    assert set(stored) == set(small_model.cfg.modalities)
    contract, recorded = read_adapter_encodings(path)
    assert recorded and contract["depth"]["max_range"] == 10.0
    full = save_adapter(small_model, tmp_path / "b.safetensors", include_backbone=True)
    assert load_segmentor(full).input_encodings == contract


def test_an_old_adapter_gets_todays_encodings_and_says_so_once(
    small_model, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = save_adapter(small_model, tmp_path / "old.safetensors", include_backbone=True)
    _rewrite(path, **{METADATA_KEY: None})
    contract, recorded = read_adapter_encodings(path)
    assert not recorded and contract == DEFAULT_CONTRACT.restrict(small_config().modalities)
    with caplog.at_level(logging.INFO, logger="sam_moelora_ros.model.checkpoint"):
        load_segmentor(path)
    said = [r for r in caplog.records if "records no input_encodings" in r.getMessage()]
    assert len(said) == 1


def test_a_malformed_contract_is_a_checkpoint_error_naming_the_file(
    small_model, tmp_path: Path
) -> None:
    path = save_adapter(small_model, tmp_path / "bad.safetensors")
    _rewrite(path, **{METADATA_KEY: json.dumps({"lidar": {"name": "spherical"}})})
    with pytest.raises(CheckpointError, match="bad.safetensors.*unknown lidar input encoding"):
        read_adapter_encodings(path)


def test_model_summary_prints_the_encodings(
    small_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small_model.input_encodings = DEFAULT_CONTRACT.replace("event", "voxel")
    path = save_adapter(small_model, tmp_path / "s.safetensors")
    assert summary_main(["--adapter", str(path)]) == 0
    out = capsys.readouterr().out
    assert "input encodings:" in out and "event: voxel(bins=3" in out
    assert "depth: linear(max_range=80)" in out
    assert summary_main(["--adapter", str(tmp_path / "none.safetensors")]) == 2


def test_the_shipped_default_model_records_its_four_encodings() -> None:
    from sam_moelora_ros.inference.default_model import default_adapter_path

    path = default_adapter_path()
    assert path is not None
    contract, recorded = read_adapter_encodings(path)
    assert recorded and set(contract) == {"rgb", "depth", "event", "lidar"}
    assert all(e.live for e in contract.values())

"""An exported folder is trusted only as far as its manifest vouches for it: every file ONNX
Runtime may load is listed and hashed, every listed name is inside the folder, the modalities are
known, and the graphs' shapes are the manifest's, each checked at load with one line naming what
is wrong. And the export refuses an adapter whose config disagrees with its tensors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open
from safetensors.torch import save_file
from segmenter_helpers import tiny_model

from sam_moelora_ros.export.cli import main as export_main
from sam_moelora_ros.inference.device import SegmenterError
from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeModel
from sam_moelora_ros.model import save_adapter


def _copy(tiny_export: dict[str, Any], tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(tiny_export["manifest"].root, folder)
    return folder


def _edit_manifest(folder: Path, **changes: Any) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _refused(folder: Path, match: str) -> str:
    with pytest.raises(SegmenterError, match=match) as info:
        OnnxRuntimeModel(folder)
    assert info.value.input_name == "adapter"
    assert "\n" not in str(info.value)
    return str(info.value)


def test_an_intact_copy_loads(tiny_export: dict[str, Any], tmp_path: Path) -> None:
    OnnxRuntimeModel(_copy(tiny_export, tmp_path))


def test_a_weight_file_left_out_of_the_manifest_is_refused(tiny_export, tmp_path) -> None:
    """The red team's case: weights.bin unlisted and corrupted loaded, and labelled garbage."""
    folder = _copy(tiny_export, tmp_path)
    files = json.loads((folder / "manifest.json").read_text())["files"]
    del files["weights.bin"]
    _edit_manifest(folder, files=files)
    data = bytearray((folder / "weights.bin").read_bytes())
    data[100] ^= 0xFF
    (folder / "weights.bin").write_bytes(bytes(data))
    _refused(folder, r"\['weights.bin'\] not listed in manifest.json")


def test_a_graph_the_manifest_names_but_does_not_hash_is_refused(tiny_export, tmp_path) -> None:
    folder = _copy(tiny_export, tmp_path)
    files = json.loads((folder / "manifest.json").read_text())["files"]
    del files["fusion.onnx"]
    _edit_manifest(folder, files=files)
    _refused(folder, r"graph\(s\) \['fusion.onnx'\] are not listed with a hash")


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/hostname"])
def test_a_file_outside_the_folder_is_refused(tiny_export, tmp_path, name) -> None:
    folder = _copy(tiny_export, tmp_path)
    (tmp_path / "outside.onnx").write_bytes((folder / "fusion.onnx").read_bytes())
    files = json.loads((folder / "manifest.json").read_text())["files"]
    files[name] = "0" * 64
    _edit_manifest(folder, files=files, fusion=name)
    _refused(folder, f"file '{name}' is not inside the folder")


def test_an_unknown_modality_is_one_line_not_a_key_error(tiny_export, tmp_path) -> None:
    folder = _copy(tiny_export, tmp_path)
    data = json.loads((folder / "manifest.json").read_text())
    encoders = {**data["encoders"], "radar": data["encoders"]["rgb"]}
    _edit_manifest(folder, modalities=[*data["modalities"], "radar"], encoders=encoders)
    _refused(folder, r"modalities \[.*'radar'\] must be distinct names from")


def test_graph_shapes_must_be_the_manifests(tiny_export, tmp_path) -> None:
    folder = _copy(tiny_export, tmp_path)
    levels = json.loads((folder / "manifest.json").read_text())["levels"]
    levels[0] = [levels[0][0] + 1, *levels[0][1:]]
    _edit_manifest(folder, levels=levels)
    message = _refused(folder, r"output 'level0' has shape .*, the manifest says \[batch, ")
    assert "encoder_" in message


def _lying_adapter(tmp_path: Path) -> Path:
    """A four-modality adapter whose stored config claims RGB only."""
    adapter = save_adapter(tiny_model(), tmp_path / "four.safetensors", include_backbone=True)
    with safe_open(str(adapter), "pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    config = json.loads(metadata["config"])
    config["modalities"] = ["rgb"]
    metadata["config"] = json.dumps(config)
    lying = tmp_path / "lying.safetensors"
    save_file(tensors, str(lying), metadata=metadata)
    return lying


def test_export_refuses_an_adapter_whose_config_disagrees_with_its_tensors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lying = _lying_adapter(tmp_path)
    code = export_main(["--adapter", str(lying), "--out", str(tmp_path / "out"), "--no-verify"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert "the config disagrees with the tensors" in err[0] and "modalities ['rgb']" in err[0]
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_new_export_removes_the_graphs_of_an_earlier_one(tmp_path: Path) -> None:
    """Export into a folder holding an earlier export's graph: the new folder loads (the stale
    graph would otherwise be an unlisted file, and refused)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "encoder_lidar.onnx").write_bytes(b"an earlier export's graph")
    adapter = save_adapter(tiny_model(modalities=("rgb",)), tmp_path / "rgb.safetensors", True)
    assert export_main(["--adapter", str(adapter), "--out", str(out), "--no-verify"]) == 0
    assert not (out / "encoder_lidar.onnx").exists()
    OnnxRuntimeModel(out)

"""ONNX export of the tiny model: files, metadata, shared weights, and numbers against torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from segmenter_helpers import MODALITIES, tiny_model

from sam_moelora_ros.classes import DELIVER_CLASSES
from sam_moelora_ros.export import ExportError, Manifest
from sam_moelora_ros.export.cli import main as export_main
from sam_moelora_ros.export.onnx_export import export_onnx, weights_source
from sam_moelora_ros.inference.device import SegmenterError
from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeModel
from sam_moelora_ros.model import ModelConfig, save_adapter
from sam_moelora_ros.onnx_format.manifest import level_input, sha256_file

GRAPHS = [*(f"encoder_{m}.onnx" for m in MODALITIES), "encoder_all.onnx", "fusion.onnx"]


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _images(size: int, batch: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, 3, size, size, generator=generator) for m in MODALITIES}


def test_folder_holds_checked_graphs_with_metadata(tiny_export: dict[str, Any]) -> None:
    manifest: Manifest = tiny_export["manifest"]
    model = tiny_export["model"]
    root = manifest.root
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [*GRAPHS, "manifest.json", "weights.bin"]
    )
    assert manifest.source == "tiny64.safetensors"
    assert manifest.source_sha256 == sha256_file(tiny_export["adapter"])
    assert manifest.levels == ((192, 4, 4),) * 4  # tiny: 4 taps of 192 channels, 64 / 16 = 4
    for name in GRAPHS:
        onnx.checker.check_model(str(root / name))  # by path: external data resolved
        graph = onnx.load(str(root / name), load_external_data=False)
        assert [(o.domain, o.version) for o in graph.opset_import] == [("", 17)]
        props = {p.key: p.value for p in graph.metadata_props}
        assert ModelConfig.from_json(props["config"]) == model.cfg
        classes = json.loads(props["classes"])
        assert [c["name"] for c in classes] == list(DELIVER_CLASSES)
        assert classes[6] == {"id": 6, "name": "Road", "color": [128, 64, 128]}
        assert props["source_sha256"] == manifest.source_sha256
        assert props["role"] == ("fusion" if name == "fusion.onnx" else "encoder")
        inputs = {i.name: i for i in graph.graph.input}
        outputs = {o.name: o for o in graph.graph.output}
        for value in [*inputs.values(), *outputs.values()]:
            dims = value.type.tensor_type.shape.dim
            batch_axis = 1 if value.name == "router_weights" else 0
            if value.name != "present":
                assert dims[batch_axis].dim_param == "batch", (name, value.name)
            assert all(d.dim_value > 0 for i, d in enumerate(dims) if i != batch_axis or
                       value.name == "present"), (name, value.name)  # fmt: skip
    levels = [level_input(m, i) for m in MODALITIES for i in range(4)]
    fusion = onnx.load(str(root / "fusion.onnx"), load_external_data=False)
    assert [i.name for i in fusion.graph.input] == ["present", *levels]
    every = onnx.load(str(root / "encoder_all.onnx"), load_external_data=False)
    assert [i.name for i in every.graph.input] == [f"{m}.image" for m in MODALITIES]
    assert [o.name for o in every.graph.output] == levels
    assert manifest.batched == "encoder_all.onnx"


def _external(path: Path) -> set[tuple[tuple[str, str], ...]]:
    graph = onnx.load(str(path), load_external_data=False)
    return {
        tuple((e.key, e.value) for e in t.external_data)
        for t in graph.graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
    }


def test_frozen_weights_are_stored_once(tiny_export: dict[str, Any]) -> None:
    """The encoders share every tensor but their merged qkv weights (one per block)."""
    root = tiny_export["manifest"].root
    locations = [_external(root / f"encoder_{m}.onnx") for m in MODALITIES]
    every = _external(root / "encoder_all.onnx")
    assert every <= set.union(*locations)  # the batched graph adds no bytes
    assert len(every) > len(locations[0])  # it holds every modality's qkv weights
    shared = set.intersection(*locations)
    for own in locations:
        assert len(own - shared) == 4  # the 4 blocks' merged qkv weights
    referenced = sum(
        int(dict(where)["length"]) for own in locations for where in own
    )  # what four self-contained encoders would hold
    assert (root / "weights.bin").stat().st_size < 0.6 * referenced


def test_encoder_graphs_match_torch_at_another_batch_size(tiny_export: dict[str, Any]) -> None:
    """Traced at batch 2, run at batch 3: each modality's levels equal the torch encoder's."""
    model, root = tiny_export["model"], tiny_export["manifest"].root
    images = _images(64, batch=3)
    with torch.no_grad():
        for m in MODALITIES:
            want = model.encoder({m: images[m]}, (m,))
            got = _session(root / f"encoder_{m}.onnx").run(None, {"image": images[m].numpy()})
            assert len(got) == len(want) == 4
            for have, ref in zip(got, want, strict=True):
                np.testing.assert_allclose(have, ref[0].numpy(), rtol=1e-4, atol=1e-4)


def test_fusion_masks_absent_modalities_like_the_torch_model(tiny_export: dict[str, Any]) -> None:
    """Depth absent: its features are garbage, yet logits and weights equal torch's on the rest."""
    model, root = tiny_export["model"], tiny_export["manifest"].root
    images = _images(64, batch=2, seed=1)
    present = ("rgb", "event", "lidar")
    with torch.no_grad():
        logits, extras = model({m: images[m] for m in present}, return_extras=True)
        feeds = {"present": np.array([1, 0, 1, 1], dtype=np.float32)}
        for m in MODALITIES:
            levels = model.encoder({m: images[m]}, (m,))
            for i, level in enumerate(levels):
                value = level[0].numpy()
                feeds[level_input(m, i)] = value if m in present else 1e3 * np.ones_like(value)
    got_logits, got_weights = _session(root / "fusion.onnx").run(None, feeds)
    np.testing.assert_allclose(got_logits, logits.numpy(), rtol=1e-4, atol=1e-4)
    assert got_weights.shape == (4, 2, 4)  # M x B x L
    assert np.all(got_weights[1] == 0.0)  # exactly zero for the absent modality
    for index, m in enumerate(MODALITIES):
        if m in present:
            want = extras["router_weights"][m].numpy()
            np.testing.assert_allclose(got_weights[index], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_weights.sum(axis=0), 1.0, rtol=1e-6)


def test_absent_modalities_cost_no_encoder_run(tiny_export: dict[str, Any]) -> None:
    """A full frame runs the batched graph once; a partial one only its modalities' graphs."""
    model = tiny_export["model"]
    runtime = OnnxRuntimeModel(tiny_export["manifest"], verify_files=False)
    images = _images(64, batch=2, seed=4)
    with torch.no_grad():
        for subset in (MODALITIES, ("depth", "lidar"), ("depth",)):
            want = model({m: images[m] for m in subset})
            got = runtime({m: images[m] for m in subset})
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)
    assert runtime.encoder_runs == {"rgb+depth+event+lidar": 1, "depth": 2, "lidar": 1}


def test_inline_weights_give_self_contained_graphs(tmp_path: Path) -> None:
    """A one-modality model (a cheaper export): no weights.bin, the same numbers as torch."""
    model = tiny_model(modalities=("event",)).eval()
    manifest = export_onnx(
        model, tmp_path, weights_source(model, "inline"), share_weights=False, verify=False
    )
    assert sorted(manifest.files) == ["encoder_event.onnx", "fusion.onnx"]
    assert not (tmp_path / "weights.bin").exists()
    for name in manifest.files:
        graph = onnx.load(str(tmp_path / name), load_external_data=False)
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in graph.graph.initializer)
    image = _images(64)["event"]
    with torch.no_grad():
        logits = model({"event": image})
        got = OnnxRuntimeModel(tmp_path)({"event": image})
    np.testing.assert_allclose(got.numpy(), logits.numpy(), rtol=1e-4, atol=1e-4)


def test_a_damaged_or_mixed_folder_is_refused(tiny_export: dict[str, Any], tmp_path: Path) -> None:
    source = tiny_export["manifest"].root
    for name in [*GRAPHS, "weights.bin", "manifest.json"]:
        (tmp_path / name).write_bytes((source / name).read_bytes())
    data = bytearray((tmp_path / "weights.bin").read_bytes())
    data[100] ^= 0xFF
    (tmp_path / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(SegmenterError, match=r"weights.bin: sha256 .* differs") as info:
        OnnxRuntimeModel(tmp_path)
    assert info.value.input_name == "adapter"
    # A graph from another export, with its hash written into the manifest: the metadata tells.
    (tmp_path / "weights.bin").write_bytes((source / "weights.bin").read_bytes())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["source_sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SegmenterError, match="does not belong to the export"):
        OnnxRuntimeModel(tmp_path)
    with pytest.raises(SegmenterError, match="no manifest.json"):
        OnnxRuntimeModel(tmp_path / "nowhere")


def test_verify_refuses_an_export_that_differs_from_torch(tiny_export: dict[str, Any]) -> None:
    from sam_moelora_ros.export.onnx_export import verify_export

    model = tiny_export["model"]
    errors = verify_export(model, tiny_export["manifest"])
    assert errors["logits"] < 1e-4 and errors["router_weights"] < 1e-5
    with torch.no_grad():
        model.decoder.class_tokens.weight[0] += 1.0  # the torch model changes, the export not
    try:
        with pytest.raises(ExportError, match="logits differ from the torch model's"):
            verify_export(model, tiny_export["manifest"], subsets=[MODALITIES])
    finally:
        with torch.no_grad():
            model.decoder.class_tokens.weight[0] -= 1.0


def test_cli_exports_an_adapter_and_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_model(modalities=("rgb",))  # one modality: a cheaper export
    adapter = save_adapter(model, tmp_path / "rgb.safetensors", include_backbone=True)
    out = tmp_path / "out"
    argv = ["--adapter", str(adapter), "--out", str(out), "--format", "onnx", "--no-verify"]
    assert export_main(argv) == 0
    printed = capsys.readouterr().out
    assert "ONNX opset 17" in printed and "weights.bin" in printed
    assert Manifest.read(out).source_sha256 == sha256_file(adapter)
    assert export_main(["--adapter", str(tmp_path / "missing.safetensors"), "--out", "x"]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    assert export_main(["--adapter", str(adapter), "--image-size", "128", "--out", "x"]) == 2
    assert "--image-size applies to --preset" in capsys.readouterr().err


@pytest.mark.slow
def test_the_dynamo_exporter_writes_opset_18_with_the_same_numbers(tmp_path: Path) -> None:
    model = tiny_model(modalities=("rgb",)).eval()  # one modality: dynamo exports slowly
    manifest = export_onnx(model, tmp_path, weights_source(model, "dynamo"), exporter="dynamo")
    assert manifest.opset == 18 and manifest.info["exporter"] == "dynamo"
    for name in ("encoder_rgb.onnx", "fusion.onnx"):
        graph = onnx.load(str(tmp_path / name), load_external_data=False)
        assert ("", 18) in [(o.domain, o.version) for o in graph.opset_import]
    image = _images(64, batch=3)["rgb"]
    with torch.no_grad():
        want = model({"rgb": image})
        got = OnnxRuntimeModel(tmp_path)({"rgb": image})
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_check_cli_compares_every_sensor_subset(
    tiny_export: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam_moelora_ros.export.check import main as check_main

    root, adapter = tiny_export["manifest"].root, tiny_export["adapter"]
    argv = ["--model", str(root), "--adapter", str(adapter), "--frames", "1", "--size", "48x64"]
    assert check_main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("|") > 15 * 4  # a row per non-empty subset of four modalities
    assert "| rgb+depth+event+lidar |" in printed and "| lidar " in printed
    assert "OK: worst label agreement" in printed
    other = save_adapter(tiny_model(seed=1), tmp_path / "other.safetensors", True)
    assert check_main(["--model", str(root), "--adapter", str(other)]) == 2
    assert "is not the adapter" in capsys.readouterr().err


def test_a_content_only_model_is_exported_for_one_cameras_content_box(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The graphs take the box the torch Segmenter feeds that camera (2:1 frames at 64 px:
    64 x 32, not a 64 x 64 square), the labels agree with torch, another box is refused, and
    without --camera-hw the export says what to pass."""
    from segmenter_helpers import frame

    from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeSegmenter
    from sam_moelora_ros.inference.segmenter import Segmenter

    model = tiny_model(modalities=("rgb", "depth"), input_geometry="content").eval()
    adapter = save_adapter(model, tmp_path / "content.safetensors", include_backbone=True)
    argv = ["--adapter", str(adapter), "--out", str(tmp_path / "none")]
    assert export_main(argv) == 2
    assert "--camera-hw 480x640" in capsys.readouterr().err
    out = tmp_path / "onnx"
    argv = ["--adapter", str(adapter), "--out", str(out), "--camera-hw", "48x96"]
    assert export_main(argv) == 0  # verify=True: ONNX Runtime matched torch on that box
    assert Manifest.read(out).input_hw == (32, 64)
    images = frame(48, 96, ("rgb", "depth"))
    torch_labels = Segmenter(model, device="cpu")(images).labels
    onnx_segmenter = OnnxRuntimeSegmenter(out)
    assert float((onnx_segmenter(images).labels == torch_labels).mean()) > 0.999
    with pytest.raises(SegmenterError, match="64x64.*--camera-hw"):
        onnx_segmenter(frame(64, 64, ("rgb", "depth")))

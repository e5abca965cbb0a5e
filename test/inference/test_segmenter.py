"""Segmenter: numpy frames in, labels / confidence / router weights out, on a tiny random model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from segmenter_helpers import MODALITIES, frame, tiny_model

from sam_moelora_ros.inference.segmenter import (
    Segmentation,
    Segmenter,
    SegmenterError,
    default_adapter_path,
    resolve_device,
    resolve_dtype,
)
from sam_moelora_ros.model import save_adapter


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("").type == expected
    with pytest.raises(SegmenterError, match="not a torch device"):
        resolve_device("toaster")
    with pytest.raises(SegmenterError, match="not supported"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_resolve_device_cuda_missing_says_what_to_use() -> None:
    with pytest.raises(SegmenterError, match="CUDA is not available.*'auto' or 'cpu'"):
        resolve_device("cuda:0")


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("float32", torch.float32), ("float16", torch.float16), ("bfloat16", torch.bfloat16)],
)
def test_resolve_dtype(name: str, dtype: torch.dtype) -> None:
    assert resolve_dtype(name) is dtype
    assert resolve_dtype(dtype) is dtype


def test_resolve_dtype_rejects_others() -> None:
    with pytest.raises(SegmenterError, match="'int8' is not supported"):
        resolve_dtype("int8")
    with pytest.raises(SegmenterError, match="not supported"):
        resolve_dtype(torch.int8)


@pytest.mark.parametrize(("h", "w"), [(48, 64), (64, 48), (100, 30), (17, 23), (64, 64)])
def test_outputs_are_at_the_input_resolution(segmenter: Segmenter, h: int, w: int) -> None:
    result = segmenter(frame(h, w))
    assert isinstance(result, Segmentation)
    assert result.labels.shape == (h, w) and result.labels.dtype == np.uint8
    assert result.confidence.shape == (h, w) and result.confidence.dtype == np.float32
    assert result.labels.max() < 25
    assert np.all(result.confidence >= 1.0 / 25 - 1e-5) and np.all(result.confidence <= 1 + 1e-6)
    assert result.modalities == MODALITIES
    assert result.inference_s > 0


@pytest.mark.parametrize(
    "names", [("rgb",), ("depth",), ("lidar", "event"), ("rgb", "lidar"), MODALITIES]
)
def test_any_subset_weights_present_modalities_only(segmenter: Segmenter, names) -> None:
    result = segmenter(frame(names=names))
    assert set(result.router_weights) == set(names)
    assert sum(result.router_weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert result.modalities == tuple(n for n in MODALITIES if n in names)


def test_size_hw_sets_the_output_and_resamples_other_sizes(segmenter: Segmenter) -> None:
    images = {"rgb": frame(48, 64)["rgb"], "event": frame(24, 32)["event"]}
    result = segmenter(images, (48, 64))
    assert result.labels.shape == (48, 64)
    assert segmenter({"event": images["event"]}).labels.shape == (24, 32)


def test_mono_and_rgba_images_are_accepted(segmenter: Segmenter) -> None:
    mono = np.zeros((20, 30), np.uint8)
    rgba = np.zeros((20, 30, 4), np.uint8)
    assert segmenter({"depth": mono, "rgb": rgba}).labels.shape == (20, 30)


def test_bad_input_is_rejected_with_the_modality(segmenter: Segmenter) -> None:
    with pytest.raises(SegmenterError, match="at least one modality"):
        segmenter({})
    with pytest.raises(SegmenterError, match=r"\['thermal'\] are not known"):
        segmenter({"thermal": np.zeros((4, 4, 3), np.uint8)})
    with pytest.raises(SegmenterError, match="depth: expected an H x W x 3 image"):
        segmenter({"depth": np.zeros((4, 4, 5), np.uint8)})
    with pytest.raises(SegmenterError, match="rgb: image is empty"):
        segmenter({"rgb": np.zeros((0, 4, 3), np.uint8)})


def test_same_input_same_output(segmenter: Segmenter) -> None:
    a, b = segmenter(frame(seed=3)), segmenter(frame(seed=3))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.confidence, b.confidence)


def test_batch_matches_single_frames(segmenter: Segmenter) -> None:
    frames = [frame(seed=1), frame(32, 40, seed=2), frame(names=("rgb", "depth"), seed=3)]
    batch = segmenter.segment_batch(frames)
    assert len(batch) == 3
    for single_frame, batched in zip(frames, batch, strict=True):
        single = segmenter(single_frame)
        assert batched.labels.shape == single.labels.shape
        np.testing.assert_allclose(batched.confidence, single.confidence, atol=1e-4)
        assert (batched.labels == single.labels).mean() > 0.99
        assert batched.router_weights.keys() == single.router_weights.keys()
    with pytest.raises(SegmenterError, match="2 frames but 1 sizes"):
        segmenter.segment_batch(frames[:2], [None])


def test_merged_lora_gives_the_same_labels() -> None:
    merged = Segmenter(tiny_model(seed=4), device="cpu", merge_lora=True)
    unmerged = Segmenter(tiny_model(seed=4), device="cpu", merge_lora=False)
    a, b = merged(frame(seed=5)), unmerged(frame(seed=5))
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
    assert (a.labels == b.labels).mean() > 0.99


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_runs_and_keeps_float32_outputs(dtype: str) -> None:
    seg = Segmenter(tiny_model(), device="cpu", dtype=dtype)
    result = seg(frame())
    assert result.confidence.dtype == np.float32 and np.all(np.isfinite(result.confidence))
    reference = Segmenter(tiny_model(), device="cpu")(frame())
    assert (result.labels == reference.labels).mean() > 0.8


def test_more_than_256_classes_give_uint16_labels() -> None:
    seg = Segmenter(tiny_model(num_classes=300), device="cpu")
    result = seg(frame(names=("rgb",)))
    assert result.labels.dtype == np.uint16 and result.labels.max() < 300


def test_from_files_round_trip(tmp_path: Path) -> None:
    model = tiny_model(seed=6)
    path = tmp_path / "m.safetensors"
    save_adapter(model, path, include_backbone=True)
    direct = Segmenter(tiny_model(seed=6), device="cpu")
    loaded = Segmenter.from_files(path, device="cpu")
    assert loaded.modalities == MODALITIES and loaded.image_size == 64
    assert loaded.num_classes == 25
    np.testing.assert_allclose(loaded(frame()).confidence, direct(frame()).confidence, atol=1e-4)
    assert "cpu float32 S=64 K=25" in loaded.describe()


def test_from_files_errors_say_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(SegmenterError, match="does not exist"):
        Segmenter.from_files(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SegmenterError, match="could not load the model"):
        Segmenter.from_files(tmp_path / "junk.safetensors")
    model_path = tmp_path / "m.safetensors"
    save_adapter(tiny_model(), model_path, include_backbone=True)
    with pytest.raises(SegmenterError, match="SAM checkpoint .* does not exist"):
        Segmenter.from_files(model_path, tmp_path / "sam.pth")


@pytest.mark.skipif(default_adapter_path() is not None, reason="the package ships a model")
def test_no_default_model_is_a_clear_error() -> None:
    with pytest.raises(SegmenterError, match="default_tiny.safetensors.*pass the path"):
        Segmenter.from_files("")


def test_a_module_without_config_is_rejected() -> None:
    with pytest.raises(SegmenterError, match=r"has no \.cfg"):
        Segmenter(torch.nn.Linear(2, 2), device="cpu")


def test_warmup_runs(segmenter: Segmenter) -> None:
    assert segmenter.warmup((16, 16)) >= 0.0

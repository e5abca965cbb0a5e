"""Segmenter: numpy frames in, labels / confidence / router weights out, on a tiny random model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from segmenter_helpers import MODALITIES, frame, tiny_model

from sam_moelora_ros.inference.segmenter import (
    DEFAULT_MODEL_ENV,
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


def test_no_default_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default model's path points at a missing file: what an install without one sees."""
    missing = tmp_path / "no_default.safetensors"
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(missing))
    assert default_adapter_path() is None
    with pytest.raises(SegmenterError, match=r"no_default\.safetensors\); pass the path") as err:
        Segmenter.from_files("")
    assert err.value.input_name == "adapter"


def test_the_default_model_path_can_be_pointed_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_adapter(tiny_model(num_classes=7), tmp_path / "site.safetensors", True)
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(path))
    assert default_adapter_path() == path
    assert Segmenter.from_files(None, device="cpu").num_classes == 7


def test_a_module_without_config_is_rejected() -> None:
    with pytest.raises(SegmenterError, match=r"has no \.cfg"):
        Segmenter(torch.nn.Linear(2, 2), device="cpu")


def test_warmup_returns_its_own_duration(segmenter: Segmenter) -> None:
    start = time.perf_counter()
    took = segmenter.warmup((16, 16))
    assert 0.0 < took <= time.perf_counter() - start


def _overflowing_adapter(path: Path, factor: float) -> Path:
    """Finite LoRA factors (so the file loads) whose products overflow float32."""
    model = tiny_model(seed=8)
    with torch.no_grad():
        for layer in model.encoder.lora_layers:
            for expert in layer.experts.values():
                expert.lora_A.fill_(factor)
                expert.lora_B.fill_(factor)
    return save_adapter(model, path, include_backbone=True)


def test_a_model_whose_forward_overflows_is_not_declared_ready(tmp_path: Path) -> None:
    # 1e18 * 1e18 * rank 8 = 8e36 fits in float32, so merging works; the forward then overflows.
    path = _overflowing_adapter(tmp_path / "overflow.safetensors", 1e18)
    seg = Segmenter.from_files(path, device="cpu")
    with pytest.raises(SegmenterError, match=r"overflow\.safetensors.*warm-up.*NaN/Inf") as err:
        seg.warmup((16, 16))
    assert err.value.input_name == "adapter" and "\n" not in str(err.value)
    assert seg._require_finite is False  # only the warm-up pays for the check


def test_a_refused_merge_names_the_adapter(tmp_path: Path) -> None:
    path = _overflowing_adapter(tmp_path / "huge.safetensors", 1e30)  # the merge overflows
    with pytest.raises(SegmenterError, match=r"huge\.safetensors: encoder block 0.*NaN/Inf"):
        Segmenter.from_files(path, device="cpu")
    Segmenter.from_files(path, device="cpu", merge_lora=False)  # merging is what failed

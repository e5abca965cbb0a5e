"""The ONNX Runtime backend behind the Segmenter: same outputs as torch, providers, the factory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from segmenter_helpers import MODALITIES, frame

from sam_moelora_ros.inference import BACKENDS, Segmenter, SegmenterError, build_segmenter
from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeSegmenter
from sam_moelora_ros.inference.onnx_providers import (
    TRT_MAX_BATCH,
    engine_cache_path,
    normalise_providers,
    provider_options,
    resolve_providers,
)

SUBSETS = [MODALITIES, ("rgb", "lidar"), ("depth", "event", "lidar"), ("event",)]


@pytest.fixture(scope="module")
def pair(tiny_export: dict[str, Any]) -> tuple[Segmenter, OnnxRuntimeSegmenter]:
    torch_seg = Segmenter(tiny_export["model"], device="cpu")
    return torch_seg, OnnxRuntimeSegmenter(tiny_export["manifest"].root)


@pytest.mark.parametrize("subset", SUBSETS, ids="+".join)
def test_same_labels_confidence_and_router_weights_as_torch(
    pair: tuple[Segmenter, OnnxRuntimeSegmenter], subset: tuple[str, ...]
) -> None:
    torch_seg, onnx_seg = pair
    images = frame(48, 64, names=subset, seed=len(subset))
    want, got = torch_seg(images), onnx_seg(images)
    assert got.labels.shape == want.labels.shape == (48, 64)
    assert got.labels.dtype == want.labels.dtype == np.uint8
    assert got.confidence.dtype == np.float32
    assert got.modalities == want.modalities == subset
    assert (got.labels == want.labels).mean() >= 0.999
    np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-4)
    assert got.router_weights.keys() == want.router_weights.keys()
    for m in subset:
        assert got.router_weights[m] == pytest.approx(want.router_weights[m], abs=1e-5)
    assert got.inference_s > 0


def test_batches_of_mixed_sets_and_sizes_and_warmup(
    pair: tuple[Segmenter, OnnxRuntimeSegmenter],
) -> None:
    torch_seg, onnx_seg = pair
    frames = [frame(48, 64, seed=1), frame(30, 40, ("rgb",), seed=2), frame(48, 64, seed=3)]
    sizes = [None, (60, 80), None]
    want = torch_seg.segment_batch(frames, sizes)
    got = onnx_seg.segment_batch(frames, sizes)
    assert [g.labels.shape for g in got] == [(48, 64), (60, 80), (48, 64)]
    for a, b in zip(want, got, strict=True):
        assert (a.labels == b.labels).mean() >= 0.999
        assert a.modalities == b.modalities
    assert onnx_seg.warmup((32, 32)) > 0
    assert "onnxruntime[CPUExecutionProvider]" in onnx_seg.describe()
    assert onnx_seg.providers == ["CPUExecutionProvider"]
    with pytest.raises(SegmenterError, match="not known to the model"):
        onnx_seg({"thermal": frame()["rgb"]})


def test_an_unavailable_provider_is_an_error_unless_fallback_is_asked_for(
    tiny_export: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """This onnxruntime is the CPU build: CUDA cannot start here."""
    root = tiny_export["manifest"].root
    with pytest.raises(SegmenterError, match=r"\['CUDAExecutionProvider'\].*onnxruntime-gpu") as e:
        OnnxRuntimeSegmenter(root, providers=["cuda", "cpu"])
    assert e.value.input_name == "providers"
    with caplog.at_level(logging.WARNING, logger="sam_moelora_ros.inference"):
        seg = OnnxRuntimeSegmenter(root, providers=["cuda"], allow_fallback=True)
    assert "CUDAExecutionProvider" in caplog.text and "falling back" in caplog.text
    assert seg.providers == ["CPUExecutionProvider"]
    assert seg(frame(names=("rgb",))).labels.shape == (48, 64)


def test_provider_names_and_dtypes_are_checked(tiny_export: dict[str, Any]) -> None:
    assert normalise_providers(["tensorrt", "cuda", "CPUExecutionProvider", "cpu"]) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert normalise_providers("trt,cpu") == ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(SegmenterError, match="TensorRT needs an onnxruntime build"):
        resolve_providers(["tensorrt"], ["CPUExecutionProvider"], allow_fallback=False)
    assert resolve_providers(["tensorrt"], ["CPUExecutionProvider"], allow_fallback=True) == [
        "CPUExecutionProvider"
    ]
    root = tiny_export["manifest"].root
    with pytest.raises(SegmenterError, match="float16 .* needs the TensorRT provider"):
        OnnxRuntimeSegmenter(root, dtype="float16")
    with pytest.raises(SegmenterError, match="'bfloat16' is not supported"):
        OnnxRuntimeSegmenter(root, dtype="bfloat16")


def test_tensorrt_options_cache_engines_per_model_gpu_and_version(tmp_path: Path) -> None:
    key = engine_cache_path(tmp_path, "ab" * 32, "NVIDIA Jetson AGX Orin", "10.3.0")
    assert key == tmp_path / f"{'ab' * 8}-NVIDIA_Jetson_AGX_Orin-trt10.3.0"
    others = {
        engine_cache_path(tmp_path, "cd" * 32, "NVIDIA Jetson AGX Orin", "10.3.0"),
        engine_cache_path(tmp_path, "ab" * 32, "NVIDIA GeForce RTX 4090 sm89", "10.3.0"),
        engine_cache_path(tmp_path, "ab" * 32, "NVIDIA Jetson AGX Orin", "8.6.2"),
    }
    assert key not in others and len(others) == 3
    options = provider_options(
        "TensorrtExecutionProvider",
        device_id=1,
        engine_cache=key,
        fp16=True,
        profile={"image": (3, 64, 64)},
    )
    assert options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(key)
    assert options["trt_timing_cache_path"] == str(key)
    assert options["trt_fp16_enable"] is True and options["device_id"] == 1
    assert options["trt_profile_min_shapes"] == "image:1x3x64x64"
    assert options["trt_profile_max_shapes"] == f"image:{TRT_MAX_BATCH}x3x64x64"
    assert provider_options("CUDAExecutionProvider", device_id=2) == {"device_id": 2}
    assert provider_options("CPUExecutionProvider") == {}


def test_factory_builds_either_backend_and_explains_wrong_models(
    tiny_export: dict[str, Any],
) -> None:
    assert BACKENDS == ("torch", "onnxruntime")
    adapter, root = tiny_export["adapter"], tiny_export["manifest"].root
    torch_seg = build_segmenter("torch", adapter, device="cpu")
    assert type(torch_seg) is Segmenter
    onnx_seg = build_segmenter("onnxruntime", root, providers=["cpu"], threads=1)
    assert isinstance(onnx_seg, OnnxRuntimeSegmenter)
    assert onnx_seg.modalities == torch_seg.modalities
    assert onnx_seg.num_classes == torch_seg.num_classes == 25
    with pytest.raises(SegmenterError, match="export it first") as e:
        build_segmenter("onnxruntime", adapter)
    assert e.value.input_name == "adapter"
    with pytest.raises(SegmenterError, match="python -m sam_moelora_ros.export"):
        build_segmenter("onnxruntime", None)
    with pytest.raises(SegmenterError, match="unknown backend 'tensorflow'"):
        build_segmenter("tensorflow", adapter)
    with pytest.raises(SegmenterError, match="compile='default' applies to the torch backend"):
        build_segmenter("onnxruntime", root, compile="default")

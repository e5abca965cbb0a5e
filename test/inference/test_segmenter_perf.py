"""The Segmenter's hot path: device-side preprocessing, pinned uploads, compile, batching, hooks.

Everything runs on a tiny random model on the CPU; the CUDA-only checks are skipped without CUDA.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from segmenter_helpers import MODALITIES, frame, tiny_model

from sam_moelora_ros.inference.postprocess import max_softmax as _max_softmax
from sam_moelora_ros.inference.segmenter import (
    COMPILE_MODES,
    Segmenter,
    SegmenterError,
    resolve_compile,
)
from sam_moelora_ros.model.preprocess import prepare_inputs, unletterbox

CPU = torch.device("cpu")


def test_compile_is_off_by_default(segmenter: Segmenter) -> None:
    assert segmenter.compile_mode == "none"
    assert segmenter._forward is segmenter.model
    assert "compile" not in segmenter.describe()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (None, "none"),
        (False, "none"),
        (True, "default"),
        ("none", "none"),
        ("default", "default"),
        ("max-autotune", "max-autotune"),
        ("reduce-overhead", "default"),
    ],
)
def test_resolve_compile_on_cpu(mode: str | bool | None, expected: str) -> None:
    assert resolve_compile(mode, CPU) == expected
    seg = Segmenter(tiny_model(), device="cpu", compile=mode)  # type: ignore[arg-type]
    assert seg.compile_mode == expected
    assert (seg._forward is seg.model) == (expected == "none")


def test_every_compile_mode_is_a_parameter_value() -> None:
    from sam_moelora_ros.params.specs import COMPILE_NAMES

    assert tuple(COMPILE_MODES) == COMPILE_NAMES  # the node offers exactly what works here


def test_resolve_compile_rejects_unknown_modes() -> None:
    with pytest.raises(SegmenterError, match="'fast' is not supported.*none"):
        resolve_compile("fast", CPU)


def test_pinned_buffers_are_a_cuda_only_path(segmenter: Segmenter) -> None:
    assert segmenter.pin_memory is False
    assert Segmenter(tiny_model(), device="cpu", pin_memory=True).pin_memory is False
    segmenter(frame())
    assert segmenter._upload._staging == {}


def test_cpu_upload_is_a_view_of_the_message_buffer(segmenter: Segmenter) -> None:
    image = frame()["rgb"]
    image.setflags(write=False)  # like a view of a message's bytes
    tensor = segmenter._upload("rgb", image)
    assert tensor.shape == (1, 3, 48, 64) and tensor.dtype == torch.uint8
    assert tensor.data_ptr() == image.__array_interface__["data"][0]


@pytest.mark.parametrize(
    "images",
    [
        frame(),
        frame(30, 100, names=("rgb", "lidar")),
        {"rgb": np.zeros((20, 30, 4), np.uint8), "depth": np.full((20, 30), 7, np.uint8)},
        {"rgb": frame(48, 64)["rgb"], "event": frame(24, 32)["event"]},
        {"depth": np.ones((40, 40, 1), np.uint8)},
    ],
    ids=["all", "wide", "rgba_mono", "mixed_sizes", "one_channel"],
)
def test_device_preprocessing_equals_prepare_inputs(segmenter: Segmenter, images) -> None:
    size_hw = next(iter(images.values())).shape[:2]
    _, tensors, box = segmenter._prepare(images, size_hw)
    ordered = {n: images[n] for n in MODALITIES if n in images}
    reference, ref_box = prepare_inputs(ordered, segmenter.image_size, size_hw=size_hw)
    assert box == ref_box and list(tensors) == list(reference)
    for name, tensor in tensors.items():
        assert tensor.dtype == torch.float32 and tensor.shape == reference[name].shape
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0)


def test_router_weights_from_hooks_match_the_models_extras(segmenter: Segmenter) -> None:
    images = frame(names=("rgb", "event", "lidar"), seed=4)
    result = segmenter(images)
    _, tensors, _ = segmenter._prepare(images, None)
    with torch.inference_mode():
        _, extras = segmenter.model(tensors, return_extras=True)
    for name, weights in extras["router_weights"].items():
        assert result.router_weights[name] == pytest.approx(float(weights.mean()), abs=1e-6)
    assert segmenter._hooked.weights is None  # nothing kept between frames


def test_batching_gives_the_labels_of_one_by_one(segmenter: Segmenter) -> None:
    frames = [frame(seed=s) for s in range(3)] + [frame(32, 40, seed=9)]
    frames.append(frame(names=("depth",), seed=5))
    batched = segmenter.segment_batch(frames)
    for images, result in zip(frames, batched, strict=True):
        single = segmenter(images)
        assert result.modalities == single.modalities
        assert (result.labels == single.labels).mean() > 0.999
        np.testing.assert_allclose(result.confidence, single.confidence, atol=1e-4)
        for name, weight in single.router_weights.items():
            assert result.router_weights[name] == pytest.approx(weight, abs=1e-5)


def test_a_failing_compile_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda model, **_: broken)
    seg = Segmenter(tiny_model(seed=2), device="cpu", compile=True)
    assert seg.compile_mode == "default"
    result = seg(frame(seed=1))
    assert seg.compile_mode == "none" and seg._forward is seg.model
    reference = Segmenter(tiny_model(seed=2), device="cpu")(frame(seed=1))
    np.testing.assert_array_equal(result.labels, reference.labels)


def test_warmup_runs_the_given_modality_sets(segmenter: Segmenter) -> None:
    seen: list[tuple[str, ...]] = []
    original = segmenter._run

    def spy(batch):
        seen.append(tuple(batch))
        return original(batch)

    segmenter._run = spy  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        took = segmenter.warmup((16, 16), [("rgb",), ("depth", "lidar")])
        assert 0.0 < took <= time.perf_counter() - start
        assert seen == [("rgb",), ("depth", "lidar")]
        seen.clear()
        segmenter.warmup((16, 16))
        assert seen == [MODALITIES]  # eager: one pass over everything is enough
    finally:
        del segmenter._run


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned uploads need CUDA")
def test_cuda_pinned_uploads_match_the_cpu() -> None:
    gpu = Segmenter(tiny_model(seed=3), device="cuda")
    cpu = Segmenter(tiny_model(seed=3), device="cpu")
    assert gpu.pin_memory
    for seed in range(3):  # reuses the staging buffers
        a, b = gpu(frame(seed=seed)), cpu(frame(seed=seed))
        assert (a.labels == b.labels).mean() > 0.99
    assert all(buffer.is_pinned() for buffer, _ in gpu._upload._staging.values())


@pytest.mark.parametrize("classes", [2, 25, 300])
def test_max_softmax_equals_softmax_max(classes: int) -> None:
    torch.manual_seed(classes)
    logits = torch.randn(2, classes, 9, 11) * 4
    logits[0, :, 0, 0] = 1.5  # an exact tie: the first class wins, as torch.max reports it
    logits[1, 3 % classes, 2, 2] = logits[1, :, 2, 2].max() + 10  # a clear winner
    want_conf, want_ids = torch.softmax(logits, dim=1).max(dim=1)
    conf, ids = _max_softmax(logits.clone())
    torch.testing.assert_close(conf, want_conf, rtol=1e-5, atol=1e-6)
    assert torch.equal(ids.long(), want_ids)
    assert ids[0, 0, 0] == 0 and ids[1, 2, 2] == 3 % classes


def test_max_softmax_keeps_nan_pixels_in_range() -> None:
    logits = torch.randn(1, 25, 4, 4)
    logits[0, 7, 1, 1] = float("nan")
    conf, ids = _max_softmax(logits)
    assert int(ids.max()) < 25 and torch.isnan(conf[0, 1, 1])
    assert not torch.isnan(conf[0, 0, 0])


@pytest.mark.parametrize(("h", "w"), [(48, 64), (64, 64)])  # resized; model size (a view)
def test_postprocess_equals_the_reference_formula(segmenter: Segmenter, h: int, w: int) -> None:
    images = frame(h, w, seed=5)
    _, tensors, box = segmenter._prepare(images, (h, w))
    with torch.inference_mode():
        logits, _ = segmenter._run(tensors)
        kept = logits.clone()
        labels, confidence = segmenter._postprocess_batch(logits, [box])
        full = unletterbox(kept.float(), box, mode="bilinear")
        want_conf, want_ids = torch.softmax(full, dim=1).max(dim=1)
    assert torch.equal(logits, kept)  # the model's output is not overwritten
    np.testing.assert_array_equal(labels[0], want_ids[0].numpy())
    np.testing.assert_allclose(confidence[0], want_conf[0].numpy(), rtol=1e-5, atol=1e-6)

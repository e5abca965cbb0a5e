"""Pinned uploads on CUDA: the same labels as the CPU path, and no buffer reused too early.

The Segmenter stages each modality's image in a pinned host buffer and copies it to the GPU with
``non_blocking=True`` (``inference.device.Uploader``); a CUDA event guards the buffer so that the
next frame cannot overwrite it while the previous copy is still in flight.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segmenter_helpers import MODALITIES, frame, tiny_model

from sam_moelora_ros.inference.device import MAX_STAGING_BUFFERS, Uploader
from sam_moelora_ros.inference.segmenter import Segmenter

pytestmark = pytest.mark.cuda


def test_pinned_uploads_give_the_cpu_paths_labels() -> None:
    pinned = Segmenter(tiny_model(seed=3), device="cuda")
    pageable = Segmenter(tiny_model(seed=3), device="cuda", pin_memory=False)
    cpu = Segmenter(tiny_model(seed=3), device="cpu")
    assert pinned.pin_memory and not pageable.pin_memory
    # reuses a buffer, adds one (smaller than the 64 px model input: uploaded as is), reuses again
    shapes = [(48, 64), (48, 64), (30, 40), (48, 64)]
    for seed, (h, w) in enumerate(shapes):
        images = frame(h, w, seed=seed)
        a, b, c = pinned(images), pageable(images), cpu(images)
        assert a.labels.shape == (h, w)
        assert (a.labels == b.labels).mean() >= 0.9999, "pinned and pageable uploads differ"
        assert (a.labels == c.labels).mean() >= 0.99, "the GPU's labels are not the CPU's"
        np.testing.assert_allclose(a.confidence, c.confidence, atol=2e-3)
    staging = pinned._upload._staging
    assert len(staging) == 2 * len(MODALITIES)  # one per (modality, shape), reused
    assert all(buffer.is_pinned() for buffer, _ in staging.values())


def test_a_staging_buffer_is_not_overwritten_while_its_copy_is_in_flight() -> None:
    upload = Uploader(torch.device("cuda"), pin_memory=True)
    rng = np.random.default_rng(0)
    # 36 MiB each: the first copy is still running when the second frame is staged.
    first, second = (rng.integers(0, 256, (2048, 6144, 3), dtype=np.uint8) for _ in range(2))
    a = upload("rgb", first)
    b = upload("rgb", second)  # the same (modality, shape): the same pinned buffer
    assert len(upload._staging) == 1
    torch.cuda.synchronize()
    assert torch.equal(a[0].permute(1, 2, 0).cpu(), torch.from_numpy(first))
    assert torch.equal(b[0].permute(1, 2, 0).cpu(), torch.from_numpy(second))


def test_mono_rgba_and_many_shapes_upload_exactly() -> None:
    upload = Uploader(torch.device("cuda"), pin_memory=True)
    rng = np.random.default_rng(1)
    for i in range(MAX_STAGING_BUFFERS + 3):  # more shapes than buffers: the cache is reset
        image = rng.integers(0, 256, (8 + i, 12, (1, 3, 4)[i % 3]), dtype=np.uint8)
        got = upload("depth", image)[0].permute(1, 2, 0).cpu().numpy()
        want = np.broadcast_to(image, (*image.shape[:2], 3)) if image.shape[2] == 1 else image
        np.testing.assert_array_equal(got, want[..., :3])
        assert len(upload._staging) <= MAX_STAGING_BUFFERS

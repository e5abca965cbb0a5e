"""Memory is bounded by the model, not the camera: huge frames are shrunk before upload and the
resized logits are reduced in bands of rows, with the labels still at the camera's size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sam_moelora_ros.inference.postprocess import labels_and_confidence
from sam_moelora_ros.model.preprocess import letterbox_params, shrink_to_box, unletterbox

HERE = Path(__file__).resolve().parent

# One frame in a fresh process; prints the peak-RSS growth the call caused (ru_maxrss is the
# process's high-water mark, so the baseline is taken after the model and the image exist).
_MEASURE = """
import json, resource, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from segmenter_helpers import tiny_model
from sam_moelora_ros.inference.segmenter import Segmenter
torch.set_num_threads(1)
seg = Segmenter(tiny_model(), device="cpu")
seg.warmup((48, 64))
h, w = int(sys.argv[2]), int(sys.argv[3])
image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = seg({"rgb": image})
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mib": (after - before) / 1024, "shape": list(result.labels.shape)}))
"""


@pytest.mark.slow
def test_a_huge_frame_costs_megabytes_not_gigabytes() -> None:
    """2000 x 4000 rgb8, 25 classes: the full-resolution path needed about 1.2 GiB here (a
    float copy of the frame, then 25 float maps of 32 MB each and the reductions' temporaries);
    the outputs themselves are 8 MB of labels and 32 MB of confidence."""
    h, w = 2000, 4000
    full_path_logits_mib = 25 * h * w * 4 / 2**20  # what upsampling every class at once holds
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(HERE.parent), str(h), str(w)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [h, w]  # labels still at the camera's size
    assert measured["growth_mib"] < 150, measured
    assert measured["growth_mib"] < full_path_logits_mib / 4, measured


@pytest.mark.parametrize(
    ("in_hw", "size", "batch"),
    [((300, 500), 64, 1), ((500, 300), 48, 2), ((37, 41), 64, 1)],  # up, up, down-sampling
)
def test_banded_postprocessing_equals_the_one_call_path(in_hw, size: int, batch: int) -> None:
    torch.manual_seed(sum(in_hw))
    box = letterbox_params(*in_hw, size)
    logits = torch.randn(batch, 7, size, size) * 3
    kept = logits.clone()
    whole = torch.softmax(unletterbox(logits, box, mode="bilinear"), dim=1).max(dim=1)
    confidence, ids = labels_and_confidence(logits, box, band_bytes=7 * batch * in_hw[1] * 4 * 5)
    assert torch.equal(logits, kept)  # the model's output is not overwritten
    assert confidence.shape == ids.shape == (batch, *in_hw)
    torch.testing.assert_close(confidence, whole.values, rtol=1e-5, atol=1e-6)
    assert (ids.long() == whole.indices).float().mean() > 0.9999


def test_shrink_to_box_keeps_channels_and_sparse_values() -> None:
    box = letterbox_params(400, 600, 64)  # 43 x 64
    mono = np.random.default_rng(1).integers(0, 256, (400, 600, 1), dtype=np.uint8)
    assert shrink_to_box(mono, box, "depth").shape == (43, 64, 1)
    sparse = np.zeros((400, 600, 3), np.uint8)
    sparse[::7, ::5] = 200  # isolated returns
    shrunk = shrink_to_box(sparse, box, "lidar")
    assert shrunk.shape == (43, 64, 3) and set(np.unique(shrunk)) <= {0, 200}
    smooth = shrink_to_box(sparse, box, "rgb")
    assert 0 < smooth.mean() < 200 and len(np.unique(smooth)) > 2  # area averaging
    small = np.zeros((40, 60, 3), np.uint8)
    assert shrink_to_box(small, box, "rgb") is small  # not larger than the box: untouched


def test_a_large_frame_is_shrunk_before_upload(segmenter) -> None:
    image = np.random.default_rng(2).integers(0, 256, (480, 960, 3), dtype=np.uint8)
    seen: list[tuple[int, ...]] = []
    upload = segmenter._upload

    def record(name: str, array: np.ndarray) -> torch.Tensor:
        seen.append(array.shape)
        return upload(name, array)

    segmenter._upload = record
    try:
        result = segmenter({"rgb": image, "lidar": image})
    finally:
        segmenter._upload = upload
    assert seen == [(32, 64, 3), (32, 64, 3)]  # the 64 px model's letterbox, not 480 x 960
    assert result.labels.shape == (480, 960) and result.confidence.shape == (480, 960)

"""A compiled Segmenter replays its graphs across frames of different sensor subsets.

``compile="reduce-overhead"`` on CUDA: one graph (with CUDA graphs) per modality set, recorded at
warm-up and replayed as the sensors come and go. A replay reuses the graph's output memory, so a
result that still pointed into it would change when the next frame runs; every result is
therefore compared with an eager Segmenter only after the whole sequence.
CUDA only: compiling on a CPU works too but takes minutes per graph on a small machine, and the
CPU's eager fallback is already tested (test/inference/test_segmenter_perf.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from segmenter_helpers import frame, tiny_model

from sam_moelora_ros.inference.segmenter import Segmenter

pytestmark = [pytest.mark.cuda, pytest.mark.slow]

SUBSETS = [("rgb", "depth", "event", "lidar"), ("rgb",), ("depth", "lidar")]


def test_compiled_graphs_replay_across_sensor_subsets() -> None:
    mode = "reduce-overhead"
    compiled = Segmenter(tiny_model(seed=4), device="cuda", compile=mode)
    eager = Segmenter(tiny_model(seed=4), device="cuda")
    assert compiled.compile_mode == mode
    compiled.warmup((48, 64), modality_sets=SUBSETS)
    sequence = [SUBSETS[i % len(SUBSETS)] for i in range(2 * len(SUBSETS))]  # each set twice
    inputs = [frame(48, 64, names=names, seed=i) for i, names in enumerate(sequence)]
    results = [compiled(images) for images in inputs]  # all first: later replays must not
    assert compiled.compile_mode == mode, "compiling failed and the Segmenter fell back to eager"
    for names, images, got in zip(sequence, inputs, results, strict=True):
        want = eager(images)
        assert got.modalities == want.modalities == names
        assert (got.labels == want.labels).mean() >= 0.999, f"{names}: labels differ from eager"
        np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-4)
        assert got.router_weights.keys() == want.router_weights.keys()
        for name, weight in want.router_weights.items():
            assert got.router_weights[name] == pytest.approx(weight, abs=1e-4)

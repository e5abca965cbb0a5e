"""Live replay over Fast DDS: our bag player -> the real node -> the recorder, vs the offline path.

Why the two paths can be compared label for label: both decode with the same functions, build
frames with the same ``Synchronizer`` configuration and segment with the same ``Segmenter``; they
differ only in the synchroniser's receive clock (offline ``now = stamp``: zero transport delay;
live: the wall clock, so real DDS and scheduling delays). A frame's content can only differ when
a sensor's next message arrives after the frame's ``max_wait`` live but not offline. So this test
gives both paths the same generous ``max_wait`` (2 s, far above any delay here), stale timeouts
no delay reaches and no fallback anchor: every frame then settles on the same event in both paths
(each sensor delivered a stamp at or after the anchor's) and holds the same messages, hence the
same labels, exactly.

The one frame that may legitimately differ is the first: its sensors' *first* messages race the
anchor across topics (DDS orders messages per writer, not across writers), and a sensor never
seen is not waited for. Frames the node dropped (latest wins) are simply absent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

FRAMES = 16
MIN_COMMON = 6
"""Live frames expected: about half. With the long wait a 10 Hz LiDAR message settles two 20 Hz
camera frames at once, and the node keeps only the newest pending frame (latest wins, by design)
unless its worker took the older one first."""
SENSORS = ("rgb", "depth", "event", "lidar")
PARAMS = {
    **{f"sensors.{n}.max_wait": 8.0 for n in SENSORS},
    **{f"sensors.{n}.stale_timeout": 30.0 for n in SENSORS},
    "fallback_anchors": ["none"],
}
"""Given to both paths; see the module docstring. Timeouts far above any delivery or scheduling
delay make every frame stamp-determined. On a loaded 2-core machine the node's callbacks were
seen held up for > 0.5 s (the RGB anchor looked silent and LiDAR took over) and, with 2 s waits,
for long enough that frames went out without a partner, so the waits are far longer still."""


def test_live_replay_agrees_with_offline(ros_env, tiny_adapter: Path, tmp_path: Path) -> None:
    from sam_moelora_ros.replay.cli import evaluate_bag
    from sam_moelora_ros.replay.live import run_live
    from sam_moelora_ros.synthetic.cli import main as synthesize

    assert synthesize(
        ["--out", str(tmp_path / "d"), "--frames", str(FRAMES), "--seq-len", str(FRAMES),
         "--seed", "5", "--size", "64x48", "--conditions", "sun", "--bag", "--no-deliver",
         "--no-progress"]
    ) == 0  # fmt: skip
    bag = tmp_path / "d" / "bags" / "synthetic_train_seed5"
    started = time.monotonic()
    live = run_live(
        bag,
        str(tiny_adapter),
        tmp_path / "live",
        rate=0.5,
        env=ros_env,
        node_params=PARAMS,
        idle_s=3.0,
    )
    live_s = time.monotonic() - started
    offline = evaluate_bag(
        bag, tmp_path / "offline", adapter=tiny_adapter, device="cpu", keep_labels=True,
        overlays=False, progress=False, node_params=PARAMS,
    )  # fmt: skip
    frames = json.loads((tmp_path / "offline" / "frames.json").read_text())
    assert len(offline.labels) == FRAMES
    assert all(set(f["present"]) == {"rgb", "depth", "event", "lidar"} for f in frames[1:]), (
        "offline: every frame after the first has all four sensors"
    )

    common = sorted(set(live) & set(offline.labels))
    node_log = (tmp_path / "live" / "node.log").read_text()
    assert len(common) >= MIN_COMMON, (sorted(live), sorted(offline.labels), node_log)
    assert set(live) <= set(offline.labels), ("live frames offline never made", node_log)
    first = min(offline.labels)
    differ = [s for s in common if not np.array_equal(live[s], offline.labels[s])]
    assert [s for s in differ if s != first] == [], (
        f"{len(differ)} of {len(common)} frames differ (first frame {first}): {differ}"
    )
    index = sorted(offline.labels).index
    print(
        f"live {len(live)} frames, offline {len(offline.labels)}, common {len(common)} "
        f"{[index(s) for s in common]}, differ {len(differ)}, live run {live_s:.1f} s"
    )
    metrics = json.loads((tmp_path / "live" / "live_metrics.json").read_text())
    assert metrics["frames_evaluated"] == len(live) and metrics["miou"] is not None
    assert live_s < 60, f"live replay took {live_s:.1f} s"

"""Rosbag replay evaluation: offline (:mod:`.cli`, ``replay_eval``) and live (:mod:`.live`).

The offline core (``pipeline``, ``report``, ``artifacts``, ``scenarios``) imports no rclpy; only
:mod:`.live` (bag player + recorder) does. See docs/replay.md.
"""

from __future__ import annotations

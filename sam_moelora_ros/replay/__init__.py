"""Rosbag replay evaluation: offline (:mod:`.cli`, ``replay_eval``) and live (:mod:`.live`).

The offline core (``pipeline``, ``report``, ``artifacts``, ``scenarios``) and the live replay's
``params_file`` and ``scoring`` import no rclpy; the live part that talks DDS does: ``live``
(:func:`~.live.run_live`), ``player``, ``recorder`` and the CLIs ``live_cli`` (``replay_live``) and
``bag_play``. See docs/replay.md.
"""

from __future__ import annotations

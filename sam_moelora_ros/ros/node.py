"""``sam_moelora_perception``: the ROS 2 node. Sensor topics in, semantic labels out.

A thin adapter (docs/design.md): it declares parameters, subscribes, and hands each message with
its receive time to :class:`~sam_moelora_ros.pipeline.intake.SensorIntake` (decode, stamp check,
health, :class:`~sam_moelora_ros.sync.Synchronizer`); frames go to the
:class:`~sam_moelora_ros.pipeline.worker.InferenceWorker`, which segments and publishes through
the publishers this node owns. Nothing hard lives here, so it all unit-tests without DDS. How
frames are assembled (the synchroniser's configuration, which decoder gets which reference size,
a frame's model inputs) is :mod:`~sam_moelora_ros.pipeline.assembly`, shared with offline bag
replay so the two cannot drift apart.

Threads, and why: subscription callbacks and timers run on the executor thread and only decode
and push (milliseconds); inference (tens of ms to seconds) runs on the
:class:`~sam_moelora_ros.pipeline.worker.InferenceWorker` thread, fed by a queue of one where a
newer frame replaces a pending one (counted as a drop). So a slow model never delays message
handling, the labels are always for the newest frame, and memory does not grow with input rate.
The synchroniser takes its own lock, so the worker and diagnostics may read it concurrently.

Bad input never kills the node: each callback turns any decode error into a throttled warning
and a /diagnostics entry. Start-up problems (a wrong parameter, no model) end the process with a
one-line error naming the parameter and exit code 2.

The phases (parameters, model, outputs, inputs, processing) and their undo are
:class:`~sam_moelora_ros.ros.perception_core.PerceptionCore`'s, shared with the managed variant
:mod:`sam_moelora_ros.ros.lifecycle_node`, which runs them on lifecycle transitions; this node
runs them all at construction.
"""

from __future__ import annotations

import sys
from typing import Any

from sam_moelora_ros.ros.perception_core import PerceptionCore
from sam_moelora_ros.ros.startup import run_node, spin_interruptibly

__all__ = ["PerceptionNode", "main"]


class PerceptionNode(PerceptionCore):
    """The perception node; see the module docstring and ``config/perception.yaml``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = self._declare_and_validate()
        cfg = self.config
        self._open_tf(cfg)
        self._subscribe(cfg)  # before the model: a bad message_type fails at once
        self._load_model(cfg)
        self._create_outputs(self.create_publisher)
        self._watch_output_parameters()
        self._start_processing(cfg)
        self._publish_label_info()
        self._log_ready(cfg)


def main(args: list[str] | None = None) -> int:
    """Console script ``perception_node``: spin until SIGINT; exit 2 on a start-up error.

    ``--params-file`` arguments are checked before ``rclpy.init`` (rcl would end with a traceback
    on a file that is not YAML, and block forever on a named pipe); whatever else rcl refuses in
    the command line is one line and exit 2 as well.
    """
    return run_node(PerceptionNode, spin_interruptibly, args)


if __name__ == "__main__":
    sys.exit(main())

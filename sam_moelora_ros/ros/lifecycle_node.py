"""``perception_lifecycle_node``: the perception node as a managed (lifecycle) node.

The same node as :mod:`sam_moelora_ros.ros.node` (same name, parameters, topics, diagnostics),
driven through the standard lifecycle (``ros2 lifecycle set``, nav2's lifecycle manager,
launch_ros' ``LifecycleNode``) instead of starting everything at once. Each transition runs the
shared phases of :class:`~sam_moelora_ros.ros.perception_core.PerceptionCore`:

- *unconfigured* (at start): parameters declared, nothing loaded;
- **configure**: validate the parameters, load the model and warm it up, create the output
  publishers (lifecycle publishers: they publish only while active). A bad parameter or a model
  that cannot start is ``FAILURE`` with the same one-line message the plain node exits with
  (``configure failed: parameter 'model.adapter' = ...``); the node stays unconfigured;
- **activate**: subscribe the sensors, start the synchroniser, the inference worker and the
  timers; labels and /diagnostics flow;
- **deactivate**: unsubscribe and stop the worker (nothing is received, nothing published); the
  model stays loaded, so a later activate is immediate;
- **cleanup**: unload the model and destroy the publishers (back to unconfigured);
- **shutdown** (from any state): tear down what exists; the process then exits with code 0.
  Ctrl-C does the same.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import rclpy
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle.publisher import LifecyclePublisher
from rclpy.publisher import Publisher

from sam_moelora_ros.ros.perception_core import PerceptionCore
from sam_moelora_ros.ros.startup import (
    StartupError,
    make_executor,
    run_node,
    signals_stop_the_spin,
)

__all__ = ["FLUSH_S", "PerceptionLifecycleNode", "main"]

FLUSH_S = 0.5
"""After the shutdown transition the node spins this long more, so that the reply to the
``change_state`` call that asked for it reaches the caller before the process exits."""


class PerceptionLifecycleNode(LifecycleNodeMixin, PerceptionCore):
    """The managed perception node; see the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        PerceptionCore.__init__(self, **kwargs)
        LifecycleNodeMixin.__init__(self)
        self._declare_parameters()  # a wrong-typed value still ends the process (exit 2)
        self._watch_output_parameters()
        self.finalized = False
        """True once shut down: :func:`main` stops spinning."""
        self.get_logger().info("unconfigured: parameters declared; configure loads the model")

    # ------------------------------------------------------------------ transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.config = cfg = self._current_config()
            self._open_tf(cfg)
            self._load_model(cfg)
            self._create_outputs(self.create_lifecycle_publisher)
        except Exception as exc:  # say why, whatever failed (rclpy's on_error would not)
            self._unload_model()
            self.get_logger().error(f"configure failed: {_reason(exc)}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: model {self.segmenter.describe()}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._subscribe(self.config)
            self._start_processing(self.config)
        except Exception as exc:  # say why, whatever failed (rclpy's on_error would not)
            self._stop_processing()
            self.get_logger().error(f"activate failed: {_reason(exc)}")
            return TransitionCallbackReturn.FAILURE
        result = super().on_activate(state)  # enables the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            self._stop_processing()
            return result
        self._publish_label_info()
        self._log_ready(self.config)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_deactivate(state)  # disables the lifecycle publishers
        self._stop_processing()
        self.get_logger().info("inactive: processing stopped, the model stays loaded")
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unload_model()
        self.get_logger().info("unconfigured: model unloaded")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self.finalized = True
        self.get_logger().info("finalized: shutting down")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: tear everything down and go back to unconfigured."""
        self.get_logger().error(f"error during a transition from {state.label}; cleaning up")
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ teardown
    def _teardown(self) -> None:
        """Whatever the state: stop processing, unload the model (both are idempotent)."""
        self._stop_processing()
        self._unload_model()

    def _destroy_publisher(self, publisher: Publisher) -> None:
        if isinstance(publisher, LifecyclePublisher):
            self.destroy_lifecycle_publisher(publisher)
        else:
            super()._destroy_publisher(publisher)

    def close(self, timeout_s: float = 5.0) -> None:
        """Ctrl-C or the end of :func:`main`: tear down whatever the transitions left."""
        self._stop_processing(timeout_s)
        self._unload_model()
        super().close(timeout_s)


def _reason(exc: Exception) -> str:
    """A failed transition's one line: a StartupError's text, else the exception's type too."""
    return str(exc) if isinstance(exc, StartupError) else f"{type(exc).__name__}: {exc}"


def _spin_until_finalized(node: PerceptionCore) -> None:
    assert isinstance(node, PerceptionLifecycleNode)
    executor = make_executor(node)
    executor.add_node(node)
    try:
        with signals_stop_the_spin() as stopped:
            while rclpy.ok() and not node.finalized and not stopped():
                executor.spin_once(timeout_sec=0.1)
            flush_until = time.monotonic() + FLUSH_S
            while rclpy.ok() and not stopped() and time.monotonic() < flush_until:
                executor.spin_once(timeout_sec=0.05)
    finally:
        executor.remove_node(node)
        executor.shutdown()


def main(args: list[str] | None = None) -> int:
    """Console script ``perception_lifecycle_node``: spin until shut down (the lifecycle's
    shutdown transition, or SIGINT), then exit 0; exit 2 on a wrong parameter type at start."""
    return run_node(PerceptionLifecycleNode, _spin_until_finalized, args)


if __name__ == "__main__":
    sys.exit(main())

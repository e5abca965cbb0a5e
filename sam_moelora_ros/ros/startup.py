"""The process around a perception node, and the one-line errors a node cannot start with.

:func:`run_node` is what both console scripts run (``--params-file`` checks, ``rclpy.init``,
one-line start-up errors with exit code 2, clean Ctrl-C); :class:`StartupError` is what a phase
of :class:`~sam_moelora_ros.ros.perception_core.PerceptionCore` raises when a parameter or the
model is unusable (a model's error already names the parameter to fix:
:func:`~sam_moelora_ros.inference.from_params.load_segmenter`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Protocol, TypeVar

import rclpy
import rclpy.logging
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.params.params_file import ParamsFileError, check_params_files
from sam_moelora_ros.params.specs import SPECS, ParameterError
from sam_moelora_ros.ros.process import NODE_NAME

__all__ = [
    "StartupError",
    "make_executor",
    "run_node",
    "signals_stop_the_spin",
    "spin_interruptibly",
]

SPIN_WAKE_S = 0.1
"""Longest the executor waits in rcl before Python sees a pending Ctrl-C (see run_node)."""


class StartupError(SamMoeLoraError, RuntimeError):
    """The node cannot start (bad parameter, missing model); the message says what to fix."""


class ClosableNode(Protocol):
    """What :func:`run_node` needs of the node it runs (a
    :class:`~sam_moelora_ros.ros.perception_core.PerceptionCore`, which imports this module: so
    the process side names only these two methods)."""

    def close(self) -> None: ...

    def destroy_node(self) -> None: ...


NodeT = TypeVar("NodeT", bound=ClosableNode)


def _fatal(message: str) -> int:
    rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {message}")
    return 2


_STOP = threading.Event()
"""Set by Ctrl-C / SIGTERM: the spin loops end at their next wake-up."""
_SPINNING = threading.Event()
"""Set while a spin loop runs (:func:`signals_stop_the_spin`)."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _STOP.set()
    if not _SPINNING.is_set():  # starting up: stop now
        raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def signals_stop_the_spin() -> Iterator[Callable[[], bool]]:
    """While spinning, a signal only asks the loop to end (the callable says whether it did).

    Why not raise KeyboardInterrupt there too: the handler runs wherever the main thread is, and
    inside rclpy's C++ calls (taking a message) pybind11 turns the exception into "RuntimeError:
    Unable to convert call argument", a traceback and exit 1 instead of a clean stop.
    """
    _SPINNING.set()
    try:
        yield _STOP.is_set
    finally:
        _SPINNING.clear()


def make_executor(node: Node) -> Executor:
    """The executor the node's ``executor`` parameter names, for its context.

    Why ``events`` by default: rclpy's Python executors rebuild their wait set in Python for
    every callback they run; on a node taking ~70 sensor messages a second that was 70 % of its
    executor thread's samples (py-spy), and every one of them held the interpreter lock the
    inference worker's forward pass needs. rclpy's EventsExecutor (``rclpy.experimental``, C++)
    halved the executor thread's CPU in ``bench/bench_node.py`` (README, "Performance"). Humble's
    rclpy has none: the single-threaded executor then, said once in the log.
    """
    spec = SPECS["executor"]
    kind = node.get_parameter(spec.name).value if node.has_parameter(spec.name) else spec.default
    problem = spec.check(kind) if spec.check is not None else None
    if problem is not None:  # the lifecycle node validates its parameters only on configure
        raise StartupError(str(ParameterError(spec.name, kind, problem)))
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            node.get_logger().info(
                "executor: this rclpy has no EventsExecutor (it came after Humble); "
                "using single_threaded"
            )
        else:
            return EventsExecutor(context=node.context)
    return SingleThreadedExecutor(context=node.context)


def spin_interruptibly(node: Node) -> None:
    """Spin until the context ends or a signal asks to stop, waking every :data:`SPIN_WAKE_S`
    so that the request is seen even when no timer fires."""
    executor = make_executor(node)
    executor.add_node(node)
    try:
        with signals_stop_the_spin() as stopped:
            while node.context.ok() and not stopped():
                executor.spin_once(timeout_sec=SPIN_WAKE_S)
    finally:
        executor.remove_node(node)


def run_node(
    make: Callable[[], NodeT],
    spin: Callable[[NodeT], None],
    args: list[str] | None = None,
) -> int:
    """The process around a perception node: ``make`` it, ``spin`` it until SIGINT (or until
    ``spin`` returns); exit 2 on a start-up error.

    ``--params-file`` arguments are checked before ``rclpy.init`` (rcl would end with a traceback
    on a file that is not YAML, and block forever on a named pipe); whatever else rcl refuses in
    the command line is one line and exit 2 as well.

    Ctrl-C and SIGTERM: rclpy's own handlers shut the ROS context down the moment the signal
    arrives, while the inference thread may be publishing a frame ("publisher's context is
    invalid", a traceback on every stop). So rclpy installs none here; the signal ends the spin
    loop (:func:`signals_stop_the_spin`; KeyboardInterrupt while starting up), and the node's
    worker is stopped (:meth:`PerceptionCore.close`) before the node and the context go.
    """
    try:
        check_params_files(sys.argv if args is None else args)
    except ParamsFileError as exc:
        return _fatal(str(exc))
    _STOP.clear()
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except RCLError as exc:  # e.g. a params file in a layout rcl does not accept
        reason = str(exc).splitlines()[0].split(", at /")[0]
        return _fatal(f"the ROS command line was refused: {reason}")
    node: NodeT | None = None
    code = 0
    try:
        node = make()
        spin(node)
    except StartupError as exc:
        code = _fatal(str(exc))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code

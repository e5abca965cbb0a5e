"""The process around a perception node, and the one-line errors a node cannot start with.

:func:`run_node` is what both console scripts run (``--params-file`` checks, ``rclpy.init``,
one-line start-up errors with exit code 2, clean Ctrl-C); :class:`StartupError` is what a phase
of :class:`~sam_moelora_ros.ros.perception_core.PerceptionCore` raises when a parameter or the
model is unusable, and :func:`model_startup_error` turns a model's error into one naming the
parameter to fix.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

import rclpy
import rclpy.logging
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.inference.device import SegmenterError
from sam_moelora_ros.params import NodeConfig
from sam_moelora_ros.params.params_file import ParamsFileError, check_params_files
from sam_moelora_ros.ros.process import NODE_NAME

__all__ = ["StartupError", "model_startup_error", "run_node"]


class StartupError(SamMoeLoraError, RuntimeError):
    """The node cannot start (bad parameter, missing model); the message says what to fix."""


_MODEL_PARAMETERS = {
    "sam_checkpoint": ("model.sam_checkpoint", "sam_checkpoint"),
    "device": ("model.device", "device"),
    "dtype": ("model.dtype", "dtype"),
    "compile": ("model.compile", "compile_mode"),
    "backend": ("model.backend", "backend"),
    "providers": ("model.providers", "providers"),
}
"""``SegmenterError.input_name`` -> (the parameter to name, its NodeConfig field); anything else
(the adapter, its weights, the warm-up) is ``model.adapter``."""


def model_startup_error(cfg: NodeConfig, exc: SegmenterError) -> StartupError:
    """The one line for a model that cannot start, naming the parameter to fix."""
    name, field = _MODEL_PARAMETERS.get(exc.input_name, ("model.adapter", "adapter"))
    value = getattr(cfg, field)
    value = list(value) if isinstance(value, tuple) else value
    hint = ""
    if name == "model.adapter" and not cfg.adapter:
        hint = "; e.g. perception_node --ros-args -p model.adapter:=/path/to/adapter.safetensors"
    return StartupError(f"parameter '{name}' = {value!r}: {exc}{hint}")


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
    """
    try:
        check_params_files(sys.argv if args is None else args)
    except ParamsFileError as exc:
        return _fatal(str(exc))
    try:
        rclpy.init(args=args)
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

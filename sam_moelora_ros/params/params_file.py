"""The node's ``--params-file`` arguments, checked before rcl reads them. No rclpy.

Why: rcl parses a params file inside ``rclpy.init()``, so a file that is not YAML ends the node
with an ``RCLError`` traceback (exit 1), and a named pipe (FIFO) blocks ``init`` forever waiting
for a writer. :func:`check_params_files` finds every ``--params-file`` of the command line and
refuses, in one line naming the file, what rcl would choke on: a path that is not a regular file,
text that is not YAML, or YAML whose top level is not a mapping of node names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.files import regular_file_problem
from sam_moelora_ros.safe_yaml import YamlLimitError, load_yaml

__all__ = ["ParamsFileError", "check_params_files", "params_file_arguments"]


class ParamsFileError(SamMoeLoraError, ValueError):
    """A ``--params-file`` the node cannot use (the message names the file and the fix)."""


def params_file_arguments(argv: Sequence[str]) -> list[str]:
    """The values of every ``--params-file FILE`` in ``argv`` (ROS 2's command-line form)."""
    return [argv[i + 1] for i, token in enumerate(argv[:-1]) if token == "--params-file"]


def check_params_file(path: str) -> None:
    """Raise :class:`ParamsFileError` unless ``path`` is a readable YAML mapping."""
    problem = regular_file_problem(path, "check the path given to --params-file")
    if problem is not None:
        raise ParamsFileError(f"--params-file {problem}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ParamsFileError(f"--params-file {path} is unreadable ({reason})") from exc
    try:
        data = load_yaml(text)
    except YamlLimitError as exc:
        raise ParamsFileError(f"--params-file {path} {exc}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ParamsFileError(
            f"--params-file {path} is not valid YAML{at}; fix it (config/perception.yaml shows "
            "the layout: <node name>: {ros__parameters: {...}})"
        ) from exc
    if not isinstance(data, dict):
        raise ParamsFileError(
            f"--params-file {path} holds a {type(data).__name__}, not a mapping of node names; "
            "use the layout of config/perception.yaml: <node name>: {ros__parameters: {...}}"
        )


def check_params_files(argv: Sequence[str]) -> None:
    """:func:`check_params_file` for every ``--params-file`` in ``argv``, in order."""
    for path in params_file_arguments(argv):
        check_params_file(path)

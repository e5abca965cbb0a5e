"""Refuse paths that are not regular files before anything opens them.

Why: ``open()`` on a named pipe (FIFO) blocks until some other process opens it for writing, so a
FIFO passed as a params file, training config, adapter, SAM checkpoint or bag file would hang the
node or the command line forever with no message; a character device (``/dev/zero``) never ends.
:func:`regular_file_problem` looks at the path with ``os.stat`` (which never blocks) and says
what is wrong in words a user can act on; :func:`require_regular_file` raises the caller's own
error type with it, so each loader keeps its error class and its wording.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

__all__ = ["regular_file_problem", "require_regular_file"]

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def regular_file_problem(path: str | Path, missing_fix: str = "check the path") -> str | None:
    """Why ``path`` cannot be read as a file (without opening it), or None when it is a file.

    Symbolic links are followed (a link to a regular file is fine). The text starts with the
    path, so callers prefix what the file is: ``f"adapter file {problem}"``.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{path} does not exist ({missing_fix})"
    except OSError as exc:
        return f"{path} cannot be examined ({exc.strerror or exc}); check the path and its folders"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{path} is a directory, not a file; pass the path of the file inside it"
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return (
        f"{path} is {kind}, not a regular file; reading it could wait forever for a writer, so "
        "it was not opened: copy the data into a regular file and pass that"
    )


def require_regular_file(
    path: str | Path,
    *,
    what: str,
    error: Callable[[str], Exception],
    missing_fix: str = "check the path",
) -> None:
    """Raise ``error(f"{what} {problem}")`` unless ``path`` is a regular file."""
    problem = regular_file_problem(path, missing_fix)
    if problem is not None:
        raise error(f"{what} {problem}")

"""One way to read and check a safetensors file: its metadata and tensors, or a clear error.

Adapters (:mod:`.checkpoint`), SAM checkpoints in safetensors form (:mod:`.sam_checkpoint`) and
training states (``training/state.py``) all read files through :func:`read_safetensors`, so they
report problems the same way. Each caller passes its own exception class and the words for its
file (``what``, and the fix for a damaged one); the helper tells apart what went wrong, because
each has a different fix:

* the path does not exist;
* the path is a directory;
* the file cannot be read (permission denied, or another OS error, with its reason);
* the bytes are not a (complete) safetensors file: truncated, or some other format;
* the metadata names another format, or a format version this package does not read.

The file is opened with plain ``open()`` first: the OS then says precisely why it cannot be read
(``safe_open`` would report a directory as "No such device", from its ``mmap``), and only a file
that opens is handed to ``safe_open``, so its errors are about the content.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from sam_moelora_ros.files import regular_file_problem

__all__ = [
    "SafetensorsContents",
    "SafetensorsFormat",
    "ensure_readable",
    "read_safetensors",
    "write_safetensors",
]

ErrorType = Callable[[str], Exception]
"""An exception class (or factory) taking the message: the caller's own error type."""


@dataclass(frozen=True)
class SafetensorsFormat:
    """The ``format`` / ``format_version`` metadata a project file must carry.

    Attributes:
        name: the metadata ``format`` value (``"sam_moelora_ros.adapter"``).
        version: the metadata ``format_version`` value this package reads.
        writer: what writes such files (named in the fix when another format is found).
    """

    name: str
    version: str
    writer: str


class SafetensorsContents(NamedTuple):
    """A safetensors file's string metadata and its tensors, on the CPU."""

    metadata: dict[str, str]
    tensors: dict[str, torch.Tensor]


def read_safetensors(
    path: str | Path,
    *,
    what: str,
    error: ErrorType,
    fix: str,
    missing_fix: str = "check the path",
    expect: SafetensorsFormat | None = None,
    with_tensors: bool = True,
) -> SafetensorsContents:
    """Read every tensor and the metadata of ``path``, or raise ``error`` saying what is wrong.

    Args:
        path: the file.
        what: what the file is, for messages (``"adapter file"``, ``"SAM checkpoint"``).
        error: the exception type to raise; it receives the message.
        fix: what to do about a truncated or foreign file (``"re-export it with ..."``).
        missing_fix: what to do when the path does not exist.
        expect: the project format the metadata must name; ``None`` accepts any safetensors file.
        with_tensors: False reads the metadata alone (the tensors dict comes back empty): what
            must be checked before anything is allocated, e.g. an adapter's model config.
    """
    path = Path(path)
    ensure_readable(path, what=what, error=error, missing_fix=missing_fix)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            keys = handle.keys() if with_tensors else []
            tensors = {key: handle.get_tensor(key) for key in keys}
    except OSError as exc:  # e.g. the file vanished or the disk failed between the two opens
        raise error(_describe_os_error(path, what, exc, missing_fix)) from exc
    except (SafetensorError, ValueError) as exc:
        raise error(f"{what} {path} is truncated or not a safetensors file ({exc}); {fix}") from exc
    if expect is not None:
        _check_format(path, what, metadata, expect, error)
    return SafetensorsContents(metadata, tensors)


def write_safetensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]
) -> Path:
    """Write ``tensors`` atomically, readable by others as the umask allows.

    safetensors writes 0600; a model file is one to share. The temporary file is renamed into
    place, so a crash never leaves a half-written file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    tmp.replace(path)
    return path


def ensure_readable(
    path: str | Path, *, what: str, error: ErrorType, missing_fix: str = "check the path"
) -> None:
    """Open ``path`` for reading (and close it), or raise ``error`` saying why the OS refused.

    Also for files that are not safetensors (SAM's ``.pth``): their loaders would report an
    unreadable file as a corrupt one. A named pipe or a device is refused without opening it
    (opening a FIFO blocks until a writer appears: the caller would hang forever).
    """
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None  # open() below says why, by cause
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise error(f"{what} {regular_file_problem(path)}")
    try:
        with Path(path).open("rb"):
            pass
    except OSError as exc:
        raise error(_describe_os_error(Path(path), what, exc, missing_fix)) from exc


def _describe_os_error(path: Path, what: str, exc: OSError, missing_fix: str) -> str:
    """The message for a file the OS would not let us read, by cause (each has its own fix)."""
    if isinstance(exc, FileNotFoundError):
        return f"{what} {path} does not exist ({missing_fix})"
    if isinstance(exc, IsADirectoryError):
        return f"{what} {path} is a directory, not a file; pass the path of the file inside it"
    if exc.errno == errno.ENODEV:  # safe_open's mmap of something that is not a regular file
        return f"{what} {path} is not a regular file; pass the path of the file itself"
    if isinstance(exc, PermissionError):
        return (
            f"{what} {path} is unreadable (permission denied); give this user read access "
            "(e.g. chmod a+r) or run as a user who can read it"
        )
    reason = exc.strerror or str(exc)
    return f"{what} {path} is unreadable ({reason}); check the file and the disk, then retry"


def _check_format(
    path: Path, what: str, metadata: dict[str, str], expect: SafetensorsFormat, error: ErrorType
) -> None:
    found = metadata.get("format")
    if found != expect.name:
        raise error(
            f"{path} is a safetensors file but not a sam_moelora_ros {what}: its metadata format "
            f"is {found!r}, expected {expect.name!r}; pass a file written by {expect.writer}"
        )
    version = metadata.get("format_version")
    if version != expect.version:
        raise error(
            f"{path}: {what} format_version {version!r} is not supported (this package reads "
            f"{expect.version}); re-write it with this version's {expect.writer}"
        )

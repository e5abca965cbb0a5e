"""The one safetensors reader: contents back, and each failure told apart by its cause."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sam_moelora_ros.model.safetensors_io import (
    SafetensorsFormat,
    ensure_readable,
    read_safetensors,
)

FORMAT = SafetensorsFormat("sam_moelora_ros.example", "1", writer="write_example()")


class ExampleError(Exception):
    """Stands for a caller's own error type (CheckpointError, TrainStateError)."""


def _read(path: Path, expect: SafetensorsFormat | None = FORMAT):
    return read_safetensors(
        path,
        what="example file",
        error=ExampleError,
        fix="write it again",
        missing_fix="pass an existing file",
        expect=expect,
    )


def _write(path: Path, **metadata: str) -> Path:
    meta = {"format": FORMAT.name, "format_version": FORMAT.version, **metadata}
    save_file({"w": torch.arange(6.0).view(2, 3), "n": torch.tensor([7])}, str(path), meta)
    return path


def test_a_good_file_gives_its_metadata_and_tensors(tmp_path):
    contents = _read(_write(tmp_path / "good.safetensors", extra="x"))
    assert contents.metadata["extra"] == "x"
    assert set(contents.tensors) == {"w", "n"}
    assert torch.equal(contents.tensors["w"], torch.arange(6.0).view(2, 3))


def test_any_safetensors_file_is_accepted_without_an_expected_format(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(path))
    assert set(_read(path, expect=None).tensors) == {"x"}


def test_a_missing_file_says_so_with_the_callers_fix(tmp_path):
    with pytest.raises(ExampleError, match=r"example file .*nothere\.st does not exist \(pass an"):
        _read(tmp_path / "nothere.st")


def test_a_directory_is_named_as_one_not_as_a_damaged_file(tmp_path):
    """A real OSError (EISDIR): classified by its cause, not lumped in with corrupt files."""
    folder = tmp_path / "run.safetensors"
    folder.mkdir()
    with pytest.raises(ExampleError, match="is a directory, not a file") as info:
        _read(folder)
    assert "truncated" not in str(info.value)
    assert isinstance(info.value.__cause__, IsADirectoryError)
    with pytest.raises(ExampleError, match="is a directory"):
        ensure_readable(folder, what="example file", error=ExampleError)


def test_a_file_without_read_permission_is_unreadable_not_truncated(tmp_path):
    path = _write(tmp_path / "locked.safetensors")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user (root) reads files whatever their permissions")
        with pytest.raises(ExampleError, match="locked.safetensors is unreadable .permission"):
            _read(path)
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize("keep", [0, 5, 60], ids=["empty", "header-cut", "data-cut"])
def test_truncated_bytes_are_reported_with_the_fix(tmp_path, keep):
    whole = _write(tmp_path / "whole.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole[:keep] if keep < 60 else whole[:-8])
    with pytest.raises(ExampleError, match="cut.safetensors is truncated or not a safetensors.*"):
        _read(cut)
    with pytest.raises(ExampleError, match="write it again"):
        _read(cut)


def test_another_format_or_version_is_rejected_naming_both(tmp_path):
    other = _write(tmp_path / "other.safetensors", format="someone.else")
    with pytest.raises(ExampleError, match="not a sam_moelora_ros example file.*'someone.else'"):
        _read(other)
    newer = _write(tmp_path / "newer.safetensors", format_version="2")
    with pytest.raises(ExampleError, match=r"format_version '2' is not supported.*reads 1"):
        _read(newer)

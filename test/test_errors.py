"""One exception base: every exception class the package defines (``training`` included) derives
from :class:`sam_moelora_ros.errors.SamMoeLoraError`, so a caller catches the package's errors as
one type, and keeps its builtin base, so ``except ValueError`` written against it still works.

Every module is imported (found by walking the source folders, so a new module is covered
without editing this test) and each exception class defined in it is checked.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import sam_moelora_ros
from sam_moelora_ros.errors import SamMoeLoraError

ROOT = Path(sam_moelora_ros.__file__).resolve().parent
TRAINING = ROOT.parent / "training"


def _module_names() -> list[str]:
    names = []
    for base, prefix in ((ROOT, "sam_moelora_ros"), (TRAINING, "sam_moelora_ros.training")):
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            if base == ROOT and parts[0] == "training":
                continue  # the symlink: walked as TRAINING
            if parts[-1] == "__main__":
                continue  # runs a command when imported
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join((prefix, *parts)))
    return names


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _module_names():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not issubclass(value, Warning)
            ):
                found[f"{name}.{attr}"] = value
    return found


def test_the_walk_finds_the_package_and_training_errors():
    found = _defined_exceptions()
    assert "sam_moelora_ros.params.specs.ParameterError" in found
    assert "sam_moelora_ros.training.config.TrainConfigError" in found
    assert "sam_moelora_ros.ros.startup.StartupError" in found
    assert len(found) >= 27


def test_every_exception_class_derives_from_the_package_base():
    found = _defined_exceptions()
    strays = sorted(name for name, cls in found.items() if not issubclass(cls, SamMoeLoraError))
    assert not strays, f"not derived from SamMoeLoraError: {strays}"


@pytest.mark.parametrize(
    ("module", "name", "builtin"),
    [
        ("sam_moelora_ros.params", "ParameterError", ValueError),
        ("sam_moelora_ros.model", "CheckpointError", RuntimeError),
        ("sam_moelora_ros.inference.device", "DeviceError", RuntimeError),
        ("sam_moelora_ros.ros.message_types", "MessagePackageMissing", ImportError),
        ("sam_moelora_ros.training.config", "TrainConfigError", ValueError),
    ],
)
def test_the_builtin_bases_are_kept(module, name, builtin):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, SamMoeLoraError) and issubclass(cls, builtin)


def test_one_except_clause_catches_errors_from_different_layers():
    from sam_moelora_ros.bag import BagReader
    from sam_moelora_ros.params import build_config

    with pytest.raises(SamMoeLoraError, match="model.device"):
        build_config({"model.device": 3})
    with pytest.raises(SamMoeLoraError):
        BagReader("/nonexistent/bag")

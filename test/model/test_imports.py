"""The package imports in one direction: no module, and no subpackage, imports one that
(in)directly imports it back.

Read from the source with ``ast``, every import counted: those inside functions (where the old
``backbone.build_backbone`` hid its import of ``encoder``/``hiera`` while those imported
``backbone``, and where ``params/specs.py`` imported ``params/cameras.py`` back), and those under
``if TYPE_CHECKING:`` (``ros/startup.py`` named ``ros/perception_core.py``'s class that way while
that module imported it): a lazy or type-only import keeps a circle from failing at import time,
not from tying the two modules together.

Two levels are checked over all of ``sam_moelora_ros`` (``training/`` included, as the
``sam_moelora_ros.training`` it is installed as):

* modules: ``a`` imports ``b`` when it names ``b`` or something defined in it;
* subpackages (``export``, ``inference``, ...; a top-level module is its own node): ``export``
  running the ONNX Runtime backend of ``inference`` while ``inference`` read the manifest of
  ``export`` was a circle of this kind, though no two modules in it imported each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sam_moelora_ros

PACKAGE = "sam_moelora_ros"
ROOT = Path(sam_moelora_ros.__file__).resolve().parent
TRAINING = ROOT.parent / "training"
"""``sam_moelora_ros/training`` is a symlink to it (globbing does not follow it)."""


def _module_name(path: Path) -> str:
    if path.is_relative_to(TRAINING):
        parts = ("training", *path.relative_to(TRAINING).with_suffix("").parts)
    else:
        parts = path.relative_to(ROOT).with_suffix("").parts
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def _sources() -> dict[str, Path]:
    paths = [p for p in ROOT.rglob("*.py") if "training" not in p.relative_to(ROOT).parts[:1]]
    paths += TRAINING.rglob("*.py")
    return {_module_name(path): path for path in sorted(paths)}


def _imported(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules of this package that ``tree`` (module ``module``) imports, anywhere in it."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, node.module] if node.module else parts)
            else:
                base = node.module or ""
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules
            if len(submodules) < len(node.names):  # a name defined in ``base`` itself
                found.add(base)
            found |= submodules
    return (found & modules) - {module}


def _graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, from ``{module: source}`` (a package's module
    name ends in ``.__init__`` there, so relative imports resolve)."""
    names = {m.removesuffix(".__init__"): m for m in sources}
    modules = set(names)
    return {
        name: _imported(ast.parse(sources[key]), name, key.endswith(".__init__"), modules)
        for name, key in names.items()
    }


def _package_graph() -> dict[str, set[str]]:
    return _graph(
        {
            (f"{name}.__init__" if path.stem == "__init__" else name): path.read_text()
            for name, path in _sources().items()
        }
    )


def _subpackage(module: str) -> str | None:
    """``sam_moelora_ros.<first>``, or None for the package's own ``__init__``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else None


def _subpackage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, imported in graph.items():
        here = _subpackage(module)
        if here is None:
            continue
        out.setdefault(here, set())
        for other in imported:
            there = _subpackage(other)
            if there is not None and there != here:
                out[here].add(there)
    return out


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]`` (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_graph_sees_every_module_and_its_imports():
    graph = _package_graph()
    assert f"{PACKAGE}.model.vit" in graph and f"{PACKAGE}.model.encoder" not in graph
    assert f"{PACKAGE}.model.backbone" in graph[f"{PACKAGE}.model.vit"]
    assert f"{PACKAGE}.model.build" in graph[f"{PACKAGE}.model.segmentor"]
    # training/ through the symlink, with its relative imports
    assert f"{PACKAGE}.training.config" in graph[f"{PACKAGE}.training.loop"]
    # a function-level import (factory imports the ONNX backend only when asked for)
    assert f"{PACKAGE}.inference.onnx_backend" in graph[f"{PACKAGE}.inference.factory"]
    # ``from package import submodule`` is the submodule, not the package's __init__
    assert f"{PACKAGE}.synthetic.camera" in graph[f"{PACKAGE}.synthetic.frames"]
    assert f"{PACKAGE}.synthetic" not in graph[f"{PACKAGE}.synthetic.frames"]


# The shapes the package used to have, parsed from source like the real modules: each must be
# found, or the test below could pass on a graph that misses the kind of import that made them.
_LAZY = {  # the old backbone: imports vit inside a function, vit imports backbone at the top
    "p.model.backbone": "def build_backbone(cfg):\n    from .vit import MoELoRAEncoder\n",
    "p.model.vit": "from .backbone import MoELoRABackbone\n",
}
_SPECS_CAMERAS = {  # params/specs.py's check_value imported cameras inside the function
    "p.params.specs": "def check_value(n, v):\n    from p.params.cameras import camera_parameter\n",
    "p.params.cameras": "from p.params.specs import ParamSpec, topic_check\n",
}
_TYPE_ONLY = {  # ros/startup.py named PerceptionCore under TYPE_CHECKING
    "p.ros.startup": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
    "    from p.ros.perception_core import PerceptionCore\n",
    "p.ros.perception_core": "from p.ros.startup import StartupError\n",
}


@pytest.mark.parametrize("sources", [_LAZY, _SPECS_CAMERAS, _TYPE_ONLY], ids=lambda s: min(s))
def test_the_cycle_finder_finds_lazy_and_type_only_module_cycles(sources):
    cycle = _find_cycle(_graph(sources))
    assert set(cycle) == set(sources) and cycle[0] == cycle[-1]


def test_the_cycle_finder_finds_a_subpackage_cycle_without_a_module_cycle():
    """inference/onnx_backend.py read export/manifest.py while export/onnx_export.py ran the
    backend inside a function: no module cycle, a subpackage one."""
    sources = {
        "p.inference.onnx_backend": "from p.export.manifest import Manifest\n",
        "p.export.manifest": "import json\n",
        "p.export.onnx_export": "def verify():\n    from p.inference.onnx_backend import M\n",
    }
    graph = _graph(sources)
    assert _find_cycle(graph) == []
    assert _find_cycle(_subpackage_graph(graph)) == ["p.export", "p.inference", "p.export"]


def test_the_package_has_no_module_import_cycle():
    cycle = _find_cycle(_package_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_package_has_no_subpackage_import_cycle():
    cycle = _find_cycle(_subpackage_graph(_package_graph()))
    assert not cycle, "subpackage import cycle: " + " -> ".join(cycle)


def test_the_onnx_format_is_imported_by_export_and_inference_and_imports_neither():
    graph = _subpackage_graph(_package_graph())
    fmt = f"{PACKAGE}.onnx_format"
    assert fmt in graph[f"{PACKAGE}.export"] and fmt in graph[f"{PACKAGE}.inference"]
    assert f"{PACKAGE}.export" not in graph[f"{PACKAGE}.inference"]
    assert not graph[fmt] & {f"{PACKAGE}.export", f"{PACKAGE}.inference"}

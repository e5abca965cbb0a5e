"""The model package imports in one direction: no module imports one that (in)directly imports it.

Read from the source with ``ast`` (every import, including those inside functions, which is
where the old ``backbone.build_backbone`` hid its import of ``encoder``/``hiera`` while those
imported ``backbone``), so the test sees cycles that a lazy import would keep from failing at
import time. Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sam_moelora_ros.model as model_package

PACKAGE = "sam_moelora_ros.model"
ROOT = Path(model_package.__file__).parent


def _module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The modules of this package that ``tree`` imports at run time."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = f"{PACKAGE}.{node.module}" if node.module else PACKAGE
            elif node.level == 0 and node.module:
                base = node.module
            else:
                base = ""  # above the package (``from .. import MODALITIES``): not ours
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found & modules


def _graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.glob("*.py"))
    modules = {_module_name(path) for path in paths}
    return {
        _module_name(path): _imported(ast.parse(path.read_text()), modules) - {_module_name(path)}
        for path in paths
    }


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]`` (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
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


def test_the_graph_sees_the_package_modules_and_their_imports():
    graph = _graph()
    assert f"{PACKAGE}.vit" in graph and f"{PACKAGE}.encoder" not in graph
    assert f"{PACKAGE}.backbone" in graph[f"{PACKAGE}.vit"]
    assert f"{PACKAGE}.build" in graph[f"{PACKAGE}.segmentor"]


def test_the_cycle_finder_finds_a_lazy_import_cycle():
    """The shape the package used to have: backbone imports vit inside a function, vit imports
    backbone at the top. Parsed from source like the real modules, so it must be found."""
    backbone = "def build_backbone(cfg):\n    from .vit import MoELoRAEncoder\n"
    vit = "from .backbone import MoELoRABackbone\n"
    modules = {f"{PACKAGE}.backbone", f"{PACKAGE}.vit"}
    graph = {
        f"{PACKAGE}.backbone": _imported(ast.parse(backbone), modules),
        f"{PACKAGE}.vit": _imported(ast.parse(vit), modules),
    }
    assert _find_cycle(graph) == [f"{PACKAGE}.backbone", f"{PACKAGE}.vit", f"{PACKAGE}.backbone"]


def test_the_model_package_has_no_import_cycle():
    cycle = _find_cycle(_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)

"""The package's import graph: layers only import downward, and no modules import each other in a circle.

The graph is read from the source with ``ast``: every ``import`` and ``from ... import`` of a
``headstart`` module, at module level and inside functions alike (an import deferred into a
function still ties the two modules together), relative or absolute; ``from . import x`` counts as
an import of the submodule ``x`` when there is one. LAYERS below is the one place the layers are
written down (docs/architecture.md describes them in prose).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "headstart"

# Top layer first. A module belongs to the layer of the longest entry that is its name or a package
# above it; "headstart" itself is the package's __init__ alone.
LAYERS = {
    "front": ["headstart", "headstart.__main__", "headstart.cli", "headstart.estimator", "headstart.report",
              "headstart.demo", "headstart.segmentation", "headstart.segmentation.estimator"],
    "composition": ["headstart.planner", "headstart.fitting", "headstart.adapt.select", "headstart.segmentation.planner",
                    "headstart.segmentation.config"],
    "strategies": ["headstart.strategies", "headstart.train", "headstart.optim", "headstart.regularizers",
                   "headstart.adapt", "headstart.selection", "headstart.prefix", "headstart.runs",
                   "headstart.segmentation.strategies", "headstart.segmentation.train", "headstart.segmentation.pixels"],
    # augment: the training-time input options and batch mixing that backbones apply and the loop asks for
    "model": ["headstart.model", "headstart.ensemble", "headstart.backbones", "headstart.data", "headstart.cache", "headstart.baselines",
              "headstart.heads", "headstart.checkpoint", "headstart.terms", "headstart.datasets", "headstart.augment",
              "headstart.segmentation.model", "headstart.segmentation.data"],
    "utilities": ["headstart.config", "headstart.errors", "headstart.atomic", "headstart.registry",
                  "headstart.intervals", "headstart.metrics", "headstart._torchvision_fix", "headstart._version",
                  "headstart.distributed", "headstart.segmentation.metrics"],
}
RANK = {layer: len(LAYERS) - i for i, layer in enumerate(LAYERS)}  # higher rank = higher layer


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by the name of its __init__)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("headstart", *path.relative_to(PACKAGE).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _known(name: str, modules) -> str:
    """``name``, or the nearest package above it that is a module of ours (``from x import attr``)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _targets(node, module: str, is_package: bool, modules) -> list[str]:
    """The headstart modules one import statement imports."""
    if isinstance(node, ast.Import):
        return [_known(alias.name, modules) for alias in node.names if alias.name.split(".")[0] == "headstart"]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "headstart":
        return []
    return [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else _known(source, modules)
            for alias in node.names]


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported module: line of the first such import}}`` over the whole package."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, module, path.name == "__init__.py", modules):
                    if target != module:
                        edges[target] = min(edges.get(target, node.lineno), node.lineno)
    return graph


def layer_of(module: str) -> str | None:
    matches = [(len(prefix), layer) for layer, prefixes in LAYERS.items() for prefix in prefixes
               if module == prefix or (prefix != "headstart" and module.startswith(prefix + "."))]
    return max(matches)[1] if matches else None


def _circles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _where(module: str) -> str:
    return str(_modules()[module].relative_to(PACKAGE.parent))


def test_imports_have_no_circle():
    graph = import_graph()
    reports = []
    for component in _circles(graph):
        lines = [f"  {_where(a)}:{graph[a][b]} imports {b}" for a in component for b in sorted(graph[a])
                 if b in component]
        reports.append(f"{', '.join(component)}:\n" + "\n".join(lines))
    assert not reports, "modules that import each other in a circle:\n" + "\n".join(reports)


def test_imports_never_go_up_a_layer():
    graph = import_graph()
    upward = [f"{_where(a)}:{line} imports {b} (layer {layer_of(a)} → layer {layer_of(b)})"
              for a, edges in sorted(graph.items()) for b, line in sorted(edges.items(), key=lambda e: e[1])
              if layer_of(a) and layer_of(b) and RANK[layer_of(b)] > RANK[layer_of(a)]]
    assert not upward, "imports from a lower layer up to a higher one:\n" + "\n".join(upward)


def test_every_module_has_a_layer():
    unplaced = [module for module in _modules() if layer_of(module) is None]
    assert not unplaced, f"modules in no layer: {unplaced}; add each to LAYERS in {Path(__file__).name}"


def test_the_graph_sees_imports_inside_functions_and_submodules_of_from_dot_import():
    graph = import_graph()
    assert "headstart.estimator" in graph["headstart"]  # imported inside the package's __getattr__
    assert "headstart.heads" in graph["headstart.adapt.frozen"]  # `from .. import heads`
    assert layer_of("headstart.adapt.select") == "composition" and layer_of("headstart.adapt.frozen") == "strategies"
    assert layer_of("headstart") == "front" and layer_of("headstart.errors") == "utilities"


def test_heads_and_baselines_do_not_import_torch():
    code = "import sys, headstart.heads, headstart.baselines; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", "the logistic head and the no-transfer baselines must stay torch-free"

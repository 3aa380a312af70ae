"""The shape of the ``lab`` package: no import cycle, no file over 450 lines, one door to the cluster.

The import graph is read from the source with ``ast``: every ``import lab...`` and
``from lab... import`` at module level and inside functions alike, since a function-local
import that closes a loop is still a cycle, only one that surfaces later.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAB = Path(__file__).resolve().parents[1] / "lab"
MAX_LINES = 450
# The one module that talks to an API server: no other module of lab imports the kubernetes
# client package (``kfp.kubernetes``, a KFP SDK module, is not it).
KUBE_DOOR = "lab.kube"
# Modules that may import the client anyway, each with the reason that keeps it true.
CLIENT_IMPORT_EXCEPTIONS = {
    "lab.pipeline.steps": "shipped as source into KFP components: build_inference_service runs in "
    "the pipeline pod, where KServe's SDK takes the client's V1ObjectMeta and lab is not installed",
}


def lab_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module and package of ``lab``."""
    modules = {}
    for path in sorted(LAB.rglob("*.py")):
        parts = list(path.relative_to(LAB.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """``(dotted name, line)`` of every import in ``tree``, relative ones made absolute."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from lab import local`` imports the module lab.local; ``from lab.x import f`` lab.x.
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def import_graph() -> dict[str, dict[str, str]]:
    """Module -> {imported lab module: "file:line" of the import}."""
    modules = lab_modules()
    graph: dict[str, dict[str, str]] = {}
    for module, path in modules.items():
        edges: dict[str, str] = {}
        tree = ast.parse(path.read_text(), str(path))
        for name, line in imported_names(tree, module, path.name == "__init__.py"):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.setdefault(name, f"{path.relative_to(LAB.parent)}:{line}")
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, str]]) -> list[str]:
    """One import cycle as ``a -> b (file:line)`` steps, or ``[]``."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = "open"
        path.append(module)
        for target in graph[module]:
            if state.get(target) == "open":
                loop = [*path[path.index(target) :], target]
                return [f"{a} -> {b} ({graph[a][b]})" for a, b in zip(loop, loop[1:], strict=False)]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        path.pop()
        return []

    for module in graph:
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


def test_the_import_graph_sees_module_level_and_function_local_imports() -> None:
    graph = import_graph()
    # A top-level import and a function-local one (kind mode's lazy import of the cluster chain).
    assert "lab.pipeline.chain" in graph["lab.pipeline.demo"]
    assert "lab.pipeline.cluster_chain" in graph["lab.pipeline.demo"]
    # ``from lab import local`` is an edge to the lab.local package, not to lab.
    assert "lab.local" in graph["lab.pipeline.demo"]
    assert find_cycle({"a": {"b": "a.py:1"}, "b": {"a": "b.py:2"}}) == [
        "a -> b (a.py:1)",
        "b -> a (b.py:2)",
    ]


def test_no_import_cycle_in_lab() -> None:
    cycle = find_cycle(import_graph())
    assert not cycle, "import cycle in lab/:\n  " + "\n  ".join(cycle)


def test_no_file_in_lab_is_over_450_lines() -> None:
    long_files = {
        str(path.relative_to(LAB.parent)): lines
        for path in lab_modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long_files, f"split these (over {MAX_LINES} lines): {long_files}"


def kubernetes_client_importers() -> dict[str, str]:
    """Module -> "file:line" of its first import of the ``kubernetes`` package (any depth)."""
    found: dict[str, str] = {}
    for module, path in lab_modules().items():
        tree = ast.parse(path.read_text(), str(path))
        for name, line in imported_names(tree, module, path.name == "__init__.py"):
            if name == "kubernetes" or name.startswith("kubernetes."):
                found.setdefault(module, f"{path.relative_to(LAB.parent)}:{line}")
    return found


def test_only_the_door_imports_the_kubernetes_client() -> None:
    importers = kubernetes_client_importers()
    assert KUBE_DOOR in importers, "the door no longer imports the client: is the scan still right?"
    allowed = {KUBE_DOOR, *CLIENT_IMPORT_EXCEPTIONS}
    others = {module: where for module, where in importers.items() if module not in allowed}
    assert not others, f"only {KUBE_DOOR} may import the kubernetes client; add a Kube method: {others}"


def test_every_client_import_exception_is_still_needed() -> None:
    importers = kubernetes_client_importers()
    stale = sorted(set(CLIENT_IMPORT_EXCEPTIONS) - set(importers))
    assert not stale, f"these no longer import the kubernetes client; drop their exception: {stale}"


def test_the_scan_sees_a_kfp_module_named_kubernetes_as_not_the_client() -> None:
    tree = ast.parse("from kfp import kubernetes\nimport kubernetes.client\n")
    names = [name for name, _ in imported_names(tree, "lab.x", False)]
    assert names == ["kfp.kubernetes", "kubernetes.client"]


def test_one_cluster_unreachable_error() -> None:
    defined = [
        f"{path.relative_to(LAB.parent)}:{node.lineno}"
        for path in lab_modules().values()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ClassDef) and node.name == "ClusterUnreachable"
    ]
    assert len(defined) == 1 and defined[0].startswith("lab/errors.py:"), defined


def test_one_port_forward_implementation() -> None:
    # `lab port-forward` and the cluster run share lab/port_forwards.py; no other module builds
    # a kubectl port-forward command line, so a second supervisor of forward children cannot
    # grow unnoticed.
    spelled = [
        f"{path.relative_to(LAB.parent)}:{node.lineno}"
        for module, path in lab_modules().items()
        if module != "lab.port_forwards"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.List | ast.Tuple)
        and any(isinstance(item, ast.Constant) and item.value == "port-forward" for item in node.elts)
    ]
    assert not spelled, f"build on lab.port_forwards instead: {spelled}"

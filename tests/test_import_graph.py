"""Dependencies inside lib_vid2vid go one way: no module imports, directly or through others, a module that
imports it back. Every import counts, also those inside functions and under ``TYPE_CHECKING``: a lazy import
hides a cycle at import time but not in the design."""

from __future__ import annotations

import ast
from pathlib import Path

import lib_vid2vid

PACKAGE = Path(lib_vid2vid.__file__).resolve().parent


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from . import x`` counts as importing ``x``)."""
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        here = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in files else origin for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[mod].update(t for t in targets if t in files and t != mod and t != "lib_vid2vid")
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    found = cycles(graph)
    detail = "; ".join(", ".join(f"{m} -> {sorted(set(graph[m]) & set(c))}" for m in c) for c in found)
    assert not found, f"import cycles inside lib_vid2vid: {detail}"


def test_the_frame_loop_knows_nothing_of_what_builds_a_job():
    graph = import_graph()
    assert not graph["lib_vid2vid.loop"] & {"lib_vid2vid.pipeline", "lib_vid2vid.stages", "lib_vid2vid.export",
                                            "lib_vid2vid.postprocess", "lib_vid2vid.report"}


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import(tmp_path):
    pkg = tmp_path / "lib_vid2vid"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from . import c\n")
    (pkg / "c.py").write_text("import lib_vid2vid.a\n")
    (pkg / "d.py").write_text("from . import a\n")
    graph = import_graph(pkg)
    assert graph["lib_vid2vid.b"] == {"lib_vid2vid.c"} and graph["lib_vid2vid.d"] == {"lib_vid2vid.a"}
    assert cycles(graph) == [["lib_vid2vid.a", "lib_vid2vid.b", "lib_vid2vid.c"]]

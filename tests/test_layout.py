"""The stage layout holds: imports run one way down the stage order, and no module imports
itself back through others, also not through imports inside functions (TYPE_CHECKING excluded).

The order is bottom-up; a stage may import only the stages listed before it (and itself).
Root modules (errors, paths, toml_load, the package itself) are shared by all and import no stage.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
STAGES = ("machine", "results", "models", "energy", "run", "quality", "cost", "report", "serve", "cli")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(BENCH.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(BENCH.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every bench module `path` imports, anywhere in the file, except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "bench")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module.split(".")[0] == "bench"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in graph.items():
        s = _stage(src)
        for dst in targets:
            d = _stage(dst)
            if d is None:
                continue  # root modules are shared by every stage
            if s is None:
                if src != "bench":
                    bad.append(f"root module {src} imports stage module {dst}")
            elif STAGES.index(d) > STAGES.index(s):
                bad.append(f"{src} ({s}) imports {dst} ({d}), which is above it")
    return sorted(bad)


def test_every_module_belongs_to_a_stage_or_is_a_small_root_module():
    roots = {m for m in _modules() if _stage(m) is None}
    assert roots <= {"bench", "bench.errors", "bench.paths", "bench.toml_load"}, roots


def test_no_import_runs_up_the_stage_order():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles_even_through_function_level_imports():
    assert find_cycle(import_graph()) is None


def test_no_module_over_the_size_limit():
    long = {str(p.relative_to(BENCH)): n for p in BENCH.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# The checks must be able to fail: each one run on a small tree that breaks its rule.
@pytest.fixture()
def fake_bench(tmp_path, monkeypatch):
    root = tmp_path / "bench"

    def write(rel: str, text: str = "") -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        path.write_text(text)

    monkeypatch.setattr(f"{__name__}.BENCH", root)
    return write


def test_the_checks_catch_an_upward_import_and_a_cycle(fake_bench):
    fake_bench("results/schema.py", "def f():\n    from bench.report import html\n")
    fake_bench("report/html.py", "from bench.results.schema import f\n")
    graph = import_graph()
    assert upward_imports(graph) == [
        "bench.results.schema (results) imports bench.report.html (report), which is above it"]
    assert find_cycle(graph) == ["bench.report.html", "bench.results.schema", "bench.report.html"]


def test_type_checking_imports_do_not_count(fake_bench):
    fake_bench("results/schema.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                    "    from bench.report.html import X\n")
    fake_bench("report/html.py", "from bench.results import schema\n")
    graph = import_graph()
    assert upward_imports(graph) == [] and find_cycle(graph) is None

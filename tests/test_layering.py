"""Layering rules for ``pipelines/``, checked on the source with ``ast`` (nothing is imported):

(a) no import cycle among its modules, counting imports inside functions (a lazy import hides a
    cycle from Python, not from the design);
(b) ``pipelines.tlog`` is a library of specs: it imports nothing from the rest of ``pipelines``;
(c) the log's file names are spelled once, in ``pipelines/tlog/layout.py``.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

from pipelines.config import PROJECT_DIR

pytestmark = pytest.mark.integration

PACKAGE = PROJECT_DIR / "pipelines"

LOG_FILE_NAMES = {"checkpoint", "checkpoints", "log.vkey", "batches.jsonl", "state.json"}
LAYOUT = "pipelines/tlog/layout.py"
# (file, literal) pairs where the word is not the name of a log file, each with the reason.
NOT_LOG_FILE_NAMES = {
    # The keyword that starts the second line of SHA256SUMS ("checkpoint <size> <root>"), a format.
    ("pipelines/site_files.py", "checkpoint"),
    # The witness server's own HTTP path (<origin hash>/checkpoint): the witness's API, not the log's files.
    ("pipelines/log/witness.py", "checkpoint"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_DIR).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at module level or inside functions and classes, except the ones under
    ``if TYPE_CHECKING:`` (they never run)."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def _imported_names(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The absolute names an import statement asks for (``from a import b`` -> ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        is_package = MODULES[module].name == "__init__.py"
        base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    return [f"{source}.{alias.name}" for alias in node.names] + [source]


def _owning_module(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _edges(module: str) -> dict[str, int]:
    """Modules of ``pipelines`` that importing ``module`` imports, with the line of the first import.

    ``from pipelines import x`` is an edge to ``pipelines.x`` when x is a module, else to ``pipelines``.
    Importing ``a.b.c`` also runs the packages ``a.b`` and ``a``, unless they are ``module``'s own
    (then they are already being imported)."""
    edges: dict[str, int] = {}
    for node in _imports(ast.parse(MODULES[module].read_text(), str(MODULES[module]))):
        names = _imported_names(module, node)
        if isinstance(node, ast.ImportFrom):  # a.b names a module, else it is an attribute of a
            names = [n for n in names[:-1] if n in MODULES] or names[-1:]
        for name in names:
            target = _owning_module(name)
            while target:
                if not (module == target or module.startswith(target + ".")):
                    edges.setdefault(target, node.lineno)
                target = target.rpartition(".")[0]
    return edges


def _graph() -> dict[str, dict[str, int]]:
    return {m: _edges(m) for m in MODULES}


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One concrete cycle per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(start: str) -> None:  # Tarjan's algorithm, iterative
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        components.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)

    return [_shortest_cycle(min(c), c, graph) for c in components]


def _shortest_cycle(first: str, component: set[str], graph: dict[str, dict[str, int]]) -> list[str]:
    """``[first, …, first]``: the shortest way from ``first`` back to itself inside ``component``."""
    previous: dict[str, str] = {}
    queue = deque([first])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v]):
            if w == first:
                chain = [v]
                while chain[-1] != first:
                    chain.append(previous[chain[-1]])
                return [*reversed(chain), first]
            if w in component and w not in previous:
                previous[w] = v
                queue.append(w)
    raise AssertionError(f"{first} is on no cycle of {sorted(component)}")


def _describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    steps = [f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join([*steps, cycle[-1]])


def test_the_import_graph_sees_function_level_imports_and_packages() -> None:
    graph = _graph()
    assert "pipelines.tlog.layout" in graph["pipelines.log.writer"]  # from pipelines.tlog.layout import …
    assert "pipelines.storage" in graph["pipelines.site"]  # from pipelines import storage
    assert "pipelines.audit.report" in graph["pipelines.audit.task"]  # imported inside publish()
    # Importing pipelines.tlog.layout from outside also runs pipelines/tlog/__init__.py …
    assert "pipelines.tlog" in graph["pipelines.log.writer"]
    # … but not from inside the package, which is already being imported.
    assert "pipelines.audit" not in graph["pipelines.audit.run"]
    made_up = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert _cycles(made_up) == [["a", "b", "c", "a"]]
    assert _describe(["a", "b", "c", "a"], made_up) == "a (line 1) -> b (line 2) -> c (line 3) -> a"


def test_no_import_cycles_in_pipelines() -> None:
    graph = _graph()
    cycles = [_describe(c, graph) for c in _cycles(graph)]
    assert not cycles, "import cycles (break them; a lazy import does not):\n" + "\n".join(cycles)


def _sources(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement names (``from a import b`` -> ``a``)."""
    names = _imported_names(module, node)
    return names[-1:] if isinstance(node, ast.ImportFrom) else names


def test_tlog_imports_nothing_from_the_rest_of_pipelines() -> None:
    bad = []
    for module, path in MODULES.items():
        if module == "pipelines.tlog" or module.startswith("pipelines.tlog."):
            for node in _imports(ast.parse(path.read_text())):
                for name in _sources(module, node):
                    inside = name == "pipelines.tlog" or name.startswith("pipelines.tlog.")
                    if name.split(".")[0] == "pipelines" and not inside:
                        bad.append(f"{path.relative_to(PROJECT_DIR)}:{node.lineno} imports {name}")
    assert not bad, "tlog/ must stay a library of specs:\n" + "\n".join(bad)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _keys(tree: ast.AST) -> set[int]:
    """String constants used as keys (``{"checkpoint": …}``, ``obj["checkpoint"]``: JSON fields and
    translation keys) or as the name of a verifier check (``report.fail("checkpoint", …)``), not as
    file names."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            found.update(id(k) for k in node.keys if k is not None)
        elif isinstance(node, ast.Subscript):
            found.add(id(node.slice))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fail":
            found.update(id(a) for a in node.args[:1])
    return found


def _names_a_log_file(value: str) -> bool:
    """The literal is a log file name, or a path (no spaces: not a message) with one as a component."""
    return value in LOG_FILE_NAMES or (not any(c.isspace() for c in value)
                                       and bool(LOG_FILE_NAMES & set(value.split("/"))))


def test_the_log_file_names_are_spelled_only_in_tlog_layout() -> None:
    found = []
    for path in MODULES.values():
        rel = str(path.relative_to(PROJECT_DIR))
        if rel == LAYOUT:
            continue
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree) | _keys(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                    and _names_a_log_file(node.value) and (rel, node.value) not in NOT_LOG_FILE_NAMES):
                found.append(f"{rel}:{node.lineno}: {node.value!r} (use pipelines.tlog.layout)")
    assert not found, "\n".join(found)


def test_every_exception_to_the_file_name_rule_is_still_needed() -> None:
    for rel, value in NOT_LOG_FILE_NAMES:
        tree = ast.parse((PROJECT_DIR / rel).read_text())
        assert any(isinstance(n, ast.Constant) and n.value == value for n in ast.walk(tree)), (rel, value)

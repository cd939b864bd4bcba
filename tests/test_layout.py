"""The layout rules the code keeps (issue 10): HTTP stays at the edge, and no two modules
import each other, directly or round a longer circle.

Both read the source with ``ast``: nothing is imported, so a rule broken in a module no test
loads is still caught.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from gis_service.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "gis_service"
WEB_FRAMEWORKS = ("fastapi", "starlette")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_http_module(name: str) -> bool:
    """The HTTP edge: the app factory, the http package, and each domain's router and deps."""
    leaf = name.rsplit(".", 1)[-1]
    return (
        name == "gis_service.app"
        or name == "gis_service.http"
        or name.startswith("gis_service.http.")
        or leaf in ("router", "deps")
    )


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from … import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _imported(module: str, nodes: Iterator[ast.AST]) -> Iterator[str]:
    """Every module the import statements among ``nodes`` load (a name imported from a
    package counts as its submodule when there is one)."""
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            yield target
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    yield f"{target}.{alias.name}"


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"), str(MODULES[module]))


def _top_level(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Statements run when the module loads: its body, and the branches of a top-level
    ``if``/``try`` (not ``if TYPE_CHECKING:``, which never runs)."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            test = stmt.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name != "TYPE_CHECKING":
                yield from _top_level(stmt.body)
            yield from _top_level(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse):
                yield from _top_level(block)
        else:
            yield stmt


def test_the_core_never_imports_the_web_framework() -> None:
    """Services, SQL, models and every other non-HTTP module stay free of fastapi and
    starlette, even inside functions: they raise domain errors, the edge maps them."""
    offenders = []
    for module in MODULES:
        if is_http_module(module):
            continue
        for name in _imported(module, ast.walk(_tree(module))):
            if name.split(".")[0] in WEB_FRAMEWORKS:
                offenders.append(f"{module} imports {name}")
    assert not offenders, "HTTP belongs in router.py, deps.py or gis_service.http: " + "; ".join(
        sorted(set(offenders))
    )


def test_the_rule_covers_every_domain_service_sql_and_models() -> None:
    """The guard above is not vacuous: each domain's service, sql and models modules are
    checked by it (none is mistaken for an HTTP module)."""
    checked = [m for m in MODULES if m.rsplit(".", 1)[-1] in ("service", "sql", "models")]
    assert len(checked) >= 8
    assert not [m for m in checked if is_http_module(m)]


def _graph() -> dict[str, set[str]]:
    """Module → the modules of ours it imports when it loads.

    A package that imports its own submodules in ``__init__`` is not a circle: Python
    initialises the package first, so the implicit edge from a submodule to its package
    is left out; ``from package import name`` still counts as an edge to the package.
    """
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        names = _imported(module, _top_level(_tree(module).body))
        graph[module] = {n for n in names if n in MODULES and n != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    """No module imports, when it loads, a module that (through any chain) imports it back.
    Imports inside functions are not counted: they run later, and are the way out of one."""
    cycles = find_cycles(_graph())
    assert not cycles, f"import circles: {cycles}"


def test_cycle_finder_finds_a_circle() -> None:
    """The finder itself: a three-module circle and a self-contained branch."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def _is_router(module: str) -> bool:
    return module.rsplit(".", 1)[-1] in ("router", "deps") and module.startswith("gis_service.")


def test_routers_run_no_sql() -> None:
    """A route's parameter reaches its SQL through the domain's service and sql modules
    (router → service → sql): no router or deps module writes SQL text or runs a statement.
    (Lists hand the sql module's statements to gis_service.http.listing, which pages them.)"""
    offenders = []
    for module in MODULES:
        if not _is_router(module) or module.startswith("gis_service.http"):
            continue
        for node in ast.walk(_tree(module)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("execute", "text"):
                offenders.append(f"{module}:{node.lineno} calls {name}()")
    assert not offenders, "SQL belongs in sql.py, run by a service: " + "; ".join(offenders)


def test_app_state_is_read_through_the_dependencies() -> None:
    """Settings, catalog and clock come from gis_service.http.deps (get_settings and its
    siblings), not from request.app.state read here and there; the engine too, outside the
    HTTP edge (an edge helper may open a connection of its own on it, off the event loop)."""
    shared = {"settings", "catalog", "clock"}
    readers = {"gis_service.app", "gis_service.http.deps"}
    offenders = []
    for module in MODULES:
        if module in readers:
            continue
        watched = shared if is_http_module(module) else shared | {"engine"}
        for node in ast.walk(_tree(module)):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in watched
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "state"
            ):
                offenders.append(f"{module}:{node.lineno} reads state.{node.attr}")
    assert not offenders, "use SettingsDep, EngineDep, CatalogDep or ClockDep: " + "; ".join(
        offenders
    )

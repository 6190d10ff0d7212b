"""The house runs one way: each layer imports only the layers below it (docs/architecture.md).

Walks every module's imports (ast, no importing) and fails on an import that points up a layer,
on an import cycle between top-level packages, on a private name reached from another module,
and on a module over 600 lines without a reason at its top.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lower number = lower layer. A package may import its own layer's modules and those below.
LAYERS = {
    "portal": 1,  # project infrastructure (settings, key ring, cache, queue, API base, network guard)
    "accounts": 2,
    "licenses": 3,  # the vendor's catalogue
    "registries": 4,
    "delivery": 5,  # customer-facing
    "insights": 6,  # what the vendor sees across everything: dashboard, pull analytics
}
# The composition root wires every layer together and nothing imports it.
WIRING = {"portal.urls", "portal.asgi", "portal.celery"}
# The CLI speaks only HTTP; its license-file verifier is shared with the portal as a pure module.
SHARED = {"portal_cli.licensefile", "portal_cli.bundleformat", "portal_cli.kitfiles"}
SKIP_DIRS = {".venv", "tests", "migrations", "bench", "var", ".git"}
MAX_LINES = 600
REASON_MARK = "over 600 lines because"


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if SKIP_DIRS & set(relative.parts) or relative.parts[0] not in {*LAYERS, "portal_cli"}:
            continue
        name = ".".join(relative.with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path, *, module_level: bool = False) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import of our packages; with
    `module_level`, only those run when the module loads (not inside a function)."""
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if module_level else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            for alias in node.names:
                if f"{module}.{alias.name}" in MODULES:
                    found.append((f"{module}.{alias.name}", "", node.lineno))
                else:
                    found.append((module, alias.name, node.lineno))
    return [(m, n, line) for m, n, line in found if m.split(".")[0] in {*LAYERS, "portal_cli"}]


def _top(module: str) -> str:
    return module.split(".")[0]


def test_every_import_points_down_the_house():
    upward = []
    for name, path in MODULES.items():
        if name in WIRING or _top(name) == "portal_cli":
            continue
        for target, _, line in _imports(name, path):
            if target in SHARED or _top(target) == _top(name):
                continue
            if target in WIRING or _top(target) == "portal_cli" or LAYERS[_top(target)] > LAYERS[_top(name)]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert upward == [], "imports that point up the house (see docs/architecture.md):\n" + "\n".join(upward)


def test_the_cli_imports_nothing_of_the_server():
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in MODULES.items()
        if _top(name) == "portal_cli"
        for target, _, line in _imports(name, path)
        if _top(target) != "portal_cli"
    ]
    assert found == []


def test_no_import_cycle_between_top_level_packages():
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        if name in WIRING:
            continue
        for target, _, _ in _imports(name, path):
            if _top(target) != _top(name) and target not in SHARED:
                graph.setdefault(_top(name), set()).add(_top(target))
    assert _cycles(graph) == []


def test_no_import_cycle_between_modules_as_they_load():
    """A function-level import (a service enqueueing its task) is how Django code breaks a cycle
    on purpose; a cycle among module-level imports is an accident waiting for an import order."""
    graph = {
        name: {t for t, _, _ in _imports(name, path, module_level=True) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }
    assert _cycles(graph) == []


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_private_name_is_imported_from_another_module():
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {target}.{imported}"
        for name, path in MODULES.items()
        for target, imported, line in _imports(name, path)
        if imported.startswith("_") and not imported.startswith("__") and target != name
    ]
    assert found == []


def test_long_modules_say_why_at_their_top():
    long = [
        f"{path.relative_to(ROOT)} ({n} lines)"
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES and REASON_MARK not in path.read_text()[:2000]
    ]
    assert long == []

"""The shape of the code, checked: module and function sizes, imports that point one way
(ARCHITECTURE.md), and SQL only in the modules named for it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40
# Lower layers never import higher ones. scheduler.schedule is pure date math on the standard
# library alone, so the subscription rules below the scheduler may use it.
LAYERS = [
    {"errors", "endpoints", "config", "logs", "inputs", "scheduler.schedule"},
    {"models", "models_api", "models_budgets"},
    {"migrations", "course"},
    {"emails"},
    {"send", "webhooks", "bounces", "signing", "hooks"},
    {"subscriptions", "finders"},
    {
        "suppressions",
        "reports",
        "signups",
        "pace",
        "operators",
        "privacy",
        "apikeys",
        "budgets",
        "breaker",
    },
    {"scheduler"},
    {"stats", "transfer", "rates", "console", "lookup"},
    {"metrics"},
    {"runtime"},
    {"commands", "web", "receiver"},
    {"cli", ""},
]
SQL_MODULES = {
    "scheduler.queries",
    "scheduler.fair",
    "scheduler.reorder",
    "subscriptions",
    "finders",
    "pace",
    "suppressions",
    "signups",
    "reports",
    "budgets",
    "breaker",
    "stats",
    "rates",
    "transfer",
    "models",
    "operators",
    "console",
    "hooks.outbox",
    "privacy",
    "apikeys",
    "lookup",
}
SQL_NAMES = {"select", "insert", "update", "delete", "text", "func", "case", "tuple_", "and_",
             "or_", "bindparam"}  # fmt: skip


def product_modules() -> dict[str, Path]:
    """Dotted names (without the `drip.` prefix) of every product module."""
    found = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {"tests", "bench", "build", ".venv"}:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = product_modules()


def layer_of(module: str) -> int:
    for index, layer in enumerate(LAYERS):
        if module in layer:
            return index
    for index, layer in enumerate(LAYERS):
        if module.split(".")[0] in layer:
            return index
    raise AssertionError(f"{module} has no layer in LAYERS")


def imports_of(module: str, path: Path) -> set[str]:
    """The product modules `module` imports, resolved from relative and `drip.` imports."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif node.module and node.module.split(".")[0] == "drip":
                base = []
            else:
                continue
            target = [*base, *(node.module or "").split(".")] if node.module else base
            target = [p for p in target if p and p != "drip"]
            for alias in node.names:
                candidate = ".".join([*target, alias.name])
                found.add(candidate if candidate in MODULES else ".".join(target))
    return {m for m in found if m in MODULES and m != module}


GRAPH = {module: imports_of(module, path) for module, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_short(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines"


def test_functions_are_short() -> None:
    """Migrations are schema snapshots, kept as Alembic writes them."""
    long = []
    for module, path in MODULES.items():
        if module.startswith("migrations.versions"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert long == []


def test_imports_point_down() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    """Package __init__ files re-export their own modules; those edges are not cycles."""
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in GRAPH[module]:
            if target.startswith(module + ".") or module.startswith(target + "."):
                continue
            if state.get(target) == 1:
                raise AssertionError(" -> ".join([*trail, module, target]))
            if target not in state:
                visit(target, [*trail, module])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])


def test_sql_lives_in_named_modules() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module in SQL_MODULES or module.startswith("migrations"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy":
                names = {alias.name for alias in node.names} & SQL_NAMES
                if names:
                    offenders.append(f"{module} imports {sorted(names)}")
            if isinstance(node, ast.Attribute) and node.attr in {"execute", "scalar", "scalars"}:
                offenders.append(f"{module} line {node.lineno}: .{node.attr}(...)")
    assert offenders == []

"""The floor plan, checked: ``crm_site`` is wiring that nothing imports, the kernel (``core``)
imports no domain app, and no two packages import each other, directly or round a longer loop.

Imports are read from the source (``ast``), so an import inside a function counts too.
"""

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
WIRING = "crm_site"
KERNEL = "core"
DOMAIN = (
    "companies",
    "customers",
    "interactions",
    "opportunities",
    "operations",
    "tasks",
    "webhooks",
    "notifications",
    "reminders",
    "mailgateway",
    "calendars",
    "duplicates",
)
PACKAGES = (WIRING, KERNEL, *DOMAIN)
# Landed migrations keep the dotted path they were written with (``crm_site.dates`` is a shim).
MIGRATION_SHIMS = {"crm_site.dates"}


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def package_imports():
    """(importing package, imported package, file, module) for every import between project packages."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module in imported_modules(path):
                target = module.split(".")[0]
                if target in PACKAGES and target != package:
                    yield package, target, path.relative_to(ROOT), module


def is_migration_shim(path, module):
    return "migrations" in path.parts and module in MIGRATION_SHIMS


def find_cycle(edges):
    """A list of packages forming a loop in ``edges`` ({package: {imported, ...}}), or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (loop := visit(nxt, [*trail, nxt])):
                return loop
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (loop := visit(start, [start])):
            return loop
    return None


def test_nothing_imports_the_project_wiring():
    offenders = [
        f"{path}: {module}"
        for package, target, path, module in package_imports()
        if target == WIRING and not is_migration_shim(path, module)
    ]
    assert offenders == []


def test_the_kernel_imports_no_domain_app():
    offenders = [f"{path}: {module}" for package, target, path, module in package_imports() if package == KERNEL]
    assert offenders == []


def test_no_import_cycle_between_packages():
    edges = {}
    for package, target, path, module in package_imports():
        if not is_migration_shim(path, module):
            edges.setdefault(package, set()).add(target)
    assert find_cycle(edges) is None, f"import cycle: {' -> '.join(find_cycle(edges))}"


@pytest.mark.parametrize(
    "edges, loop",
    [
        ({"a": {"b"}, "b": {"c"}}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ],
)
def test_find_cycle_sees_loops_of_any_length(edges, loop):
    assert find_cycle(edges) == loop

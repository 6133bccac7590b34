"""The design card's layout rules, checked: the core stays framework-free and imports SDKs lazily."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

CORE = ROOT / "remediator"


@functools.cache
def _tree(path: Path) -> ast.Module:
    """A source file's syntax tree (parsed once per test process: several tests walk every file)."""
    return ast.parse(path.read_text(encoding="utf-8"))


@functools.cache
def _imports(path: str) -> frozenset[str]:
    tree = _tree(ROOT / path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return frozenset(names)


def test_core_imports_neither_slack_bolt_nor_azure_functions() -> None:
    for path in CORE.rglob("*.py"):
        mods = _imports(str(path.relative_to(ROOT)))
        bad = {m for m in mods if m.startswith(("slack_bolt", "azure.functions"))}
        assert not bad, f"{path}: {bad}"


def test_importing_the_core_loads_no_management_sdk() -> None:
    code = (
        "import sys, remediator.app.cli, remediator.planning.planner, remediator.actions, remediator.findings, "
        "remediator.playbooks, remediator.azure.clients, remediator.azure.reader\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('azure.mgmt', 'azure.identity', 'azure.keyvault',"
        " 'slack_bolt', 'slack_sdk', 'azure.functions')))\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert proc.stdout.strip() == ""


# The layers of the core, bottom first. A package may import its own layer and those below it, never
# one above: the foundation modules import nothing of remediator's; the life cycle owns the ports
# (``lifecycle.store``, ``lifecycle.chat``) that ``store`` and the adapters implement; ``app`` is the
# composition root. ``bot`` (Slack) may import the core but not ``app``; ``function_app`` may import
# everything (it is the Functions host's composition root).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "ids", "_json", "telemetry", "words"),
    ("findings",),
    ("azure",),
    ("actions", "checks"),
    ("playbooks",),
    ("planning",),
    ("privilege",),
    ("config",),
    ("lifecycle",),
    ("store",),
    ("evidence",),
    ("testing",),
    ("app", "__main__", "__init__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}

# Upward imports that the reshape (issue 16) still has to remove: each entry is removed with its
# fix, and the test fails when one is fixed but still listed, or a new one appears.
KNOWN_UPWARD: set[tuple[str, str]] = set()
# bot modules that still import the composition root
KNOWN_BOT_APP: set[str] = set()


def _unit(module: str) -> str | None:
    """``remediator.lifecycle.engine`` -> ``lifecycle``; ``remediator.errors`` -> ``errors``."""
    parts = module.split(".")
    if parts[0] != "remediator":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@functools.cache
def _core_imports(path: Path) -> frozenset[str]:
    """Every module a file imports, ``from remediator import ids`` read as ``remediator.ids``."""
    tree = _tree(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "remediator":
                names.update(f"remediator.{a.name}" for a in node.names)
            else:
                names.add(node.module)
    return frozenset(names)


@functools.cache
@functools.cache
def _edges() -> dict[tuple[str, str], list[str]]:
    """(importer package, imported package) -> where; every import counts, deferred ones too."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        mod = _module_name(path)
        src = _unit(mod) if mod != "remediator" else "__init__"
        if src is None:
            continue
        for imported in _core_imports(path):
            dst = _unit(imported)
            if dst is None or dst == src:
                continue
            edges.setdefault((src, dst), []).append(f"{path.relative_to(ROOT)} -> {imported}")
    return edges


def test_every_core_package_has_a_layer() -> None:
    units = {p.name if p.is_dir() else p.stem for p in CORE.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert units <= set(RANK), f"packages without a layer in LAYERS: {sorted(units - set(RANK))}"


def test_imports_run_down_the_layers() -> None:
    upward = {(a, b) for (a, b) in _edges() if RANK[a] < RANK[b]}
    where = {edge: _edges()[edge] for edge in upward - KNOWN_UPWARD}
    assert not where, f"imports that go up a layer: {where}"
    assert not (KNOWN_UPWARD - upward), f"fixed, remove from KNOWN_UPWARD: {KNOWN_UPWARD - upward}"


def test_no_import_cycle_among_the_core_packages() -> None:
    graph: dict[str, set[str]] = {}
    for a, b in _edges():
        graph.setdefault(a, set()).add(b)
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append([*path[path.index(nxt):], nxt])
            elif len(path) < len(RANK):
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    known = {tuple(c) for c in cycles if all((c[i], c[i + 1]) in KNOWN_UPWARD or RANK[c[i]] >= RANK[c[i + 1]]
                                              for i in range(len(c) - 1))} if KNOWN_UPWARD else set()
    assert not [c for c in cycles if tuple(c) not in known], f"import cycles: {cycles[:5]}"


def test_bot_imports_no_app_and_the_core_no_adapter() -> None:
    importing_app = set()
    for path in (ROOT / "bot").rglob("*.py"):
        if any(m.startswith("remediator.app") for m in _imports(str(path.relative_to(ROOT)))):
            importing_app.add(str(path.relative_to(ROOT)))
    assert importing_app == KNOWN_BOT_APP, f"bot modules that import the composition root: {sorted(importing_app)}"
    for path in CORE.rglob("*.py"):
        if _unit(_module_name(path)) == "app":
            continue  # the composition root wires the adapters
        bad = {m for m in _imports(str(path.relative_to(ROOT))) if m.split(".")[0] in ("bot", "function_app")}
        assert not bad, f"{path.relative_to(ROOT)} imports an adapter: {bad}"

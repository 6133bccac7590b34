"""The design card's layout rules, checked: the core stays framework-free and imports SDKs lazily."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

CORE = ROOT / "remediator"


def _imports(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


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

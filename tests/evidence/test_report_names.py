"""The evidence report names what it shows: built-in policies from the catalog (offline), each format
escaping a name as any other text, JSON keeping the ids and adding ``names``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediator.app.cli import main
from remediator.evidence.period import parse_period
from remediator.evidence.render import to_csv, to_html, to_markdown
from remediator.evidence.report import build_report
from remediator.planning.names import NameResolver, naming
from tests.evidence.scenario import run_scenario
from tests.support.engine import PLAYBOOKS, World, make_world

ACR_POLICY = "dc921057-6b28-4fbe-9b83-f7bec05db6c2"  # sample 04's built-in definition
ACR_NAME = "Container registries should have local admin account disabled."


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


@pytest.mark.slow(reason="runs the report command twice (each loads the playbooks) after the engine scenario")
def test_the_cli_report_names_built_in_policies(world: World, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    run_scenario(world)
    world.store.close()
    store = str(tmp_path / "remediator.db")
    outputs = {}
    for fmt in ("md", "json"):
        assert main(["report", "--from", "2026-10-01", "--to", "2026-12-31", "--format", fmt, "--store", store]) == 0
        outputs[fmt] = capsys.readouterr().out
    assert f"Azure Policy non-compliance: {ACR_NAME} ({ACR_POLICY})" in outputs["md"]
    doc = json.loads(outputs["json"])
    assert doc["names"][ACR_POLICY] == {"kind": "policyDefinition", "displayName": ACR_NAME}
    assert f"Azure Policy non-compliance: {ACR_POLICY}\"" in outputs["json"]  # JSON keeps the values as they are
    assert ACR_NAME + " (" not in outputs["json"]


def test_a_name_is_escaped_for_each_format(world: World) -> None:
    run_scenario(world)
    report = build_report(world.store, parse_period("2026-Q4", now=world.clock()), now=world.clock(),
                          playbook_controls={p.name: p.controls for p in PLAYBOOKS})
    hostile = NameResolver(catalog={ACR_POLICY: "<img src=x onerror=alert(1)> | =cmd"})
    with naming(hostile.resolve([f"Azure Policy non-compliance: {ACR_POLICY}"])):
        html, md, csv_text = to_html(report), to_markdown(report), to_csv(report)
    assert "<img" not in html
    assert f"&lt;img src=x onerror=alert(1)&gt; | =cmd ({ACR_POLICY})" in html
    assert f"&lt;img src=x onerror=alert(1)> \\| =cmd ({ACR_POLICY})" in md
    assert "<img src=x onerror=alert(1)> | =cmd" in csv_text  # CSV quotes; the cell does not start a formula

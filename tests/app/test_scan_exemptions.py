"""The backlog scan brings existing policy exemptions: Resource Graph ``policyresources`` rows become
findings the policy-limit-exemptions playbook claims, planned from the rows themselves; the ids are
stable across scans; a write event of the same exemption joins the scan's remediation; reconcile leaves
them alone. Real azure-mgmt-resourcegraph against FakeArm throughout."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.app.cli import build_parser
from remediator.app.cli.scan import run as scan_run
from remediator.azure.graph import Graph, Scope
from remediator.azure.reader import LiveState
from remediator.findings.model import Finding
from remediator.findings.parse import parse_value
from remediator.lifecycle.engine import Engine
from remediator.privilege.elevation import StandingElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.app.test_scan import NETWORK_KEY, account, assessment
from tests.findings.test_operations import resource_write_event
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    SUB,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    sample_state,
)

WRITE = "microsoft.authorization/policyexemptions/write"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-prod-web"
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/cost-guardrails"
# "Audit virtual machines without disaster recovery configured": a built-in no playbook lists in never_exempt
DEFINITION = "/providers/Microsoft.Authorization/policyDefinitions/0015ea4d-51ff-4ce3-8d8c-f3f8f0179a56"


def exemption(name: str, *, expires: datetime | None = None, category: str = "Mitigated",
              scope: str = RG) -> dict[str, Any]:
    """A ``Microsoft.Authorization/policyExemptions`` document (2022-07-01-preview shape)."""
    props: dict[str, Any] = {"policyAssignmentId": ASSIGNMENT, "policyDefinitionReferenceIds": [],
                             "exemptionCategory": category, "displayName": f"Exemption {name}",
                             "description": "Handled by the legacy backup job", "metadata": {"ticket": "CHG-1"}}
    if expires is not None:
        props["expiresOn"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"id": f"{scope}/providers/Microsoft.Authorization/policyExemptions/{name}", "name": name,
            "type": "Microsoft.Authorization/policyExemptions", "properties": props,
            "systemData": {"createdBy": "me@contoso.com", "createdAt": "2025-01-05T10:00:00Z"}}


def assignment() -> dict[str, Any]:
    return {"id": ASSIGNMENT, "name": "cost-guardrails", "type": "Microsoft.Authorization/policyAssignments",
            "properties": {"displayName": "Cost guardrails", "policyDefinitionId": DEFINITION,
                           "scope": f"/subscriptions/{SUB}", "enforcementMode": "Default"}}


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm(graph_page_size=2) as fake:
        # the sample estate, less its own exemption: each test says which exemptions exist
        fake.load(d for d in sample_state() if "/policyexemptions/" not in d["id"].lower())
        fake.add(assignment())
        yield fake


def _dry_run(arm: FakeArm) -> tuple[int, dict[str, Any]]:
    args = build_parser().parse_args(["scan", "--dry-run", "--subscription", SUB, "--output", "json"])
    out, err = io.StringIO(), io.StringIO()
    code = scan_run(args, out, clients=arm.clients(), err=err)
    assert err.getvalue() == ""
    return code, json.loads(out.getvalue())


def test_scan_dry_run_sets_an_expiry_on_the_exemption_without_one_and_leaves_a_near_one(arm: FakeArm) -> None:
    forever = exemption("legacy-backup")
    near = exemption("migration-window", expires=_today() + timedelta(days=10))
    arm.load([forever, near])
    arm.reset_log()

    code, report = _dry_run(arm)

    assert code == 2
    rows = {r["finding"]["resource_id"]: r for r in report["results"]
            if r["finding"]["type"] == WRITE}
    assert set(rows) == {forever["id"], near["id"]}
    assert {r["playbook"] for r in rows.values()} == {"policy-limit-exemptions"}
    assert rows[near["id"]]["outcome"] == "no_changes"
    changed = rows[forever["id"]]
    assert changed["outcome"] == "changes"
    (change,) = changed["changes"]
    assert change["action"] == "policy.limit-exemption"
    assert change["resource_id"] == forever["id"]
    expiry = change["after"]["properties"]["expiresOn"]
    # today's start (UTC) + max_days 90, the action's clock for a finding without an event time
    assert expiry in {(_today() + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (90, 91)}
    (summary,) = [s for s in report["summary"] if s["playbook"] == "policy-limit-exemptions"]
    assert (summary["findings"], summary["changes"], summary["no_changes"]) == (2, 1, 1)
    # planned from the scan's own rows: no exemption read again, nothing written
    assert not [r for r in arm.requests if r.method == "GET" and "/policyexemptions/" in r.path.lower()]
    assert arm.writes == []


def test_exemptions_page_and_keep_their_ids_across_scans(arm: FakeArm) -> None:
    names = [f"ex{i:02d}" for i in range(5)]
    docs = [exemption(n, expires=_today() + timedelta(days=200) if i % 2 else None) for i, n in enumerate(names)]
    docs.append(exemption("sub-wide", scope=f"/subscriptions/{SUB}", category="Waiver"))
    arm.load(docs)
    arm.reset_log()

    graph = Graph(arm.clients(), page_size=2)
    first = graph.scan(Scope(subscriptions=(SUB,)))
    second = Graph(arm.clients(), page_size=4).scan(Scope(subscriptions=(SUB,)))

    assert first.complete
    assert first.problems == []
    assert first.rows["exemptions"] == 6
    found = [f for f in first.findings if f.type == WRITE]
    assert sorted(f.resource_id for f in found) == sorted(d["id"] for d in docs)
    assert all(f.kind == "operation" and f.resource_type == "Microsoft.Authorization/policyExemptions" for f in found)
    assert len({f.id for f in found}) == 6
    assert {f.id for f in found} == {f.id for f in second.findings if f.type == WRITE}
    pages = [r for r in arm.graph_requests if "policyexemptions" in str((r.body or {}).get("query", "")).lower()]
    assert sum(1 for r in pages if (r.body or {}).get("options", {}).get("$skipToken")) >= 2  # 6 rows, 2 a page
    # the rows are the exemptions' documents: Resource Graph's columns gone, the type's casing back
    doc = first.documents[ids.key(docs[0]["id"])]
    assert doc["type"] == "Microsoft.Authorization/policyExemptions"
    assert "tenantId" not in doc
    assert "subscriptionId" not in doc
    assert doc["properties"] == docs[0]["properties"]


def test_exemption_records_from_files_and_bad_ids(tmp_path: Path) -> None:
    from remediator.errors import PayloadError
    from remediator.findings.parse import parse_file
    from remediator.testing.fake_graph import graph_row

    doc = exemption("cli-listed")
    flat = {k: v for k, v in doc.items() if k != "properties"} | doc["properties"]  # az policy exemption list
    (from_arm,) = parse_value(doc, source="arm.json")
    (from_cli,) = parse_value([flat], source="az.json")
    export = tmp_path / "graph.json"  # az graph query output
    export.write_text(json.dumps({"count": 1, "data": [graph_row(doc, "policyresources")], "skip_token": None}))
    (from_graph,) = parse_file(export)
    assert from_graph.id == from_arm.id
    assert isinstance(from_arm, Finding)
    assert isinstance(from_cli, Finding)
    assert from_arm.id == from_cli.id
    assert from_arm.id != parse_value(exemption("other"), source="x")[0].id
    assert from_cli.additional_data["exemptioncategory"] == "Mitigated"
    assert "eventtime" not in from_arm.additional_data
    bad = {**doc, "id": RG}
    with pytest.raises(PayloadError, match=r"bad\.json: id .* is not a policy exemption id"):
        parse_value(bad, source="bad.json")


@pytest.fixture
def engine(tmp_path: Path, arm: FakeArm) -> Iterator[Engine]:
    from remediator.config.settings import Settings

    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), slack_channel="C0REMEDIATE", group_wait=timedelta(0),
                        approver_roles=ROLES)
    with SQLiteStore(tmp_path / "r.db", clock=FakeClock()) as store:
        clients = arm.clients()
        yield Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients), clients=clients,
                     elevator=StandingElevator(), chat=RecordingChat(),
                     directory=StaticDirectory({ONCALL: MEMBERS}), graph=Graph(clients))


def test_a_write_event_joins_the_scan_and_reconcile_withdraws_no_exemption(arm: FakeArm, engine: Engine) -> None:
    forever = exemption("legacy-backup")
    acct = account("reconciled")
    arm.load([forever, acct, assessment(acct["id"], NETWORK_KEY)])
    scope = Scope(subscriptions=(SUB,))

    engine.ingest(Graph(arm.clients()).scan(scope).records, source="scan")
    engine.work()
    pending = {r.finding["resource_id"]: r for r in engine.pending()}
    assert set(pending) == {forever["id"], acct["id"]}
    assert pending[forever["id"]].quorum == 2

    # the write event of an exemption already pending: another finding id, the same remediation
    event = parse_value(resource_write_event(forever["id"]), source="event")[0]
    assert isinstance(event, Finding)
    assert event.id != pending[forever["id"]].finding_id
    assert [a.outcome for a in engine.ingest([event], source="event-grid")] == ["queued"]
    engine.work()
    assert len([r for r in engine.pending() if r.finding["resource_id"] == forever["id"]]) == 1

    # the assessment turns healthy; then an exemption is written that Resource Graph does not show yet
    arm.add(assessment(acct["id"], NETWORK_KEY, "Healthy"))
    arm.freeze_graph()
    fresh = exemption("written-just-now")
    arm.add(fresh)
    engine.ingest(parse_value(resource_write_event(fresh["id"]), source="event"), source="event-grid")
    engine.work()
    assert fresh["id"] in {r.finding["resource_id"] for r in engine.pending()}

    later = Graph(arm.clients()).scan(scope)
    assert later.complete
    assert fresh["id"] not in {f.resource_id for f in later.findings}  # the graph lags ARM
    withdrawn = engine.reconcile(later)
    assert [r.finding["resource_id"] for r in withdrawn] == [acct["id"]]  # operations are not reconciled
    assert {r.finding["resource_id"] for r in engine.pending()} == {forever["id"], fresh["id"]}

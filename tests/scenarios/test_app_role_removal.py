"""Over-permissioned applications, end to end (issue 22, item 3): a Microsoft Graph application permission with
tenant-wide data access found by the backlog scan (or an Entra audit event), planned with the app's name, app id,
permission and grant date, approved by two people, removed through Microsoft Graph, verified, and undone.

Real parts: ``FakeMsGraph`` (real HTTP, port 0) spoken to by remediator's ``DirectoryClient`` over azure-core,
``FakeArm`` for the ARM side the engine always has, SQLite, the shipped playbook
``entra-remove-graph-data-permissions`` (its allow-list keeps Sites.Read.All for app 5b2f8c1e-…).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.azure.approles import scan
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.findings.approles import TENANT_WIDE_DATA
from remediator.findings.model import Finding
from remediator.findings.parse import parse_value
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.model import Remediation
from remediator.privilege.elevation import StandingElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm, FakeMsGraph
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
)

FILES_READ_ALL = "01d4889c-1287-42c6-ac1f-5d1e02578ef6"
SITES_READ_ALL = "332a536c-c7ef-4017-ab91-336970924f0d"
INDEXER_APP = "5b2f8c1e-3d4a-4f6b-9c8d-7e1a2b3c4d5e"  # allow-listed for Sites.Read.All in the shipped playbook
EXEC = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


@dataclass
class World:
    engine: Engine
    graph: FakeMsGraph
    graph_sp: str
    exporter: str  # an app holding Files.Read.All: not allowed
    indexer: str  # an app holding Sites.Read.All: allowed
    clock: FakeClock

    def actor(self, n: int) -> Actor:
        return Actor(user_id=MEMBERS[n], team_id=TEAM, enterprise_id=None, name=f"approver{n}")

    def deliver(self, findings: list[Any]) -> list[Remediation]:
        received = self.engine.ingest(findings)
        self.engine.plan([str(r.record["id"]) for r in received if r.outcome == "queued"])
        self.engine.work()
        return self.engine.pending()

    def approve_all(self, rem: Remediation, first: int = 0) -> Remediation:
        for n in range(first, first + rem.quorum):
            assert self.engine.approve(rem.id, self.actor(n)).ok
        self.engine.work()
        done = self.engine.get(rem.id)
        assert done is not None
        return done

    def holds(self, sp: str) -> list[str]:
        return sorted(TENANT_WIDE_DATA[a["appRoleId"]] for a in self.graph.app_role_assignments().values()
                      if a["principalId"] == sp)

    def trail(self, rid: str, event: str) -> list[dict[str, Any]]:
        return [dict(e.detail) for e in self.engine.audit_trail(rid) if e.event == event]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock()
    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=EXEC, slack_channel="C0REMEDIATE",
                        group_wait=timedelta(0), approver_roles=ROLES)
    with FakeArm() as arm, FakeMsGraph(page_size=1) as graph, \
            SQLiteStore(tmp_path / "remediator.db", clock=clock) as store:
        graph_sp = graph.add_microsoft_graph()
        exporter = graph.add_service_principal("weights-exporter", app_id="0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0")
        indexer = graph.add_service_principal("intranet-indexer", app_id=INDEXER_APP)
        graph.assign_app_role(exporter, graph_sp, FILES_READ_ALL, created="2026-11-30T22:04:00Z")
        graph.assign_app_role(indexer, graph_sp, SITES_READ_ALL)
        for n in range(3):  # more than a page of assignments of roles that are not tenant-wide data access
            other = graph.add_service_principal(f"app-{n}")
            api = graph.add_service_principal(f"api-{n}")
            graph.assign_app_role(other, api, f"00000000-0000-0000-0000-00000000000{n}")
        clients = arm.clients(msgraph=graph.client())
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients), clients=clients,
                        elevator=StandingElevator(), chat=RecordingChat(), directory=StaticDirectory({ONCALL: MEMBERS}),
                        clock=clock)
        yield World(engine=engine, graph=graph, graph_sp=graph_sp, exporter=exporter, indexer=indexer,
                    clock=clock)


def test_scan_finds_tenant_wide_graph_permissions_across_pages(world: World) -> None:
    found = scan(world.graph.client())
    assert sorted((f.principal_id, f.additional_data["permission"]) for f in found) == sorted(
        [(world.exporter, "Files.Read.All"), (world.indexer, "Sites.Read.All")])
    exporter = next(f for f in found if f.principal_id == world.exporter)
    assert exporter.id == f"approle:{world.exporter}:{FILES_READ_ALL}"
    assert exporter.additional_data["appid"] == "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    assert exporter.title == ("Application weights-exporter holds Microsoft Graph Files.Read.All "
                              "(tenant-wide data access)")
    assert world.graph.calls("appRoleAssignedTo") >= 2  # followed @odata.nextLink


def test_scan_plan_two_approvals_remove_verify_then_undo(world: World) -> None:
    pending = world.deliver(scan(world.graph.client()))
    (rem,) = pending  # the allow-listed indexer planned nothing
    assert rem.quorum == 2
    assert rem.risk == "high"
    (change,) = rem.changes
    assert change["operation"] == "delete"
    note = str(change["note"])
    assert note.startswith("remove Microsoft Graph application permission Files.Read.All from weights-exporter "
                           "(app 0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0), granted 2026-11-30T22:04:00Z"), note
    assert "undo re-grants the same permission under a new assignment" in note, note
    # one approval is not enough
    assert world.engine.approve(rem.id, world.actor(0)).ok
    world.engine.work()
    assert world.holds(world.exporter) == ["Files.Read.All"]
    assert world.engine.approve(rem.id, world.actor(1)).ok
    world.engine.work()
    done = world.engine.get(rem.id)
    assert done is not None
    assert done.state == "applied", done.error
    assert world.holds(world.exporter) == []
    assert world.holds(world.indexer) == ["Sites.Read.All"]  # allow-listed: left alone
    deletes = [r for r in world.graph.requests if r.method == "DELETE"]
    assert [(r.path.split("/")[3], r.status) for r in deletes] == [(world.exporter, 204)]
    (elevated,) = world.trail(rem.id, "elevated")
    assert "Microsoft Graph" in str(elevated)
    # undo re-grants the same permission
    assert world.engine.request_undo(rem.id, world.actor(2)).ok
    world.engine.work()
    undo = next(r for r in world.engine.pending() if r.undo_of == rem.id)
    assert [c["operation"] for c in undo.changes] == ["create"]
    undone = world.approve_all(undo, first=3)  # not the requester
    assert undone.state == "applied", undone.error
    assert world.engine.get(rem.id).state == "rolled_back"  # type: ignore[union-attr]
    assert world.holds(world.exporter) == ["Files.Read.All"]
    (post,) = [r for r in world.graph.requests if r.method == "POST" and r.path.endswith("appRoleAssignedTo")]
    assert post.body == {"principalId": world.exporter, "resourceId": world.graph_sp, "appRoleId": FILES_READ_ALL}


def audit_event(sp: str, app_role: str = FILES_READ_ALL, activity: str = "Add app role assignment to service principal",
                result: str = "success") -> dict[str, Any]:
    """An Entra audit log record as the diagnostic-settings export sends it (AuditLogs category)."""
    return {"records": [{
        "time": "2026-12-01T08:00:00Z", "operationName": activity, "category": "AuditLogs",
        "properties": {
            "id": "Directory_0c1d2e3f_ABCDE_1", "category": "ApplicationManagement", "result": result,
            "activityDisplayName": activity, "activityDateTime": "2026-12-01T07:59:58Z",
            "initiatedBy": {"user": {"id": "3a2b1c0d-0000-4000-8000-000000000001",
                                     "userPrincipalName": "mallory@contoso.example"}},
            "targetResources": [{"id": sp, "displayName": "weights-exporter", "type": "ServicePrincipal",
                                 "modifiedProperties": [
                                     {"displayName": "AppRole.Id", "oldValue": None, "newValue": f"\"{app_role}\""},
                                     {"displayName": "AppRole.Value", "oldValue": None,
                                      "newValue": "\"Files.Read.All\""},
                                 ]}]}}]}


def test_an_audit_event_is_the_same_finding_and_names_who_granted_it(world: World) -> None:
    (record,) = parse_value(audit_event(world.exporter), source="test")
    assert isinstance(record, Finding)
    assert record.id == f"approle:{world.exporter}:{FILES_READ_ALL}"  # deduplicates with the scan's
    assert record.additional_data["grantedby"] == "mallory@contoso.example"
    (rem,) = world.deliver([record])
    assert "by mallory@contoso.example" in str(rem.changes[0]["note"])
    assert world.engine.ingest(scan(world.graph.client()))[0].outcome in ("duplicate", "queued")


def test_other_audit_activities_and_roles_are_ignored_with_the_reason(world: World) -> None:
    (other,) = parse_value(audit_event(world.exporter, activity="Update application"), source="t")
    assert not isinstance(other, Finding)
    assert "not an app role assignment" in other.reason
    (narrow,) = parse_value(audit_event(world.exporter, app_role="e1fe6dd8-ba31-4d61-89e7-88639da4683d"), source="t")
    assert not isinstance(narrow, Finding)
    assert "tenant-wide" in narrow.reason


def test_graph_failure_while_planning_is_loud_and_retried(world: World) -> None:
    received = world.engine.ingest(scan(world.graph.client()))
    world.graph.fail_next(503, times=2)  # the first read of each of the two findings
    planned = world.engine.plan([str(r.record["id"]) for r in received if r.outcome == "queued"])
    assert {p.outcome for p in planned} == {"retry"}
    assert all("503" in str(p.reason) and "planned again" in str(p.reason) for p in planned), planned
    assert world.engine.pending() == []
    assert world.holds(world.exporter) == ["Files.Read.All"]
    world.clock.advance(minutes=10)
    world.engine.work()
    (rem,) = world.engine.pending()  # nothing dropped
    assert rem.changes[0]["before"]["permission"] == "Files.Read.All"


def test_graph_refusing_the_write_fails_the_remediation_loudly(world: World) -> None:
    (rem,) = world.deliver(scan(world.graph.client()))
    world.graph.read_only()
    done = world.approve_all(rem)
    assert done.state == "failed"
    assert "403" in str(done.error), done.error
    assert "AppRoleAssignment.ReadWrite.All" in str(done.error), done.error
    assert world.holds(world.exporter) == ["Files.Read.All"]


def test_the_reconcile_scan_ingests_app_permissions_and_a_failing_graph_leaves_it_incomplete(world: World) -> None:
    world.graph.fail_next(503, times=1)
    assert world.engine.scan_app_roles() is None  # loud: audited, the next reconcile reads again
    (failed,) = [e for e in world.engine.audit_trail(None) if e.event == "app_role_scan_failed"]
    assert "503" in str(failed.detail["reason"])
    answers = world.engine.scan_app_roles()
    assert answers is not None
    assert sorted(a.outcome for a in answers) == ["queued", "queued"]
    assert [a.outcome for a in world.engine.scan_app_roles() or []] == ["duplicate", "duplicate"]

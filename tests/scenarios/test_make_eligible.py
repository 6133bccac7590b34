"""Standing access to the ML training estate becomes just-in-time: the story end to end (issue 22, item 1).

The estate: an ML workspace and a training storage account tagged ``workload: ml-training``, an untagged web
storage account. A user holds Contributor on the workspace, a group Storage Blob Data Owner on the training
account, a service principal Contributor on the workspace, a group Storage Blob Data Owner on the web account
(out of scope), and a platform lead Owner of the subscription. The backlog scan (Resource Graph
``authorizationresources``) brings the privileged assignments; the shipped playbook rbac-make-ai-access-eligible
claims them; two security engineers approve each; the worker asks PIM (the broker) for User Access
Administrator on the one scope, and the executor makes the person or group eligible, reads the eligibility
back, deletes the standing assignment, verifies and releases. The service principal's assignment gets an end
date instead. Undo brings the standing assignment back. The guard rails refuse the last Owner, a protected
principal and a break-glass account with the reason. Real parts: FakeArm (PIM enforced: the executor holds
nothing standing), the real SDK clients, SQLite, the shipped playbooks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.authorization.v2020_10_01.models import (
    RoleAssignmentScheduleRequest,
    RoleAssignmentScheduleRequestPropertiesScheduleInfo,
    RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration,
)

from remediator.app.demo import DEMO_EXECUTOR
from remediator.azure.graph import Graph, Scope
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.findings.model import Finding
from remediator.findings.roles import CONTRIBUTOR, OWNER, STORAGE_BLOB_DATA_OWNER, USER_ACCESS_ADMINISTRATOR
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.codec import change_from_json
from remediator.lifecycle.engine import Engine
from remediator.planning.planner import Planner
from remediator.privilege.elevation import PimAssignElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.engine import (
    ADMIN,
    LEAD1,
    MEMBERS,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    SUB,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    deliver,
)

BROKER = "7a3e9c1d-2b4f-4d6a-8e0c-1f2a3b4c5d6e"
ENGINEER = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"  # a user
TRAINERS = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"  # a group
PIPELINE = "3e4f5a6b-7c8d-4e9f-0a1b-2c3d4e5f6a7b"  # a service principal
WEB_TEAM = "4f5a6b7c-8d9e-4f0a-1b2c-3d4e5f6a7b8c"  # a group, on the untagged account
LEAD = "5a6b7c8d-9e0f-4a1b-2c3d-4e5f6a7b8c9d"  # Owner of the subscription
BREAK_GLASS = "6b7c8d9e-0f1a-4b2c-3d4e-5f6a7b8c9d0e"
SUB_SCOPE = f"/subscriptions/{SUB}"
WORKSPACE = f"{SUB_SCOPE}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/mlw-train"
TRAINING = f"{SUB_SCOPE}/resourceGroups/rg-ml-data/providers/Microsoft.Storage/storageAccounts/sttraining"
WEB = f"{SUB_SCOPE}/resourceGroups/rg-web/providers/Microsoft.Storage/storageAccounts/stweb"
TAGS = {"workload": "ml-training"}
APPROVERS = (MEMBERS[0], MEMBERS[1])


def resource(rid: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    rtype = rid.split("/providers/", 1)[1].rsplit("/", 1)[0]
    doc: dict[str, Any] = {"id": rid, "name": rid.rsplit("/", 1)[-1], "type": rtype, "location": "westeurope",
                           "properties": {"provisioningState": "Succeeded"}}
    if tags:
        doc["tags"] = tags
    return doc


def assignment(principal: str, kind: str, role: str, scope: str) -> dict[str, Any]:
    """A standing role assignment as ARM's 2022-04-01 list returns it."""
    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{principal}|{role}|{scope.lower()}"))
    return {"id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {"roleDefinitionId": f"{SUB_SCOPE}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                           "principalId": principal, "principalType": kind, "scope": scope, "condition": None,
                           "conditionVersion": None, "createdOn": "2025-11-02T08:00:00.0000000Z",
                           "updatedOn": "2025-11-02T08:00:00.0000000Z", "description": None}}


ENGINEER_CONTRIBUTOR = assignment(ENGINEER, "User", CONTRIBUTOR, WORKSPACE)
TRAINERS_BLOB_OWNER = assignment(TRAINERS, "Group", STORAGE_BLOB_DATA_OWNER, TRAINING)
PIPELINE_CONTRIBUTOR = assignment(PIPELINE, "ServicePrincipal", CONTRIBUTOR, WORKSPACE)
WEB_BLOB_OWNER = assignment(WEB_TEAM, "Group", STORAGE_BLOB_DATA_OWNER, WEB)
LEAD_OWNER = assignment(LEAD, "User", OWNER, SUB_SCOPE)


@dataclass
class World:
    engine: Engine
    store: SQLiteStore
    arm: FakeArm
    settings: Settings

    def findings(self) -> dict[str, Finding]:
        """The backlog scan's role assignment findings, by assignment id (lower-case)."""
        scan = Graph(self.arm.clients(principal_id=DEMO_EXECUTOR)).scan(Scope(subscriptions=(SUB,)))
        return {f.resource_id.lower(): f for f in scan.findings
                if f.type == "microsoft.authorization/roleassignments/write"}

    def approve_and_apply(self, rid: str) -> None:
        for user in APPROVERS:
            assert self.engine.approve(rid, Actor(user_id=user, team_id=TEAM, enterprise_id=None, name=user)).ok
        self.engine.work()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock()
    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=DEMO_EXECUTOR,
                        slack_channel="C0REMEDIATE", group_wait=timedelta(0), approver_roles=ROLES,
                        protected_principals=frozenset({BROKER}), break_glass_principals=frozenset({BREAK_GLASS}))
    with FakeArm() as arm, SQLiteStore(tmp_path / "remediator.db", clock=clock) as store:
        arm.load([resource(WORKSPACE, TAGS), resource(TRAINING, TAGS), resource(WEB), ENGINEER_CONTRIBUTOR,
                  TRAINERS_BLOB_OWNER, PIPELINE_CONTRIBUTOR, WEB_BLOB_OWNER, LEAD_OWNER])
        for role in (CONTRIBUTOR, STORAGE_BLOB_DATA_OWNER, OWNER):
            arm.pim.set_policy(SUB_SCOPE, role, approval=True, approvers=("ml-leads",), mfa=True,
                               max_activation="PT4H", max_eligibility="P365D")
        arm.enforce_grants(DEMO_EXECUTOR)  # nothing standing: every write needs a PIM grant on the scope
        clients = arm.clients(principal_id=DEMO_EXECUTOR)
        elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=DEMO_EXECUTOR,
                                     poll_interval=0.01, sleep=lambda _s: None)
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                        clients=clients, elevator=elevator, chat=RecordingChat(),
                        directory=StaticDirectory({ONCALL: MEMBERS}), clock=clock)
        yield World(engine, store, arm, settings)


def test_a_user_and_a_group_end_eligible_and_no_longer_active_a_service_principal_time_bound(world: World) -> None:
    found = world.findings()
    assert set(found) == {d["id"].lower() for d in (ENGINEER_CONTRIBUTOR, TRAINERS_BLOB_OWNER, PIPELINE_CONTRIBUTOR,
                                                   WEB_BLOB_OWNER, LEAD_OWNER)}
    planned = {p.record["id"]: p for p in deliver(world.engine, world.store, list(found.values()))}
    outcome = {rid: planned[f.id].outcome for rid, f in found.items()}
    assert outcome[WEB_BLOB_OWNER["id"].lower()] == "no_changes"  # not tagged ml-training: out of scope
    assert outcome[LEAD_OWNER["id"].lower()] == "no_changes"  # the subscription is not in scope
    rems = {d["id"]: planned[found[d["id"].lower()].id].remediation
            for d in (ENGINEER_CONTRIBUTOR, TRAINERS_BLOB_OWNER, PIPELINE_CONTRIBUTOR)}
    for rem in rems.values():
        assert rem is not None
        assert rem.state == "pending_approval"
        assert (rem.playbook, rem.quorum) == ("rbac-make-ai-access-eligible", 2)
    note = change_from_json(rems[ENGINEER_CONTRIBUTOR["id"]].changes[0]).note  # type: ignore[union-attr]
    assert "eligible for P365D" in note
    assert "approval by ml-leads, MFA, justification, at most PT4H" in note
    assert "time-bound (P30D" in change_from_json(rems[PIPELINE_CONTRIBUTOR["id"]].changes[0]).note  # type: ignore[union-attr]
    assert world.arm.resource_writes == []  # planning only reads

    for rem in rems.values():
        assert rem is not None
        world.approve_and_apply(rem.id)
        assert world.engine.get(rem.id).state == "applied", world.engine.audit_trail(rem.id)  # type: ignore[union-attr]

    # the user and the group: eligible for the same role at the same scope, the standing assignment gone
    for doc in (ENGINEER_CONTRIBUTOR, TRAINERS_BLOB_OWNER):
        p = doc["properties"]
        (eligible,) = world.arm.pim.eligibilities(p["principalId"])
        ep = eligible["properties"]
        assert (ep["roleDefinitionId"].rsplit("/", 1)[-1], ep["scope"], ep["principalType"]) == \
            (p["roleDefinitionId"].rsplit("/", 1)[-1], p["scope"], p["principalType"])
        assert ep["endDateTime"] is not None  # P365D
        assert world.arm.get(doc["id"]) is None
    request = world.arm.pim.request(next(
        e for e in world.arm.requests if "roleeligibilityschedulerequests" in e.path.lower()).path.rsplit("/", 1)[-1])
    assert request is not None
    assert request["properties"]["requestType"] == "AdminAssign"
    assert request["properties"]["justification"].startswith("Standing access to the ML training estate")
    # the service principal: never eligible, its assignment now ends
    assert world.arm.pim.eligibilities(PIPELINE) == []
    assert world.arm.get(PIPELINE_CONTRIBUTOR["id"]) is not None
    instance = next(i for i in world.arm.pim._instances()
                    if i["properties"]["originRoleAssignmentId"] == PIPELINE_CONTRIBUTOR["id"])
    assert instance["properties"]["endDateTime"] is not None
    # untouched: out of scope
    assert world.arm.get(WEB_BLOB_OWNER["id"]) is not None
    assert world.arm.get(LEAD_OWNER["id"]) is not None

    # audited: each under a User Access Administrator grant on its one scope, applied, verified, released
    for doc in (ENGINEER_CONTRIBUTOR, TRAINERS_BLOB_OWNER, PIPELINE_CONTRIBUTOR):
        rem = rems[doc["id"]]
        assert rem is not None
        trail = world.engine.audit_trail(rem.id)
        events = [e.event for e in trail]
        assert events.index("elevated") < events.index("change_applied") < events.index("change_verified")
        granted = next(e.detail for e in trail if e.event == "elevated")
        assert (granted["role_id"], granted["scope"]) == (USER_ACCESS_ADMINISTRATOR, doc["properties"]["scope"])
        assert "released" in events
    assert world.arm.pim_grants(DEMO_EXECUTOR) == []


def test_undo_restores_the_standing_assignment_and_removes_the_eligibility(world: World) -> None:
    finding = world.findings()[ENGINEER_CONTRIBUTOR["id"].lower()]
    (planned,) = deliver(world.engine, world.store, [finding])
    assert planned.remediation is not None
    world.approve_and_apply(planned.remediation.id)
    assert world.arm.get(ENGINEER_CONTRIBUTOR["id"]) is None
    asked = world.engine.request_undo(planned.remediation.id, Actor(user_id=LEAD1, team_id=TEAM, enterprise_id=None,
                                                                    name="lead"))
    assert asked.ok, asked.message
    assert asked.remediation is not None
    world.approve_and_apply(asked.remediation.id)
    assert world.engine.get(asked.remediation.id).state == "applied"  # type: ignore[union-attr]
    back = world.arm.get(ENGINEER_CONTRIBUTOR["id"])
    assert back is not None
    assert back["properties"]["principalId"] == ENGINEER
    assert world.arm.pim.eligibilities(ENGINEER) == []
    # the re-created assignment, scanned (or its write event), is the undo's decision: not asked again
    (again,) = deliver(world.engine, world.store, [world.findings()[ENGINEER_CONTRIBUTOR["id"].lower()]])
    assert again.outcome == "no_changes"
    assert again.remediation is not None
    assert any("re-created by remediator (an approved undo)" in w for w in again.remediation.warnings)


def test_a_failed_eligibility_leaves_the_active_assignment_and_says_so(world: World) -> None:
    finding = world.findings()[TRAINERS_BLOB_OWNER["id"].lower()]
    (planned,) = deliver(world.engine, world.store, [finding])
    assert planned.remediation is not None
    world.arm.pim.eligibility_outcome("Failed")
    world.approve_and_apply(planned.remediation.id)
    rem = world.engine.get(planned.remediation.id)
    assert rem is not None
    assert rem.state == "failed"
    failed = next(e.detail for e in world.engine.audit_trail(rem.id) if e.event == "failed")
    assert "the active assignment was left in place" in str(failed)
    assert world.arm.get(TRAINERS_BLOB_OWNER["id"]) is not None


def plan(world: World, docs: list[dict[str, Any]], target: dict[str, Any]) -> Any:
    world.arm.load(docs)
    planner = Planner(playbooks=PLAYBOOKS, state=LiveState(world.arm.clients()),
                      protected_principals=world.settings.protected_principals, settings=world.settings.for_actions())
    found = world.findings()[target["id"].lower()]
    return planner.plan_one(found)


def test_the_last_owner_of_a_scope_is_refused(world: World) -> None:
    # the only Owner of the training account is a user; the subscription's Owner is inherited, so remove it first
    world.arm._docs.pop(LEAD_OWNER["id"].lower(), None)
    lone = assignment(ENGINEER, "User", OWNER, TRAINING)
    result = plan(world, [lone], lone)
    assert result.outcome == "error"
    assert "last Owner of that scope" in result.reason
    assert ENGINEER in result.reason
    # with the subscription's Owner inherited, it is not the last one
    world.arm.load([LEAD_OWNER])
    assert plan(world, [], lone).outcome == "changes"


@pytest.mark.parametrize(("principal", "why"), [
    (BROKER, "protected principal"),
    (DEMO_EXECUTOR, "remediator's own executor identity"),
    (BREAK_GLASS, "emergency-access (break-glass) account"),
])
def test_protected_own_and_break_glass_principals_are_refused(world: World, principal: str, why: str) -> None:
    held = assignment(principal, "User", CONTRIBUTOR, WORKSPACE)
    result = plan(world, [held], held)
    assert result.outcome == "error"
    assert why in result.reason
    assert principal in result.reason


def test_an_activated_or_time_bound_assignment_is_left_alone(world: World) -> None:
    world.arm.pim.ends[ENGINEER_CONTRIBUTOR["id"].lower()] = None  # (still permanent: planned)
    assert plan(world, [], ENGINEER_CONTRIBUTOR).outcome == "changes"
    world.arm.pim.ends[ENGINEER_CONTRIBUTOR["id"].lower()] = datetime.now(UTC) + timedelta(days=10)
    assert plan(world, [], ENGINEER_CONTRIBUTOR).outcome == "no_changes"


def test_a_duration_over_the_roles_eligibility_maximum_is_refused(world: World) -> None:
    world.arm.pim.set_policy(WORKSPACE, CONTRIBUTOR, max_eligibility="P90D")
    result = plan(world, [], ENGINEER_CONTRIBUTOR)
    assert result.outcome == "error"
    assert "longer than the eligibility maximum P90D" in result.reason


def test_a_refusal_is_recorded_with_its_reason(world: World) -> None:
    held = assignment(BREAK_GLASS, "User", CONTRIBUTOR, WORKSPACE)
    world.arm.load([held])
    finding = world.findings()[held["id"].lower()]
    (planned,) = deliver(world.engine, world.store, [finding])
    assert (planned.outcome, planned.remediation) == ("error", None)
    (recorded,) = [e for e in world.engine.audit_trail() if e.event == "plan_error"]
    assert recorded.detail["finding"]["id"] == finding.id
    assert "it is an emergency-access (break-glass) account" in recorded.detail["reason"]
    assert world.arm.resource_writes == []


def test_the_engineer_activates_the_eligible_role_and_the_activation_is_left_alone(world: World) -> None:
    (planned,) = deliver(world.engine, world.store, [world.findings()[ENGINEER_CONTRIBUTOR["id"].lower()]])
    assert planned.remediation is not None
    world.approve_and_apply(planned.remediation.id)
    (eligible,) = world.arm.pim.eligibilities(ENGINEER)
    p = ENGINEER_CONTRIBUTOR["properties"]
    activate = RoleAssignmentScheduleRequest(
        principal_id=ENGINEER, role_definition_id=p["roleDefinitionId"], request_type="SelfActivate",
        linked_role_eligibility_schedule_id=eligible["id"], justification="training run 42",
        schedule_info=RoleAssignmentScheduleRequestPropertiesScheduleInfo(
            start_date_time=datetime.now(UTC),
            expiration=RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration(type="AfterDuration",
                                                                                     duration="PT4H")))
    made = world.arm.clients(principal_id=ENGINEER).authorization(SUB).role_assignment_schedule_requests.create(
        WORKSPACE, str(uuid.uuid4()), activate)
    assert made.status == "Provisioned"
    # the activation is an active assignment again: the scan brings it, the plan leaves it alone
    activated = [f for rid, f in world.findings().items() if f.principal_id == ENGINEER]
    assert len(activated) == 1
    (again,) = deliver(world.engine, world.store, activated)
    assert again.outcome == "no_changes"
    assert again.remediation is not None
    assert again.remediation.state == "no_change"
    assert world.arm.pim_grants(ENGINEER)[0].request_type == "SelfActivate"  # still active, untouched

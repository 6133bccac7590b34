"""A platform team's own Modify policy, kept at Audit, fixed through remediator: the story end to end.

The built-in definition a06d0189 ("Configure storage accounts to disable public network access") is
assigned with effect Audit. Its NonCompliant event arrives from Event Grid; the deployment's playbook
(examples/playbooks-modify: policy_categories Storage, approvers platform-owners) claims it; the plan
is the definition's own operation, read live with the provider's alias metadata; a platform owner
approves; the worker re-plans, asks PIM for the definition's role (Storage Account Contributor, not
the playbook's or a standing one) on the one account, writes, verifies and releases. Real parts:
FakeArm (PIM enforced: the executor holds nothing standing), SQLite, the real parser and loader.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.app.demo import DEMO_EXECUTOR
from remediator.app.paths import SHIPPED_PLAYBOOKS
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.codec import change_from_json
from remediator.lifecycle.engine import Engine
from remediator.playbooks import PlaybookSet, load_playbooks
from remediator.privilege.elevation import PimAssignElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.actions.test_modify import _assignment, definition, resource
from tests.conftest import ROOT
from tests.support.builders import parse_one, policy_event
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ONCALL,
    PLATFORM,
    ROLES,
    SUB,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    deliver,
)

BROKER = "7a3e9c1d-2b4f-4d6a-8e0c-1f2a3b4c5d6e"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
PLAYBOOKS = load_playbooks(ROOT / "examples" / "playbooks-modify", base=SHIPPED_PLAYBOOKS)
COSMOS = """\
name: cosmos-modify-policies
description: Our Cosmos DB Modify policies, approved by the platform owners.
priority: 10
match:
  policy_categories: [Cosmos DB]
  resource_types: [Microsoft.DocumentDB/databaseAccounts]
risk: medium
approval: {mode: slack, approvers: [platform-owners]}
steps:
  - action: policy.apply-modify
"""


class World:
    def __init__(self, engine: Engine, store: SQLiteStore, arm: FakeArm, account: str) -> None:
        self.engine, self.store, self.arm, self.account = engine, store, arm, account


def make(tmp_path: Path, definition_name: str, account: dict[str, Any],
         playbooks: PlaybookSet = PLAYBOOKS) -> Iterator[World]:
    clock = FakeClock()
    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=DEMO_EXECUTOR,
                        slack_channel="C0REMEDIATE", group_wait=timedelta(0), approver_roles=ROLES)
    defn = definition(definition_name)
    with FakeArm() as arm, SQLiteStore(tmp_path / "remediator.db", clock=clock) as store:
        arm.load([account, defn, _assignment(defn)])
        arm.add_provider(SUB, "Microsoft.Storage", {"storageAccounts": (["2023-05-01"], {
            "Microsoft.Storage/storageAccounts/publicNetworkAccess": "properties.publicNetworkAccess"})})
        arm.enforce_grants(DEMO_EXECUTOR)  # nothing standing: every write needs a PIM grant on the resource
        clients = arm.clients(principal_id=DEMO_EXECUTOR)
        elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=DEMO_EXECUTOR,
                                     poll_interval=0.01, sleep=lambda _s: None)
        engine = Engine(store=store, settings=settings, playbooks=playbooks, state=LiveState(clients),
                        clients=clients, elevator=elevator, chat=RecordingChat(),
                        directory=StaticDirectory({ONCALL: MEMBERS, PLATFORM: MEMBERS[:3]}), clock=clock)
        yield World(engine, store, arm, account["id"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    account = resource("Microsoft.Storage/storageAccounts", name="stmodels", publicNetworkAccess="Enabled")
    yield from make(tmp_path, "a06d0189-92e8-4dba-b0c4-08d7669fce7d", account)


def approve_and_apply(world: World, definition_name: str) -> str:
    event = policy_event(world.account, definition_name)
    event["data"]["policyAssignmentId"] = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/" \
                                          "modify-audit"
    (planned,) = deliver(world.engine, world.store, [parse_one(event)])
    assert planned.remediation is not None, planned
    rid = planned.remediation.id
    assert world.engine.approve(rid, Actor(user_id=MEMBERS[0], team_id=TEAM, enterprise_id=None, name="alice")).ok
    world.engine.work()
    return rid


def test_an_audit_modify_policy_is_fixed_after_approval_under_the_definitions_role(world: World) -> None:
    event = policy_event(world.account, "a06d0189-92e8-4dba-b0c4-08d7669fce7d")
    event["data"]["policyAssignmentId"] = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/" \
                                          "modify-audit"
    (planned,) = deliver(world.engine, world.store, [parse_one(event)])
    rem = planned.remediation
    assert rem is not None
    assert (rem.playbook, rem.state) == ("modify-policies-with-approval", "pending_approval")
    change = change_from_json(rem.changes[0])
    assert change.roles == ((STORAGE_ACCOUNT_CONTRIBUTOR, "Storage Account Contributor"),)  # kept by the store
    assert "Configure storage accounts to disable public network access" in change.note
    assert world.arm.resource_writes == []

    assert world.engine.approve(rem.id, Actor(user_id=MEMBERS[0], team_id=TEAM, enterprise_id=None,
                                              name="alice")).ok
    world.engine.work()
    done = world.engine.get(rem.id)
    assert done is not None
    assert done.state == "applied", [e.event for e in world.engine.audit_trail(rem.id)]
    assert world.arm.get(world.account)["properties"]["publicNetworkAccess"] == "Disabled"  # type: ignore[index]
    (grant,) = world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)
    assert grant.role_definition_id.rsplit("/", 1)[-1] == STORAGE_ACCOUNT_CONTRIBUTOR
    assert grant.scope.lower() == world.account.lower()
    assert grant.ended == "removed"
    elevated = [e.detail for e in world.engine.audit_trail(rem.id) if e.event == "elevated"]
    assert [(d["role"], d["role_id"]) for d in elevated] == [("Storage Account Contributor",
                                                               STORAGE_ACCOUNT_CONTRIBUTOR)]
    requested = [e.detail for e in world.engine.audit_trail(rem.id) if e.event == "grant_requested"]
    assert [d["role_id"] for d in requested] == [STORAGE_ACCOUNT_CONTRIBUTOR]  # recorded before the ask


def test_a_definition_naming_two_roles_is_applied_under_both_each_released(tmp_path: Path) -> None:
    """Cosmos DB public network access (da69ba51) names Contributor and DocumentDB Account Contributor: the
    remediation identity Azure would use holds both, so the write runs under two PIM grants on the account."""
    account = resource("Microsoft.DocumentDB/databaseAccounts", name="cosmos-rag", publicNetworkAccess="Enabled")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "cosmos.yaml").write_text(COSMOS, encoding="utf-8")
    playbooks = load_playbooks(tmp_path / "playbooks", base=SHIPPED_PLAYBOOKS)
    for world in make(tmp_path, "da69ba51-aaf1-41e5-8651-607cd0b37088", account, playbooks):
        rid = approve_and_apply(world, "da69ba51-aaf1-41e5-8651-607cd0b37088")
        rem = world.engine.get(rid)
        assert rem is not None
        assert rem.state == "applied", [e.event for e in world.engine.audit_trail(rid)]
        assert world.arm.get(world.account)["properties"]["publicNetworkAccess"] == "Disabled"  # type: ignore[index]
        grants = world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)
        assert sorted((g.role_definition_id.rsplit("/", 1)[-1], g.scope.lower(), g.ended) for g in grants) == [
            ("5bd9cd88-fe45-4216-938b-f97437e15450", world.account.lower(), "removed"),
            ("b24988ac-6180-42a0-ab88-20f7382dd24c", world.account.lower(), "removed")]
        trail = world.engine.audit_trail(rid)
        requested = [e.detail["role_id"] for e in trail if e.event == "grant_requested"]
        assert requested == ["b24988ac-6180-42a0-ab88-20f7382dd24c", "5bd9cd88-fe45-4216-938b-f97437e15450"]
        assert len({e.detail["request_id"] for e in trail if e.event == "elevated"}) == 2  # two grants, not one
        assert len([e for e in trail if e.event == "released"]) == 2

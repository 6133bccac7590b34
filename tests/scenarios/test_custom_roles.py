"""A Synapse workspace still taking SQL logins, fixed under remediator's custom role: the story end to end.

Azure Policy reports the workspace's ``azureADOnlyAuthentications/default`` NonCompliant (6ea81a52); the shipped
playbook synapse-enable-entra-only-auth claims it; the plan names the custom role it will grant (no built-in role
narrower than Contributor writes a workspace) after reading the role's definition; the on-call engineer
approves; the worker re-plans, asks PIM for exactly that role on the one child resource, writes, verifies and
releases. A deployment that maps the role to its own (``custom_roles``) gets that one granted; a deployment that
never created the role gets a refusal that says how, and nothing is asked of PIM or written. Real parts: FakeArm
(grants enforced: the executor holds nothing standing), SQLite, the real parser, loader and engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from remediator.actions.custom_roles import SYNAPSE_WORKSPACE_SETTINGS, definition_document, definition_id
from remediator.app.demo import DEMO_EXECUTOR
from remediator.app.paths import SHIPPED_PLAYBOOKS
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.codec import change_from_json
from remediator.lifecycle.engine import Engine
from remediator.playbooks import load_playbooks
from remediator.privilege.elevation import PimAssignElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.builders import parse_one, policy_event
from tests.support.contract import CASES
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ONCALL,
    ROLES,
    SUB,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    deliver,
)

BROKER = "7a3e9c1d-2b4f-4d6a-8e0c-1f2a3b4c5d6e"
ENTRA_ONLY = "6ea81a52-5ca7-4575-9669-eaa910b7edf8"
OWN_ROLE = "0c7a9e51-3f2b-4d6a-8e1c-5b9d2f4a6c8e"
PLAYBOOKS = load_playbooks(SHIPPED_PLAYBOOKS)
SETTINGS = Settings(slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=DEMO_EXECUTOR,
                    slack_channel="C0REMEDIATE", group_wait=timedelta(0), approver_roles=ROLES)


def _estate(*, role: bool = True) -> list[dict[str, object]]:
    """The contract case's workspace setting (the spec example, Entra-only off), moved into the engine's
    subscription, with the custom role's definition as the template creates it."""
    docs = CASES["synapse.enable-entra-only-auth"].docs()
    setting = docs[0]
    setting["id"] = str(setting["id"]).replace(str(setting["id"]).split("/")[2], SUB, 1)
    return [setting, *([definition_document(SYNAPSE_WORKSPACE_SETTINGS, [f"/subscriptions/{SUB}"])] if role else [])]


class World:
    def __init__(self, engine: Engine, store: SQLiteStore, arm: FakeArm, target: str) -> None:
        self.engine, self.store, self.arm, self.target = engine, store, arm, target


def make(tmp_path: Path, docs: list[dict[str, object]], settings: Settings = SETTINGS) -> Iterator[World]:
    clock = FakeClock()
    with FakeArm() as arm, SQLiteStore(tmp_path / "remediator.db", clock=clock) as store:
        arm.load(docs)
        arm.enforce_grants(DEMO_EXECUTOR)  # nothing standing: every write needs a PIM grant on the resource
        clients = arm.clients(principal_id=DEMO_EXECUTOR)
        elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=DEMO_EXECUTOR,
                                     poll_interval=0.01, sleep=lambda _s: None)
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                        clients=clients, elevator=elevator, chat=RecordingChat(),
                        directory=StaticDirectory({ONCALL: MEMBERS}), clock=clock)
        yield World(engine, store, arm, str(docs[0]["id"]))


def _approve_and_apply(world: World) -> str:
    (planned,) = deliver(world.engine, world.store, [parse_one(policy_event(world.target, ENTRA_ONLY))])
    rem = planned.remediation
    assert rem is not None, planned
    assert (rem.playbook, rem.state) == ("synapse-enable-entra-only-auth", "pending_approval")
    assert world.arm.resource_writes == []
    assert world.engine.approve(rem.id, Actor(user_id=MEMBERS[0], team_id=TEAM, enterprise_id=None, name="al")).ok
    world.engine.work()
    return rem.id


def test_entra_only_is_turned_on_under_the_synapse_custom_role_granted_on_the_one_setting(tmp_path: Path) -> None:
    for world in make(tmp_path, _estate()):
        rid = _approve_and_apply(world)
        rem = world.engine.get(rid)
        assert rem is not None
        assert rem.state == "applied", [e.event for e in world.engine.audit_trail(rid)]
        assert change_from_json(rem.changes[0]).roles == ((SYNAPSE_WORKSPACE_SETTINGS.id,
                                                           SYNAPSE_WORKSPACE_SETTINGS.name),)  # what was approved
        setting = world.arm.get(world.target)
        assert setting is not None
        assert setting["properties"]["azureADOnlyAuthentication"] is True
        (grant,) = world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)
        assert (grant.role_definition_id, grant.scope.lower(), grant.ended) == (
            definition_id(SYNAPSE_WORKSPACE_SETTINGS, SUB), world.target.lower(), "removed")
        elevated = [e.detail for e in world.engine.audit_trail(rid) if e.event == "elevated"]
        assert [(d["role"], d["role_id"]) for d in elevated] == [(SYNAPSE_WORKSPACE_SETTINGS.name,
                                                                   SYNAPSE_WORKSPACE_SETTINGS.id)]


def test_a_deployment_that_maps_its_own_role_gets_that_one_granted(tmp_path: Path) -> None:
    own = SYNAPSE_WORKSPACE_SETTINGS.mapped({SYNAPSE_WORKSPACE_SETTINGS.key: OWN_ROLE})
    settings = replace(SETTINGS, custom_roles={"synapse-workspace-settings": OWN_ROLE})
    docs = [*_estate(role=False), definition_document(own, [f"/subscriptions/{SUB}"])]
    for world in make(tmp_path, docs, settings):
        rid = _approve_and_apply(world)
        rem = world.engine.get(rid)
        assert rem is not None
        assert rem.state == "applied", [e.event for e in world.engine.audit_trail(rid)]
        (grant,) = world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)
        assert grant.role_definition_id.rsplit("/", 1)[-1] == OWN_ROLE


def test_without_the_custom_role_the_plan_refuses_and_nothing_is_asked_or_written(tmp_path: Path) -> None:
    for world in make(tmp_path, _estate(role=False)):
        (planned,) = deliver(world.engine, world.store, [parse_one(policy_event(world.target, ENTRA_ONLY))])
        assert (planned.outcome, planned.remediation) == ("error", None), planned
        assert (f"refused: custom role '{SYNAPSE_WORKSPACE_SETTINGS.name}' ({SYNAPSE_WORKSPACE_SETTINGS.id}, "
                "custom_roles.synapse-workspace-settings) is not found") in planned.reason
        assert "deploy infra/custom-roles.bicep" in planned.reason
        world.engine.work()
        assert world.arm.writes == []  # no PIM request, no write
        assert world.arm.pim_grants(DEMO_EXECUTOR, active_only=False) == []

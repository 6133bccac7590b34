"""An OpenAI account moved behind a private endpoint, end to end, and every way it can stop half-way.

Real parts: the shipped cognitive-restrict-network-access playbook, the Engine and its worker on SQLite,
FakeArm serving the live-shaped estate (tests/fixtures/live/) and enforcing that the executor writes only
under PIM grants the broker makes (``PimAssignElevator``), azure-mgmt-network for the endpoint and the zone
group (long-running operations polled), the settings' private_link_subnets and private_dns_zones. The
plan is one approval for the whole path; the apply grants at each scope the change needs, writes, releases
and verifies each change before the next, so public access closes only once the private path verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.app.briefs import trail_lines
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.model import Remediation
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.builders import assessment_arm, parse_one
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ROLES,
    TEAM,
    FakeClock,
    RecordingChat,
)
from tests.support.live import BROKER, DNS, EXEC, OPENAI, RG, SUB, SUBNET, ZONE, live_documents
from tests.support.pim import pim_engine

PE = f"{RG}/providers/Microsoft.Network/privateEndpoints/pe-oai-contoso-prod-account"
RESTRICT_NETWORK = "f738efb8-005f-680d-3d43-b3db762d6243"  # Azure AI Services resources should restrict network access
ZONES = ("privatelink.openai.azure.com", "privatelink.cognitiveservices.azure.com", "privatelink.services.ai.azure.com",
         "privatelink.vaultcore.azure.net")


@dataclass
class World:
    engine: Engine
    arm: FakeArm
    chat: RecordingChat
    clock: FakeClock
    quorums: list[int] = field(default_factory=list)

    def approved_and_applied(self) -> Remediation:
        (planned,) = self.engine.ingest([parse_one(assessment_arm(OPENAI, RESTRICT_NETWORK))])
        self.engine.plan([str(planned.record["id"])])
        self.engine.work()
        (rem,) = self.engine.pending()
        self.quorums.append(rem.quorum)
        for n, member in enumerate(MEMBERS[:rem.quorum]):
            assert self.engine.approve(rem.id, Actor(user_id=member, team_id=TEAM, enterprise_id=None,
                                                     name=f"approver{n}")).ok
        self.engine.work()
        done = self.engine.get(rem.id)
        assert done is not None
        return done

    def trail(self, rid: str, event: str) -> list[dict[str, Any]]:
        return [dict(e.detail) for e in self.engine.audit_trail(rid) if e.event == event]

    def public(self) -> str:
        doc = self.arm.get(OPENAI) or {}
        return str((doc.get("properties") or {}).get("publicNetworkAccess"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock()
    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=EXEC, slack_channel="C0REMEDIATE",
                        group_wait=timedelta(0), approver_roles=ROLES,
                        private_link_subnets={"westeurope": SUBNET}, private_dns_zones={z: f"{DNS}/{z}" for z in ZONES})
    with FakeArm() as arm, SQLiteStore(tmp_path / "remediator.db", clock=clock) as store:
        arm.clients().network(SUB)  # azure-mgmt-network's first import (~1 s) in the setup, not in the timed call
        arm.load(live_documents())
        arm.enforce_grants(EXEC)
        chat = RecordingChat()
        engine = pim_engine(arm, store, settings, executor=EXEC, broker=BROKER, chat=chat, clock=clock)
        yield World(engine=engine, arm=arm, chat=chat, clock=clock)


def test_one_approval_builds_the_private_path_then_closes_public_access(world: World) -> None:
    rem = world.approved_and_applied()
    assert rem.state == "applied", rem.error
    # the network playbook asks one person, but a plan that creates a private endpoint costs money: two decide
    assert world.quorums == [2]
    assert "COSTS MONEY: billed per hour and per GB processed" in str(rem.changes[0]["note"])
    assert [(c["operation"], ids.resource_type(str(c["resource_id"])).rsplit("/", 1)[-1]) for c in rem.changes] == [
        ("create", "privateEndpoints"), ("create", "privateDnsZoneGroups"), ("update", "accounts")]
    assert world.public() == "Disabled"
    (conn,) = world.arm.private_link.connections(OPENAI)
    assert conn["properties"]["privateLinkServiceConnectionState"]["status"] == "Approved"
    assert ids.same(conn["properties"]["privateEndpoint"]["id"], PE)
    assert world.arm.private_link.records(ZONE) == {"oai-contoso-prod": ["10.20.1.4"]}
    # written in order, each by the executor
    writes = [(w.method, ids.resource_type(w.path).rsplit("/", 1)[-1]) for w in world.arm.resource_writes
              if w.status < 300]
    assert writes == [("PUT", "privateEndpoints"), ("PUT", "privateDnsZoneGroups"), ("PATCH", "accounts")]
    # least privilege at every scope the path needs, each released
    cognitive, network, dns = ("Cognitive Services Contributor", "Network Contributor", "Private DNS Zone Contributor")
    assert [(g["role"], g["scope"]) for g in world.trail(rem.id, "elevated")] == [
        (network, SUBNET), (network, RG), (cognitive, OPENAI),  # the endpoint: join, create, approve
        (network, PE), (dns, ZONE),  # the zone group: on the endpoint, join the zone
        (cognitive, OPENAI)]  # closing public access
    assert len(world.trail(rem.id, "released")) == 6
    # the brief trail: the remediation, then per write its grants; a write under grants at several scopes names
    # them on a line of their own and the write, its releases and its verification on the next
    brief = trail_lines(world.engine.audit_trail(rem.id), {rem.id: rem})
    assert len(brief) == 6
    assert brief[1] == ("      granted Network Contributor on snet-private-endpoints and resource group rg-ai-prod, "
                        "Cognitive Services Contributor on oai-contoso-prod")
    assert brief[2] == "        → create pe-oai-contoso-prod-account → 3 released → verified"
    assert world.arm.pim_grants(EXEC) == []
    assert {g.ended for g in world.arm.pim_grants(EXEC, active_only=False)} == {"removed"}
    assert world.chat.results(rem.id)[-1][:2] == ("applied", "Applied and verified: 3 changes.")


@pytest.mark.parametrize(("inject", "stopped", "why"), [
    ("fail_endpoint_provisioning", "stopped at change 1 of 3, create pe-oai-contoso-prod-account",
     "PrivateEndpointProvisioningFailed"),
    ("keep_pending", "stopped at change 1 of 3, create pe-oai-contoso-prod-account",
     "connection is Pending, not Approved"),
    ("fail_zone_group", "stopped at change 2 of 3, create pe-oai-contoso-prod-account/default",
     "InternalServerError"),
])
def test_a_failure_at_any_step_closes_nothing_and_says_where_it_stopped(world: World, inject: str, stopped: str,
                                                                        why: str) -> None:
    getattr(world.arm.private_link, inject)()
    rem = world.approved_and_applied()
    assert rem.state == "failed"
    assert world.public() == "Enabled"  # nobody was cut off
    assert not [w for w in world.arm.resource_writes if w.method == "PATCH"]
    reason = str(rem.error)
    assert stopped in reason, reason
    assert why in reason, reason
    assert reason.endswith(("; not applied: create pe-oai-contoso-prod-account/default, update oai-contoso-prod)",
                            "; not applied: update oai-contoso-prod)")), reason
    (failed,) = world.trail(rem.id, "failed")
    assert failed["reason"] == reason  # loud in the audit …
    kind, text, _undo = world.chat.results(rem.id)[-1]
    assert (kind, text) == ("failed", f"Failed: {reason}")  # … and in the thread
    elevated, released = world.trail(rem.id, "elevated"), world.trail(rem.id, "released")
    assert len(released) == len(elevated) > 0
    assert world.arm.pim_grants(EXEC) == []  # every grant released


def test_undo_deletes_the_endpoint_and_its_zone_group_and_reopens_public_access(world: World) -> None:
    rem = world.approved_and_applied()
    assert rem.state == "applied", rem.error
    assert world.engine.request_undo(rem.id, Actor(user_id=MEMBERS[1], team_id=TEAM, enterprise_id=None,
                                                   name="bob")).ok
    world.engine.work()
    undo = next(r for r in world.engine.pending() if r.undo_of == rem.id)
    assert [c["operation"] for c in undo.changes] == ["update", "delete", "delete"]
    for member in MEMBERS[2:2 + undo.quorum]:  # undone under the original's terms: the two it took
        assert world.engine.approve(undo.id, Actor(user_id=member, team_id=TEAM, enterprise_id=None, name=member)).ok
    world.engine.work()
    assert world.engine.get(undo.id).state == "applied"  # type: ignore[union-attr]
    assert world.engine.get(rem.id).state == "rolled_back"  # type: ignore[union-attr]
    assert world.public() == "Enabled"
    assert world.arm.get(PE) is None
    assert world.arm.private_link.connections(OPENAI) == []
    assert world.arm.private_link.records(ZONE) == {}
    assert world.arm.pim_grants(EXEC) == []


def test_a_crash_holding_grants_at_several_scopes_is_recovered_and_every_grant_released(world: World) -> None:
    """A worker dies after granting the endpoint's three scopes and before writing: the recovery resumes each
    recorded request as its own (never 'pre-existing'), writes once, and releases all of them."""
    from remediator.actions import REGISTRY
    from remediator.lifecycle.approval import approvals
    from remediator.lifecycle.codec import change_from_json
    from remediator.privilege.elevation import Ticket

    (planned,) = world.engine.ingest([parse_one(assessment_arm(OPENAI, RESTRICT_NETWORK))])
    world.engine.plan([str(planned.record["id"])])
    world.engine.work()
    (rem,) = world.engine.pending()
    for member in MEMBERS[:rem.quorum]:
        assert world.engine.approve(rem.id, Actor(user_id=member, team_id=TEAM, enterprise_id=None, name=member)).ok
    rt = world.engine._rt
    rem = world.engine.get(rem.id)  # type: ignore[assignment]
    applying = rt.move(rem, "applying", from_states=("approved",))
    assert applying is not None
    change = change_from_json(rem.changes[0])
    action = REGISTRY[change.action]
    for need in action.grants(change):  # … the process dies holding these
        request_id = world.engine._worker.applier._request_id(applying, action.name, change, (), need)
        grant = rt.elevator.elevate(action=action, change=change, need=need, ticket=Ticket(
            remediation_id=rem.id, fingerprint=rem.fingerprint,
            approvers=tuple(v.user_id for v in approvals(rem)), request_id=request_id))
        rt.audit(rem.id, "elevated", "worker", **grant.audit())
    assert len(world.arm.pim_grants(EXEC)) == 3
    world.clock.advance(seconds=world.engine.settings.lock_ttl.total_seconds() + 1)
    assert world.engine.sweep() >= 1
    world.engine.work()
    done = world.engine.get(rem.id)
    assert done is not None
    assert done.state == "applied", done.error
    assert world.public() == "Disabled"
    assert world.arm.pim_grants(EXEC) == []
    elevated = world.trail(rem.id, "elevated")
    assert all(e["status"] != "AlreadyActive" for e in elevated)
    assert len([w for w in world.arm.resource_writes if w.method == "PUT" and "privateEndpoints/pe-" in w.path
                and "privateDnsZoneGroups" not in w.path]) == 1  # the endpoint written once


def test_after_a_failed_zone_group_the_next_plan_writes_it_before_closing(world: World) -> None:
    world.arm.private_link.fail_zone_group()
    failed = world.approved_and_applied()
    assert failed.state == "failed"
    (conn,) = world.arm.private_link.connections(OPENAI)  # the endpoint stands, approved, without DNS
    assert conn["properties"]["privateLinkServiceConnectionState"]["status"] == "Approved"
    assert world.public() == "Enabled"
    again = world.approved_and_applied()  # Defender reports it again: a new plan, a new approval
    assert again.id != failed.id
    assert again.state == "applied", again.error
    assert [(c["operation"], ids.resource_type(str(c["resource_id"])).rsplit("/", 1)[-1]) for c in again.changes] == [
        ("create", "privateDnsZoneGroups"), ("update", "accounts")]
    assert world.arm.private_link.records(ZONE) == {"oai-contoso-prod": ["10.20.1.4"]}
    assert world.public() == "Disabled"

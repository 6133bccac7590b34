"""A private endpoint made without its DNS zone group (by hand, by a pipeline, by a DeployIfNotExists endpoint
policy) gets one, approved: the "Configure … to use private DNS zones" policy findings are on the endpoint.

Real parts: the shipped private-dns-zone-group playbook, the Engine and its worker on SQLite, FakeArm serving the
live-shaped estate (tests/fixtures/live/) with its Private Link (the endpoint created through azure-mgmt-network,
the zone group's A records written when its operation succeeds) and enforcing that the executor writes only under
PIM grants the broker makes, the settings' private_dns_zones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from remediator import ids
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.worker import Planned
from remediator.planning.planner import Planner
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.builders import parse_one, policy_event
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    PLAYBOOKS,
    ROLES,
    TEAM,
    FakeClock,
)
from tests.support.live import BROKER, DNS, EXEC, OPENAI, RG, SUB, SUBNET, ZONE, live_documents
from tests.support.pim import pim_engine

PE = f"{RG}/providers/Microsoft.Network/privateEndpoints/pe-by-hand"
COGNITIVE_DNS = "c4bc6f10-cb41-49eb-b000-d5ab82e2a091"  # Configure Cognitive Services accounts to use private DNS zones
ZONES = ("privatelink.openai.azure.com", "privatelink.cognitiveservices.azure.com")


@dataclass
class World:
    engine: Engine
    arm: FakeArm
    settings: Settings


def _world(tmp_path: Path, *, zones: bool = True, pending: bool = False) -> Iterator[World]:
    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=EXEC, slack_channel="C0REMEDIATE",
                        group_wait=timedelta(0), approver_roles=ROLES,
                        private_link_subnets={"westeurope": SUBNET},
                        private_dns_zones={z: f"{DNS}/{z}" for z in ZONES} if zones else {})
    with FakeArm() as arm, SQLiteStore(tmp_path / "remediator.db", clock=FakeClock()) as store:
        arm.load(live_documents())
        if pending:
            arm.private_link.keep_pending()
        # the endpoint someone made without a zone group (before the executor is held to its grants)
        arm.clients().network(SUB).private_endpoints.begin_create_or_update("rg-ai-prod", "pe-by-hand", {
            "location": "westeurope", "properties": {"subnet": {"id": SUBNET}, "privateLinkServiceConnections": [
                {"name": "by-hand", "properties": {"privateLinkServiceId": OPENAI, "groupIds": ["account"]}}]}},
        ).result()
        arm.enforce_grants(EXEC)
        engine = pim_engine(arm, store, settings, executor=EXEC, broker=BROKER)
        yield World(engine=engine, arm=arm, settings=settings)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path)


def _plan(world: World) -> Planned:
    (planned,) = world.engine.ingest([parse_one(policy_event(PE, COGNITIVE_DNS))])
    (result,) = world.engine.plan([str(planned.record["id"])])
    return result


def test_the_policy_finding_on_the_endpoint_plans_its_zone_group_and_one_approval_writes_it(world: World) -> None:
    assert world.arm.private_link.records(ZONE) == {}  # the account's name still resolves publicly
    _plan(world)
    world.engine.work()
    (rem,) = world.engine.pending()
    assert rem.playbook == "private-dns-zone-group"
    (change,) = rem.changes
    assert change["operation"] == "create"
    assert ids.same(str(change["resource_id"]), f"{PE}/privateDnsZoneGroups/default")
    # the OpenAI account's zone (the one the Cognitive Services policy leaves out), from the settings
    zones = [c["properties"]["privateDnsZoneId"] for c in change["after"]["properties"]["privateDnsZoneConfigs"]]
    assert zones == [ZONE]
    assert "can break: clients in networks linked to the zones resolve oai-contoso-prod" in str(change["note"])
    assert world.engine.approve(rem.id, Actor(user_id=MEMBERS[0], team_id=TEAM, enterprise_id=None,
                                              name="alice")).ok
    world.engine.work()
    done = world.engine.get(rem.id)
    assert done is not None
    assert done.state == "applied", done.error
    assert world.arm.private_link.records(ZONE) == {"oai-contoso-prod": ["10.20.1.4"]}
    roles = [(str(e.detail["role"]), str(e.detail["scope"])) for e in world.engine.audit_trail(rem.id)
             if e.event == "elevated"]
    assert roles == [("Network Contributor", PE), ("Private DNS Zone Contributor", ZONE)]
    assert world.arm.pim_grants(EXEC) == []
    # the endpoint has its zone group now: the same finding again plans nothing
    planner = Planner(playbooks=PLAYBOOKS, state=LiveState(world.arm.clients()),
                      private_link=world.settings.private_link())
    assert planner.plan_one(parse_one(policy_event(PE, COGNITIVE_DNS))).outcome == "no_changes"


def test_without_private_dns_zones_it_refuses_naming_the_setting(tmp_path: Path) -> None:
    for world in _world(tmp_path, zones=False):
        result = _plan(world)
        assert result.outcome == "error"
        assert "private_dns_zones" in result.reason
        assert "privatelink.openai.azure.com" in result.reason


def test_a_pending_connection_gets_no_zone_group(tmp_path: Path) -> None:
    """Resolving the name to an endpoint that carries no traffic would cut the linked networks' clients off."""
    for world in _world(tmp_path, pending=True):
        result = _plan(world)
        assert result.outcome == "error"
        assert "is Pending, not Approved" in result.reason
        assert world.arm.private_link.records(ZONE) == {}
        assert world.arm.resource_writes[-1].method == "PUT"  # the endpoint's own creation, nothing after it

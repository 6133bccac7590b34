"""The catalog's other Private Link definitions, applied end to end: a Data Lake storage account gets one endpoint per
sub-resource, an App Service app its ``sites`` endpoint (its connections read from their own list), in Azure
Government the app's zone is the Government one, a Synapse endpoint made by hand gets its zone group, and without
the settings nothing is written.

Real parts: the shipped private-link and private-dns-zone-group playbooks, the Engine and its worker on SQLite
with PIM grants the broker makes (FakeArm enforcing them), azure-mgmt-network for endpoints and zone groups
(long-running operations polled), the live-shaped estate (tests/fixtures/live/) plus an app, a data factory and a
Synapse workspace built from their REST spec examples (tests/fixtures/arm/, SOURCES.md).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.actions.base import PlanContext
from remediator.actions.private_link import ACTION
from remediator.actions.private_link_table import US_GOVERNMENT, PrivateLinkSettings
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.model import Remediation
from remediator.planning.planner import Planner
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.builders import arm_fixture, make_finding, parse_one, policy_event
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    PLAYBOOKS,
    ROLES,
    TEAM,
    FakeClock,
)
from tests.support.live import BROKER, DNS, EXEC, RG, SUB, SUBNET, live, live_documents
from tests.support.pim import pim_engine

LAKE = f"{RG}/providers/Microsoft.Storage/storageAccounts/stcontosodatalake"
APP = f"{RG}/providers/Microsoft.Web/sites/app-checkout"
SYNAPSE = f"{RG}/providers/Microsoft.Synapse/workspaces/syn-features"
STORAGE_PRIVATE_LINK = "6edd7eda-6dd8-40f7-810d-67160c639cd9"  # Storage accounts should use private link
APP_PRIVATE_LINK = "687aa49d-0982-40f8-bf6b-66d1da97a04b"  # App Service apps should use private link
SYNAPSE_DNS = "1e5ed725-f16c-478b-bd4b-7bfa2f7940b9"  # Configure Azure Synapse workspaces to use private DNS zones
SOMEONE = "2c4e6a8b-1d3f-4a5b-9c7d-0e2f4a6b8c1d"  # a person with their own rights (FakeArm holds only EXEC to grants)
FACTORY = f"{RG}/providers/Microsoft.DataFactory/factories/adf-features"
HSM = f"{RG}/providers/Microsoft.KeyVault/managedHSMs/hsm-contoso"
NEW_ZONES = ("privatelink.azurewebsites.net", "privatelink.azurewebsites.us", "privatelink.dev.azuresynapse.net",
             "privatelink.sql.azuresynapse.net", "privatelink.datafactory.azure.net",
             "privatelink.managedhsm.azure.net")
LIVE_ZONES = ("privatelink.blob.core.windows.net", "privatelink.dfs.core.windows.net")


def zone(name: str) -> str:
    return f"{DNS}/{name}"


def zone_doc(name: str) -> dict[str, Any]:
    """A central zone of the landing zone, shaped as the live-shaped ones (privatedns PrivateZoneGet.json)."""
    (doc,) = [d for d in live_documents() if d["name"] == "privatelink.blob.core.windows.net"]
    return doc | {"id": zone(name), "name": name, "properties": {**doc["properties"], "numberOfRecordSets": 1}}


def moved(fixture: str, resource_id: str, **props: Any) -> dict[str, Any]:
    doc = arm_fixture(fixture)
    doc.update(id=resource_id, name=ids.parse(resource_id).name, location="westeurope")
    doc.setdefault("properties", {}).update(copy.deepcopy(props))
    doc["properties"].pop("privateEndpointConnections", None)
    return doc


def app(suffix: str = "azurewebsites.net") -> dict[str, Any]:
    return moved("web__2024-11-01__GetWebApp.json", APP, defaultHostName=f"app-checkout.{suffix}",
                 hostNames=[f"app-checkout.{suffix}"],
                 enabledHostNames=[f"app-checkout.{suffix}", f"app-checkout.scm.{suffix}"])


@dataclass
class World:
    engine: Engine
    arm: FakeArm
    settings: Settings

    def approved_and_applied(self, resource_id: str, definition: str) -> Remediation:
        (planned,) = self.engine.ingest([parse_one(policy_event(resource_id, definition))])
        self.engine.plan([str(planned.record["id"])])
        self.engine.work()
        (rem,) = self.engine.pending()
        assert rem.quorum == 2  # a plan that creates a private endpoint costs money: two decide
        for n, member in enumerate(MEMBERS[:rem.quorum]):
            assert self.engine.approve(rem.id, Actor(user_id=member, team_id=TEAM, enterprise_id=None,
                                                     name=f"approver{n}")).ok
        self.engine.work()
        done = self.engine.get(rem.id)
        assert done is not None
        return done

    def elevated(self, rem: Remediation) -> list[tuple[str, str]]:
        return [(str(e.detail["role"]), ids.resource_type(str(e.detail["scope"])).rsplit("/", 1)[-1])
                for e in self.engine.audit_trail(rem.id) if e.event == "elevated"]

    def replan(self, resource_id: str, definition: str) -> str:
        planner = Planner(playbooks=PLAYBOOKS, state=LiveState(self.arm.clients()),
                          private_link=self.settings.private_link())
        return planner.plan_one(parse_one(policy_event(resource_id, definition))).outcome

    def public(self, resource_id: str) -> str:
        return str(((self.arm.get(resource_id) or {}).get("properties") or {}).get("publicNetworkAccess"))


def _world(tmp_path: Path, *, subnets: bool = True) -> Iterator[World]:
    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=EXEC, slack_channel="C0REMEDIATE",
                        group_wait=timedelta(0), approver_roles=ROLES,
                        private_link_subnets={"westeurope": SUBNET} if subnets else {},
                        private_dns_zones={z: zone(z) for z in (*LIVE_ZONES, *NEW_ZONES)})
    with FakeArm() as arm, SQLiteStore(tmp_path / "remediator.db", clock=FakeClock()) as store:
        for sdk in ("network", "storage", "resources", "authorization"):  # the SDKs' first imports (~1 s each)
            getattr(arm.clients(), sdk)(SUB)  # in the setup, not in a timed call
        arm.load([*live_documents(), *(zone_doc(z) for z in NEW_ZONES), app(),
                  moved("synapse__2021-06-01__GetWorkspace.json", SYNAPSE),
                  moved("datafactory__2018-06-01__Factories_Get.json", FACTORY),
                  moved("keyvault__2024-11-01__ManagedHsm_Get.json", HSM)])
        arm.enforce_grants(EXEC)
        engine = pim_engine(arm, store, settings, executor=EXEC, broker=BROKER)
        yield World(engine=engine, arm=arm, settings=settings)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path)


def test_a_data_lake_account_gets_one_endpoint_per_sub_resource_then_closes(world: World) -> None:
    assert live("storage__account_hns.json")["properties"]["isHnsEnabled"] is True
    rem = world.approved_and_applied(LAKE, STORAGE_PRIVATE_LINK)
    assert rem.state == "applied", rem.error
    assert [(c["operation"], ids.resource_type(str(c["resource_id"])).rsplit("/", 1)[-1], ids.parse(
        str(c["resource_id"])).names[0]) for c in rem.changes] == [
        ("create", "privateEndpoints", "pe-stcontosodatalake-blob"),
        ("create", "privateDnsZoneGroups", "pe-stcontosodatalake-blob"),
        ("create", "privateEndpoints", "pe-stcontosodatalake-dfs"),
        ("create", "privateDnsZoneGroups", "pe-stcontosodatalake-dfs"),
        ("update", "storageAccounts", "stcontosodatalake")]
    conns = world.arm.private_link.connections(LAKE)
    assert sorted(g for c in conns for g in c["properties"]["groupIds"]) == ["blob", "dfs"]
    assert {c["properties"]["privateLinkServiceConnectionState"]["status"] for c in conns} == {"Approved"}
    # each sub-resource answers in its own zone, from its own address
    blob = world.arm.private_link.records(zone("privatelink.blob.core.windows.net"))
    dfs = world.arm.private_link.records(zone("privatelink.dfs.core.windows.net"))
    assert list(blob) == ["stcontosodatalake"]
    assert list(dfs) == ["stcontosodatalake"]
    assert blob["stcontosodatalake"] != dfs["stcontosodatalake"]
    assert world.public(LAKE) == "Disabled"
    assert ("Storage Account Contributor", "storageAccounts") in world.elevated(rem)
    assert world.arm.pim_grants(EXEC) == []
    assert world.replan(LAKE, STORAGE_PRIVATE_LINK) == "no_changes"


def test_an_app_gets_its_sites_endpoint_and_its_connection_is_read_from_its_own_list(world: World) -> None:
    rem = world.approved_and_applied(APP, APP_PRIVATE_LINK)
    assert rem.state == "applied", rem.error
    assert [ids.resource_type(str(c["resource_id"])).rsplit("/", 1)[-1] for c in rem.changes] == [
        "privateEndpoints", "privateDnsZoneGroups", "sites"]
    # the app and its SCM site resolve to the endpoint in the App Service zone
    records = world.arm.private_link.records(zone("privatelink.azurewebsites.net"))
    assert sorted(records) == ["app-checkout", "app-checkout.scm"]
    assert world.public(APP) == "Disabled"
    assert ("Website Contributor", "sites") in world.elevated(rem)
    assert world.arm.pim_grants(EXEC) == []
    # an app's GET does not embed its connections (their own list does): the next plan still sees the endpoint
    read = LiveState(world.arm.clients()).get(APP)
    assert read is not None
    assert "privateEndpointConnections" not in read["properties"]
    assert world.replan(APP, APP_PRIVATE_LINK) == "no_changes"


# (target, definition, its zone, the A record, the target's role)
TARGET_CASES = [
    (FACTORY, "8b0323be-cc25-4b61-935d-002c3798c6ea", "privatelink.datafactory.azure.net", "adf-features.westeurope",
     "Data Factory Contributor"),  # Azure Data Factory should use private link
    (HSM, "59fee2f4-d439-4f1b-9b9a-982e1474bfd8", "privatelink.managedhsm.azure.net", "hsm-contoso",
     "Managed HSM contributor"),  # [Preview]: Azure Key Vault Managed HSM should use private link
]


@pytest.mark.parametrize("case", TARGET_CASES, ids=["data-factory", "managed-hsm"])
def test_a_data_factory_and_a_managed_hsm_move_behind_their_endpoints(world: World,
                                                                      case: tuple[str, str, str, str, str]) -> None:
    target, definition, zone_name, record, role = case
    rem = world.approved_and_applied(target, definition)
    assert rem.state == "applied", rem.error
    assert [ids.resource_type(str(c["resource_id"])).rsplit("/", 1)[-1] for c in rem.changes] == [
        "privateEndpoints", "privateDnsZoneGroups", ids.resource_type(target).rsplit("/", 1)[-1]]
    assert list(world.arm.private_link.records(zone(zone_name))) == [record]
    assert world.public(target) == "Disabled"
    assert (role, ids.resource_type(target).rsplit("/", 1)[-1]) in world.elevated(rem)
    assert world.arm.pim_grants(EXEC) == []
    assert world.replan(target, definition) == "no_changes"


def test_in_azure_government_the_app_resolves_in_the_government_zone(world: World) -> None:
    world.arm.add(app("azurewebsites.us"))
    link = PrivateLinkSettings(subnets={"westeurope": SUBNET}, cloud=US_GOVERNMENT,
                               zones={z: zone(z) for z in NEW_ZONES})
    state = LiveState(world.arm.clients())
    ctx = PlanContext(finding=make_finding(APP, kind="policy", type=APP_PRIVATE_LINK), state=state, private_link=link)
    changes = ACTION.plan(ctx, ACTION.parse_params({}))
    group = changes[1].after["properties"]["privateDnsZoneConfigs"]
    assert [c["properties"]["privateDnsZoneId"] for c in group] == [zone("privatelink.azurewebsites.us")]
    clients = world.arm.clients(principal_id=SOMEONE)  # the path itself; the grants are the engine's (above)
    for change in changes:
        ACTION.apply(clients, change)
        assert ACTION.verify(state, change) is None
    assert sorted(world.arm.private_link.records(zone("privatelink.azurewebsites.us"))) == [
        "app-checkout", "app-checkout.scm"]
    assert world.arm.private_link.records(zone("privatelink.azurewebsites.net")) == {}


def test_a_synapse_endpoint_made_by_hand_gets_its_zone_group(world: World) -> None:
    """No endpoint of remediator's for Synapse (no approval role narrower than Contributor), but its zone group needs
    none on the workspace: Network Contributor on the endpoint, Private DNS Zone Contributor on the zone."""
    pe = f"{RG}/providers/Microsoft.Network/privateEndpoints/pe-syn-dev"
    world.arm.clients(principal_id=SOMEONE).network(SUB).private_endpoints.begin_create_or_update("rg-ai-prod",
                                                                                               "pe-syn-dev", {
        "location": "westeurope", "properties": {"subnet": {"id": SUBNET}, "privateLinkServiceConnections": [
            {"name": "dev", "properties": {"privateLinkServiceId": SYNAPSE, "groupIds": ["Dev"]}}]}}).result()
    (planned,) = world.engine.ingest([parse_one(policy_event(pe, SYNAPSE_DNS))])
    world.engine.plan([str(planned.record["id"])])
    world.engine.work()
    (rem,) = world.engine.pending()
    assert rem.playbook == "private-dns-zone-group"
    assert world.engine.approve(rem.id, Actor(user_id=MEMBERS[0], team_id=TEAM, enterprise_id=None,
                                              name="alice")).ok
    world.engine.work()
    done = world.engine.get(rem.id)
    assert done is not None
    assert done.state == "applied", done.error
    assert world.arm.private_link.records(zone("privatelink.dev.azuresynapse.net")) == {"syn-features": ["10.20.1.4"]}
    assert sorted(world.elevated(done)) == [("Network Contributor", "privateEndpoints"),
                                            ("Private DNS Zone Contributor", "privateDnsZones")]
    assert world.replan(pe, SYNAPSE_DNS) == "no_changes"


def test_without_a_subnet_in_the_settings_nothing_is_written(tmp_path: Path) -> None:
    for world in _world(tmp_path, subnets=False):
        for resource_id, definition in ((LAKE, STORAGE_PRIVATE_LINK), (APP, APP_PRIVATE_LINK)):
            (planned,) = world.engine.ingest([parse_one(policy_event(resource_id, definition))])
            (result,) = world.engine.plan([str(planned.record["id"])])
            assert result.outcome == "error"
            assert "refused:" in result.reason
            assert "private_link_subnets" in result.reason
        assert world.arm.resource_writes == []
        assert world.public(LAKE) == "Enabled"

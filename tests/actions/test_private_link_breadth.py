"""The Private Link fixes beyond the AI estate's seven types, planned on saved documents (spec examples,
tests/fixtures/arm/): App Service apps, data factories and managed HSMs get endpoints; every type of the catalog's
DNS zone group definitions gets its zone group, with the zones of its cloud (the apply path on FakeArm:
tests/scenarios/test_private_link_breadth.py)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from remediator import ids
from remediator.actions import REGISTRY
from remediator.actions.base import PlanContext
from remediator.actions.private_link import ACTION
from remediator.actions.private_link_table import (
    AZURE_CLOUD,
    CHINA,
    US_GOVERNMENT,
    PrivateLinkSettings,
    group_ids,
    known_zone_names,
    zone_names,
)
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from tests.support.builders import arm_fixture, make_finding

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
SUBNET = (f"/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/vnet-hub/"
          "subnets/snet-pe")
ZONES_RG = f"/subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones"
ZONE_GROUP = REGISTRY["network.create-private-dns-zone-group"]


def rid(path: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-apps/providers/{path}"


APP = rid("Microsoft.Web/sites/app-checkout")
FACTORY = rid("Microsoft.DataFactory/factories/adf-features")
HSM = rid("Microsoft.KeyVault/managedHSMs/hsm-keys")
FILES = rid("Microsoft.Storage/storageAccounts/stfiles")


def settings(*zones: str, cloud: str = AZURE_CLOUD) -> PrivateLinkSettings:
    return PrivateLinkSettings(subnets={"*": SUBNET}, zones={z: f"{ZONES_RG}/{z}" for z in zones or known_zone_names()},
                               cloud=cloud)


def moved(fixture: str, resource_id: str, **props: Any) -> dict[str, Any]:
    doc = arm_fixture(fixture)
    doc.update(id=resource_id, name=ids.parse(resource_id).name, location="westeurope")
    doc.setdefault("properties", {}).update(copy.deepcopy(props))
    doc["properties"].pop("privateEndpointConnections", None)
    return doc


def app(**props: Any) -> dict[str, Any]:
    return moved("web__2024-11-01__GetWebApp.json", APP, **props)


def factory(**props: Any) -> dict[str, Any]:
    return moved("datafactory__2018-06-01__Factories_Get.json", FACTORY, **props)


def hsm(**props: Any) -> dict[str, Any]:
    return moved("keyvault__2024-11-01__ManagedHsm_Get.json", HSM, **props)


def plan(doc: dict[str, Any], link: PrivateLinkSettings | None, *more: dict[str, Any],
         **params: Any) -> tuple[list[Any], list[str]]:
    ctx = PlanContext(finding=make_finding(str(doc["id"])), state=SavedState([doc, *more]), private_link=link)
    return ACTION.plan(ctx, ACTION.parse_params(params)), ctx.warnings


def shape(changes: list[Any]) -> list[tuple[str, str, str]]:
    return [(c.operation, ids.resource_type(c.resource_id).rsplit("/", 1)[-1], ids.parse(c.resource_id).name)
            for c in changes]


def zones_of(change: Any) -> list[str]:
    return [ids.parse(c["properties"]["privateDnsZoneId"]).name for c in change.after["properties"]
            ["privateDnsZoneConfigs"]]


def groups_of(change: Any) -> list[str]:
    return [g for c in change.after["properties"]["privateLinkServiceConnections"] for g in c["properties"]["groupIds"]]


# --- endpoints ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cloud", "zone"), [(AZURE_CLOUD, "privatelink.azurewebsites.net"),
                                             (US_GOVERNMENT, "privatelink.azurewebsites.us"),
                                             (CHINA, "privatelink.chinacloudsites.cn")])
def test_an_app_gets_its_sites_endpoint_with_the_zone_of_its_cloud_then_closes(cloud: str, zone: str) -> None:
    changes, warnings = plan(app(), settings(cloud=cloud))
    assert shape(changes) == [("create", "privateEndpoints", "pe-app-checkout-sites"),
                              ("create", "privateDnsZoneGroups", "default"), ("update", "sites", "app-checkout")]
    assert groups_of(changes[0]) == ["sites"]
    assert zones_of(changes[1]) == [zone]
    assert changes[2].after["properties"]["publicNetworkAccess"] == "Disabled"
    assert "COSTS MONEY" in changes[0].note
    assert ACTION.weighs(changes[0])
    assert not [w for w in warnings if "not configured" in w]


@pytest.mark.parametrize("sku", ["Free", "Shared", "Dynamic"])
def test_an_app_on_a_plan_without_private_endpoints_is_refused_naming_the_plan(sku: str) -> None:
    with pytest.raises(ActionError, match=f"refused: private endpoints need a Basic or higher App Service plan; "
                                          f"this app's plan is {sku}"):
        plan(app(sku=sku), settings())


def test_an_app_in_an_app_service_environment_is_refused() -> None:
    with pytest.raises(ActionError, match="App Service Environment"):
        plan(app(hostingEnvironmentProfile={"id": rid("Microsoft.Web/hostingEnvironments/ase1")}), settings())


def test_an_app_whose_listed_connections_hold_an_approved_endpoint_only_closes() -> None:
    """An app's document does not embed its connections: they are read from their own list."""
    listed = {"id": f"{APP}/privateEndpointConnections", "value": [{
        "id": f"{APP}/privateEndpointConnections/pe1", "name": "pe1",
        "properties": {"privateEndpoint": {"id": rid("Microsoft.Network/privateEndpoints/pe1")},
                       "privateLinkServiceConnectionState": {"status": "Approved", "description": ""}}}]}
    changes, _ = plan(app(), settings(), listed)
    assert shape(changes) == [("update", "sites", "app-checkout")]
    closed = app(publicNetworkAccess="Disabled")
    assert plan(closed, settings(), listed) == ([], [])


def test_a_data_factory_gets_its_data_plane_endpoint_and_the_portal_on_request() -> None:
    changes, _ = plan(factory(), settings())
    assert [groups_of(c) for c in changes if c.operation == "create" and "privateEndpoints/" in c.resource_id
            and "privateDnsZoneGroups" not in c.resource_id] == [["dataFactory"]]
    changes, _ = plan(factory(), settings(), data_factory_sub_resources=["portal"])
    assert shape(changes) == [("create", "privateEndpoints", "pe-adf-features-datafactory"),
                              ("create", "privateDnsZoneGroups", "default"),
                              ("create", "privateEndpoints", "pe-adf-features-portal"),
                              ("create", "privateDnsZoneGroups", "default"),
                              ("update", "factories", "adf-features")]
    assert [zones_of(changes[1]), zones_of(changes[3])] == [["privatelink.datafactory.azure.net"],
                                                            ["privatelink.adf.azure.com"]]


def test_where_the_page_lists_no_zone_for_the_cloud_the_endpoint_is_planned_with_a_warning() -> None:
    """Azure Government has no Data Factory row on the private DNS zone values page."""
    changes, warnings = plan(factory(), settings(cloud=US_GOVERNMENT))
    assert shape(changes) == [("create", "privateEndpoints", "pe-adf-features-datafactory"),
                              ("update", "factories", "adf-features")]
    assert any("no private DNS zone is documented for Microsoft.DataFactory/factories group dataFactory in "
               "AzureUSGovernment" in w for w in warnings), warnings


def test_a_managed_hsm_gets_its_endpoint_and_closes() -> None:
    changes, _ = plan(hsm(), settings())
    assert shape(changes) == [("create", "privateEndpoints", "pe-hsm-keys-managedhsm"),
                              ("create", "privateDnsZoneGroups", "default"), ("update", "managedHSMs", "hsm-keys")]
    assert zones_of(changes[1]) == ["privatelink.managedhsm.azure.net"]
    (target,) = [n for n in ACTION.grants(changes[0]) if n.scope == HSM]
    assert target.role.name == "Managed HSM contributor"


def test_a_storage_account_gets_one_endpoint_per_sub_resource_and_a_file_account_its_file_endpoint() -> None:
    general = moved("storage__2023-05-01__StorageAccountUpdate.json", FILES, isHnsEnabled=True)
    changes, _ = plan(general, settings(), storage_sub_resources=["file", "queue"])
    endpoints = [c for c in changes if ids.resource_type(c.resource_id).endswith("privateEndpoints")]
    assert [groups_of(c) for c in endpoints] == [["blob"], ["dfs"], ["file"], ["queue"]]
    assert [zones_of(c) for c in changes if c.resource_id.endswith("/default")] == [
        ["privatelink.blob.core.windows.net"], ["privatelink.dfs.core.windows.net"],
        ["privatelink.file.core.windows.net"], ["privatelink.queue.core.windows.net"]]
    premium_files = moved("storage__2023-05-01__StorageAccountUpdate.json", FILES) | {"kind": "FileStorage"}
    assert group_ids(premium_files) == ("file",)


def test_without_a_subnet_the_new_types_refuse_naming_the_settings() -> None:
    for doc in (app(), factory(), hsm()):
        with pytest.raises(ActionError, match=r"refused: .*no private endpoint subnet is configured: set "
                                              r"private_link_subnets"):
            plan(doc, None)


# --- zone groups -------------------------------------------------------------------------------------------

def endpoint_to(target_type: str, group: str, status: str = "Approved") -> dict[str, Any]:
    target = rid(f"{target_type}/target1")
    pe = rid(f"Microsoft.Network/privateEndpoints/pe-{group.lower()}")
    return {"id": pe, "name": ids.parse(pe).name, "type": "Microsoft.Network/privateEndpoints",
            "location": "westeurope", "properties": {
                "provisioningState": "Succeeded", "subnet": {"id": SUBNET},
                "privateLinkServiceConnections": [{"name": "c1", "properties": {
                    "privateLinkServiceId": target, "groupIds": [group],
                    "privateLinkServiceConnectionState": {"status": status, "description": "Auto-Approved"}}}]}}


def plan_zone_group(pe: dict[str, Any], link: PrivateLinkSettings | None) -> list[Any]:
    ctx = PlanContext(finding=make_finding(str(pe["id"]), kind="policy"), state=SavedState([pe]), private_link=link)
    return list(ZONE_GROUP.plan(ctx, ZONE_GROUP.parse_params({})))


# (target type, group id, cloud) → the zones the zone group gets, one row per catalog DNS zone group definition's type
ZONE_CASES = [
    ("Microsoft.Storage/storageAccounts", "file", AZURE_CLOUD, ["privatelink.file.core.windows.net"]),
    ("Microsoft.Storage/storageAccounts", "queue_secondary", AZURE_CLOUD, ["privatelink.queue.core.windows.net"]),
    ("Microsoft.Storage/storageAccounts", "web_secondary", CHINA, ["privatelink.web.core.chinacloudapi.cn"]),
    ("Microsoft.Web/sites", "sites-staging", US_GOVERNMENT, ["privatelink.azurewebsites.us"]),
    ("Microsoft.DataFactory/factories", "portal", CHINA, ["privatelink.adf.azure.cn"]),
    ("Microsoft.Databricks/workspaces", "browser_authentication", AZURE_CLOUD, ["privatelink.azuredatabricks.net"]),
    ("Microsoft.Synapse/workspaces", "SqlOnDemand", AZURE_CLOUD, ["privatelink.sql.azuresynapse.net"]),
    ("Microsoft.Synapse/workspaces", "Dev", AZURE_CLOUD, ["privatelink.dev.azuresynapse.net"]),
    ("Microsoft.Compute/diskAccesses", "disks", AZURE_CLOUD, ["privatelink.blob.core.windows.net"]),
    ("Microsoft.StorageSync/storageSyncServices", "afs", AZURE_CLOUD, ["privatelink.afs.azure.net"]),
    ("Microsoft.Insights/privateLinkScopes", "azuremonitor", AZURE_CLOUD,
     ["privatelink.monitor.azure.com", "privatelink.oms.opinsights.azure.com", "privatelink.ods.opinsights.azure.com",
      "privatelink.agentsvc.azure-automation.net", "privatelink.blob.core.windows.net"]),
    ("Microsoft.Insights/privateLinkScopes", "azuremonitor", US_GOVERNMENT,
     ["privatelink.monitor.azure.us", "privatelink.adx.monitor.azure.us", "privatelink.oms.opinsights.azure.us",
      "privatelink.ods.opinsights.azure.us", "privatelink.agentsvc.azure-automation.us",
      "privatelink.blob.core.usgovcloudapi.net"]),
]


@pytest.mark.parametrize(("target_type", "group", "cloud", "zones"), ZONE_CASES,
                         ids=[f"{c[0].rsplit('/', 1)[-1]}-{c[1]}-{c[2]}" for c in ZONE_CASES])
def test_an_endpoint_of_every_catalog_type_gets_its_zone_group(target_type: str, group: str, cloud: str,
                                                               zones: list[str]) -> None:
    assert list(zone_names(target_type, group, cloud=cloud)) == zones
    (change,) = plan_zone_group(endpoint_to(target_type, group), settings(*zones, cloud=cloud))
    assert change.operation == "create"
    assert change.resource_id.endswith("/privateDnsZoneGroups/default")
    assert zones_of(change) == zones
    # no right on the target: the endpoint and the zones
    assert {(n.role.name, ids.resource_type(n.scope).rsplit("/", 1)[-1]) for n in ZONE_GROUP.grants(change)} == {
        ("Network Contributor", "privateEndpoints"), ("Private DNS Zone Contributor", "privateDnsZones")}


def test_a_zone_group_without_configured_zones_is_refused_naming_the_setting_and_the_zone() -> None:
    pe = endpoint_to("Microsoft.Synapse/workspaces", "Dev")
    with pytest.raises(ActionError, match=r"refused: no private DNS zone is configured: set private_dns_zones .*"
                                          r"privatelink\.dev\.azuresynapse\.net for group Dev"):
        plan_zone_group(pe, PrivateLinkSettings(subnets={"*": SUBNET}))
    with pytest.raises(ActionError, match="Pending, not Approved"):
        plan_zone_group(endpoint_to("Microsoft.Synapse/workspaces", "Dev", status="Pending"), settings())


def test_an_endpoint_to_a_type_outside_the_table_is_refused_in_one_line() -> None:
    pe = endpoint_to("Microsoft.Cache/redis", "redisCache")
    with pytest.raises(ActionError, match="the private endpoint connects to no supported resource"):
        plan_zone_group(pe, settings())


# --- the sub-resource an assignment asks for ---------------------------------------------------------------

STORAGE_DINE = "9f766f00-8d11-464e-80e1-4091d7874074"  # Configure Storage account to use a private link connection
FACTORY_DINE = "496ca26b-f669-4322-a1ad-06b7b5e41882"  # Configure private endpoints for Data factories
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/pe-storage"


def assignment(definition: str, **parameters: str) -> dict[str, Any]:
    """A policy assignment as ARM returns it (resources …/stable/2023-04-01 getPolicyAssignment.json's shape)."""
    return {"id": ASSIGNMENT, "name": "pe-storage", "type": "Microsoft.Authorization/policyAssignments",
            "properties": {"policyDefinitionId": f"/providers/Microsoft.Authorization/policyDefinitions/{definition}",
                           "parameters": {k: {"value": v} for k, v in parameters.items()}}}


def plan_assigned(doc: dict[str, Any], definition: str, *more: dict[str, Any]) -> tuple[list[Any], list[str]]:
    finding = replace(make_finding(str(doc["id"]), kind="policy", type=definition), policy_assignment_id=ASSIGNMENT)
    ctx = PlanContext(finding=finding, state=SavedState([doc, *more]), private_link=settings())
    return ACTION.plan(ctx, ACTION.parse_params({})), ctx.warnings


def endpoint_groups(changes: list[Any]) -> list[list[str]]:
    return [groups_of(c) for c in changes if ids.resource_type(c.resource_id).endswith("privateEndpoints")]


def test_an_assignment_of_the_storage_definition_for_file_gets_the_file_endpoint() -> None:
    account = moved("storage__2023-05-01__StorageAccountUpdate.json", FILES, isHnsEnabled=False)
    changes, _ = plan_assigned(account, STORAGE_DINE, assignment(STORAGE_DINE, targetSubResource="file"))
    assert endpoint_groups(changes) == [["blob"], ["file"]]
    assert [zones_of(c) for c in changes if c.resource_id.endswith("/default")] == [
        ["privatelink.blob.core.windows.net"], ["privatelink.file.core.windows.net"]]
    changes, _ = plan_assigned(account, STORAGE_DINE, assignment(STORAGE_DINE, targetSubResource="queue_secondary"))
    assert endpoint_groups(changes) == [["blob"], ["queue_secondary"]]
    # the assignment not readable: the definition's default (blob), said in the plan
    changes, warnings = plan_assigned(account, STORAGE_DINE)
    assert endpoint_groups(changes) == [["blob"]]
    assert any(ASSIGNMENT in w for w in warnings), warnings


def test_an_assignment_of_the_data_factory_definition_for_the_portal_gets_the_portal_endpoint() -> None:
    changes, _ = plan_assigned(factory(), FACTORY_DINE, assignment(FACTORY_DINE, groupId="portal"))
    assert endpoint_groups(changes) == [["dataFactory"], ["portal"]]

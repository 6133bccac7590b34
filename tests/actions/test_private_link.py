"""network.create-private-endpoint, planned on saved documents: the private path per type and kind, with and
without the settings, and the grants each change needs (the apply path on FakeArm: test_private_link_apply.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from remediator import ids
from remediator.actions import REGISTRY
from remediator.actions.base import PlanContext
from remediator.actions.private_link import ACTION, endpoint_name
from remediator.actions.private_link_table import (
    AZURE_CLOUD,
    CHINA,
    US_GOVERNMENT,
    PrivateLinkSettings,
    cloud_of,
    known_zone_names,
    zone_names,
)
from remediator.actions.profiles import NETWORK_CONTRIBUTOR, PRIVATE_DNS_ZONE_CONTRIBUTOR
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from tests.support.builders import arm_fixture, make_finding, private_endpoint_connection

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
HUB_SUB = "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f"
SUBNET = (f"/subscriptions/{HUB_SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/vnet-hub/"
          "subnets/snet-pe")
LOCAL_SUBNET = (f"/subscriptions/{SUB}/resourceGroups/rg-spoke/providers/Microsoft.Network/virtualNetworks/"
                "vnet-spoke/subnets/snet-pe")
ZONES_RG = f"/subscriptions/{HUB_SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones"


def rid(group: str, path: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/{path}"


def zone_id(name: str) -> str:
    return f"{ZONES_RG}/{name}"


def settings(*zones: str, cloud: str = AZURE_CLOUD, subnets: dict[str, str] | None = None) -> PrivateLinkSettings:
    names = zones or known_zone_names()
    return PrivateLinkSettings(subnets={"*": SUBNET} if subnets is None else subnets,
                               zones={z: zone_id(z) for z in names}, cloud=cloud)


def doc_at(fixture: str, resource_id: str, location: str = "westeurope", **props: Any) -> dict[str, Any]:
    doc = arm_fixture(fixture)
    doc.update(id=resource_id, name=ids.parse(resource_id).name, type=ids.resource_type(resource_id),
               location=location)
    doc.setdefault("properties", {}).update(copy.deepcopy(props))
    doc["properties"].pop("privateEndpointConnections", None)
    return doc


ACCOUNT = rid("rg-ai", "Microsoft.CognitiveServices/accounts/oai-prod")
VAULT = rid("rg-keys", "Microsoft.KeyVault/vaults/kv-models")
STORAGE = rid("rg-data", "Microsoft.Storage/storageAccounts/stdata")
WORKSPACE = rid("rg-ml", "Microsoft.MachineLearningServices/workspaces/ml-prod")
REGISTRY_ID = rid("rg-models", "Microsoft.ContainerRegistry/registries/models")
SEARCH = rid("rg-ai", "Microsoft.Search/searchServices/srch-rag")
COSMOS = rid("rg-data", "Microsoft.DocumentDB/databaseAccounts/cosmos-chat")


def account(kind: str = "OpenAI", **props: Any) -> dict[str, Any]:
    return doc_at("cognitiveservices__2024-10-01__GetAccount.json", ACCOUNT, **props) | {"kind": kind}


def vault(**props: Any) -> dict[str, Any]:
    return doc_at("keyvault__2024-11-01__getVault.json", VAULT, **props)


def storage(**props: Any) -> dict[str, Any]:
    return doc_at("storage__2023-05-01__StorageAccountUpdate.json", STORAGE, **{"isHnsEnabled": False, **props})


def workspace(kind: str = "Default", **props: Any) -> dict[str, Any]:
    return doc_at("machinelearningservices__2024-10-01__Workspace_get.json", WORKSPACE,
                  **{"publicNetworkAccess": "Enabled", **props}) | {"kind": kind}


def registry(sku: str = "Premium") -> dict[str, Any]:
    return doc_at("containerregistry__2025-11-01__RegistryGet.json", REGISTRY_ID) | {"sku": {"name": sku, "tier": sku}}


def search(**props: Any) -> dict[str, Any]:
    return {"id": SEARCH, "name": "srch-rag", "type": "Microsoft.Search/searchServices", "location": "westeurope",
            "sku": {"name": "standard"}, "properties": {"publicNetworkAccess": "enabled", **props}}


def cosmos(kind: str = "GlobalDocumentDB", *capabilities: str) -> dict[str, Any]:
    return {"id": COSMOS, "name": "cosmos-chat", "type": "Microsoft.DocumentDB/databaseAccounts",
            "location": "westeurope", "kind": kind,
            "properties": {"publicNetworkAccess": "Enabled", "capabilities": [{"name": c} for c in capabilities]}}


def plan(doc: dict[str, Any], link: PrivateLinkSettings | None, *extra_docs: dict[str, Any],
         **params: Any) -> tuple[list[Any], list[str]]:
    ctx = PlanContext(finding=make_finding(str(doc["id"])), state=SavedState([doc, *extra_docs]), private_link=link)
    changes = ACTION.plan(ctx, ACTION.parse_params(params))
    return changes, ctx.warnings


def shape(changes: list[Any]) -> list[tuple[str, str, str]]:
    return [(c.operation, ids.resource_type(c.resource_id).rsplit("/", 1)[-1], ids.parse(c.resource_id).name)
            for c in changes]


ML_ZONES = ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")
CASES = [
    pytest.param(account("OpenAI"), ["account"], [["privatelink.openai.azure.com"]], "Disabled", id="openai"),
    pytest.param(account("AIServices"), ["account"],
                 [["privatelink.cognitiveservices.azure.com", "privatelink.openai.azure.com",
                   "privatelink.services.ai.azure.com"]], "Disabled", id="aiservices"),
    pytest.param(account("TextAnalytics"), ["account"], [["privatelink.cognitiveservices.azure.com"]], "Disabled",
                 id="language"),
    pytest.param(search(), ["searchService"], [["privatelink.search.windows.net"]], "disabled", id="search"),
    pytest.param(cosmos(), ["Sql"], [["privatelink.documents.azure.com"]], "Disabled", id="cosmos-sql"),
    pytest.param(cosmos("MongoDB"), ["MongoDB"], [["privatelink.mongo.cosmos.azure.com"]], "Disabled",
                 id="cosmos-mongo"),
    pytest.param(cosmos("GlobalDocumentDB", "EnableCassandra"), ["Cassandra"],
                 [["privatelink.cassandra.cosmos.azure.com"]], "Disabled", id="cosmos-cassandra"),
    pytest.param(cosmos("GlobalDocumentDB", "EnableGremlin"), ["Gremlin"], [["privatelink.gremlin.cosmos.azure.com"]],
                 "Disabled", id="cosmos-gremlin"),
    pytest.param(cosmos("GlobalDocumentDB", "EnableTable"), ["Table"], [["privatelink.table.cosmos.azure.com"]],
                 "Disabled", id="cosmos-table"),
    pytest.param(vault(), ["vault"], [["privatelink.vaultcore.azure.net"]], "Disabled", id="vault"),
    pytest.param(workspace(), ["amlworkspace"], [list(ML_ZONES)], "Disabled", id="ml-workspace"),
    pytest.param(workspace("Hub"), ["amlworkspace"], [list(ML_ZONES)], "Disabled", id="ml-hub"),
    pytest.param(storage(), ["blob"], [["privatelink.blob.core.windows.net"]], "Disabled", id="storage"),
    pytest.param(storage(isHnsEnabled=True), ["blob", "dfs"],
                 [["privatelink.blob.core.windows.net"], ["privatelink.dfs.core.windows.net"]], "Disabled",
                 id="storage-datalake"),
    pytest.param(registry(), ["registry"], [["privatelink.azurecr.io"]], "Disabled", id="registry-premium"),
]


@pytest.mark.parametrize(("doc", "groups", "zones", "closed"), CASES)
def test_one_plan_builds_the_private_path_then_closes(doc: dict[str, Any], groups: list[str],
                                                      zones: list[list[str]], closed: str) -> None:
    changes, warnings = plan(doc, settings())
    assert warnings == [f"virtual network {SUBNET.rsplit('/subnets/', 1)[0]} not in the resource state: the private "
                        "endpoint's region is assumed to be the resource's; add it with `az resource show --ids "
                        f"{SUBNET.rsplit('/subnets/', 1)[0]} > vnet-hub.json` to the --resources folder",
                        f"subnet {SUBNET} not in the resource state: its private endpoint network policies and free "
                        f"addresses were not checked; add it with `az resource show --ids {SUBNET} > snet-pe.json` to "
                        "the --resources folder"]
    target = str(doc["id"])
    expected = []
    for group in groups:
        expected += [("create", "privateEndpoints", endpoint_name(target, group)), ("create", "privateDnsZoneGroups",
                                                                                     "default")]
    assert shape(changes) == [*expected, ("update", ids.resource_type(target).rsplit("/", 1)[-1], doc["name"])]
    endpoints = changes[0:-1:2]
    for group, zone_list, pe, zg in zip(groups, zones, endpoints, changes[1:-1:2], strict=True):
        props = pe.after["properties"]
        assert props["subnet"] == {"id": SUBNET}
        conn = props["privateLinkServiceConnections"][0]["properties"]
        assert (conn["privateLinkServiceId"], conn["groupIds"]) == (target, [group])
        assert pe.after["location"] == "westeurope"
        # the hub's subscription: the endpoint lives where its subnet does (the group of the subnet here)
        assert pe.resource_id.startswith(f"/subscriptions/{HUB_SUB}/resourceGroups/rg-hub/")
        assert zg.resource_id == f"{pe.resource_id}/privateDnsZoneGroups/default"
        assert [c["properties"]["privateDnsZoneId"] for c in zg.after["properties"]["privateDnsZoneConfigs"]] == \
            [zone_id(z) for z in zone_list]
    close = changes[-1]
    assert close.after["properties"]["publicNetworkAccess"] == closed
    assert "only after the private endpoint verifies" in close.note
    assert "must be linked to the clients' virtual networks" in close.note
    assert "lose access" in close.note  # what breaks, for whom


def test_the_endpoint_goes_to_the_resources_group_when_the_subnet_is_in_its_subscription() -> None:
    vnet = {"id": LOCAL_SUBNET.rsplit("/subnets/", 1)[0], "type": "Microsoft.Network/virtualNetworks",
            "location": "northeurope", "properties": {}}
    subnet = {"id": LOCAL_SUBNET, "type": "Microsoft.Network/virtualNetworks/subnets", "properties": {}}
    changes, warnings = plan(account(), settings(subnets={"westeurope": LOCAL_SUBNET}), vnet, subnet)
    assert warnings == []
    pe = changes[0]
    assert pe.resource_id == rid("rg-ai", "Microsoft.Network/privateEndpoints/pe-oai-prod-account")
    assert pe.after["location"] == "northeurope"  # the virtual network's region


def test_a_region_without_an_entry_and_no_star_refuses_naming_the_setting() -> None:
    with pytest.raises(ActionError, match=r"private_link_subnets has no entry for westeurope and no \"\*\"") as e:
        plan(account(), settings(subnets={"eastus": SUBNET}))
    assert "cuts off every client" in str(e.value)


def test_without_the_settings_nothing_closes_a_resource_nobody_could_reach() -> None:
    with pytest.raises(ActionError) as e:
        plan(account(), None)
    assert "refused: cuts off every client: no approved private endpoint; no private endpoint subnet is configured" \
        in str(e.value)
    assert "private_link_subnets" in str(e.value)
    assert "private_dns_zones" in str(e.value)


def test_an_approved_private_endpoint_only_closes_public_access() -> None:
    doc = account()
    doc["properties"]["privateEndpointConnections"] = [private_endpoint_connection(ACCOUNT)]
    for link in (None, settings()):
        changes, _ = plan(doc, link)
        assert shape(changes) == [("update", "accounts", "oai-prod")]


def test_public_access_off_behind_an_approved_endpoint_plans_nothing() -> None:
    for doc, rid_ in ((account(publicNetworkAccess="Disabled"), ACCOUNT), (search(publicNetworkAccess="disabled"),
                                                                           SEARCH)):
        doc["properties"]["privateEndpointConnections"] = [private_endpoint_connection(rid_)]
        assert plan(doc, settings()) == ([], [])


def test_public_access_off_without_an_endpoint_builds_the_private_path_alone() -> None:
    """Nobody reaches such a resource, and its "should use private link" finding stays (Azure Policy's
    Search/PrivateEndpoints_DINE.json deploys exactly there: publicNetworkAccess Disabled, no endpoint)."""
    changes, warnings = plan(search(publicNetworkAccess="disabled"), settings())
    assert shape(changes) == [("create", "privateEndpoints", "pe-srch-rag-searchservice"),
                              ("create", "privateDnsZoneGroups", "default")]
    assert any(w.startswith("public network access is disabled already") for w in warnings), warnings
    with pytest.raises(ActionError, match="refused: public network access is disabled and it has no approved "
                                          "private endpoint: no client reaches it; no private endpoint subnet"):
        plan(search(publicNetworkAccess="disabled"), None)


def test_a_missing_zone_is_a_warning_naming_it_and_the_endpoint_is_still_planned() -> None:
    changes, warnings = plan(account("AIServices"), settings("privatelink.cognitiveservices.azure.com"))
    assert shape(changes)[0][1:] == ("privateEndpoints", "pe-oai-prod-account")
    missing = [w for w in warnings if w.startswith("private DNS zone")]
    assert [w.split(" is not configured")[0] for w in missing] == ["private DNS zone privatelink.openai.azure.com",
                                                                   "private DNS zone privatelink.services.ai.azure.com"]
    assert all("add it under private_dns_zones in the settings" in w for w in missing)
    zg = changes[1]
    assert [c["properties"]["privateDnsZoneId"] for c in zg.after["properties"]["privateDnsZoneConfigs"]] == \
        [zone_id("privatelink.cognitiveservices.azure.com")]


def test_no_zone_configured_plans_the_endpoint_without_a_zone_group() -> None:
    changes, warnings = plan(vault(), settings("privatelink.blob.core.windows.net"))
    assert shape(changes) == [("create", "privateEndpoints", "pe-kv-models-vault"), ("update", "vaults", "kv-models")]
    assert any("privatelink.vaultcore.azure.net is not configured" in w for w in warnings)
    assert "no private DNS zone is planned" in changes[-1].note


def test_more_storage_sub_resources_from_the_playbook() -> None:
    changes, _ = plan(storage(), settings(), storage_sub_resources=["file", "queue"])
    endpoints = [c for c in changes if ids.resource_type(c.resource_id).endswith("privateEndpoints")]
    groups = [c.after["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"][0] for c in endpoints]
    assert groups == ["blob", "file", "queue"]


def test_a_registry_below_premium_is_refused_naming_its_sku() -> None:
    with pytest.raises(ActionError, match="refused: private endpoints need the Premium SKU; this container registry is "
                                          "Standard"):
        plan(registry("Standard"), settings())


def test_an_ml_project_is_refused_naming_its_hub() -> None:
    hub = rid("rg-ml", "Microsoft.MachineLearningServices/workspaces/hub-prod")
    with pytest.raises(ActionError, match="give the hub hub-prod one first"):
        plan(workspace("Project", hubResourceId=hub), settings())


@pytest.mark.parametrize(("cloud", "kind", "zones"), [
    (US_GOVERNMENT, "OpenAI", ("privatelink.openai.azure.us",)),
    (US_GOVERNMENT, "TextAnalytics", ("privatelink.cognitiveservices.azure.us",)),
    (CHINA, "OpenAI", ()),
])
def test_sovereign_clouds_use_their_own_zone_names(cloud: str, kind: str, zones: tuple[str, ...]) -> None:
    assert zone_names("Microsoft.CognitiveServices/accounts", "account", kind=kind, cloud=cloud) == zones
    assert zone_names("Microsoft.KeyVault/vaults", "vault", cloud=cloud) == {
        US_GOVERNMENT: ("privatelink.vaultcore.usgovcloudapi.net",), CHINA: ("privatelink.vaultcore.azure.cn",)}[cloud]
    assert cloud_of({US_GOVERNMENT: "https://management.usgovcloudapi.net", CHINA: "https://management.chinacloudapi.cn/"
                     }[cloud]) == cloud
    assert cloud_of("https://management.azure.com") == AZURE_CLOUD


def test_a_cloud_without_a_documented_zone_warns() -> None:
    changes, warnings = plan(account(), settings(cloud=CHINA))
    assert shape(changes)[0][1] == "privateEndpoints"
    assert any(w.startswith("no private DNS zone is documented for Microsoft.CognitiveServices/accounts group account "
                            "in AzureChinaCloud") for w in warnings)


def test_the_plan_is_deterministic() -> None:
    first, _ = plan(account("AIServices"), settings())
    again, _ = plan(account("AIServices"), settings())
    assert [c.to_json() for c in first] == [c.to_json() for c in again]


# --- grants ------------------------------------------------------------------------------------------


def test_each_change_names_every_scope_it_needs_with_the_narrowest_role() -> None:
    changes, _ = plan(account("AIServices"), settings())
    pe, zg, close = changes
    cognitive = REGISTRY["cognitive.disable-local-auth"].role
    assert [(g.scope, g.role, g.why) for g in ACTION.grants(pe)] == [
        (f"/subscriptions/{HUB_SUB}/resourceGroups/rg-hub", NETWORK_CONTRIBUTOR,
         "Microsoft.Network/privateEndpoints/write"),  # the subnet is in that group: its grant covers the join
        (ACCOUNT, cognitive, "Microsoft.CognitiveServices/accounts/privateEndpointConnectionsApproval/action"),
    ]
    assert [(g.scope, g.role) for g in ACTION.grants(zg)] == [
        (pe.resource_id, NETWORK_CONTRIBUTOR),
        *((zone_id(z), PRIVATE_DNS_ZONE_CONTRIBUTOR) for z in (
            "privatelink.cognitiveservices.azure.com", "privatelink.openai.azure.com",
            "privatelink.services.ai.azure.com"))]
    assert [(g.scope, g.role) for g in ACTION.grants(close)] == [(ACCOUNT, cognitive)]
    assert (PRIVATE_DNS_ZONE_CONTRIBUTOR.id, NETWORK_CONTRIBUTOR.id) == (
        "b12aa53e-6015-4669-85d0-8515ebb3ae7f", "4d97b98b-1d4f-4787-a291-c67834d212e7")


def test_the_subnet_gets_its_own_grant_when_the_endpoint_lives_elsewhere() -> None:
    vnet = {"id": LOCAL_SUBNET.rsplit("/subnets/", 1)[0], "type": "Microsoft.Network/virtualNetworks",
            "location": "westeurope", "properties": {}}
    changes, _ = plan(account(), settings(subnets={"*": LOCAL_SUBNET}), vnet)
    assert [g.scope for g in ACTION.grants(changes[0])] == [LOCAL_SUBNET, rid("rg-ai", "")[:-len("/providers/")],
                                                             ACCOUNT]


# --- undo ----------------------------------------------------------------------------------------------


def test_undo_deletes_what_it_created_and_restores_public_access() -> None:
    changes, _ = plan(search(), settings())
    undo = [ACTION.undo(c) for c in reversed(changes)]
    assert [(u.operation, ids.parse(u.resource_id).name) for u in undo] == [
        ("update", "srch-rag"), ("delete", "default"), ("delete", "pe-srch-rag-searchservice")]
    assert undo[0].after["properties"]["publicNetworkAccess"] == "enabled"
    assert [g.scope for g in ACTION.grants(undo[2])] == [changes[0].resource_id]

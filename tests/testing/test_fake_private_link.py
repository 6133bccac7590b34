"""FakeArm's Private Link (remediator.testing.fake_private_link) driven by the real azure-mgmt-network SDK."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from remediator import ids
from remediator.testing import FakeArm
from remediator.testing.fake_private_link import group_fqdns, record_name
from tests.support.live import live, live_documents

SUB = "6a2f1c3e-9b4d-4e1a-8c7f-2d5e8b9a0c41"
RG_ID = f"/subscriptions/{SUB}/resourceGroups/rg-ai-prod"
HUB_RG = f"/subscriptions/{SUB}/resourceGroups/rg-hub-network"
SUBNET = f"{HUB_RG}/providers/Microsoft.Network/virtualNetworks/vnet-hub-weu/subnets/snet-private-endpoints"
DNS = f"/subscriptions/{SUB}/resourceGroups/rg-private-dns/providers/Microsoft.Network/privateDnsZones"
OPENAI = f"{RG_ID}/providers/Microsoft.CognitiveServices/accounts/oai-contoso-prod"
PE_ID = f"{RG_ID}/providers/Microsoft.Network/privateEndpoints/pe-oai"
EXECUTOR = "5d1e7c3a-2b9f-4e68-a0c4-9f3b1d7e2a58"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
DNS_CONTRIBUTOR = "b12aa53e-6015-4669-85d0-8515ebb3ae7f"
COGNITIVE_CONTRIBUTOR = "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


@pytest.fixture
def arm() -> Any:
    with FakeArm() as fake:
        fake.load(live_documents())
        yield fake


def _endpoint(target: str = OPENAI, group: str = "account", *, manual: bool = False,
              subnet: str = SUBNET, location: str = "westeurope") -> dict[str, Any]:
    key = "manualPrivateLinkServiceConnections" if manual else "privateLinkServiceConnections"
    return {"location": location, "properties": {
        "subnet": {"id": subnet},
        key: [{"name": "conn", "properties": {"privateLinkServiceId": target, "groupIds": [group],
                                              **({"requestMessage": "please"} if manual else {})}}]}}


def _create(arm: FakeArm, body: dict[str, Any], name: str = "pe-oai", principal: str | None = None) -> Any:
    net = arm.clients(principal_id=principal).network(SUB)
    return net.private_endpoints.begin_create_or_update("rg-ai-prod", name, body).result()


def _zone_group(arm: FakeArm, zones: list[str], pe: str = "pe-oai", principal: str | None = None) -> Any:
    net = arm.clients(principal_id=principal).network(SUB)
    body = {"properties": {"privateDnsZoneConfigs": [
        {"name": z.replace(".", "-"), "properties": {"privateDnsZoneId": f"{DNS}/{z}"}} for z in zones]}}
    return net.private_dns_zone_groups.begin_create_or_update("rg-ai-prod", pe, "default", body).result()


def _status(arm: FakeArm, target: str) -> list[str]:
    return [c["properties"]["privateLinkServiceConnectionState"]["status"]
            for c in arm.private_link.connections(target)]


# -- create ----------------------------------------------------------------------------------------------
def test_create_is_a_201_lro_and_fills_what_arm_fills(arm: FakeArm) -> None:
    pe = _create(arm, _endpoint())
    assert pe.provisioning_state == "Succeeded"
    conn = pe.private_link_service_connections[0]
    assert conn.private_link_service_connection_state.status == "Approved"
    assert conn.id == f"{PE_ID}/privateLinkServiceConnections/conn"
    assert [c.fqdn for c in pe.custom_dns_configs] == ["oai-contoso-prod.openai.azure.com"]
    assert pe.custom_dns_configs[0].ip_addresses == ["10.20.1.4"]  # the subnet's first usable address
    nic = arm.get(pe.network_interfaces[0].id)
    assert nic is not None
    assert nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.20.1.4"
    put = next(r for r in arm.requests if r.method == "PUT")
    assert put.status == 201
    # the target shows the connection, approved, pointing back at the endpoint
    (target_conn,) = arm.private_link.connections(OPENAI)
    assert target_conn["properties"]["privateEndpoint"]["id"] == PE_ID
    assert target_conn["properties"]["privateLinkServiceConnectionState"]["status"] == "Approved"
    assert target_conn["type"] == "Microsoft.CognitiveServices/accounts/privateEndpointConnections"


def _raw(arm: FakeArm, method: str, url: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    if not url.startswith("http"):
        url = f"{arm.base_url}{url}?api-version=2024-05-01"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
        return resp.status, dict(resp.headers), json.loads(raw) if raw else None


def test_the_endpoint_reads_updating_until_the_operation_is_polled(arm: FakeArm) -> None:
    arm.private_link.provisioning_polls = 2
    status, headers, body = _raw(arm, "PUT", PE_ID, _endpoint())
    assert status == 201
    assert body["properties"]["provisioningState"] == "Updating"
    assert "Location" not in headers
    operation = headers["Azure-AsyncOperation"]
    assert _raw(arm, "GET", PE_ID)[2]["properties"]["provisioningState"] == "Updating"
    assert [_raw(arm, "GET", operation)[2]["status"] for _ in range(3)] == ["InProgress", "InProgress", "Succeeded"]
    assert _raw(arm, "GET", PE_ID)[2]["properties"]["provisioningState"] == "Succeeded"


def test_manual_connection_is_pending_until_approved_through_the_target(arm: FakeArm) -> None:
    pe = _create(arm, _endpoint(manual=True))
    assert pe.manual_private_link_service_connections[0].private_link_service_connection_state.status == "Pending"
    (conn,) = arm.private_link.connections(OPENAI)
    res = arm.clients().resources(SUB).resources
    got = res.get_by_id(conn["id"], api_version="2024-10-01")
    assert got.properties["privateLinkServiceConnectionState"]["status"] == "Pending"
    res.begin_create_or_update_by_id(conn["id"], {"properties": {
        "privateLinkServiceConnectionState": {"status": "Approved", "description": "ok"}}},
        api_version="2024-10-01").result()
    assert _status(arm, OPENAI) == ["Approved"]
    mirrored = arm.get(PE_ID)
    assert mirrored is not None
    state = mirrored["properties"]["manualPrivateLinkServiceConnections"][0]["properties"]
    assert state["privateLinkServiceConnectionState"]["status"] == "Approved"


def test_injected_keep_pending_leaves_an_auto_approved_connection_pending(arm: FakeArm) -> None:
    arm.private_link.keep_pending()
    pe = _create(arm, _endpoint())
    assert pe.provisioning_state == "Succeeded"
    assert pe.private_link_service_connections[0].private_link_service_connection_state.status == "Pending"
    assert _status(arm, OPENAI) == ["Pending"]


def test_injected_provisioning_failure_fails_the_lro_and_leaves_no_connection(arm: FakeArm) -> None:
    arm.private_link.fail_endpoint_provisioning(code="PrivateEndpointProvisioningFailed")
    with pytest.raises(HttpResponseError) as e:
        _create(arm, _endpoint())
    assert "PrivateEndpointProvisioningFailed" in str(e.value)
    doc = arm.get(PE_ID)
    assert doc is not None
    assert doc["properties"]["provisioningState"] == "Failed"
    assert arm.private_link.connections(OPENAI) == []
    # the fault was for one creation: the same PUT again provisions it
    again = _create(arm, _endpoint())
    assert again.provisioning_state == "Succeeded"
    assert _status(arm, OPENAI) == ["Approved"]


def test_a_retried_put_creates_nothing_twice(arm: FakeArm) -> None:
    _create(arm, _endpoint())
    again = _create(arm, _endpoint())
    assert again.provisioning_state == "Succeeded"
    assert len(arm.private_link.connections(OPENAI)) == 1
    assert [c.ip_addresses for c in again.custom_dns_configs] == [["10.20.1.4"]]


@pytest.mark.parametrize(("doc", "group", "fqdns"), [
    ("cognitiveservices__account_aiservices.json", "account",
     ["ais-contoso-prod.cognitiveservices.azure.com", "ais-contoso-prod.openai.azure.com",
      "ais-contoso-prod.services.ai.azure.com"]),
    ("cognitiveservices__account_cognitiveservices.json", "account", ["cog-contoso-prod.cognitiveservices.azure.com"]),
    ("search__service.json", "searchService", ["srch-contoso-prod.search.windows.net"]),
    ("cosmosdb__account_sql.json", "Sql", ["cosmos-contoso-sql.documents.azure.com",
                                          "cosmos-contoso-sql-westeurope.documents.azure.com"]),
    ("cosmosdb__account_mongodb.json", "MongoDB", ["cosmos-contoso-mongo.mongo.cosmos.azure.com",
                                                  "cosmos-contoso-mongo-westeurope.mongo.cosmos.azure.com"]),
    ("keyvault__vault.json", "vault", ["kv-contoso-ai-prod.vault.azure.net"]),
    ("storage__account_hns.json", "dfs", ["stcontosodatalake.dfs.core.windows.net"]),
    ("storage__account.json", "blob", ["stcontosoml.blob.core.windows.net"]),
    ("containerregistry__registry_premium.json", "registry",
     ["crcontosoprod.azurecr.io", "crcontosoprod.westeurope.data.azurecr.io"]),
])
def test_every_target_type_gets_its_connection_and_fqdns(arm: FakeArm, doc: str, group: str,
                                                         fqdns: list[str]) -> None:
    target = live(doc)["id"]
    pe = _create(arm, _endpoint(target, group), name="pe-x")
    assert [c.fqdn for c in pe.custom_dns_configs] == fqdns
    assert _status(arm, target) == ["Approved"]


def test_each_member_of_a_private_link_resource_gets_its_own_address(arm: FakeArm) -> None:
    cosmos = _create(arm, _endpoint(live("cosmosdb__account_sql.json")["id"], "Sql"), name="pe-cosmos")
    assert [(c.fqdn, c.ip_addresses) for c in cosmos.custom_dns_configs] == [
        ("cosmos-contoso-sql.documents.azure.com", ["10.20.1.4"]),
        ("cosmos-contoso-sql-westeurope.documents.azure.com", ["10.20.1.5"])]
    registry = _create(arm, _endpoint(live("containerregistry__registry_premium.json")["id"], "registry"),
                       name="pe-acr")
    nic = arm.get(registry.network_interfaces[0].id)
    assert nic is not None
    members = [c["properties"]["privateLinkConnectionProperties"]["requiredMemberName"]
               for c in nic["properties"]["ipConfigurations"]]
    assert members == ["registry", "registry_data_westeurope"]


def test_ml_workspaces_hub_and_project_serve_api_and_notebooks(arm: FakeArm) -> None:
    for name in ("machinelearning__workspace.json", "machinelearning__hub.json", "machinelearning__project.json"):
        doc = live(name)
        pe = _create(arm, _endpoint(doc["id"], "amlworkspace"), name=f"pe-{doc['name']}")
        wid = doc["properties"]["workspaceId"]
        fqdns = [c.fqdn for c in pe.custom_dns_configs]
        assert f"{wid}.workspace.westeurope.api.azureml.ms" in fqdns
        assert doc["properties"]["notebookInfo"]["fqdn"] in fqdns


# -- validation ---------------------------------------------------------------------------------------------
def _refused(arm: FakeArm, body: dict[str, Any]) -> tuple[int, str, str]:
    with pytest.raises(HttpResponseError) as e:
        _create(arm, body, name="pe-bad")
    err = e.value.error
    assert err is not None
    return int(e.value.status_code or 0), str(err.code), str(err.message)


def test_a_group_id_the_target_does_not_have_is_refused_as_arm_does(arm: FakeArm) -> None:
    status, code, message = _refused(arm, _endpoint(group="blob"))
    assert (status, code) == (400, "InvalidValuesForRequestParameters")
    assert message == ("Call to Microsoft.CognitiveServices/accounts failed. Error message: Values for request "
                       "parameters are invalid: GroupId: blob.")
    # Storage compares its group ids with case (Azure/azure-cli#16750)
    assert _refused(arm, _endpoint(live("storage__account.json")["id"], "BLOB"))[1] == \
        "InvalidValuesForRequestParameters"
    assert arm.get(f"{RG_ID}/providers/Microsoft.Network/privateEndpoints/pe-bad") is None


def test_body_errors_name_what_is_wrong(arm: FakeArm) -> None:
    body = _endpoint()
    body["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"] = []
    assert _refused(arm, body)[1] == "MissingParameterOnPrivateLinkServiceConnection"
    body["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"] = ["account", "other"]
    assert _refused(arm, body)[1] == "OnlyOneGroupIdPermitted"
    assert _refused(arm, _endpoint(subnet="snet-pe"))[1] == "LinkedInvalidPropertyId"
    assert _refused(arm, _endpoint(subnet=SUBNET + "-missing"))[1] == "InvalidResourceReference"
    assert _refused(arm, _endpoint(location="northeurope"))[1] == "InvalidResourceReference"  # not the VNet's region
    assert _refused(arm, {"properties": _endpoint()["properties"]})[1] == "LocationRequired"
    assert _refused(arm, _endpoint(live("containerregistry__registry_basic.json")["id"], "registry"))[1] == \
        "PrivateEndpointNotSupportedForSku"
    assert _refused(arm, _endpoint(OPENAI + "x"))[0] == 404


# -- authorization -----------------------------------------------------------------------------------------
def _grant(arm: FakeArm, role: str, scope: str) -> None:
    arm.assign_role(EXECUTOR, role, scope)


def test_creating_needs_the_subnet_join_on_the_subnet(arm: FakeArm) -> None:
    arm.enforce_grants(EXECUTOR)
    _grant(arm, NETWORK_CONTRIBUTOR, RG_ID)
    _grant(arm, COGNITIVE_CONTRIBUTOR, OPENAI)
    _grant(arm, READER, HUB_RG)  # can read the subnet, cannot join it
    with pytest.raises(HttpResponseError) as e:
        _create(arm, _endpoint(), principal=EXECUTOR)
    assert e.value.status_code == 403
    assert e.value.error is not None
    assert e.value.error.code == "LinkedAuthorizationFailed"
    assert e.value.error.message == (
        f"The client '{EXECUTOR}' with object id '{EXECUTOR}' has permission to perform action "
        f"'Microsoft.Network/privateEndpoints/write' on scope '{PE_ID}'; however, it does not have permission to "
        f"perform action 'Microsoft.Network/virtualNetworks/subnets/join/action' on the linked scope(s) '{SUBNET}' "
        "or the linked scope(s) are invalid.")
    assert arm.get(PE_ID) is None
    assert arm.private_link.connections(OPENAI) == []
    _grant(arm, NETWORK_CONTRIBUTOR, SUBNET)  # Network Contributor on exactly the subnet
    assert _create(arm, _endpoint(), principal=EXECUTOR).provisioning_state == "Succeeded"


def test_auto_approval_needs_the_targets_approval_action(arm: FakeArm) -> None:
    arm.enforce_grants(EXECUTOR)
    _grant(arm, NETWORK_CONTRIBUTOR, RG_ID)
    _grant(arm, NETWORK_CONTRIBUTOR, SUBNET)
    with pytest.raises(HttpResponseError) as e:
        _create(arm, _endpoint(), principal=EXECUTOR)
    assert e.value.error is not None
    assert e.value.error.code == "LinkedAuthorizationFailed"
    assert e.value.error.message.endswith(  # ARM names the approval action without its type
        f"it does not have permission to perform action 'PrivateEndpointConnectionsApproval/action' on the linked "
        f"scope(s) '{OPENAI}' or the linked scope(s) are invalid.")
    assert arm.get(PE_ID) is None
    # a manual request needs no right on the target: it waits for its owner
    _grant(arm, READER, OPENAI)
    pe = _create(arm, _endpoint(manual=True), principal=EXECUTOR)
    assert pe.manual_private_link_service_connections[0].private_link_service_connection_state.status == "Pending"
    # and the target's contributor role holds the approval action
    _grant(arm, COGNITIVE_CONTRIBUTOR, OPENAI)
    approved = _create(arm, _endpoint(), name="pe-auto", principal=EXECUTOR)
    assert approved.private_link_service_connections[0].private_link_service_connection_state.status == "Approved"


def test_the_endpoint_write_itself_needs_private_endpoints_write(arm: FakeArm) -> None:
    arm.enforce_grants(EXECUTOR)
    _grant(arm, DNS_CONTRIBUTOR, RG_ID)  # a role at the group, but not one that writes endpoints
    _grant(arm, NETWORK_CONTRIBUTOR, SUBNET)
    _grant(arm, COGNITIVE_CONTRIBUTOR, OPENAI)
    with pytest.raises(HttpResponseError) as e:
        _create(arm, _endpoint(), principal=EXECUTOR)
    assert e.value.error is not None
    assert e.value.error.code == "AuthorizationFailed"
    assert "'Microsoft.Network/privateEndpoints/write'" in e.value.error.message


def test_a_zone_group_needs_the_zone_join_on_each_zone(arm: FakeArm) -> None:
    _create(arm, _endpoint())
    arm.enforce_grants(EXECUTOR)
    _grant(arm, NETWORK_CONTRIBUTOR, RG_ID)
    with pytest.raises(HttpResponseError) as e:
        _zone_group(arm, ["privatelink.openai.azure.com"], principal=EXECUTOR)
    assert e.value.error is not None
    assert e.value.error.code == "LinkedAuthorizationFailed"
    assert f"'Microsoft.Network/privateDnsZones/join/action' on the linked scope(s) " \
           f"'{DNS}/privatelink.openai.azure.com'" in e.value.error.message
    _grant(arm, DNS_CONTRIBUTOR, f"{DNS}/privatelink.openai.azure.com")
    assert _zone_group(arm, ["privatelink.openai.azure.com"], principal=EXECUTOR).provisioning_state == "Succeeded"


# -- zone groups and records ----------------------------------------------------------------------------------
def test_zone_group_writes_a_records_in_the_zones_that_serve_the_endpoint(arm: FakeArm) -> None:
    _create(arm, _endpoint(live("cognitiveservices__account_aiservices.json")["id"]))
    group = _zone_group(arm, ["privatelink.openai.azure.com", "privatelink.cognitiveservices.azure.com",
                              "privatelink.services.ai.azure.com", "privatelink.blob.core.windows.net"])
    assert group.provisioning_state == "Succeeded"
    sets = {c.private_dns_zone_id.rsplit("/", 1)[-1]: [(r.record_set_name, r.ip_addresses) for r in c.record_sets]
            for c in group.private_dns_zone_configs}
    # one address serves the account's three names
    assert sets == {"privatelink.cognitiveservices.azure.com": [("ais-contoso-prod", ["10.20.1.4"])],
                    "privatelink.openai.azure.com": [("ais-contoso-prod", ["10.20.1.4"])],
                    "privatelink.services.ai.azure.com": [("ais-contoso-prod", ["10.20.1.4"])],
                    "privatelink.blob.core.windows.net": []}
    assert arm.private_link.records(f"{DNS}/privatelink.openai.azure.com") == {"ais-contoso-prod": ["10.20.1.4"]}
    record = arm.get(f"{DNS}/privatelink.openai.azure.com/A/ais-contoso-prod")
    assert record is not None
    assert record["properties"]["ttl"] == 10
    assert record["type"] == "Microsoft.Network/privateDnsZones/A"
    got = arm.clients().network(SUB).private_dns_zone_groups.get("rg-ai-prod", "pe-oai", "default")
    assert got.private_dns_zone_configs[0].record_sets


def test_key_vault_records_go_in_the_vaultcore_zone(arm: FakeArm) -> None:
    assert record_name("privatelink.vaultcore.azure.net", "kv.vault.azure.net") == "kv"
    assert record_name("privatelink.vaultcore.usgovcloudapi.net", "kv.vault.usgovcloudapi.net") == "kv"
    assert record_name("privatelink.openai.azure.com", "kv.vault.azure.net") is None
    _create(arm, _endpoint(live("keyvault__vault.json")["id"], "vault"), name="pe-kv")
    _zone_group(arm, ["privatelink.vaultcore.azure.net"], pe="pe-kv")
    assert arm.private_link.records(f"{DNS}/privatelink.vaultcore.azure.net") == {"kv-contoso-ai-prod": ["10.20.1.4"]}


def test_injected_zone_group_failure_writes_no_record(arm: FakeArm) -> None:
    _create(arm, _endpoint())
    arm.private_link.fail_zone_group()
    with pytest.raises(HttpResponseError):
        _zone_group(arm, ["privatelink.openai.azure.com"])
    group = arm.get(PE_ID + "/privateDnsZoneGroups/default")
    assert group is not None
    assert group["properties"]["provisioningState"] == "Failed"
    assert arm.private_link.records(f"{DNS}/privatelink.openai.azure.com") == {}
    assert _zone_group(arm, ["privatelink.openai.azure.com"]).provisioning_state == "Succeeded"  # retried
    assert arm.private_link.records(f"{DNS}/privatelink.openai.azure.com") == {"oai-contoso-prod": ["10.20.1.4"]}


def test_a_zone_group_on_a_missing_zone_or_endpoint_is_refused(arm: FakeArm) -> None:
    with pytest.raises(HttpResponseError) as e:
        _zone_group(arm, ["privatelink.openai.azure.com"])
    assert e.value.status_code == 404
    _create(arm, _endpoint())
    with pytest.raises(HttpResponseError) as e:
        _zone_group(arm, ["privatelink.example.com"])
    assert e.value.error is not None
    assert e.value.error.code == "InvalidResourceReference"


# -- delete -------------------------------------------------------------------------------------------------
def test_delete_is_202_location_and_takes_the_connection_zone_group_and_records(arm: FakeArm) -> None:
    pe = _create(arm, _endpoint())
    _zone_group(arm, ["privatelink.openai.azure.com"])
    net = arm.clients().network(SUB)
    net.private_endpoints.begin_delete("rg-ai-prod", "pe-oai").result()
    delete = next(r for r in arm.requests if r.method == "DELETE")
    assert delete.status == 202
    assert arm.get(PE_ID) is None
    assert arm.get(pe.network_interfaces[0].id) is None
    assert arm.private_link.connections(OPENAI) == []
    assert arm.get(PE_ID + "/privateDnsZoneGroups/default") is None
    assert arm.private_link.records(f"{DNS}/privatelink.openai.azure.com") == {}
    # the address is free again
    assert _create(arm, _endpoint(), name="pe-again").custom_dns_configs[0].ip_addresses == ["10.20.1.4"]


def test_zone_group_delete_removes_its_records(arm: FakeArm) -> None:
    _create(arm, _endpoint())
    _zone_group(arm, ["privatelink.openai.azure.com"])
    arm.clients().network(SUB).private_dns_zone_groups.begin_delete("rg-ai-prod", "pe-oai", "default").result()
    assert arm.private_link.records(f"{DNS}/privatelink.openai.azure.com") == {}
    assert arm.get(PE_ID) is not None


def test_a_targets_connections_are_listed(arm: FakeArm) -> None:
    _create(arm, _endpoint())
    listed = _raw(arm, "GET", OPENAI + "/privateEndpointConnections")[2]["value"]
    assert [c["properties"]["privateEndpoint"]["id"] for c in listed] == [PE_ID]


def test_the_target_owner_removing_the_connection_disconnects_the_endpoint(arm: FakeArm) -> None:
    _create(arm, _endpoint())
    (conn,) = arm.private_link.connections(OPENAI)
    arm.clients().resources(SUB).resources.begin_delete_by_id(conn["id"], api_version="2024-10-01").result()
    assert arm.private_link.connections(OPENAI) == []
    doc = arm.get(PE_ID)
    assert doc is not None
    state = doc["properties"]["privateLinkServiceConnections"][0]["properties"]["privateLinkServiceConnectionState"]
    assert state["status"] == "Disconnected"


def test_live_documents_have_what_live_azure_has() -> None:
    docs = live_documents()
    targets = [d for d in docs if group_fqdns(d)]
    assert len(targets) == 14
    for d in targets:
        props = d["properties"]
        assert props.get("privateEndpointConnections") in (None, []), d["id"]
        assert str(props.get("publicNetworkAccess", "Enabled")).lower() == "enabled", d["id"]
        assert ids.parse(d["id"]).subscription_id == SUB

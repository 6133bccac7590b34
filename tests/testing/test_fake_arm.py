"""FakeArm driven by the real SDK clients (``arm.clients()``) and, for error paths, raw urllib."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from remediator.testing import FakeArm
from tests.support.builders import arm_fixture

SUB = "subid"
NSG_ID = "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/testnsg"
RULE1 = NSG_ID + "/securityRules/rule1"
REG_SUB = "00000000-0000-0000-0000-000000000000"
REG_ID = (f"/subscriptions/{REG_SUB}/resourceGroups/myResourceGroup/providers/"
          "Microsoft.ContainerRegistry/registries/myRegistry")
PRINCIPAL = "ce2ce14e-85d7-4629-bdbc-454d0519d987"
RA_SUB = "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2"
READER_ROLE = "/providers/Microsoft.Authorization/roleDefinitions/0b5fe924-9a61-425c-96af-cfe6e287ca2d"


@pytest.fixture
def arm() -> Any:
    with FakeArm() as fake:
        yield fake


def _raw(arm: FakeArm, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(arm.base_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, dict(e.headers), json.loads(raw) if raw else None


def _role_assignment(name: str, scope: str, principal: str = PRINCIPAL) -> dict[str, Any]:
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": READER_ROLE,
            "principalId": principal,
            "principalType": "ServicePrincipal",
            "scope": scope,
        },
    }


# -- storage ------------------------------------------------------------------------------------

def test_storage_get_and_update_through_the_sdk(arm: FakeArm) -> None:
    from azure.mgmt.storage.models import StorageAccountUpdateParameters

    doc = arm_fixture("storage__2023-05-01__StorageAccountUpdate.json")
    doc["properties"]["allowBlobPublicAccess"] = True
    arm.add(doc)
    client = arm.clients().storage("{subscription-id}")

    got = client.storage_accounts.get_properties("res9407", "sto8596")
    assert got.allow_blob_public_access is True
    assert arm.writes == []

    updated = client.storage_accounts.update(
        "res9407", "sto8596", StorageAccountUpdateParameters(allow_blob_public_access=False))
    assert updated.allow_blob_public_access is False
    (write,) = arm.writes
    assert write.method == "PATCH"
    assert write.path == doc["id"]
    assert write.body == {"properties": {"allowBlobPublicAccess": False}}
    assert write.status == 200
    assert write.headers["Authorization"] == "Bearer fake-token"
    stored = arm.get(doc["id"])
    assert stored is not None
    assert stored["properties"]["allowBlobPublicAccess"] is False
    # the rest of the document is untouched by the PATCH (deep merge)
    assert stored["properties"]["networkAcls"] == doc["properties"]["networkAcls"]


def test_blob_container_patch(arm: FakeArm) -> None:
    from azure.mgmt.storage.models import BlobContainer

    doc = arm_fixture("storage__2023-05-01__BlobContainersPatch.json")
    arm.add(doc)
    client = arm.clients().storage("{subscription-id}")
    out = client.blob_containers.update("res3376", "sto328", "container6185",
                                        BlobContainer(public_access="None"))
    assert out.public_access == "None"
    assert arm.writes[-1].body == {"properties": {"publicAccess": "None"}}
    stored = arm.get(doc["id"])
    assert stored is not None
    assert stored["properties"]["metadata"] == {"metadata": "true"}


# -- network: LROs and embedded children ------------------------------------------------------------

def test_security_rule_create_is_an_lro_and_shows_in_the_nsg(arm: FakeArm) -> None:
    from azure.mgmt.network.models import SecurityRule

    arm.add(arm_fixture("network__2024-05-01__NetworkSecurityGroupGet.json"))
    before = arm.get(NSG_ID)
    assert before is not None
    client = arm.clients().network(SUB)
    rule = SecurityRule(protocol="Tcp", source_address_prefix="*", destination_address_prefix="*",
                        source_port_range="*", destination_port_range="22", access="Deny", priority=100,
                        direction="Inbound")
    result = client.security_rules.begin_create_or_update("rg1", "testnsg", "deny22", rule).result()
    assert result.name == "deny22"
    assert result.provisioning_state == "Succeeded"

    put, poll1, poll2, final = arm.requests
    assert (put.method, put.status) == ("PUT", 201)
    assert put.body == {"properties": {
        "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "22", "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "*", "access": "Deny", "priority": 100, "direction": "Inbound"}}
    assert poll1.path.startswith("/_operations/")
    assert poll2.path == poll1.path
    assert (final.method, final.path) == ("GET", NSG_ID + "/securityRules/deny22")

    nsg = client.network_security_groups.get("rg1", "testnsg")
    assert [r.name for r in nsg.security_rules] == ["rule1", "deny22"]
    assert nsg.etag
    assert nsg.etag != before.get("etag")  # a write gives the parent a fresh etag
    # GET of the child and the parent agree
    child = arm.get(NSG_ID + "/securityRules/deny22")
    assert child is not None
    assert child["properties"]["destinationPortRange"] == "22"
    assert child["etag"].startswith('W/"')


def test_security_rule_delete_is_202_location_then_gone(arm: FakeArm) -> None:
    arm.add(arm_fixture("network__2024-05-01__NetworkSecurityGroupGet.json"))
    client = arm.clients().network(SUB)
    assert client.security_rules.get("rg1", "testnsg", "rule1").destination_port_range == "80"
    arm.reset_log()
    client.security_rules.begin_delete("rg1", "testnsg", "rule1").result()
    delete, poll1, poll2 = arm.requests
    assert (delete.method, delete.status) == ("DELETE", 202)
    assert (poll1.status, poll2.status) == (202, 204)
    assert arm.get(RULE1) is None
    nsg = arm.get(NSG_ID)
    assert nsg is not None
    assert nsg["properties"]["securityRules"] == []
    with pytest.raises(ResourceNotFoundError):
        client.security_rules.get("rg1", "testnsg", "rule1")
    # deleting again is idempotent: 204
    client.security_rules.begin_delete("rg1", "testnsg", "rule1").result()
    assert arm.requests[-1].status == 204


def test_network_interfaces_list_by_group_and_subscription_with_paging(arm: FakeArm) -> None:
    for rg, name in [("rg1", "nic1"), ("rg1", "nic2"), ("rg1", "nic3"), ("rg2", "nic4")]:
        rid = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/{name}"
        arm.add({"id": rid,
                 "name": name, "type": "Microsoft.Network/networkInterfaces", "location": "westus",
                 "properties": {"ipConfigurations": []}})
    client = arm.clients().network(SUB)
    assert sorted(n.name for n in client.network_interfaces.list("rg1")) == ["nic1", "nic2", "nic3"]
    assert sum(1 for r in arm.requests if r.query.get("$skiptoken")) == 1  # two pages of size 2
    assert sorted(n.name for n in client.network_interfaces.list_all()) == ["nic1", "nic2", "nic3", "nic4"]
    assert arm.writes == []


# -- authorization ------------------------------------------------------------------------------

def test_role_assignments_list_for_scope_pages_filters_and_deletes(arm: FakeArm) -> None:
    sub = f"/subscriptions/{RA_SUB}"
    rg = f"{sub}/resourceGroups/rg1"
    res = f"{rg}/providers/Microsoft.Storage/storageAccounts/sa1"
    arm.load([
        _role_assignment("b0f43c54-e787-4862-89b1-a653fa9cf747", sub),  # above
        _role_assignment("11111111-0000-0000-0000-000000000001", rg),  # at
        _role_assignment("11111111-0000-0000-0000-000000000002", res),  # below
        _role_assignment("11111111-0000-0000-0000-000000000003", rg, principal="someone-else"),
        _role_assignment("11111111-0000-0000-0000-000000000004", f"{sub}/resourceGroups/rg2"),  # sideways
    ])
    client = arm.clients().authorization(RA_SUB)
    got = list(client.role_assignments.list_for_scope(rg, filter=f"principalId eq '{PRINCIPAL}'"))
    assert sorted(a.name for a in got) == ["11111111-0000-0000-0000-000000000001",
                                           "11111111-0000-0000-0000-000000000002",
                                           "b0f43c54-e787-4862-89b1-a653fa9cf747"]
    first, second = arm.requests
    assert first.query["$filter"] == f"principalId eq '{PRINCIPAL}'"
    assert "$skiptoken" in second.query
    at_scope = list(client.role_assignments.list_for_scope(rg, filter="atScope()"))
    assert len(at_scope) == 3  # at rg1 (two principals) and the subscription above; not below

    deleted = client.role_assignments.delete(rg, "11111111-0000-0000-0000-000000000001")
    assert deleted is not None
    assert deleted.principal_id == PRINCIPAL
    assert arm.writes[-1].status == 200
    assert client.role_assignments.delete(rg, "11111111-0000-0000-0000-000000000001") is None
    assert arm.writes[-1].status == 204


def test_role_assignment_create_is_201_and_duplicate_is_409(arm: FakeArm) -> None:
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

    client = arm.clients().authorization(RA_SUB)
    scope = f"/subscriptions/{RA_SUB}/resourceGroups/rg1"
    params = RoleAssignmentCreateParameters(
        role_definition_id="/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
        principal_id=PRINCIPAL)
    out = client.role_assignments.create(scope, "22222222-0000-0000-0000-000000000001", params)
    assert out.scope == scope
    assert arm.writes[-1].status == 201
    with pytest.raises(HttpResponseError) as err:
        client.role_assignments.create(scope, "22222222-0000-0000-0000-000000000002", params)
    assert err.value.status_code == 409
    assert err.value.error is not None
    assert err.value.error.code == "RoleAssignmentExists"


# -- container registry -----------------------------------------------------------------------

@pytest.mark.parametrize("async_update", [False, True])
def test_registry_update_sync_and_async(async_update: bool) -> None:
    from azure.mgmt.containerregistry.models import RegistryUpdateParameters

    with FakeArm(async_registry_update=async_update) as arm:
        arm.add(arm_fixture("containerregistry__2017-10-01__RegistryUpdate_adminUserEnabled.json"))
        client = arm.clients().containerregistry(REG_SUB)
        out = client.registries.begin_update(
            "myResourceGroup", "myRegistry", RegistryUpdateParameters(admin_user_enabled=False)).result()
        assert out.admin_user_enabled is False
        patch = arm.writes[0]
        assert patch.body == {"properties": {"adminUserEnabled": False}}
        assert patch.status == (201 if async_update else 200)
        stored = arm.get(REG_ID)
        assert stored is not None
        assert stored["properties"]["adminUserEnabled"] is False
        assert stored["properties"]["loginServer"] == "myregistry.azurecr.io"


def test_registry_list_and_regenerate_credentials(arm: FakeArm) -> None:
    from azure.mgmt.containerregistry.models import RegenerateCredentialParameters

    arm.add(arm_fixture("containerregistry__2017-10-01__RegistryUpdate_adminUserEnabled.json"))
    client = arm.clients().containerregistry(REG_SUB)
    before = client.registries.list_credentials("myResourceGroup", "myRegistry")
    assert before.username == "myRegistry"
    values = {p.name: p.value for p in before.passwords}
    assert values == arm.credentials(REG_ID)
    assert arm.writes == []
    (listed,) = arm.sensitive
    assert listed.action == "listcredentials"

    after = client.registries.regenerate_credential(
        "myResourceGroup", "myRegistry", RegenerateCredentialParameters(name="password2"))
    new = {p.name: p.value for p in after.passwords}
    assert new["password"] == values["password"]
    assert new["password2"] != values["password2"]
    (write,) = arm.writes
    assert write.body == {"name": "password2"}
    assert write.path == REG_ID + "/regenerateCredential"


# -- key vault ------------------------------------------------------------------------------------

def test_secret_client_sets_a_secret_through_the_challenge(arm: FakeArm) -> None:
    client = arm.clients().secrets("https://kv-remediator.vault.azure.net")
    out = client.set_secret("acr-admin", "s3cr3t-value", content_type="text/plain")
    assert out.id.startswith("https://kv-remediator.vault.azure.net/secrets/acr-admin/")
    assert arm.secret("https://kv-remediator.vault.azure.net", "acr-admin") == "s3cr3t-value"
    assert client.get_secret("acr-admin").value == "s3cr3t-value"
    writes = arm.writes
    assert len(writes) == 1  # the unauthenticated challenge probe is not a write
    assert writes[0].path == "/_vault/kv-remediator.vault.azure.net/secrets/acr-admin"
    assert writes[0].sensitive


# -- generic resources and error paths (raw HTTP) ----------------------------------------------------

def test_missing_api_version_is_a_json_400(arm: FakeArm) -> None:
    status, _, body = _raw(arm, "GET", NSG_ID)
    assert status == 400
    assert body["error"]["code"] == "MissingApiVersionParameter"


def test_unknown_resource_is_a_json_404(arm: FakeArm) -> None:
    status, _, body = _raw(arm, "GET", NSG_ID + "?api-version=2024-05-01")
    assert status == 404
    assert body["error"]["code"] == "ResourceNotFound"
    assert "testnsg" in body["error"]["message"]


def test_generic_put_patch_delete_of_an_unknown_type(arm: FakeArm) -> None:
    rid = "/subscriptions/s/resourceGroups/rg/providers/Contoso.Widgets/widgets/w1"
    q = "?api-version=2020-01-01"
    status, _, doc = _raw(arm, "PUT", rid + q, {"location": "westus", "tags": {"a": "1"},
                                                "properties": {"size": 1, "nested": {"x": 1, "y": 2}}})
    assert status == 201
    assert (doc["id"], doc["name"], doc["type"]) == (rid, "w1", "Contoso.Widgets/widgets")
    patch = {"tags": {"b": "2"}, "properties": {"nested": {"y": None, "z": 3}}}
    status, _, doc = _raw(arm, "PATCH", rid.upper() + q, patch)
    assert status == 200
    assert doc["id"] == rid  # the stored casing
    assert doc["tags"] == {"b": "2"}
    assert doc["properties"] == {"size": 1, "nested": {"x": 1, "z": 3}}
    status, _, _ = _raw(arm, "PUT", rid + q, {"properties": {"size": 2}})
    assert status == 200
    assert _raw(arm, "DELETE", rid + q)[0] == 200
    assert _raw(arm, "DELETE", rid + q)[0] == 204
    assert _raw(arm, "PATCH", rid + q, {"properties": {}})[0] == 404
    assert [r.method for r in arm.writes] == ["PUT", "PATCH", "PUT", "DELETE", "DELETE", "PATCH"]


def test_fail_next_injects_json_errors_once(arm: FakeArm) -> None:
    arm.add(arm_fixture("network__2024-05-01__NetworkSecurityGroupGet.json"))
    arm.fail_next("GET", "/networkSecurityGroups/testnsg", 429, headers={"Retry-After": "7"})
    status, headers, body = _raw(arm, "GET", NSG_ID + "?api-version=2024-05-01")
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert body == {"error": {"code": "TooManyRequests", "message": "Injected failure: TooManyRequests."}}
    assert _raw(arm, "GET", NSG_ID + "?api-version=2024-05-01")[0] == 200


def test_fail_next_through_the_sdk_raises_http_response_error(arm: FakeArm) -> None:
    arm.add(arm_fixture("network__2024-05-01__NetworkSecurityGroupGet.json"))
    arm.fail_next("*", "testnsg", 403, times=2)
    client = arm.clients().network(SUB)
    for _ in range(2):
        with pytest.raises(HttpResponseError) as err:
            client.network_security_groups.get("rg1", "testnsg")
        assert err.value.status_code == 403
        assert err.value.error is not None
        assert err.value.error.code == "AuthorizationFailed"
    assert client.network_security_groups.get("rg1", "testnsg").name == "testnsg"


def test_put_child_of_missing_parent_is_404(arm: FakeArm) -> None:
    status, _, body = _raw(arm, "PUT", RULE1 + "?api-version=2024-05-01", {"properties": {}})
    assert status == 404
    assert body["error"]["code"] == "ParentResourceNotFound"


def test_add_requires_an_id_and_base_url_requires_start() -> None:
    fake = FakeArm()
    with pytest.raises(ValueError, match="id"):
        fake.add({"name": "x"})
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.base_url
    fake.start()
    try:
        assert fake.base_url.startswith("http://127.0.0.1:")
    finally:
        fake.stop()


def test_a_machine_pricing_is_inherited_until_set_and_deleting_it_inherits_again(arm: FakeArm) -> None:
    """security 2024-01-01 pricings.json: GET at a machine answers the subscription's plan, inherited "True"
    (GetResourcePricingByNameVirtualMachines_example.json); PUT → 201 then 200, inherited "False"
    (PutResourcePricingByNameVirtualMachines_example.json); P2, enforce or another plan at a machine → 400; DELETE
    → 200, then 204 (DeleteResourcePricing_example.json); DELETE of a subscription's pricing → 400."""
    sub = "/subscriptions/subid"
    vm = f"{sub}/resourceGroups/DEMO/providers/Microsoft.Compute/virtualMachines/VM-1"
    listed = arm_fixture("security__2024-01-01__ListPricings.json")["value"]
    servers = next(d for d in listed if d["name"] == "VirtualMachines")
    servers["id"] = f"{sub}/providers/Microsoft.Security/pricings/VirtualMachines"
    arm.add(servers)
    arm.add({"id": vm, "name": "VM-1", "type": "Microsoft.Compute/virtualMachines", "properties": {}})
    url = f"{vm}/providers/Microsoft.Security/pricings/VirtualMachines?api-version=2024-01-01"
    status, _, doc = _raw(arm, "GET", url)
    assert status == 200
    assert (doc["properties"]["pricingTier"], doc["properties"]["subPlan"]) == ("Standard", "P2")
    assert (doc["properties"]["inherited"], doc["properties"]["inheritedFrom"]) == ("True", sub)
    assert "enforce" not in doc["properties"]
    for bad in ({"pricingTier": "Standard", "subPlan": "P2"}, {"pricingTier": "Free", "enforce": "True"}):
        status, _, err = _raw(arm, "PUT", url, {"properties": bad})
        assert (status, err["error"]["code"]) == (400, "InvalidInputJson")
    other = url.replace("pricings/VirtualMachines", "pricings/StorageAccounts")
    assert _raw(arm, "PUT", other, {"properties": {"pricingTier": "Free"}})[0] == 400
    status, _, doc = _raw(arm, "PUT", url, {"properties": {"pricingTier": "Standard", "subPlan": "P1"}})
    assert status == 201
    assert (doc["properties"]["inherited"], doc["properties"]["inheritedFrom"]) == ("False", None)
    assert _raw(arm, "PUT", url, {"properties": {"pricingTier": "Free"}})[0] == 200
    assert _raw(arm, "GET", url)[2]["properties"]["pricingTier"] == "Free"
    assert _raw(arm, "DELETE", url)[0] == 200
    assert _raw(arm, "GET", url)[2]["properties"]["inherited"] == "True"
    assert _raw(arm, "DELETE", url)[0] == 204
    assert _raw(arm, "DELETE", f"{sub}/providers/Microsoft.Security/pricings/VirtualMachines?api-version=2024-01-01")[
        0] == 400


def test_a_resource_threat_protection_setting_is_off_until_put(arm: FakeArm) -> None:
    """security 2019-01-01 advancedThreatProtectionSettings.json: GET and PUT, 200 only
    (PutAdvancedThreatProtectionSettings_example.json); a resource that does not exist → 404."""
    account = "/subscriptions/subid/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/db1"
    url = f"{account}/providers/Microsoft.Security/advancedThreatProtectionSettings/current?api-version=2019-01-01"
    assert _raw(arm, "GET", url)[0] == 404
    arm.add({"id": account, "name": "db1", "type": "Microsoft.DocumentDB/databaseAccounts", "properties": {}})
    status, _, doc = _raw(arm, "GET", url)
    assert (status, doc["properties"]) == (200, {"isEnabled": False})
    status, _, doc = _raw(arm, "PUT", url, {"properties": {"isEnabled": True}})
    assert (status, doc["name"], doc["properties"]) == (200, "current", {"isEnabled": True})
    assert _raw(arm, "PUT", url, {"properties": {"isEnabled": "yes"}})[0] == 400
    assert _raw(arm, "GET", url)[2]["properties"] == {"isEnabled": True}

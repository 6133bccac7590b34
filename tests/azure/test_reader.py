"""LiveState reads through the real SDK clients against FakeArm, and never writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from remediator.azure.pace import DEFAULT_MAX_RETRIES
from remediator.azure.reader import LiveState, http_error_line
from remediator.azure.state import SavedState
from remediator.errors import StateError
from remediator.testing import FakeArm
from tests.support.builders import arm_fixture

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
RG = f"/subscriptions/{SUB}/resourceGroups/rg1"
NSG_ID = "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/testnsg"
VM_ID = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
VNET_ID = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet1"


def _docs() -> list[dict[str, Any]]:
    nic = {"id": f"{RG}/providers/Microsoft.Network/networkInterfaces/nic{{}}",
           "type": "Microsoft.Network/networkInterfaces", "location": "westeurope",
           "properties": {"ipConfigurations": []}}
    out: list[dict[str, Any]] = [
        arm_fixture("storage__2023-05-01__StorageAccountUpdate.json"),
        arm_fixture("storage__2023-05-01__BlobContainersPatch.json"),
        arm_fixture("network__2024-05-01__NetworkSecurityGroupGet.json"),
        arm_fixture("containerregistry__2017-10-01__RegistryUpdate_adminUserEnabled.json"),
        {"id": VM_ID, "name": "vm1", "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
         "properties": {"networkProfile": {"networkInterfaces": [{"id": nic["id"].format(1)}]}}},
        {"id": VNET_ID, "name": "vnet1", "type": "Microsoft.Network/virtualNetworks", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"id": VNET_ID + "/subnets/default", "name": "default",
                         "properties": {"addressPrefix": "10.0.0.0/24"}}]}},
        {"id": f"/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Network/networkInterfaces/other",
         "name": "other", "type": "Microsoft.Network/networkInterfaces", "properties": {}},
    ]
    for i in range(1, 4):
        out.append({**nic, "id": nic["id"].format(i), "name": f"nic{i}"})
    for i, (scope, principal) in enumerate([(f"/subscriptions/{SUB}", "p1"), (RG, "p1"), (RG, "p2"),
                                            (f"{RG}/providers/Microsoft.Storage/storageAccounts/sa", "p1")]):
        name = f"00000000-0000-0000-0000-00000000000{i}"
        out.append({"id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", "name": name,
                    "type": "Microsoft.Authorization/roleAssignments",
                    "properties": {"principalId": principal, "principalType": "ServicePrincipal",
                                   "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/x",
                                   "scope": scope, "createdOn": "2025-03-14T09:12:44.0000000Z",
                                   "condition": None, "unknownField": 1}})
    return out


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.load(_docs())
        yield fake


def test_get_returns_the_arm_document_unchanged_for_every_supported_type(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    saved = SavedState(_docs())
    wanted = [d["id"] for d in _docs()] + [
        NSG_ID + "/securityRules/rule1",
        NSG_ID + "/defaultSecurityRules/AllowVnetInBound",
        VNET_ID + "/subnets/default",
    ]
    for rid in wanted:
        got = live.get(rid)
        assert got is not None, rid
        assert got == saved.get(rid), rid  # byte-for-byte what was saved: same plan fingerprints
    assert arm.writes == []
    types = {r.path.split("/providers/")[-1].split("/")[0] for r in arm.requests}
    assert "Microsoft.Compute" in types
    vm_reads = [r for r in arm.requests if "virtualMachines" in r.path]
    assert vm_reads[0].query["api-version"] == "2024-07-01"


def test_missing_resources_are_none(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    assert live.get(NSG_ID.replace("testnsg", "nope")) is None
    assert live.get(NSG_ID + "/securityRules/nope") is None
    assert live.get(VM_ID.replace("vm1", "nope")) is None
    assert live.get(f"{RG}/providers/Microsoft.Authorization/roleAssignments/nope") is None
    assert arm.writes == []


def test_errors_are_one_line_state_errors(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    arm.fail_next("GET", "testnsg", 403)
    with pytest.raises(StateError) as err:
        live.get(NSG_ID)
    text = str(err.value)
    assert "\n" not in text
    assert text == (f"cannot read {NSG_ID} from ARM: "
                    "403 AuthorizationFailed: Injected failure: AuthorizationFailed.")
    arm.fail_next("GET", "virtualMachines", 500)
    with pytest.raises(StateError, match="500 InternalServerError"):
        live.get(VM_ID)
    # a 429 is sent again after Retry-After (the subscription's pace) until it gives up: then it is an error
    arm.fail_next("GET", "roleAssignments", 429, headers={"Retry-After": "0"}, times=1 + DEFAULT_MAX_RETRIES)
    with pytest.raises(StateError, match="429 TooManyRequests"):
        live.role_assignments(RG, "p1")


def test_unsupported_types_and_bad_ids_are_state_errors(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    with pytest.raises(StateError, match=r"cannot read type Contoso\.Widgets/widgets"):
        live.get(f"{RG}/providers/Contoso.Widgets/widgets/w")
    with pytest.raises(StateError, match="no /subscriptions"):
        live.get("/providers/Microsoft.Management/managementGroups/mg")
    with pytest.raises(StateError, match="cannot list type"):
        live.list("Contoso.Widgets/widgets", RG)
    assert arm.requests == []


def test_list_network_interfaces_by_group_and_subscription_across_pages(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    saved = SavedState(_docs())
    in_rg = live.list("Microsoft.Network/networkInterfaces", RG)
    assert sorted(d["name"] for d in in_rg) == ["nic1", "nic2", "nic3"]
    expected = saved.list("Microsoft.Network/networkInterfaces", RG)
    assert sorted(d["id"] for d in in_rg) == sorted(d["id"] for d in expected)
    assert any("$skiptoken" in r.query for r in arm.requests)  # page size 2: paging was exercised
    in_sub = live.list("Microsoft.Network/networkInterfaces", f"/subscriptions/{SUB}")
    assert sorted(d["name"] for d in in_sub) == ["nic1", "nic2", "nic3", "other"]
    assert arm.writes == []


def test_role_assignments_match_saved_state_with_and_without_principal(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    saved = SavedState(_docs())

    def names(docs: list[dict[str, Any]]) -> list[str]:
        return sorted(d["name"] for d in docs)

    assert names(live.role_assignments(RG, "p1")) == names(saved.role_assignments(RG, "p1"))
    assert len(live.role_assignments(RG, "p1")) == 3  # above, at and below the resource group
    assert names(live.role_assignments(RG)) == names(saved.role_assignments(RG))
    one = live.role_assignments(RG, "p2")
    assert one == saved.role_assignments(RG, "p2")  # raw documents, unknown fields and timestamps kept
    assert one[0]["properties"]["unknownField"] == 1
    assert one[0]["properties"]["createdOn"] == "2025-03-14T09:12:44.0000000Z"
    filters = [r.query.get("$filter") for r in arm.requests if r.path.endswith("/roleAssignments")]
    assert "principalId eq 'p1'" in filters
    assert arm.writes == []


def test_http_error_line_handles_transport_errors() -> None:
    from azure.core.exceptions import ServiceRequestError

    assert http_error_line(ServiceRequestError("Connection refused\nmore")) == "Connection refused"


def test_a_resource_group_is_read_for_its_tags(arm: FakeArm) -> None:
    """``resource_group.tags`` conditions: the planner reads the group with a GET (Resource Groups - Get)."""
    group = {"id": RG, "name": "rg1", "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
             "tags": {"env": "prod"}, "properties": {"provisioningState": "Succeeded"}}
    arm.load([group])
    live = LiveState(arm.clients())
    assert live.get(RG) == group
    assert live.get(RG.replace("rg1", "nope")) is None
    assert arm.writes == []

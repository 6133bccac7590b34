"""The contract test's cases (tests/actions/test_contract.py): per registered action, the estate its
docstring playbook example fixes.

A case is data only. ``target`` is the finding's resource; ``docs`` the ARM documents FakeArm serves:
the REST spec example (tests/fixtures/arm/) moved onto that id and made non-compliant, with the value
it must lose written out (so that undo has an explicit value to put back), and the linked resources
the plan reads. ``operations`` is what the plan must come out as. The finding is built from the
playbook's own match criteria; ``finding`` adds fields (a principal, an alert's container).
``known_bug`` marks a case that fails for a reason outside the action (a strict xfail: fixing the
bug makes it pass, and then the mark must go).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediator import ids
from remediator.actions.change import Operation
from tests.support.builders import arm_fixture

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
PARTNER_SUB = "9d3f1c2e-0b4a-4e8f-a1d2-6c7b8e9f0a13"  # in none of the examples' allow lists
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # the planner's clock
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
BLOCKED_USER = "ce2ce14e-85d7-4629-bdbc-454d0519d987"  # the principal of the role assignment REST example
OTHER_OWNER = "5b8e2f35-0a54-4c63-9f0e-7d1a2c3b4e5f"


def rid(group: str, path: str, sub: str = SUB) -> str:
    """``/subscriptions/<sub>/resourceGroups/<group>/providers/<path>``."""
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/{path}"


def example(fixture: str, resource_id: str, **props: Any) -> dict[str, Any]:
    """The spec example's document at ``resource_id`` (id, name and type follow it), ``props`` set."""
    doc = arm_fixture(fixture)
    doc.update(id=resource_id, name=ids.parse(resource_id).name, type=ids.resource_type(resource_id))
    doc.setdefault("properties", {}).update(copy.deepcopy(props))
    return doc


def approved_endpoint() -> dict[str, Any]:
    """The Cognitive Services example's private endpoint connection, approved."""
    conn = arm_fixture("cognitiveservices__2024-10-01__GetPrivateEndpointConnection.json")
    conn["properties"]["privateLinkServiceConnectionState"]["status"] = "Approved"
    return conn


@dataclass(frozen=True, kw_only=True, slots=True)
class Case:
    target: str
    docs: Callable[[], list[dict[str, Any]]]
    operations: tuple[Operation, ...] = ("update",)
    finding: Mapping[str, Any] = field(default_factory=dict)  # make_finding keywords
    refused: str = ""  # the plan refuses (a report-only action): words of the reason
    advice: tuple[str, ...] = ()  # the plan changes nothing and advises people: words the advice holds
    compliant_after: bool = True  # a re-plan after apply plans nothing
    server_set: frozenset[str] = frozenset()  # properties ARM sets itself when undo re-creates the resource
    known_bug: str = ""  # the case fails for this reason, outside the action (a strict xfail until fixed)


# -- the estates ---------------------------------------------------------------------------------------

REGISTRY = rid("rg-models", "Microsoft.ContainerRegistry/registries/models")
ACCOUNT = rid("rg-ai", "Microsoft.CognitiveServices/accounts/oai-prod")
DISK = rid("rg-models", "Microsoft.Compute/disks/weights")
SNAPSHOT = rid("rg-models", "Microsoft.Compute/snapshots/weights-0301")
VAULT = rid("rg-keys", "Microsoft.KeyVault/vaults/kv-models")
WORKSPACE = rid("rg-ml", "Microsoft.MachineLearningServices/workspaces/ml-prod")
ENDPOINT = f"{WORKSPACE}/onlineEndpoints/scoring"
NSG = rid("rg-web", "Microsoft.Network/networkSecurityGroups/nsg-jump")
VNET = rid("rg-net", "Microsoft.Network/virtualNetworks/spoke")
PARTNER = rid("rg-x", "Microsoft.Network/virtualNetworks/partner", PARTNER_SUB)
EXEMPTION = rid("rg-demo", "Microsoft.Authorization/policyExemptions/DemoExpensiveVM")
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/CostManagement"
STORAGE = rid("rg-data", "Microsoft.Storage/storageAccounts/stdata")
CONTAINER = f"{STORAGE}/blobServices/default/containers/public-assets"


def registry(sku: str = "Premium", **props: Any) -> list[dict[str, Any]]:
    doc = example("containerregistry__2025-11-01__RegistryGet.json", REGISTRY, **props)
    doc["sku"] = {"name": sku, "tier": sku}
    return [doc]


def account(**props: Any) -> list[dict[str, Any]]:
    return [example("cognitiveservices__2024-10-01__GetAccount.json", ACCOUNT, **props) | {"kind": "OpenAI"}]


DEPLOYMENT = f"{ACCOUNT}/deployments/gpt-4o-chat"
ON_DEPLOYMENT = {"extended_properties": {"model deployment name": "gpt-4o-chat"}}  # as the AI alerts name it


def deployment(capacity: int = 1, **props: Any) -> dict[str, Any]:
    doc = example("cognitiveservices__2024-10-01__GetDeployment.json", DEPLOYMENT, **props)
    doc["sku"]["capacity"] = capacity
    return doc


def builtin_filter(name: str = "Microsoft.DefaultV2") -> dict[str, Any]:
    """The RAI policy example as the account's built-in default, jailbreak detected but not blocked and no
    indirect attack filter (what AI.Azure_Jailbreak.ContentFiltering.DetectedAttempt means)."""
    doc = example("cognitiveservices__2024-10-01__GetRaiPolicy.json", f"{ACCOUNT}/raiPolicies/{name}",
                  type="SystemManaged")
    for f in doc["properties"]["contentFilters"]:
        if f["name"] == "jailbreak":
            f["blocking"] = False
    return doc


def disk(state: str = "Unattached", **props: Any) -> list[dict[str, Any]]:
    doc = example("compute__2024-03-02__Disk_Get.json", DISK, diskState=state, **props)
    doc.pop("managedBy")
    return [doc]


def snapshot(**props: Any) -> list[dict[str, Any]]:
    return [example("compute__2024-03-02__Snapshot_Get.json", SNAPSHOT, **props)]


def nsg() -> list[dict[str, Any]]:
    """The NSG example with a second rule: SSH from the Internet (the rule example, moved)."""
    doc = example("network__2024-05-01__NetworkSecurityGroupGet.json", NSG)
    ssh = example("network__2024-05-01__NetworkSecurityGroupRuleGet.json", f"{NSG}/securityRules/ssh-anywhere",
                  protocol="Tcp", destinationPortRange="22", sourceAddressPrefix="Internet", priority=100)
    doc["properties"]["securityRules"].insert(0, ssh)
    for kind in ("securityRules", "defaultSecurityRules"):
        for rule in doc["properties"][kind]:
            rule.update(id=f"{NSG}/{kind}/{rule['name']}", type=f"Microsoft.Network/networkSecurityGroups/{kind}")
    return [doc]


def peered() -> list[dict[str, Any]]:
    """A spoke network peered (the peering example, moved) to a partner's network in another subscription."""
    peering = example("network__2024-05-01__VirtualNetworkPeeringGet.json", f"{VNET}/virtualNetworkPeerings/to-partner")
    peering["properties"]["remoteVirtualNetwork"]["id"] = PARTNER

    def vnet(vid: str, *peerings: dict[str, Any]) -> dict[str, Any]:
        return {"id": vid, "name": ids.parse(vid).name, "type": "Microsoft.Network/virtualNetworks",
                "location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                                                         "subnets": [], "virtualNetworkPeerings": list(peerings)}}
    return [vnet(VNET, peering), vnet(PARTNER)]


def exemption() -> list[dict[str, Any]]:
    """The exemption example (a Waiver without expiry) and its policy assignment (not a never-exempt policy)."""
    doc = example("authorization__2022-07-01-preview__getPolicyExemption.json", EXEMPTION,
                  policyAssignmentId=ASSIGNMENT)
    assignment = {"id": ASSIGNMENT, "name": "CostManagement", "type": "Microsoft.Authorization/policyAssignments",
                  "properties": {"displayName": "Cost management", "scope": f"/subscriptions/{SUB}",
                                 # Allowed virtual machine size SKUs (built-in)
                                 "policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/"
                                                       "cccc23c7-8427-4f53-ad12-b6a63eb452b3",
                                 "enforcementMode": "Default"}}
    return [doc, assignment]


def owners() -> list[dict[str, Any]]:
    """Owner at the subscription for the blocked user (the role assignment example) and for another."""
    def owner(name: str, principal: str) -> dict[str, Any]:
        return example("authorization__2022-04-01__RoleAssignments_Delete.json",
                       f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/{name}",
                       roleDefinitionId=f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
                                        f"{OWNER}", principalId=principal, scope=f"/subscriptions/{SUB}")
    return [owner("b0f43c54-e787-4862-89b1-a653fa9cf747", BLOCKED_USER),
            owner("6c1ab0e4-3d2f-4e5a-9b7c-8d9e0f1a2b3c", OTHER_OWNER)]


def storage(**props: Any) -> list[dict[str, Any]]:
    return [example("storage__2023-05-01__StorageAccountUpdate.json", STORAGE, **props)]


def storage_and_container() -> list[dict[str, Any]]:
    container = example("storage__2023-05-01__BlobContainersPatch.json", CONTAINER)  # publicAccess: Container
    return [*storage(allowBlobPublicAccess=True), container]


def vault_with_rules() -> list[dict[str, Any]]:
    """The example vault with network rules, open (defaultAction Allow) and trusting no Azure service."""
    doc = example("keyvault__2024-11-01__createVaultWithNetworkAcls.json", VAULT)
    doc["properties"]["networkAcls"].update(defaultAction="Allow", bypass="None")
    return [doc]


OPEN_ACLS = {"defaultAction": "Allow", "ipRules": [{"value": "198.51.100.7"}], "virtualNetworkRules": []}
# what ARM fills in on a peering from the peer network (a re-created peering gets them back from there)
PEER_COMPUTED = frozenset({"peeringState", "peeringSyncLevel", "remoteAddressSpace", "remoteVirtualNetworkAddressSpace",
                           "remoteBgpCommunities"})

CASES: dict[str, Case] = {
    "acr.disable-admin-user": Case(target=REGISTRY, docs=lambda: registry(adminUserEnabled=True)),
    "acr.disable-anonymous-pull": Case(target=REGISTRY, docs=lambda: registry(anonymousPullEnabled=True)),
    "acr.restrict-network-access": Case(target=REGISTRY, docs=registry),
    "acr.rotate-credentials": Case(
        target=REGISTRY, docs=lambda: registry(adminUserEnabled=True), operations=("invoke", "invoke", "update"),
        compliant_after=False),  # the admin user is still on: another alert rotates again

    "alert.send-advice": Case(target=ACCOUNT, docs=account, finding=ON_DEPLOYMENT,
                         advice=("deployment: gpt-4o-chat", "step 1: Review the responses", "step 2:")),
    "cognitive.block-prompt-attacks": Case(
        target=ACCOUNT, docs=lambda: [*account(), deployment(), builtin_filter()], finding=ON_DEPLOYMENT,
        operations=("create", "update")),
    "cognitive.disable-local-auth": Case(target=ACCOUNT, docs=lambda: account(disableLocalAuth=False)),
    "cognitive.limit-deployment-capacity": Case(target=ACCOUNT, docs=lambda: [*account(), deployment(120)],
                                                finding=ON_DEPLOYMENT),
    "cognitive.regenerate-key": Case(
        target=ACCOUNT, docs=account, finding={"extended_properties": {"key name": "Key1"}}, operations=("invoke",),
        compliant_after=False),  # the alert still names Key1: another delivery regenerates again
    "cognitive.restrict-network-access": Case(target=ACCOUNT, docs=lambda: account(networkAcls=OPEN_ACLS)),
    "disks.enable-customer-managed-key": Case(target=DISK, docs=disk),
    "disks.restrict-network-access": Case(target=DISK, docs=lambda: disk(networkAccessPolicy="AllowAll",
                                                                         publicNetworkAccess="Enabled")),
    "disks.revoke-export-access": Case(target=DISK, docs=lambda: disk("ActiveSAS"),
                                       operations=("invoke",)),
    "keyvault.enable-purge-protection": Case(
        target=VAULT, docs=lambda: [example("keyvault__2024-11-01__getVault.json", VAULT)]),
    "keyvault.restrict-network-access": Case(target=VAULT, docs=vault_with_rules),
    "ml.disable-endpoint-public-network-access": Case(
        target=ENDPOINT, docs=lambda: [example("machinelearningservices__2024-10-01__OnlineEndpoint_get.json",
                                               ENDPOINT, publicNetworkAccess="Enabled")],
        operations=(), refused="OnlineEndpoints_Update"),
    "ml.disable-public-network-access": Case(
        target=WORKSPACE, docs=lambda: [example("machinelearningservices__2024-10-01__Workspace_get.json", WORKSPACE,
                                                publicNetworkAccess="Enabled")]),
    # without private_link_subnets (the contract's planner has no settings) the plan refuses, naming them; the
    # whole path with the settings is tests/actions/test_private_link.py (grants at several scopes)
    "network.create-private-endpoint": Case(target=ACCOUNT, docs=account, refused="private_link_subnets"),
    "network.restrict-inbound": Case(target=NSG, docs=nsg, operations=("delete",)),
    "network.restrict-peerings": Case(target=VNET, docs=peered, operations=("delete",), server_set=PEER_COMPUTED),
    "policy.limit-exemption": Case(target=EXEMPTION, docs=exemption),
    "rbac.revoke-role-assignments": Case(target=f"/subscriptions/{SUB}", docs=owners, operations=("delete",),
                                         finding={"principal_id": BLOCKED_USER},
                                         server_set=frozenset({"createdOn", "updatedOn"})),
    "snapshots.restrict-network-access": Case(target=SNAPSHOT, docs=lambda: snapshot(
        networkAccessPolicy="AllowAll", publicNetworkAccess="Enabled")),
    "snapshots.revoke-export-access": Case(target=SNAPSHOT, docs=lambda: snapshot(diskState="ActiveSAS"),
                                           operations=("invoke",)),
    "storage.disable-public-blob-access": Case(
        target=STORAGE, docs=storage_and_container, operations=("update", "update"),
        finding={"kind": "alert", "type": "Storage.Blob_OpenACL",
                 "extended_properties": {"Container": "public-assets"}}),
    "storage.disable-public-network-access": Case(
        target=STORAGE, docs=lambda: storage(publicNetworkAccess="Enabled",
                                             privateEndpointConnections=[approved_endpoint()])),
    "storage.disable-shared-key-access": Case(target=STORAGE, docs=lambda: storage(allowSharedKeyAccess=True)),
    "storage.restrict-network-access": Case(target=STORAGE, docs=storage),
}

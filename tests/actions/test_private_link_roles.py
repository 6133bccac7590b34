"""Which built-in role approves a private endpoint's connection, per target type, pinned to its published definition.

ARM approves a ``privateLinkServiceConnections`` entry (an auto-approved connection) only when the caller holds
``{target type}/privateEndpointConnectionsApproval/action`` on the target (learn.microsoft.com
azure/private-link/rbac-permissions); without it the endpoint write fails ``LinkedAuthorizationFailed``. The
private-link fix grants each target type's own role on the target for that (``remediator.actions.private_link``).
Each row: the role, the entry of its published Actions that covers the approval action, and where that entry is
published. The question the issue asked of the registry role: yes, Container Registry Contributor and Data Access
Configuration Administrator approves ("Configure private endpoint settings (set up, approve, reject, and list private
endpoint connections and private link resources)", the ACR roles directory reference; its 55 Actions are explicit,
so the row names the approval action itself).
"""

from __future__ import annotations

import fnmatch

import pytest

from remediator import ids
from remediator.actions.change import Change
from remediator.actions.private_link import ACTION, TARGETS
from remediator.testing.fake_arm import ROLE_ACTIONS

SUB = "/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-ai"
SUBNET = f"{SUB}/providers/Microsoft.Network/virtualNetworks/vnet-hub/subnets/snet-pe"
DOCS = "MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/"

# type → (role, the published Actions entry covering the approval action, where it is published)
APPROVERS: dict[str, tuple[str, str, str]] = {
    "Microsoft.CognitiveServices/accounts": (
        "Cognitive Services Contributor", "Microsoft.CognitiveServices/*", DOCS + "ai-machine-learning.md"),
    "Microsoft.Search/searchServices": (
        "Search Service Contributor", "Microsoft.Search/searchServices/*", DOCS + "web-and-mobile.md"),
    "Microsoft.DocumentDB/databaseAccounts": (
        "DocumentDB Account Contributor", "Microsoft.DocumentDb/databaseAccounts/*", DOCS + "databases.md"),
    "Microsoft.KeyVault/vaults": ("Key Vault Contributor", "Microsoft.KeyVault/*", DOCS + "security.md"),
    "Microsoft.MachineLearningServices/workspaces": (
        "Azure AI Administrator", "Microsoft.MachineLearningServices/workspaces/*",
        "azadvertizer.net/azrolesadvertizer/b78c5d69-af96-48a3-bf8d-a8b4d589de94.html (the published definition)"),
    "Microsoft.Storage/storageAccounts": (
        "Storage Account Contributor", "Microsoft.Storage/storageAccounts/*", DOCS + "storage.md"),
    "Microsoft.ContainerRegistry/registries": (
        "Container Registry Contributor and Data Access Configuration Administrator",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnectionsApproval/action",
        "MicrosoftDocs/azure-management-docs articles/container-registry/"
        "container-registry-rbac-built-in-roles-directory-reference.md"),
    # Azure Policy's own "Configure … with private endpoints" deployments for these two run with the same role
    # (plus Network Contributor): Data Factory/PrivateEndpoints_DINE.json, Key Vault/
    # ManagedHsm_Should_Use_PrivateEndpoint_DINE.json roleDefinitionIds
    "Microsoft.Web/sites": ("Website Contributor", "Microsoft.Web/sites/*", DOCS + "web-and-mobile.md"),
    "Microsoft.DataFactory/factories": (
        "Data Factory Contributor", "Microsoft.DataFactory/factories/*", DOCS + "analytics.md"),
    "Microsoft.KeyVault/managedHSMs": (
        "Managed HSM contributor", "Microsoft.KeyVault/managedHSMs/*", DOCS + "security.md"),
}


def _endpoint_to(target_type: str) -> Change:
    target = f"{SUB}/providers/{target_type}/target1"
    connection = {"name": "c", "properties": {"privateLinkServiceId": target, "groupIds": ["g"]}}
    props = {"subnet": {"id": SUBNET}, "privateLinkServiceConnections": [connection]}
    return Change(action=ACTION.name, resource_id=f"{SUB}/providers/Microsoft.Network/privateEndpoints/pe-target1",
                  operation="create", before=None, after={"name": "pe-target1", "location": "westeurope",
                                                          "properties": props})


def test_the_table_covers_every_target_type() -> None:
    assert sorted(ids.type_key(t) for t in APPROVERS) == sorted(TARGETS)


@pytest.mark.parametrize("target_type", sorted(APPROVERS))
def test_the_granted_role_holds_the_approval_action(target_type: str) -> None:
    role, published, _source = APPROVERS[target_type]
    approval = f"{target_type}/privateEndpointConnectionsApproval/action"
    (need,) = [n for n in ACTION.grants(_endpoint_to(target_type)) if n.scope.endswith("/target1")]
    assert need.role.name == role
    assert need.why == approval
    # ARM matches actions without case, "*" spanning segments (role definitions' wildcards)
    assert fnmatch.fnmatchcase(approval.lower(), published.lower()), (role, published)
    # and the fake ARM, which refuses the endpoint without it, reads the role the same way
    actions, not_actions = ROLE_ACTIONS[need.role.id]
    assert any(fnmatch.fnmatchcase(approval.lower(), a.lower()) for a in actions)
    assert not any(fnmatch.fnmatchcase(approval.lower(), n.lower()) for n in not_actions)


def test_the_registry_role_is_no_wildcard_over_registries() -> None:
    """Its definition lists its Actions one by one and has no data plane: no push or pull in the fake either."""
    (role_id,) = {n.role.id for n in ACTION.grants(_endpoint_to("Microsoft.ContainerRegistry/registries"))
                  if n.scope.endswith("/target1")}
    actions, _ = ROLE_ACTIONS[role_id]
    assert "Microsoft.ContainerRegistry/registries/*" not in actions
    for data in ("push/write", "pull/read"):
        assert not any(fnmatch.fnmatchcase(f"microsoft.containerregistry/registries/{data}", a.lower())
                       for a in actions), data

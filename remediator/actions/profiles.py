"""Resource profiles: each ARM type the actions write, declared once.

A :class:`~remediator.actions.base.Profile` is what every action on a type shares: the type, the API
version its writes are pinned to, the least-privileged built-in role that holds the write (what PIM
grants, scoped to the one resource) and the RBAC operations a write needs. An action names its
profile (``profile = KEY_VAULT``) and takes ``resource_types``, ``role``, ``permissions`` and
``api_version`` from it; an action that needs more adds ``extra_permissions``.

Roles and their sources (MicrosoftDocs/azure-docs ``articles/role-based-access-control/built-in-roles/``):
each is the narrowest built-in role that holds the type's ``write``; the narrower-looking roles of
each service are data-plane roles or lack the write, as noted.
"""

from __future__ import annotations

from remediator.actions.base import BuiltinRole, Profile

# --- roles -----------------------------------------------------------------------------------------

# storage.md: "Permits management of storage accounts"; actions include Microsoft.Storage/storageAccounts/*
# (storageAccounts/write and blobServices/containers/write). The narrower storage roles are data-plane
# (Storage Blob Data *) or key-only (Storage Account Key Operator Service Role).
STORAGE_ACCOUNT_CONTRIBUTOR = BuiltinRole("Storage Account Contributor", "17d1049b-9a84-46fb-8f53-869881c3d3ab")
# ai-machine-learning.md: actions include Microsoft.CognitiveServices/*, so accounts/write; no
# Microsoft.Authorization writes. Cognitive Services OpenAI Contributor/User, Usages Reader, Custom Vision …
# hold no accounts/write.
COGNITIVE_SERVICES_CONTRIBUTOR = BuiltinRole("Cognitive Services Contributor", "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68")
# security.md: "Manage key vaults, but does not allow you to assign roles in Azure RBAC, and does not allow
# you to access secrets, keys, or certificates" (Microsoft.KeyVault/*, no data actions); Azure Policy's own
# "Configure key vaults to enable firewall" (ac673a9a-f77d-4846-b2d8-a57f8e1c01dc, Key Vault/
# FirewallEnabled_Modify.json) remediates with it. Key Vault Administrator / Officer are data-plane roles.
KEY_VAULT_CONTRIBUTOR = BuiltinRole("Key Vault Contributor", "f25e0fa2-a7c8-4377-a976-54943a77a395")
# security.md: the data-plane role that sets and reads secrets (setSecret/getSecret data actions).
KEY_VAULT_SECRETS_OFFICER = BuiltinRole("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7")
# containers.md: the least-privileged role holding registries/write, listCredentials/action and
# regenerateCredential/action; AcrPush/AcrPull hold none of them, Contributor is far broader.
ACR_CONTRIBUTOR_DATA_ACCESS = BuiltinRole(
    "Container Registry Contributor and Data Access Configuration Administrator",
    "3bc748fc-213d-45c1-8d91-9da5725539b9")
# compute.md: disks/read, /write, /delete and no snapshot or endGetAccess action: the narrowest role with
# disks/write (Disk Restore Operator is meant for Backup restores; Disk Snapshot Contributor and Data
# Operator for Managed Disks have no disks/write).
VIRTUAL_MACHINE_CONTRIBUTOR = BuiltinRole("Virtual Machine Contributor", "9980e02c-c2be-4d73-94e8-173b1dc7cf3c")
# storage.md: snapshots/read, /write, /beginGetAccess, /endGetAccess (and disks/beginGetAccess).
DISK_SNAPSHOT_CONTRIBUTOR = BuiltinRole("Disk Snapshot Contributor", "7efff54f-a5b4-42b5-a1c5-5411624893ce")
# compute.md: Microsoft.Compute/disks/*. disks/endGetAccess/action is in no narrow built-in role (Virtual
# Machine Contributor, Disk Snapshot Contributor, Disk Backup Reader, Disk Restore Operator and Data Operator
# for Managed Disks lack it); its other rights (VMs, storage accounts, networks) have nothing to act on at
# the scope of one disk. A deployment that can create custom roles should prefer disks/read + endGetAccess.
AVERE_CONTRIBUTOR = BuiltinRole("Avere Contributor", "4f8fab4f-1852-4a58-a46a-8eaf358af14a")
# Published definition (mirrored at azadvertizer.net/azrolesadvertizer/b78c5d69-af96-48a3-bf8d-a8b4d589de94.html):
# Microsoft.MachineLearningServices/workspaces/*, no Microsoft.Authorization writes. AzureML Data Scientist
# and Azure AI Developer list workspaces/write in their NotActions (ai-machine-learning.md); the other role
# that writes a workspace is Contributor (what Modify policy a10ee784-7409-4941-b091-663697637c0f uses).
AZURE_AI_ADMINISTRATOR = BuiltinRole("Azure AI Administrator", "b78c5d69-af96-48a3-bf8d-a8b4d589de94")
# networking.md: "Lets you manage networks, but not access to them" (Microsoft.Network/*); no narrower
# built-in role holds the security rule and peering writes.
NETWORK_CONTRIBUTOR = BuiltinRole("Network Contributor", "4d97b98b-1d4f-4787-a291-c67834d212e7")
# management-and-governance.md: "Users with rights to create/modify resource policy, create support ticket and
# read resources/hierarchy" (policyexemptions/*, the assignment's exempt/action); Security Admin also holds
# them, plus Microsoft.Security/*.
RESOURCE_POLICY_CONTRIBUTOR = BuiltinRole("Resource Policy Contributor", "36243c78-bf99-498c-9df9-86d9f8d28608")
# privileged.md: roleAssignments write/delete and */read, without Owner's or User Access Administrator's
# other rights.
RBAC_ADMINISTRATOR = BuiltinRole("Role Based Access Control Administrator", "f58310d9-a9f6-439a-9e8d-f62e7b41a168")

# --- profiles ---------------------------------------------------------------------------------------

# Azure/azure-rest-api-specs storage/…/stable/2023-05-01/storage.json: StorageAccounts_Update is a PATCH
# answered 200 (not a long-running operation); BlobContainers_Update a PATCH of the container.
STORAGE_ACCOUNT = Profile(
    type="Microsoft.Storage/storageAccounts", api_version="2023-05-01", role=STORAGE_ACCOUNT_CONTRIBUTOR,
    permissions=("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/write"),
    noun="storage account")
BLOB_CONTAINER = Profile(
    type="Microsoft.Storage/storageAccounts/blobServices/containers", api_version="2023-05-01",
    role=STORAGE_ACCOUNT_CONTRIBUTOR,
    permissions=("Microsoft.Storage/storageAccounts/blobServices/containers/read",
                 "Microsoft.Storage/storageAccounts/blobServices/containers/write"),
    noun="container")
# cognitiveservices/…/stable/2024-10-01/cognitiveservices.json: Accounts_Update is a long-running PATCH
# (200 or 202 + azure-AsyncOperation, examples/UpdateAccount.json).
COGNITIVE_ACCOUNT = Profile(
    type="Microsoft.CognitiveServices/accounts", api_version="2024-10-01", role=COGNITIVE_SERVICES_CONTRIBUTOR,
    permissions=("Microsoft.CognitiveServices/accounts/read", "Microsoft.CognitiveServices/accounts/write"),
    noun="AI services account")
# keyvault/…/stable/2024-11-01/keyvault.json: Vaults_Update is a synchronous PATCH (200/201).
KEY_VAULT = Profile(
    type="Microsoft.KeyVault/vaults", api_version="2024-11-01", role=KEY_VAULT_CONTRIBUTOR,
    permissions=("Microsoft.KeyVault/vaults/read", "Microsoft.KeyVault/vaults/write"), noun="vault")
# The version azure-mgmt-containerregistry 15 reads with, so the live reader's document and the write agree
# (…/Registry/examples/2025-11-01/RegistryUpdate.json: 200, or 201 with Azure-AsyncOperation, whose status
# the write polls: operationStatuses/read).
CONTAINER_REGISTRY = Profile(
    type="Microsoft.ContainerRegistry/registries", api_version="2025-11-01", role=ACR_CONTRIBUTOR_DATA_ACCESS,
    permissions=("Microsoft.ContainerRegistry/registries/read", "Microsoft.ContainerRegistry/registries/write",
                 "Microsoft.ContainerRegistry/registries/operationStatuses/read"),
    noun="container registry")
# compute/…/DiskRP/stable/2024-03-02/disk.json, snapshot.json: Disks_Update / Snapshots_Update are long-running
# PATCHes (202 + Location, Disk_Update_RemoveDiskAccess.json).
MANAGED_DISK = Profile(
    type="Microsoft.Compute/disks", api_version="2024-03-02", role=VIRTUAL_MACHINE_CONTRIBUTOR,
    permissions=("Microsoft.Compute/disks/read", "Microsoft.Compute/disks/write"), noun="disk")
SNAPSHOT = Profile(
    type="Microsoft.Compute/snapshots", api_version="2024-03-02", role=DISK_SNAPSHOT_CONTRIBUTOR,
    permissions=("Microsoft.Compute/snapshots/read", "Microsoft.Compute/snapshots/write"), noun="snapshot")
# machinelearningservices/…/stable/2024-10-01: Workspaces_Update (workspaceRP.json) is a long-running PATCH
# (200 or 202 + Location); OnlineEndpoints_Update (mfe.json) a PATCH of tags and identity only.
ML_WORKSPACE = Profile(
    type="Microsoft.MachineLearningServices/workspaces", api_version="2024-10-01", role=AZURE_AI_ADMINISTRATOR,
    permissions=("Microsoft.MachineLearningServices/workspaces/read",
                 "Microsoft.MachineLearningServices/workspaces/write"),
    noun="workspace")
ML_ONLINE_ENDPOINT = Profile(
    type="Microsoft.MachineLearningServices/workspaces/onlineEndpoints", api_version="2024-10-01",
    role=AZURE_AI_ADMINISTRATOR,
    permissions=("Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read",
                 "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write"),
    noun="online endpoint")
# The version azure-mgmt-network 33 reads NSGs and virtual networks with (remediator.azure.reader), so the
# rule or peering written by id is the one the plan read; PUT and DELETE are long-running (Azure-AsyncOperation,
# Location), network/…/stable/2024-05-01 NetworkSecurityGroupRuleCreate.json, VirtualNetworkPeeringDelete.json.
SECURITY_RULE = Profile(
    type="Microsoft.Network/networkSecurityGroups/securityRules", api_version="2026-03-01",
    role=NETWORK_CONTRIBUTOR,
    permissions=("Microsoft.Network/networkSecurityGroups/securityRules/read",
                 "Microsoft.Network/networkSecurityGroups/securityRules/write",
                 "Microsoft.Network/networkSecurityGroups/securityRules/delete"),
    noun="security rule")
PEERING = Profile(
    type="Microsoft.Network/virtualNetworks/virtualNetworkPeerings", api_version="2026-03-01",
    role=NETWORK_CONTRIBUTOR,
    permissions=("Microsoft.Network/virtualNetworks/virtualNetworkPeerings/read",
                 "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write",
                 "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/delete",
                 # a peering PUT (an update, or undo's re-creation) is authorised against the remote network too
                 "Microsoft.Network/virtualNetworks/peer/action"),
    noun="peering")
# resources/…/Microsoft.Authorization/preview/2022-07-01-preview (policy exemptions; azure-mgmt-resource 26
# ships no PolicyClient): PUT and DELETE by id.
POLICY_EXEMPTION = Profile(
    type="Microsoft.Authorization/policyExemptions", api_version="2022-07-01-preview",
    role=RESOURCE_POLICY_CONTRIBUTOR,
    permissions=("Microsoft.Authorization/policyExemptions/read", "Microsoft.Authorization/policyExemptions/write",
                 "Microsoft.Authorization/policyExemptions/delete",
                 # writing an exemption (set-expiry, undo's re-creation) is also checked against its assignment
                 "Microsoft.Authorization/policyAssignments/exempt/action"),
    noun="policy exemption")
# authorization/…/stable/2022-04-01 (azure-mgmt-authorization 4's role assignments, which the reader lists with).
ROLE_ASSIGNMENT = Profile(
    type="Microsoft.Authorization/roleAssignments", api_version="2022-04-01", role=RBAC_ADMINISTRATOR,
    permissions=("Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleAssignments/delete",
                 "Microsoft.Authorization/roleAssignments/write"),  # write: undo only
    noun="role assignment")

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
# networking.md: "Lets you manage private DNS zone resources, but not the virtual networks they are linked to"
# (Microsoft.Network/privateDnsZones/*, so privateDnsZones/join/action, which a private endpoint's DNS zone group
# needs on each zone); Network Contributor would also do, but it holds every other network write.
PRIVATE_DNS_ZONE_CONTRIBUTOR = BuiltinRole("Private DNS Zone Contributor", "b12aa53e-6015-4669-85d0-8515ebb3ae7f")
# web-and-mobile.md (Search): "Lets you manage Search services, but not access to them" (Microsoft.Search/
# searchServices/*, which holds searchServices/write and privateEndpointConnectionsApproval/action); the Search
# Index Data roles are data-plane.
SEARCH_SERVICE_CONTRIBUTOR = BuiltinRole("Search Service Contributor", "7ca78c08-252a-4471-8644-bb5ff32d4ba0")
# databases.md: "Can manage Azure Cosmos DB accounts" (Microsoft.DocumentDb/databaseAccounts/*: databaseAccounts/
# write and privateEndpointConnectionsApproval/action); Azure Policy's Cosmos DB Modify definitions (Azure/azure-policy
# built-in-policies/policyDefinitions/Cosmos DB) remediate with this role. The data-plane roles hold no write.
DOCUMENTDB_ACCOUNT_CONTRIBUTOR = BuiltinRole("DocumentDB Account Contributor", "5bd9cd88-fe45-4216-938b-f97437e15450")
# privileged.md: roleAssignments write/delete and */read, without Owner's or User Access Administrator's
# other rights.
RBAC_ADMINISTRATOR = BuiltinRole("Role Based Access Control Administrator", "f58310d9-a9f6-439a-9e8d-f62e7b41a168")

# analytics.md: "Create and manage data factories, as well as child resources within them"
# (Microsoft.DataFactory/dataFactories/*, factories/*); Azure Policy's 08b1442b-7789-4130-8506-4f99a97226a7
# (Data Factory/PublicNetworkAccess_Modify.json) remediates with it.
DATA_FACTORY_CONTRIBUTOR = BuiltinRole("Data Factory Contributor", "673868aa-7521-48a0-acc6-0f60742d39f5")
# containers.md: "Create, read, update, and delete Container Apps" (Microsoft.App/containerApps/*).
CONTAINER_APPS_CONTRIBUTOR = BuiltinRole("Container Apps Contributor", "358470bc-b998-42bd-ab17-a7e34c199c0f")
# web-and-mobile.md: "Lets you manage websites (not web plans), but not access to them" (Microsoft.Web/sites/*,
# so sites/config and basicPublishingCredentialsPolicies writes, slots included).
WEBSITE_CONTRIBUTOR = BuiltinRole("Website Contributor", "de139f84-1756-47ae-9be6-808fbbe84772")
# containers.md: "Grants access to read and write Azure Kubernetes Service clusters" (managedClusters/read,
# /write, agentPools/*); no Microsoft.Authorization writes, no cluster credentials.
AKS_CONTRIBUTOR = BuiltinRole("Azure Kubernetes Service Contributor Role", "ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8")
# security.md: "Lets you manage managed HSM pools, but not access to them" (Microsoft.KeyVault/managedHSMs/*).
MANAGED_HSM_CONTRIBUTOR = BuiltinRole("Managed HSM contributor", "18500a29-7fe2-46b2-a342-b16a415e101d")

# --- profiles ---------------------------------------------------------------------------------------


def _profile(rtype: str, api_version: str, role: BuiltinRole, noun: str, ops: str = "read write",
             *more: str) -> Profile:
    """A profile whose permissions are ``ops`` on the type itself, then ``more`` operations."""
    return Profile(type=rtype, api_version=api_version, role=role, noun=noun,
                   permissions=(*(f"{rtype}/{op}" for op in ops.split()), *more))


# Azure/azure-rest-api-specs storage/…/stable/2023-05-01/storage.json: StorageAccounts_Update is a PATCH
# answered 200 (not a long-running operation); BlobContainers_Update a PATCH of the container.
STORAGE_ACCOUNT = _profile("Microsoft.Storage/storageAccounts", "2023-05-01", STORAGE_ACCOUNT_CONTRIBUTOR,
                           "storage account")
BLOB_CONTAINER = _profile("Microsoft.Storage/storageAccounts/blobServices/containers", "2023-05-01",
                          STORAGE_ACCOUNT_CONTRIBUTOR, "container")
# cognitiveservices/…/stable/2024-10-01/cognitiveservices.json: Accounts_Update is a long-running PATCH
# (200 or 202 + azure-AsyncOperation, examples/UpdateAccount.json).
COGNITIVE_ACCOUNT = _profile("Microsoft.CognitiveServices/accounts", "2024-10-01", COGNITIVE_SERVICES_CONTRIBUTOR,
                             "AI services account")
# Same spec: Deployments_Update is a long-running PATCH whose body is ``sku`` and ``tags`` only
# (PatchResourceTagsAndSku; examples/UpdateDeployment.json: 200, or 202 + azure-asyncoperation), so a deployment's
# ``properties`` (its ``raiPolicyName``) change through Deployments_CreateOrUpdate, a long-running PUT of the whole
# deployment. RaiPolicies_CreateOrUpdate is a synchronous PUT (200/201, examples/PutRaiPolicy.json), Delete 200/202/204.
COGNITIVE_DEPLOYMENT = _profile("Microsoft.CognitiveServices/accounts/deployments", "2024-10-01",
                                COGNITIVE_SERVICES_CONTRIBUTOR, "model deployment")
RAI_POLICY = _profile("Microsoft.CognitiveServices/accounts/raiPolicies", "2024-10-01", COGNITIVE_SERVICES_CONTRIBUTOR,
                      "content filter", "read write delete")
# keyvault/…/stable/2024-11-01/keyvault.json: Vaults_Update is a synchronous PATCH (200/201).
KEY_VAULT = _profile("Microsoft.KeyVault/vaults", "2024-11-01", KEY_VAULT_CONTRIBUTOR, "vault")
# The version azure-mgmt-containerregistry 15 reads with, so the live reader's document and the write agree
# (…/Registry/examples/2025-11-01/RegistryUpdate.json: 200, or 201 with Azure-AsyncOperation, whose status
# the write polls: operationStatuses/read).
CONTAINER_REGISTRY = _profile("Microsoft.ContainerRegistry/registries", "2025-11-01", ACR_CONTRIBUTOR_DATA_ACCESS,
                              "container registry", "read write operationStatuses/read")
# compute/…/DiskRP/stable/2024-03-02/disk.json, snapshot.json: Disks_Update / Snapshots_Update are long-running
# PATCHes (202 + Location, Disk_Update_RemoveDiskAccess.json).
MANAGED_DISK = _profile("Microsoft.Compute/disks", "2024-03-02", VIRTUAL_MACHINE_CONTRIBUTOR, "disk")
SNAPSHOT = _profile("Microsoft.Compute/snapshots", "2024-03-02", DISK_SNAPSHOT_CONTRIBUTOR, "snapshot")
# machinelearningservices/…/stable/2024-10-01: Workspaces_Update (workspaceRP.json) is a long-running PATCH
# (200 or 202 + Location); OnlineEndpoints_Update (mfe.json) a PATCH of tags and identity only.
ML_WORKSPACE = _profile("Microsoft.MachineLearningServices/workspaces", "2024-10-01", AZURE_AI_ADMINISTRATOR,
                        "workspace")
ML_ONLINE_ENDPOINT = _profile("Microsoft.MachineLearningServices/workspaces/onlineEndpoints", "2024-10-01",
                              AZURE_AI_ADMINISTRATOR, "online endpoint")
# The version azure-mgmt-network 33 reads NSGs and virtual networks with (remediator.azure.reader), so the
# rule or peering written by id is the one the plan read; PUT and DELETE are long-running (Azure-AsyncOperation,
# Location), network/…/stable/2024-05-01 NetworkSecurityGroupRuleCreate.json, VirtualNetworkPeeringDelete.json.
# A peering PUT (an update, or undo's re-creation) is authorised against the remote network too (peer/action).
SECURITY_RULE = _profile("Microsoft.Network/networkSecurityGroups/securityRules", "2026-03-01",
                         NETWORK_CONTRIBUTOR, "security rule", "read write delete")
PEERING = _profile("Microsoft.Network/virtualNetworks/virtualNetworkPeerings", "2026-03-01", NETWORK_CONTRIBUTOR,
                   "peering", "read write delete", "Microsoft.Network/virtualNetworks/peer/action")
# resources/…/Microsoft.Authorization/preview/2022-07-01-preview (policy exemptions; azure-mgmt-resource 26
# ships no PolicyClient): PUT and DELETE by id; writing one is also checked against its assignment (exempt).
POLICY_EXEMPTION = _profile("Microsoft.Authorization/policyExemptions", "2022-07-01-preview",
                            RESOURCE_POLICY_CONTRIBUTOR, "policy exemption", "read write delete",
                            "Microsoft.Authorization/policyAssignments/exempt/action")
# authorization/…/stable/2022-04-01 (azure-mgmt-authorization 4's role assignments, which the reader lists
# with); write: undo only.
ROLE_ASSIGNMENT = _profile("Microsoft.Authorization/roleAssignments", "2022-04-01", RBAC_ADMINISTRATOR,
                           "role assignment", "read delete write")
# network/…/stable/2024-05-01 (the version azure-mgmt-network 33 writes and reads at 2026-03-01): PrivateEndpoints_
# CreateOrUpdate and PrivateDnsZoneGroups_CreateOrUpdate are long-running PUTs (200/201 + Azure-AsyncOperation,
# PrivateEndpointCreate.json, PrivateEndpointDnsZoneGroupCreate.json); DELETEs are long-running (202 + Location).
# A private endpoint's PUT is also authorised on its subnet (virtualNetworks/subnets/join/action) and, for an
# automatically approved connection, on the target (…/privateEndpointConnectionsApproval/action); a zone group's
# on each zone (privateDnsZones/join/action): remediator.actions.private_link grants each at its own scope.
PRIVATE_ENDPOINT = _profile("Microsoft.Network/privateEndpoints", "2026-03-01", NETWORK_CONTRIBUTOR,
                            "private endpoint", "read write delete",
                            "Microsoft.Network/virtualNetworks/subnets/join/action")
PRIVATE_DNS_ZONE_GROUP = _profile("Microsoft.Network/privateEndpoints/privateDnsZoneGroups", "2026-03-01",
                                  NETWORK_CONTRIBUTOR, "private DNS zone group", "read write delete",
                                  "Microsoft.Network/privateDnsZones/join/action")

# search/…/Microsoft.Search/Search/examples/2025-05-01/SearchUpdateServiceDisableLocalAuth.json: Services_Update
# is a PATCH answered 200 with the service (publicNetworkAccess "Enabled"/"Disabled", authOptions null when
# disableLocalAuth is true; 2023-11-01 spelled them in lower case) and networkRuleSet.
SEARCH_SERVICE = _profile("Microsoft.Search/searchServices", "2025-05-01", SEARCH_SERVICE_CONTRIBUTOR,
                          "search service")
# cosmos-db/…/Microsoft.DocumentDB/stable/2024-11-15: DatabaseAccounts_Update is a long-running PATCH
# (CosmosDBDatabaseAccountPatch.json: 200/202) of publicNetworkAccess Enabled | Disabled | SecuredByPerimeter.
COSMOS_ACCOUNT = _profile("Microsoft.DocumentDB/databaseAccounts", "2024-11-15", DOCUMENTDB_ACCOUNT_CONTRIBUTOR,
                          "Cosmos DB account")
# datafactory/…/stable/2018-06-01 (the service's only stable version): Factories_Update is a PATCH (200) of
# tags, identity and publicNetworkAccess (FactoryUpdateParameters).
DATA_FACTORY = _profile("Microsoft.DataFactory/factories", "2018-06-01", DATA_FACTORY_CONTRIBUTOR, "data factory")
# app/…/Microsoft.App/stable/2025-01-01: ContainerApps_Update is a long-running PATCH (202 + Location) of the app.
CONTAINER_APP = _profile("Microsoft.App/containerApps", "2025-01-01", CONTAINER_APPS_CONTRIBUTOR, "container app")
# web/…/Microsoft.Web/stable/2024-11-01 (examples GetWebApp.json, GetSiteConfig.json,
# GetPublishingCredentialsPolicy.json): WebApps_Update / WebApps_UpdateSlot are PATCHes (200) of the site;
# WebApps_UpdateConfiguration(Slot) a PATCH of sites/config/web; the FTP and SCM publishing-credential
# policies (sites/basicPublishingCredentialsPolicies/ftp|scm) are written by PUT (WebApps_UpdateFtpAllowed,
# WebApps_UpdateScmAllowed).
WEB_APP = _profile("Microsoft.Web/sites", "2024-11-01", WEBSITE_CONTRIBUTOR, "app")
WEB_SLOT = _profile("Microsoft.Web/sites/slots", "2024-11-01", WEBSITE_CONTRIBUTOR, "app slot")
WEB_CONFIG = _profile("Microsoft.Web/sites/config", "2024-11-01", WEBSITE_CONTRIBUTOR, "app configuration")
WEB_SLOT_CONFIG = _profile("Microsoft.Web/sites/slots/config", "2024-11-01", WEBSITE_CONTRIBUTOR,
                           "app slot configuration")
WEB_PUBLISHING = _profile("Microsoft.Web/sites/basicPublishingCredentialsPolicies", "2024-11-01",
                          WEBSITE_CONTRIBUTOR, "publishing credentials policy")
WEB_SLOT_PUBLISHING = _profile("Microsoft.Web/sites/slots/basicPublishingCredentialsPolicies", "2024-11-01",
                               WEBSITE_CONTRIBUTOR, "slot publishing credentials policy")
# containerservice/…/Microsoft.ContainerService/aks/stable/2025-07-01: ManagedClusters_UpdateTags is the only
# PATCH; settings change by ManagedClusters_CreateOrUpdate (PUT of the cluster, long-running), as az aks update.
AKS_CLUSTER = _profile("Microsoft.ContainerService/managedClusters", "2025-07-01", AKS_CONTRIBUTOR, "AKS cluster")
# keyvault/…/stable/2024-11-01 managedHsm.json: ManagedHsms_Update is a long-running PATCH (202 + Location).
MANAGED_HSM = _profile("Microsoft.KeyVault/managedHSMs", "2024-11-01", MANAGED_HSM_CONTRIBUTOR, "managed HSM")
# containerregistry/…/Registry/examples/2025-11-01/TokenUpdate.json: Tokens_Update is a long-running PATCH of
# the token (status enabled/disabled).
REGISTRY_TOKEN = _profile("Microsoft.ContainerRegistry/registries/tokens", "2025-11-01",
                          ACR_CONTRIBUTOR_DATA_ACCESS, "registry token", "read write operationStatuses/read")
# storage/…/stable/2023-05-01: BlobServices_SetServiceProperties is a PUT of blobServices/default (200); a PUT
# that leaves a setting out leaves it as it was (the service properties merge).
BLOB_SERVICE = _profile("Microsoft.Storage/storageAccounts/blobServices", "2023-05-01", STORAGE_ACCOUNT_CONTRIBUTOR,
                        "blob service")
# Network resources take property changes only by PUT (their PATCH is UpdateTags). Network interfaces and
# subnets are read through azure-mgmt-network (the version SECURITY_RULE pins), flow logs with a generic GET at
# the version of their example (network/…/stable/2024-05-01 NetworkWatcherFlowLogGet.json, NetworkInterfaceGet.json,
# SubnetGet.json).
NETWORK_INTERFACE = _profile("Microsoft.Network/networkInterfaces", "2026-03-01", NETWORK_CONTRIBUTOR,
                             "network interface")
SUBNET = _profile("Microsoft.Network/virtualNetworks/subnets", "2026-03-01", NETWORK_CONTRIBUTOR, "subnet")
FLOW_LOG = _profile("Microsoft.Network/networkWatchers/flowLogs", "2024-05-01", NETWORK_CONTRIBUTOR, "flow log")
# network/…/stable/2024-05-01 WafPolicyGet.json and frontdoor/…/stable/2024-02-01 WafPolicyGet.json: WAF policies
# change by PUT (WebApplicationFirewallPolicies_CreateOrUpdate; Front Door's Policies_CreateOrUpdate, long-running);
# their PATCH changes tags only.
APP_GATEWAY_WAF_POLICY = _profile("Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies", "2024-05-01",
                                  NETWORK_CONTRIBUTOR, "WAF policy")
FRONT_DOOR_WAF_POLICY = _profile("Microsoft.Network/frontdoorWebApplicationFirewallPolicies", "2024-02-01",
                                 NETWORK_CONTRIBUTOR, "Front Door WAF policy")
# network/…/stable/2024-05-01 AzureFirewallGet.json: AzureFirewalls_CreateOrUpdate (PUT, long-running) writes the
# firewall's properties; its PATCH changes tags only.
AZURE_FIREWALL = _profile("Microsoft.Network/azureFirewalls", "2024-05-01", NETWORK_CONTRIBUTOR, "Azure Firewall")
# network/…/stable/2024-07-01 FirewallPolicyGet.json: FirewallPolicies_CreateOrUpdate (PUT, long-running) writes a
# firewall policy's settings; its PATCH changes tags only.
FIREWALL_POLICY = _profile("Microsoft.Network/firewallPolicies", "2024-07-01", NETWORK_CONTRIBUTOR, "firewall policy")

# --- monitoring: Defender plans and diagnostic settings ----------------------------------------------

# security.md: "View and update permissions for Microsoft Defender for Cloud" (Microsoft.Security/*, so
# pricings/write, and Microsoft.Authorization/policyAssignments/*); the role Azure Policy's own Defender-plan
# remediations deploy with (roleDefinitionIds of "Enable threat protection for AI workloads", 7e92882a-2f8a-
# 4991-9bc4-d3147d40abb0, and "Configure Azure Defender for servers to be enabled", 8e86a5b6-b9bd-49d1-8e21-
# 4bb8a0862222, Azure/azure-policy Security Center/ASC_Azure_Defender_*_DINE.json). Security Reader cannot write;
# the "full features" DINE definitions use Owner (8e3af657-…), far broader.
SECURITY_ADMIN = BuiltinRole("Security Admin", "fb1c8493-542b-48eb-b624-b4c8fea62acd")
# monitor.md: "Can read all monitoring data and update monitoring settings": Microsoft.Insights/DiagnosticSettings/*
# and Microsoft.OperationalInsights/workspaces/sharedKeys/action, no other writes. (Log Analytics Contributor,
# what the DeployIfNotExists diagnostic-setting definitions use, 92aaf0da-9dab-42b6-94a3-d43ce8d16293, adds
# Microsoft.OperationalInsights/*, storage listKeys and VM extensions.)
MONITORING_CONTRIBUTOR = BuiltinRole("Monitoring Contributor", "749f88d5-cbae-40b8-bcfc-e573ddc772fa")

# security/…/Microsoft.Security/stable/2024-01-01/pricings.json (the current stable version; examples
# PutPricingByName_example.json, GetPricingByNameCloudPosture_example.json): Pricings_Update is a PUT of
# {scopeId}/providers/Microsoft.Security/pricings/{pricingName}, answered 200 or 201 (not long-running).
DEFENDER_PLAN = _profile("Microsoft.Security/pricings", "2024-01-01", SECURITY_ADMIN, "Defender plan")
# security/…/stable/2019-01-01/advancedThreatProtectionSettings.json (the only stable version):
# AdvancedThreatProtection_Get and _Create on {resourceId}/providers/Microsoft.Security/
# advancedThreatProtectionSettings/current, a PUT answered 200 (PutAdvancedThreatProtectionSettings_example.json), no
# PATCH. Security Admin, as the DeployIfNotExists definition b5f04e03 ("Deploy Advanced Threat Protection for Cosmos
# DB Accounts") names in its roleDefinitionIds.
THREAT_PROTECTION_SETTING = _profile("Microsoft.Security/advancedThreatProtectionSettings", "2019-01-01",
                                     SECURITY_ADMIN, "Advanced Threat Protection setting")
# monitor/…/Microsoft.Insights/preview/2021-05-01-preview (the newest version of diagnosticsSettings_API.json;
# no stable one is newer): DiagnosticSettings_CreateOrUpdate and _Delete on {resourceUri}/providers/
# Microsoft.Insights/diagnosticSettings/{name}, answered 200 (examples createOrUpdateDiagnosticSetting.json,
# deleteDiagnosticSetting.json), not long-running.
DIAGNOSTIC_SETTING = _profile("Microsoft.Insights/diagnosticSettings", "2021-05-01-preview", MONITORING_CONTRIBUTOR,
                              "diagnostic setting", "read write delete")

# --- types no built-in role narrower than Contributor writes: remediator's custom roles -------------------
# (remediator.actions.custom_roles: each role holds exactly these operations; the plan refuses when the
# deployment has not created it)

from remediator.actions.custom_roles import (  # noqa: E402  (the roles above are built-in; these are ours)
    APP_SERVICE_ENVIRONMENT_SETTINGS,
    DATABRICKS_WORKSPACE_NETWORK,
    STORAGE_SYNC_NETWORK,
    SYNAPSE_WORKSPACE_SETTINGS,
)

# synapse/…/Microsoft.Synapse/stable/2021-06-01 (the newest stable): Workspaces_Update is a long-running PATCH
# (UpdateWorkspace.json: 200/201) of WorkspacePatchProperties, which holds publicNetworkAccess;
# AzureADOnlyAuthentications_Create a long-running PUT of workspaces/{w}/azureADOnlyAuthentications/default
# (CreateOrUpdateAzureADOnlyAuthentication.json: 200/201/202); WorkspaceManagedSqlServerDedicatedSQLminimalTls-
# Settings_Update a long-running PUT of workspaces/{w}/dedicatedSQLminimalTlsSettings/default
# (UpdateWorkspaceManagedSqlServerDedicatedSQLminimalTlsSettings.json: 200/202).
SYNAPSE_WORKSPACE = _profile("Microsoft.Synapse/workspaces", "2021-06-01", SYNAPSE_WORKSPACE_SETTINGS,
                             "Synapse workspace")
SYNAPSE_ENTRA_ONLY = _profile("Microsoft.Synapse/workspaces/azureADOnlyAuthentications", "2021-06-01",
                              SYNAPSE_WORKSPACE_SETTINGS, "Synapse Entra-only authentication setting")
# IpFirewallRules_Delete (DeleteIpFirewallRule.json: 200/202/204) and _CreateOrUpdate (CreateIpFirewallRule.json:
# 200/201), both long-running.
SYNAPSE_FIREWALL_RULE = _profile("Microsoft.Synapse/workspaces/firewallRules", "2021-06-01", SYNAPSE_WORKSPACE_SETTINGS,
                                 "Synapse firewall rule", "read write delete")
SYNAPSE_SQL_TLS = _profile("Microsoft.Synapse/workspaces/dedicatedSQLminimalTlsSettings", "2021-06-01",
                           SYNAPSE_WORKSPACE_SETTINGS, "Synapse dedicated SQL TLS setting")
# databricks/…/Microsoft.Databricks/stable/2024-05-01: Workspaces_Update is a PATCH of tags only
# (WorkspaceUpdate.json); properties change by Workspaces_CreateOrUpdate, a long-running PUT of the workspace
# (WorkspaceCreateWithParameters.json: 200/201), as the portal and az databricks workspace update do.
DATABRICKS_WORKSPACE = _profile("Microsoft.Databricks/workspaces", "2024-05-01", DATABRICKS_WORKSPACE_NETWORK,
                                "Databricks workspace")
# web/…/Microsoft.Web/stable/2024-11-01: AppServiceEnvironments_Update is a PATCH of the environment
# (AppServiceEnvironments_Update.json: 200/201/202), clusterSettings among its properties.
HOSTING_ENVIRONMENT = _profile("Microsoft.Web/hostingEnvironments", "2024-11-01", APP_SERVICE_ENVIRONMENT_SETTINGS,
                               "App Service Environment")
# storagesync/…/Microsoft.StorageSync/stable/2022-09-01: StorageSyncServices_Update is a long-running PATCH
# (StorageSyncServices_Update.json: 200, or 202 + Azure-AsyncOperation) of incomingTrafficPolicy.
STORAGE_SYNC_SERVICE = _profile("Microsoft.StorageSync/storageSyncServices", "2022-09-01", STORAGE_SYNC_NETWORK,
                                "Storage Sync service")

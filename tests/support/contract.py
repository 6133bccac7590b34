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
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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
    settings: Mapping[str, Any] = field(default_factory=dict)  # the deployment settings the plan reads


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


LOGS = rid("rg-logs", "Microsoft.OperationalInsights/workspaces/law-central")


def pricing(plan: str, **props: Any) -> list[dict[str, Any]]:
    """The subscription's Defender plan ``plan`` from the pricings list example, moved to SUB, ``props`` set."""
    listed = arm_fixture("security__2024-01-01__ListPricings.json")["value"]
    doc = next(d for d in listed if d["name"] == plan)
    doc["id"] = f"/subscriptions/{SUB}/providers/Microsoft.Security/pricings/{plan}"
    doc["properties"].update(copy.deepcopy(props))
    return [doc]


def free_storage_plan() -> list[dict[str, Any]]:
    """Defender for Storage switched off: the example's Standard plan put back at Free, as ARM shows a Free plan."""
    [doc] = pricing("StorageAccounts", pricingTier="Free", resourcesCoverageStatus="NotCovered")
    for key in ("subPlan", "extensions", "enablementTime"):
        doc["properties"].pop(key)
    return [doc]


EXPORT_HUB = rid("rg-remediator", "Microsoft.EventHub/namespaces/ns-remediator/eventhubs/defender-export")
EXPORT = rid("rg-security", "Microsoft.Security/automations/ExportToEventHub")


def disabled_export() -> list[dict[str, Any]]:
    """Continuous export to remediator's hub, switched off, without sub-assessments: the spec's automation moved to
    SUB and given an Event Hub action (the shape infra/main.bicep deploys), then its resource group."""
    doc = example("security__2023-12-01-preview__GetAutomationResourceGroup.json", EXPORT, isEnabled=False,
                  scopes=[{"description": "the subscription", "scopePath": f"/subscriptions/{SUB}"}],
                  sources=[{"eventSource": "Alerts"}, {"eventSource": "Assessments", "ruleSets": []}],
                  actions=[{"actionType": "EventHub", "eventHubResourceId": EXPORT_HUB,
                            "isTrustedServiceEnabled": True}])
    group = {"id": f"/subscriptions/{SUB}/resourceGroups/rg-security", "name": "rg-security",
             "type": "Microsoft.Resources/resourceGroups", "location": "westeurope", "properties": {}}
    return [doc, group]


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


PRIVATE_ENDPOINT = rid("rg-ai", "Microsoft.Network/privateEndpoints/pe-oai-prod")


def account_and_endpoint() -> list[dict[str, Any]]:
    """The account and a private endpoint to it (approved, no DNS zone group): the finding is on the endpoint."""
    connection = {"name": "oai-prod", "properties": {"privateLinkServiceId": ACCOUNT, "groupIds": ["account"],
                                                     "privateLinkServiceConnectionState": {"status": "Approved"}}}
    endpoint = {"id": PRIVATE_ENDPOINT, "name": "pe-oai-prod", "type": "Microsoft.Network/privateEndpoints",
                "location": "westeurope", "properties": {"provisioningState": "Succeeded",
                                                         "privateLinkServiceConnections": [connection]}}
    return [*account(), endpoint]


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


CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
ML_ENGINEER = "7d1e4f52-3b6a-4c8d-9e0f-1a2b3c4d5e6f"
WORKSPACE_ASSIGNMENT = (f"{WORKSPACE}/providers/Microsoft.Authorization/roleAssignments/"
                        "4e1f0d62-9a3b-4c5d-8e7f-0a1b2c3d4e5f")


def standing_contributor() -> list[dict[str, Any]]:
    """A user's standing Contributor on an ML workspace tagged workload: ml-training (the role assignment
    example moved there), and the role's PIM settings at the workspace (the policy assignment example)."""
    workspace = example("machinelearningservices__2024-10-01__Workspace_get.json", WORKSPACE)
    workspace["tags"] = {"workload": "ml-training"}
    assignment = example("authorization__2022-04-01__RoleAssignments_Delete.json", WORKSPACE_ASSIGNMENT,
                         roleDefinitionId=f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
                                          f"{CONTRIBUTOR}", principalId=ML_ENGINEER, principalType="User",
                         scope=WORKSPACE)
    policy = arm_fixture("authorization__2020-10-01__GetRoleManagementPolicyAssignmentByScope.json")["value"][0]
    policy["id"] = f"{WORKSPACE}/providers/Microsoft.Authorization/roleManagementPolicyAssignment/{policy['name']}"
    policy["properties"].update(scope=WORKSPACE, roleDefinitionId=assignment["properties"]["roleDefinitionId"])
    return [workspace, assignment, policy]


def storage(**props: Any) -> list[dict[str, Any]]:
    return [example("storage__2023-05-01__StorageAccountUpdate.json", STORAGE, **props)]


def storage_and_container() -> list[dict[str, Any]]:
    container = example("storage__2023-05-01__BlobContainersPatch.json", CONTAINER)  # publicAccess: Container
    return [*storage(allowBlobPublicAccess=True), container]


def modify_definition() -> dict[str, Any]:
    """The built-in Modify definition a06d0189 (storage public network access off), as Azure/azure-policy has it."""
    path = Path(__file__).resolve().parents[1] / "fixtures" / "policy" / "definitions"
    doc: dict[str, Any] = json.loads((path / "Storage__StoragePublicNetworkAccess_Modify.json").read_text("utf-8"))
    return doc


def vault_with_rules() -> list[dict[str, Any]]:
    """The example vault with network rules, open (defaultAction Allow) and trusting no Azure service."""
    doc = example("keyvault__2024-11-01__createVaultWithNetworkAcls.json", VAULT)
    doc["properties"]["networkAcls"].update(defaultAction="Allow", bypass="None")
    return [doc]


SEARCH = rid("rg-rag", "Microsoft.Search/searchServices/srch-products")
COSMOS = rid("rg-rag", "Microsoft.DocumentDB/databaseAccounts/cosmos-grounding")
FACTORY = rid("rg-pipelines", "Microsoft.DataFactory/factories/adf-training")
SITE = rid("rg-serve", "Microsoft.Web/sites/app-inference")


def search(**props: Any) -> list[dict[str, Any]]:
    return [example("search__2025-05-01__SearchUpdateServiceDisableLocalAuth.json", SEARCH, **props)]


def cosmos(**props: Any) -> list[dict[str, Any]]:
    return [example("cosmos-db__2024-11-15__CosmosDBDatabaseAccountGet.json", COSMOS, **props)]


def site(**props: Any) -> list[dict[str, Any]]:
    """The web app example, its configuration and its FTP and SCM publishing-credential policies (allowed)."""
    config = example("web__2024-11-01__GetSiteConfig.json", f"{SITE}/config/web")
    ftp, scm = (example("web__2024-11-01__GetPublishingCredentialsPolicy.json",
                        f"{SITE}/basicPublishingCredentialsPolicies/{name}", allow=True) for name in ("ftp", "scm"))
    app = example("web__2024-11-01__GetWebApp.json", SITE, **props)
    return [app, config, ftp, scm]


def site_config(**props: Any) -> list[dict[str, Any]]:
    docs = site()
    docs[1]["properties"].update(copy.deepcopy(props))
    return docs


SUBNET = rid("rg-net", "Microsoft.Network/virtualNetworks/spoke/subnets/apps")
BLOBS = f"{STORAGE}/blobServices/default"
HSM = rid("rg-keys", "Microsoft.KeyVault/managedHSMs/hsm-models")
AKS = rid("rg-serve", "Microsoft.ContainerService/managedClusters/aks-inference")
# what AKS computes and returns on every GET (read-only in the spec), which a PUT leaves out and AKS fills in again
# (FakeArm's PUT stores the body as sent): top-level values, and objects with read-only members (a pool's
# provisioningState, nodeImageVersion; the load balancer's effectiveOutboundIPs), none of which the plans change
AKS_COMPUTED = frozenset({"maxAgentPools", "currentKubernetesVersion", "fqdn", "azurePortalFQDN", "agentPoolProfiles",
                          "networkProfile"})
APP = rid("rg-serve", "Microsoft.App/containerApps/ca-inference")
NIC = rid("rg-serve", "Microsoft.Network/networkInterfaces/gpu-1-nic")
FIREWALL = rid("rg-edge", "Microsoft.Network/azureFirewalls/fw-hub")
FIREWALL_POLICY = rid("rg-edge", "Microsoft.Network/firewallPolicies/fwp-hub")
POLICY_COMPUTED = frozenset({"size", "ruleCollectionGroups", "firewalls"})
AGW_WAF = rid("rg-edge", "Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies/waf-inference")
FD_WAF = rid("rg-edge", "Microsoft.Network/frontdoorWebApplicationFirewallPolicies/fdwafinference")
WAF_COMPUTED = frozenset({"resourceState", "applicationGatewayForContainers", "frontendEndpointLinks",
                          "securityPolicyLinks"})
FLOW_LOG = rid("NetworkWatcherRG", "Microsoft.Network/networkWatchers/NetworkWatcher_westeurope/flowLogs/spoke-flows")
# what the network service fills in on a PUT (read-only in the spec)
NIC_COMPUTED = frozenset({"resourceGuid", "macAddress", "virtualMachine", "primary", "vnetEncryptionSupported",
                          "dscpConfiguration", "dnsSettings", "ipConfigurations"})


def blob_service(**props: Any) -> list[dict[str, Any]]:
    """The account, and its blob service (the BlobServicesGet example) with ``props``."""
    return [*storage(), example("storage__2023-05-01__BlobServicesGet.json", BLOBS, **props)]


def acls(**fields: Any) -> dict[str, Any]:
    return {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []} | fields
OPEN_ACLS = {"defaultAction": "Allow", "ipRules": [{"value": "198.51.100.7"}], "virtualNetworkRules": []}
# what ARM fills in on a peering from the peer network (a re-created peering gets them back from there)
PEER_COMPUTED = frozenset({"peeringState", "peeringSyncLevel", "remoteAddressSpace", "remoteVirtualNetworkAddressSpace",
                           "remoteBgpCommunities"})


def app_with(**ingress: Any) -> dict[str, Any]:
    doc = example("app__2025-01-01__ContainerApps_Get.json", APP)
    doc["properties"]["configuration"]["ingress"].update(ingress)
    return doc


def nic(**props: Any) -> list[dict[str, Any]]:
    return [example("network__2024-05-01__NetworkInterfaceGet.json", NIC, **props)]


def spoke_with_subnet(**props: Any) -> list[dict[str, Any]]:
    """The spoke network with one subnet (the SubnetGet example, moved into it as ARM embeds subnets)."""
    subnet = example("network__2024-05-01__SubnetGet.json", f"{VNET}/subnets/apps", **props)
    vnet = peered()[0]
    vnet["properties"]["subnets"] = [subnet]
    return [vnet]


def agw_waf(settings: dict[str, Any] | None = None, *, bots: bool = True) -> list[dict[str, Any]]:
    """The Application Gateway WAF policy example with ``settings`` in policySettings (without the bot rule set)."""
    doc = example("network__2024-05-01__WafPolicyGet.json", AGW_WAF)
    doc["properties"]["policySettings"].update(settings or {})
    if not bots:
        sets = doc["properties"]["managedRules"]["managedRuleSets"]
        sets[:] = [r for r in sets if r["ruleSetType"] != "Microsoft_BotManagerRuleSet"]
    return [doc]


def fd_waf(**settings: Any) -> list[dict[str, Any]]:
    doc = example("frontdoor__2024-02-01__WafPolicyGet.json", FD_WAF)
    doc["properties"]["policySettings"].update(settings)
    return [doc]


def cluster(**props: Any) -> list[dict[str, Any]]:
    return [example("containerservice__2025-07-01__ManagedClustersGet.json", AKS, **props)]


# -- the types written under remediator's custom roles (remediator.actions.custom_roles): each case's estate holds
# the role's definition, as infra/custom-roles.bicep creates it, assignable at the subscription
SYNAPSE_WS = rid("rg-data", "Microsoft.Synapse/workspaces/syn-train")
DATABRICKS_WS = rid("rg-data", "Microsoft.Databricks/workspaces/dbw-train")
ASE = rid("rg-apps", "Microsoft.Web/hostingEnvironments/ase-infer")
SYNC = rid("rg-files", "Microsoft.StorageSync/storageSyncServices/sync-models")


def custom_role_definition(role_key: str) -> dict[str, Any]:
    """The custom role ``role_key`` as the template creates it at the subscription."""
    from remediator.actions.custom_roles import CUSTOM_ROLES, definition_document

    return definition_document(CUSTOM_ROLES[role_key], [f"/subscriptions/{SUB}"])


def synapse(**props: Any) -> list[dict[str, Any]]:
    return [example("synapse__2021-06-01__GetWorkspace.json", SYNAPSE_WS, **props),
            custom_role_definition("synapse-workspace-settings")]


def synapse_child(fixture: str, child: str, **props: Any) -> list[dict[str, Any]]:
    doc = example(fixture, f"{SYNAPSE_WS}/{child}/default", **props)
    return [doc, custom_role_definition("synapse-workspace-settings")]


# what the Databricks RP sets itself (read-only in databricks.json): FakeArm's PUT stores only the body
DATABRICKS_COMPUTED = frozenset({"createdBy", "createdDateTime", "isUcEnabled", "updatedBy", "workspaceId",
                                 "workspaceUrl"})


def databricks(**props: Any) -> list[dict[str, Any]]:
    return [example("databricks__2024-05-01__WorkspaceGetParameters.json", DATABRICKS_WS, **props),
            custom_role_definition("databricks-workspace-network")]


def ase(**props: Any) -> list[dict[str, Any]]:
    return [example("web__2024-11-01__AppServiceEnvironments_Get.json", ASE, **props),
            custom_role_definition("app-service-environment-settings")]


def storage_sync(**props: Any) -> list[dict[str, Any]]:
    doc = example("storagesync__2022-09-01__StorageSyncServices_Update.json", SYNC, **props)
    doc["properties"]["privateEndpointConnections"] = [approved_endpoint()]
    return [doc, custom_role_definition("storage-sync-network")]


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
    "defender.enable-plan": Case(target=f"/subscriptions/{SUB}", docs=free_storage_plan,
                                 server_set=frozenset({"enablementTime"})),
    "defender.restore-export": Case(target=f"/subscriptions/{SUB}", docs=disabled_export,
                                    settings={"export_event_hub_id": EXPORT_HUB}),
    "disks.enable-customer-managed-key": Case(target=DISK, docs=disk),
    "disks.restrict-network-access": Case(target=DISK, docs=lambda: disk(networkAccessPolicy="AllowAll",
                                                                         publicNetworkAccess="Enabled")),
    "disks.revoke-export-access": Case(target=DISK, docs=lambda: disk("ActiveSAS"),
                                       operations=("invoke",)),
    "keyvault.enable-purge-protection": Case(
        target=VAULT, docs=lambda: [example("keyvault__2024-11-01__getVault.json", VAULT)]),
    "keyvault.restrict-network-access": Case(target=VAULT, docs=vault_with_rules),
    "monitor.enable-diagnostic-logs": Case(target=ACCOUNT, docs=account, operations=("create",),
                                           settings={"diagnostics_workspace_id": LOGS}),
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
    # without private_dns_zones it refuses, naming them; with them: tests/scenarios/test_private_dns_zone_group.py
    "network.create-private-dns-zone-group": Case(target=PRIVATE_ENDPOINT, docs=account_and_endpoint,
                                                  refused="private_dns_zones"),
    "network.restrict-inbound": Case(target=NSG, docs=nsg, operations=("delete",)),
    "network.restrict-peerings": Case(target=VNET, docs=peered, operations=("delete",), server_set=PEER_COMPUTED),
    "policy.limit-exemption": Case(target=EXEMPTION, docs=exemption),
    "rbac.make-eligible": Case(target=WORKSPACE_ASSIGNMENT, docs=standing_contributor,
                               server_set=frozenset({"createdOn", "updatedOn", "createdBy", "updatedBy"})),
    "rbac.revoke-role-assignments": Case(target=f"/subscriptions/{SUB}", docs=owners, operations=("delete",),
                                         finding={"principal_id": BLOCKED_USER},
                                         server_set=frozenset({"createdOn", "updatedOn", "createdBy", "updatedBy"})),
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
    "policy.apply-modify": Case(target=STORAGE, docs=lambda: [*storage(publicNetworkAccess="Enabled"),
                                                               modify_definition()]),
    "storage.disable-shared-key-access": Case(target=STORAGE, docs=lambda: storage(allowSharedKeyAccess=True)),
    "storage.restrict-network-access": Case(target=STORAGE, docs=storage),

    "search.disable-public-network-access": Case(
        target=SEARCH, docs=lambda: search(privateEndpointConnections=[approved_endpoint()])),
    "search.disable-local-auth": Case(target=SEARCH, docs=lambda: search(disableLocalAuth=False,
                                                                       authOptions={"apiKeyOnly": {}})),
    "cosmos.disable-local-auth": Case(target=COSMOS, docs=lambda: cosmos(disableLocalAuth=False)),
    "cosmos.disable-key-based-metadata-writes": Case(target=COSMOS, docs=cosmos),  # the example has false
    "cosmos.disable-public-network-access": Case(target=COSMOS, docs=lambda: cosmos(publicNetworkAccess="Enabled")),
    "cosmos.remove-azure-datacenters-rule": Case(
        target=COSMOS, docs=lambda: cosmos(ipRules=[{"ipAddressOrRange": "0.0.0.0"},
                                                    {"ipAddressOrRange": "203.0.113.0/24"}])),
    "cosmos.restrict-network-access": Case(target=COSMOS, docs=cosmos),  # the example has ipRules []
    # the account's Advanced Threat Protection setting was never written: FakeArm answers isEnabled false
    "cosmos.enable-threat-protection": Case(target=COSMOS, docs=cosmos),
    "datafactory.disable-public-network-access": Case(target=FACTORY, docs=lambda: [
        example("datafactory__2018-06-01__Factories_Get.json", FACTORY, publicNetworkAccess="Enabled")]),
    "web.disable-public-network-access": Case(target=SITE, docs=lambda: site(publicNetworkAccess="Enabled")),
    "web.require-https": Case(target=SITE, docs=site),  # the example has httpsOnly false
    "web.enable-end-to-end-encryption": Case(target=SITE, docs=lambda: site(endToEndEncryptionEnabled=False)),
    "web.disable-ssh": Case(target=SITE, docs=lambda: site(sshEnabled=True)),
    "web.require-client-certificates": Case(target=SITE, docs=site),  # clientCertEnabled false
    "web.route-outbound-through-vnet": Case(target=SITE, docs=lambda: site(virtualNetworkSubnetId=SUBNET)),
    "web.route-configuration-through-vnet": Case(
        target=SITE, docs=lambda: site(virtualNetworkSubnetId=SUBNET, vnetBackupRestoreEnabled=False)),
    "web.disable-remote-debugging": Case(target=SITE, docs=lambda: site_config(remoteDebuggingEnabled=True)),
    "web.set-minimum-tls": Case(target=SITE, docs=lambda: site_config(minTlsVersion="1.0")),
    "web.require-ftps": Case(target=SITE, docs=site),  # ftpsState AllAllowed
    "web.restrict-cors": Case(target=SITE, docs=lambda: site_config(
        cors={"allowedOrigins": ["*", "https://shop.example.com"], "supportCredentials": False})),
    "web.disable-ftp-basic-auth": Case(target=SITE, docs=site),
    "web.disable-scm-basic-auth": Case(target=SITE, docs=site),

    "storage.disable-cross-tenant-replication": Case(target=STORAGE,
                                                     docs=lambda: storage(allowCrossTenantReplication=True)),
    "storage.set-sas-expiration-policy": Case(target=STORAGE, docs=lambda: storage(
        sasPolicy={"sasExpirationPeriod": "30.00:00:00", "expirationAction": "Log"})),
    "storage.set-minimum-tls": Case(target=STORAGE, docs=lambda: storage(minimumTlsVersion="TLS1_0")),
    "storage.require-secure-transfer": Case(target=STORAGE, docs=storage),  # supportsHttpsTrafficOnly false
    "storage.allow-trusted-services": Case(target=STORAGE, docs=lambda: storage(
        networkAcls=acls(bypass="None", defaultAction="Deny"))),
    "storage.restrict-to-virtual-networks": Case(target=STORAGE, docs=lambda: storage(networkAcls=acls(
        ipRules=[{"value": "198.51.100.7", "action": "Allow"}],
        virtualNetworkRules=[{"id": SUBNET, "action": "Allow", "state": "Succeeded"}]))),
    "storage.enable-blob-versioning": Case(target=BLOBS, docs=lambda: blob_service(isVersioningEnabled=False)),
    "storage.enable-soft-delete": Case(target=STORAGE, docs=lambda: blob_service(
        deleteRetentionPolicy={"enabled": False, "days": 300},
        containerDeleteRetentionPolicy={"enabled": False, "days": 30})),

    "acr.disable-arm-audience-tokens": Case(target=REGISTRY, docs=registry),  # the example has it enabled
    "acr.disable-exports": Case(target=REGISTRY, docs=lambda: registry(publicNetworkAccess="Disabled")),
    "acr.disable-repository-token": Case(target=f"{REGISTRY}/tokens/ci-pull", docs=lambda: [
        *registry(), example("containerregistry__2025-11-01__TokenGet.json", f"{REGISTRY}/tokens/ci-pull")]),

    "disks.require-entra-data-access": Case(target=DISK, docs=lambda: disk(dataAccessAuthMode="None")),
    "snapshots.require-entra-data-access": Case(target=SNAPSHOT, docs=lambda: snapshot(dataAccessAuthMode="None")),
    "keyvault.enable-soft-delete": Case(target=VAULT, docs=lambda: [
        example("keyvault__2024-11-01__getVault.json", VAULT, enableSoftDelete=False)]),
    "keyvault.enable-rbac-authorization": Case(target=VAULT, docs=lambda: [
        example("keyvault__2024-11-01__getVault.json", VAULT, enableRbacAuthorization=False)]),
    "managedhsm.enable-purge-protection": Case(target=HSM, docs=lambda: [
        example("keyvault__2024-11-01__ManagedHsm_Get.json", HSM)]),  # enablePurgeProtection false
    "managedhsm.deny-public-network": Case(target=HSM, docs=lambda: [
        example("keyvault__2024-11-01__ManagedHsm_Get.json", HSM,
                networkAcls={"bypass": "AzureServices", "defaultAction": "Allow"})]),
    "ml.isolate-managed-network": Case(target=WORKSPACE, docs=lambda: [
        example("machinelearningservices__2024-10-01__Workspace_get.json", WORKSPACE,
                managedNetwork={"isolationMode": "AllowInternetOutbound"})]),
    "apps.disable-external-ingress": Case(target=APP, docs=lambda: [
        example("app__2025-01-01__ContainerApps_Get.json", APP)]),  # ingress.external true
    "apps.require-https": Case(target=APP, docs=lambda: [app_with(allowInsecure=True)]),
    "cognitive.restrict-outbound-access": Case(target=ACCOUNT, docs=lambda: account(
        restrictOutboundNetworkAccess=False, allowedFqdnList=["stdata.blob.core.windows.net"])),
    "network.disable-ip-forwarding": Case(target=NIC, docs=lambda: nic(enableIPForwarding=True),
                                          server_set=NIC_COMPUTED),
    "network.remove-public-ips": Case(target=NIC, docs=nic, server_set=NIC_COMPUTED),  # undo's verify compares the IPs
    "network.disable-default-outbound": Case(target=f"{VNET}/subnets/apps",
                                             docs=lambda: spoke_with_subnet(defaultOutboundAccess=True)),
    "network.enable-flow-log": Case(target=FLOW_LOG, docs=lambda: [example(
        "network__2024-05-01__NetworkWatcherFlowLogGet.json", FLOW_LOG, enabled=False)],
        server_set=frozenset({"targetResourceGuid"})),
    "waf.enable-request-body-inspection": Case(target=AGW_WAF, docs=lambda: agw_waf({"requestBodyCheck": False}),
                                               server_set=WAF_COMPUTED),
    "waf.enable-bot-protection": Case(target=AGW_WAF, docs=lambda: agw_waf(bots=False), server_set=WAF_COMPUTED),
    "waf.set-mode": Case(target=AGW_WAF, docs=lambda: agw_waf({"mode": "Detection"}), server_set=WAF_COMPUTED),
    "frontdoor.enable-request-body-inspection": Case(target=FD_WAF, docs=fd_waf,  # the example has Disabled
                                                         server_set=WAF_COMPUTED),
    "frontdoor.enable-bot-protection": Case(target=FD_WAF, docs=fd_waf, server_set=WAF_COMPUTED),
    "frontdoor.set-waf-mode": Case(target=FD_WAF, docs=lambda: fd_waf(mode="Detection"), server_set=WAF_COMPUTED),
    "firewall.enable-policy-threat-intel": Case(target=FIREWALL_POLICY, docs=lambda: [example(
        "network__2024-07-01__FirewallPolicyGet.json", FIREWALL_POLICY, threatIntelMode="Off")],
        server_set=POLICY_COMPUTED),
    "firewall.enable-policy-dns-proxy": Case(target=FIREWALL_POLICY, docs=lambda: [example(
        "network__2024-07-01__FirewallPolicyGet.json", FIREWALL_POLICY,
        dnsSettings={"servers": [], "enableProxy": False})], server_set=POLICY_COMPUTED),
    "firewall.enable-threat-intel": Case(target=FIREWALL, docs=lambda: [example(
        "network__2024-05-01__AzureFirewallGet.json", FIREWALL, threatIntelMode="Off")],
        server_set=frozenset({"ipConfigurations"})),  # their provisioningState comes back from the service
    "aks.disable-local-accounts": Case(target=AKS, docs=lambda: cluster(
        aadProfile={"managed": True, "adminGroupObjectIDs": [OWNER]}, disableLocalAccounts=False),
        server_set=AKS_COMPUTED),
    "aks.set-authorized-ip-ranges": Case(target=AKS, docs=lambda: cluster(
        apiServerAccessProfile={"authorizedIPRanges": []}), server_set=AKS_COMPUTED),
    "aks.disable-command-invoke": Case(target=AKS, docs=lambda: cluster(
        apiServerAccessProfile={"disableRunCommand": False}), server_set=AKS_COMPUTED),
    "aks.enable-image-cleaner": Case(target=AKS, docs=lambda: cluster(
        securityProfile={"imageCleaner": {"enabled": False, "intervalHours": 48}}), server_set=AKS_COMPUTED),
    "aks.enable-workload-identity": Case(target=AKS, docs=lambda: cluster(
        securityProfile={"workloadIdentity": {"enabled": False}}, oidcIssuerProfile={"enabled": False})),
    "aks.enable-auto-upgrade": Case(target=AKS, docs=lambda: cluster(
        autoUpgradeProfile={"upgradeChannel": "none", "nodeOSUpgradeChannel": "None"}), server_set=AKS_COMPUTED),
    "aks.enable-node-os-upgrade": Case(target=AKS, docs=lambda: cluster(
        autoUpgradeProfile={"upgradeChannel": "none", "nodeOSUpgradeChannel": "None"}), server_set=AKS_COMPUTED),
    "aks.enable-csi-drivers": Case(target=AKS, docs=lambda: cluster(storageProfile={
        "diskCSIDriver": {"enabled": False}, "fileCSIDriver": {"enabled": False},
        "snapshotController": {"enabled": False}}), server_set=AKS_COMPUTED),
    "aks.enable-azure-policy-addon": Case(target=AKS, docs=lambda: cluster(
        addonProfiles={"azurepolicy": {"enabled": False}}), server_set=AKS_COMPUTED),
    "aks.enable-entra-integration": Case(target=AKS, docs=cluster),  # no aadProfile in the example
    "synapse.disable-public-network-access": Case(target=SYNAPSE_WS,
                                                  docs=lambda: synapse(publicNetworkAccess="Enabled")),
    "synapse.enable-entra-only-auth": Case(
        target=f"{SYNAPSE_WS}/azureADOnlyAuthentications/default", server_set=frozenset({"state", "creationDate"}),
        docs=lambda: synapse_child("synapse__2021-06-01__CreateOrUpdateAzureADOnlyAuthentication.json",
                                   "azureADOnlyAuthentications", azureADOnlyAuthentication=False)),
    "synapse.remove-firewall-rule": Case(
        target=f"{SYNAPSE_WS}/firewallRules/allow-office", operations=("delete",),
        server_set=frozenset({"provisioningState"}),
        docs=lambda: [example("synapse__2021-06-01__GetIpFirewallRule.json", f"{SYNAPSE_WS}/firewallRules/allow-office",
                              startIpAddress="203.0.113.0", endIpAddress="203.0.113.255"),
                      custom_role_definition("synapse-workspace-settings")]),
    "synapse.set-sql-minimal-tls": Case(
        target=f"{SYNAPSE_WS}/dedicatedSQLminimalTlsSettings/default",
        docs=lambda: synapse_child("synapse__2021-06-01__UpdateWorkspaceManagedSqlServerDedicatedSQLminimalTlsSettings"
                                   ".json", "dedicatedSQLminimalTlsSettings", minimalTlsVersion="1.1")),
    "databricks.disable-public-network-access": Case(target=DATABRICKS_WS, server_set=DATABRICKS_COMPUTED,
                                                     docs=lambda: databricks(publicNetworkAccess="Enabled")),
    "databricks.disable-public-ip": Case(target=DATABRICKS_WS, server_set=DATABRICKS_COMPUTED, docs=lambda: databricks(
        parameters={"enableNoPublicIp": {"type": "Bool", "value": False}})),
    "ase.disable-legacy-tls": Case(target=ASE, docs=lambda: ase(clusterSettings=[
        {"name": "FrontEndSSLCipherSuiteOrder", "value": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}])),
    "ase.restrict-cipher-suites": Case(target=ASE, docs=lambda: ase(clusterSettings=[
        {"name": "DisableTls1.0", "value": "1"},
        {"name": "FrontEndSSLCipherSuiteOrder", "value": "TLS_RSA_WITH_AES_256_CBC_SHA256"}])),
    "ase.enable-internal-encryption": Case(target=ASE, docs=lambda: ase(clusterSettings=[
        {"name": "InternalEncryption", "value": "false"}])),
    "storagesync.disable-public-network-access": Case(
        target=SYNC, docs=lambda: storage_sync(incomingTrafficPolicy="AllowAllTraffic")),
}

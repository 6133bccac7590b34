"""Private Link facts: which sub-resource (group id) of each AI-estate type a private endpoint connects
to, which private DNS zones resolve it in each cloud, and the deployment's private-link settings.

**Group ids** (``groupIds`` of a ``privateLinkServiceConnections`` entry; a private endpoint connects to
exactly one) and **zone names** come from Microsoft's "Azure Private Endpoint private DNS zone values"
page (MicrosoftDocs/azure-docs ``articles/private-link/private-endpoint-dns.md``, ms.date 08/04/2025,
sections Commercial, Government and China), row by row:

=======================================  ================  ==============================================
type                                     group id          zones (Commercial / Government / China)
=======================================  ================  ==============================================
Microsoft.CognitiveServices/accounts     account           cognitiveservices.azure.com, openai.azure.com,
                                                           services.ai.azure.com / cognitiveservices
                                                           .azure.us / (no row)
Microsoft.Search/searchServices          searchService     search.windows.net / search.azure.us / (none)
Microsoft.DocumentDB/databaseAccounts    Sql, MongoDB,     documents.azure.com, mongo.cosmos.azure.com,
                                         Cassandra,        cassandra…, gremlin…, table.cosmos.azure.com
                                         Gremlin, Table    (.azure.us / .azure.cn)
Microsoft.KeyVault/vaults                vault             vaultcore.azure.net / vaultcore.usgovcloudapi
                                                           .net / vaultcore.azure.cn
Microsoft.MachineLearningServices/       amlworkspace      api.azureml.ms + notebooks.azure.net /
workspaces                                                 api.ml.azure.us + notebooks.usgovcloudapi.net
                                                           / api.ml.azure.cn + notebooks.chinacloudapi.cn
Microsoft.Storage/storageAccounts        blob, dfs, file,  blob.core.windows.net, dfs.core…, … /
                                         queue, table, web core.usgovcloudapi.net / core.chinacloudapi.cn
Microsoft.ContainerRegistry/registries   registry          azurecr.io / azurecr.us / (no row)
=======================================  ================  ==============================================

(every zone name above is ``privatelink.<suffix>``). Which zones an AI services account needs
depends on its ``kind``: the Commercial row lists three zones for the ``account`` group id; an
``OpenAI`` account answers on ``<name>.openai.azure.com``, an ``AIServices`` (Foundry) account on
all three names, every other kind (``TextAnalytics``, ``FormRecognizer``, …) on
``<name>.cognitiveservices.azure.com``. Government lists only ``privatelink.cognitiveservices.azure.us``
for the group id; an OpenAI account there answers on ``<name>.openai.azure.us``, so that zone is added
for the ``OpenAI`` and ``AIServices`` kinds (the landing-zone complaint the issue cites: a DNS policy
that leaves out the OpenAI zone leaves OpenAI names resolving to the public address). Where the page
has no row for a type in a cloud, no zone is known: the plan warns and names the setting.

Cosmos DB's group id is the account's API: ``kind: MongoDB`` → ``MongoDB``; otherwise the
capabilities ``EnableCassandra`` / ``EnableGremlin`` / ``EnableTable`` → ``Cassandra`` / ``Gremlin`` /
``Table``; otherwise ``Sql`` (MicrosoftDocs/azure-docs ``articles/cosmos-db/how-to-configure-private-
endpoints.md``, "API type / Supported sub-resources"). A storage account gets ``blob``, plus ``dfs``
when hierarchical namespace is on (``properties.isHnsEnabled``: Data Lake Gen2 clients call the dfs
endpoint), plus any sub-resources a playbook names; a FileStorage (premium file shares) account gets ``file``
alone, having no blob service. A registry's private endpoint needs the Premium
SKU ("Private endpoints are available in the Premium service tier", MicrosoftDocs/azure-docs
``articles/container-registry/container-registry-private-link.md``).

**The catalog's other Private Link types** (issue 20: every private-endpoint and DNS-zone-group definition of
Azure/azure-policy ``built-in-policies/policyDefinitions``). Their rows are from the same page at MicrosoftDocs/
azure-docs@42655f0 (ms.date 10/11/2023, Commercial / Government / China tables), each checked against the group
ids the definitions' deployments use:

=======================================  ======================  ==========================================
type                                     group id                zones (Commercial / Government / China)
=======================================  ======================  ==========================================
Microsoft.Web/sites (apps, functions)    sites (slots:           azurewebsites.net / azurewebsites.us /
                                         sites-<slot>)           chinacloudsites.cn (App Service/
                                                                 PrivateZoneGroup_DINE.json: groupIds contains
                                                                 "sites"; the ``<app>.scm`` record lives in
                                                                 the same zone)
Microsoft.DataFactory/factories          dataFactory, portal     datafactory.azure.net, adf.azure.com / (no
                                                                 row) / datafactory.azure.cn, adf.azure.cn
Microsoft.KeyVault/managedHSMs           managedhsm              managedhsm.azure.net / (no row) / (no row)
Microsoft.Compute/diskAccesses           disks                   blob.core.windows.net / blob.core.usgovcloud
                                                                 api.net / blob.core.chinacloudapi.cn (not on
                                                                 the page: MicrosoftDocs/azure-docs articles/
                                                                 virtual-machines/disks-enable-private-links-
                                                                 for-import-export-portal.md; Compute/
                                                                 DiskAccesses_PrivateEndpoints_DINE.json uses
                                                                 group id ``disks``)
Microsoft.Databricks/workspaces          databricks_ui_api,      azuredatabricks.net / (no row) / (no row)
                                         browser_authentication
Microsoft.Synapse/workspaces             Sql, SqlOnDemand, Dev   sql.azuresynapse.net (Sql, SqlOnDemand),
                                                                 dev.azuresynapse.net (Dev) / (none) / (none)
Microsoft.StorageSync/storageSync        afs                     afs.azure.net / (no row) / afs.azure.cn
Services
Microsoft.Insights/privateLinkScopes     azuremonitor            monitor.azure.com, oms.opinsights.azure.com,
                                                                 ods.opinsights.azure.com, agentsvc.azure-
                                                                 automation.net, blob.core.windows.net /
                                                                 monitor.azure.us, adx.monitor.azure.us,
                                                                 oms.…, ods.…, agentsvc.…azure-automation.us,
                                                                 blob.core.usgovcloudapi.net / (no row)
storage secondaries                      blob_secondary, …       the primary's zone ("blob </br>
                                                                 blob_secondary | privatelink.blob.core…")
=======================================  ======================  ==========================================

The 2023 page writes File Sync's zone as ``{regionName}.privatelink.afs.azure.net`` (the record names carry the
region); the zone Azure Policy's Storage/StorageSync_PrivateDNSZone_DINE.json deploys records in, and the one
landing zones create, is ``privatelink.afs.azure.net``: that is the zone here. Which of these types
``network.create-private-endpoint`` builds endpoints for is its ``TARGETS`` (a type whose connection no built-in
role narrower than Contributor approves is left out there); ``network.create-private-dns-zone-group`` serves
every type of ``ZONE_TYPES``: a zone group needs no right on the target.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediator import ids

AZURE_CLOUD = "AzureCloud"
US_GOVERNMENT = "AzureUSGovernment"
CHINA = "AzureChinaCloud"
CLOUDS: tuple[str, ...] = (AZURE_CLOUD, US_GOVERNMENT, CHINA)

# ARM endpoints of the clouds (MicrosoftDocs/azure-docs articles/azure-government/documentation-government-
# developer.md: management.usgovcloudapi.net; China: management.chinacloudapi.cn)
_ARM_HOSTS: dict[str, str] = {"management.usgovcloudapi.net": US_GOVERNMENT,
                              "management.chinacloudapi.cn": CHINA}

COGNITIVE = "microsoft.cognitiveservices/accounts"
SEARCH = "microsoft.search/searchservices"
COSMOS = "microsoft.documentdb/databaseaccounts"
VAULT = "microsoft.keyvault/vaults"
ML_WORKSPACE = "microsoft.machinelearningservices/workspaces"
STORAGE = "microsoft.storage/storageaccounts"
REGISTRY = "microsoft.containerregistry/registries"
WEB_APP = "microsoft.web/sites"
DATA_FACTORY = "microsoft.datafactory/factories"
MANAGED_HSM = "microsoft.keyvault/managedhsms"
DISK_ACCESS = "microsoft.compute/diskaccesses"
DATABRICKS = "microsoft.databricks/workspaces"
SYNAPSE = "microsoft.synapse/workspaces"
STORAGE_SYNC = "microsoft.storagesync/storagesyncservices"
MONITOR_SCOPE = "microsoft.insights/privatelinkscopes"

# (type key, group id) → zone suffixes per cloud (without the "privatelink." prefix); private-endpoint-dns.md
_ZONES: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    (SEARCH, "searchService"): {AZURE_CLOUD: ("search.windows.net",), US_GOVERNMENT: ("search.azure.us",)},
    (COSMOS, "Sql"): {AZURE_CLOUD: ("documents.azure.com",), US_GOVERNMENT: ("documents.azure.us",),
                      CHINA: ("documents.azure.cn",)},
    **{(COSMOS, api): {AZURE_CLOUD: (f"{zone}.cosmos.azure.com",), US_GOVERNMENT: (f"{zone}.cosmos.azure.us",),
                       CHINA: (f"{zone}.cosmos.azure.cn",)}
       for api, zone in (("MongoDB", "mongo"), ("Cassandra", "cassandra"), ("Gremlin", "gremlin"), ("Table", "table"))},
    (VAULT, "vault"): {AZURE_CLOUD: ("vaultcore.azure.net",), US_GOVERNMENT: ("vaultcore.usgovcloudapi.net",),
                       CHINA: ("vaultcore.azure.cn",)},
    (ML_WORKSPACE, "amlworkspace"): {AZURE_CLOUD: ("api.azureml.ms", "notebooks.azure.net"),
                                     US_GOVERNMENT: ("api.ml.azure.us", "notebooks.usgovcloudapi.net"),
                                     CHINA: ("api.ml.azure.cn", "notebooks.chinacloudapi.cn")},
    **{(STORAGE, sub): {AZURE_CLOUD: (f"{sub}.core.windows.net",), US_GOVERNMENT: (f"{sub}.core.usgovcloudapi.net",),
                        CHINA: (f"{sub}.core.chinacloudapi.cn",)}
       for sub in ("blob", "dfs", "file", "queue", "table", "web")},
    (REGISTRY, "registry"): {AZURE_CLOUD: ("azurecr.io",), US_GOVERNMENT: ("azurecr.us",)},
    # a storage account's secondary (read-access geo-redundant) endpoints resolve in the primary's zone
    **{(STORAGE, f"{sub}_secondary"): {AZURE_CLOUD: (f"{sub}.core.windows.net",),
                                       US_GOVERNMENT: (f"{sub}.core.usgovcloudapi.net",),
                                       CHINA: (f"{sub}.core.chinacloudapi.cn",)}
       for sub in ("blob", "dfs", "queue", "table", "web")},
    (WEB_APP, "sites"): {AZURE_CLOUD: ("azurewebsites.net",), US_GOVERNMENT: ("azurewebsites.us",),
                         CHINA: ("chinacloudsites.cn",)},
    (DATA_FACTORY, "dataFactory"): {AZURE_CLOUD: ("datafactory.azure.net",), CHINA: ("datafactory.azure.cn",)},
    (DATA_FACTORY, "portal"): {AZURE_CLOUD: ("adf.azure.com",), CHINA: ("adf.azure.cn",)},
    (MANAGED_HSM, "managedhsm"): {AZURE_CLOUD: ("managedhsm.azure.net",)},
    (DISK_ACCESS, "disks"): {AZURE_CLOUD: ("blob.core.windows.net",), US_GOVERNMENT: ("blob.core.usgovcloudapi.net",),
                             CHINA: ("blob.core.chinacloudapi.cn",)},
    **{(DATABRICKS, group): {AZURE_CLOUD: ("azuredatabricks.net",)}
       for group in ("databricks_ui_api", "browser_authentication")},
    (SYNAPSE, "Sql"): {AZURE_CLOUD: ("sql.azuresynapse.net",)},
    (SYNAPSE, "SqlOnDemand"): {AZURE_CLOUD: ("sql.azuresynapse.net",)},
    (SYNAPSE, "Dev"): {AZURE_CLOUD: ("dev.azuresynapse.net",)},
    (STORAGE_SYNC, "afs"): {AZURE_CLOUD: ("afs.azure.net",), CHINA: ("afs.azure.cn",)},
    (MONITOR_SCOPE, "azuremonitor"): {
        AZURE_CLOUD: ("monitor.azure.com", "oms.opinsights.azure.com", "ods.opinsights.azure.com",
                      "agentsvc.azure-automation.net", "blob.core.windows.net"),
        US_GOVERNMENT: ("monitor.azure.us", "adx.monitor.azure.us", "oms.opinsights.azure.us",
                        "ods.opinsights.azure.us", "agentsvc.azure-automation.us", "blob.core.usgovcloudapi.net")},
}
# the same, by (type key, lower-case group id): ARM compares group ids without case except Storage's
_ZONES_FOLDED: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {(t, g.lower()): z for (t, g), z in _ZONES.items()}
# AI services accounts: by kind (see the module docstring)
_COGNITIVE_ZONES: dict[str, dict[str, tuple[str, ...]]] = {
    "openai": {AZURE_CLOUD: ("openai.azure.com",), US_GOVERNMENT: ("openai.azure.us",)},
    "aiservices": {AZURE_CLOUD: ("cognitiveservices.azure.com", "openai.azure.com", "services.ai.azure.com"),
                   US_GOVERNMENT: ("cognitiveservices.azure.us", "openai.azure.us")},
    "": {AZURE_CLOUD: ("cognitiveservices.azure.com",), US_GOVERNMENT: ("cognitiveservices.azure.us",)},
}
STORAGE_SUB_RESOURCES: tuple[str, ...] = ("blob", "dfs", "file", "queue", "table", "web")
STORAGE_GROUPS: frozenset[str] = frozenset({*STORAGE_SUB_RESOURCES, "blob_secondary", "dfs_secondary",
                                            "queue_secondary", "table_secondary", "web_secondary"})
"""Every storage group id (Storage/StorageAccountPrivateEndpointEnabled_DINE.json's targetSubResource values)."""
COSMOS_APIS: tuple[str, ...] = ("Sql", "MongoDB", "Cassandra", "Gremlin", "Table")

SUPPORTED_TYPES: dict[str, str] = {
    COGNITIVE: "Microsoft.CognitiveServices/accounts", SEARCH: "Microsoft.Search/searchServices",
    COSMOS: "Microsoft.DocumentDB/databaseAccounts", VAULT: "Microsoft.KeyVault/vaults",
    ML_WORKSPACE: "Microsoft.MachineLearningServices/workspaces", STORAGE: "Microsoft.Storage/storageAccounts",
    REGISTRY: "Microsoft.ContainerRegistry/registries", WEB_APP: "Microsoft.Web/sites",
    DATA_FACTORY: "Microsoft.DataFactory/factories", MANAGED_HSM: "Microsoft.KeyVault/managedHSMs",
}
"""The types ``network.create-private-endpoint`` builds endpoints for (type key → ARM spelling)."""

ZONE_TYPES: dict[str, tuple[str, str]] = {
    **{key: (rtype, noun) for key, rtype, noun in (
        (COGNITIVE, SUPPORTED_TYPES[COGNITIVE], "AI services account"),
        (SEARCH, SUPPORTED_TYPES[SEARCH], "search service"), (COSMOS, SUPPORTED_TYPES[COSMOS], "Cosmos DB account"),
        (VAULT, SUPPORTED_TYPES[VAULT], "vault"), (ML_WORKSPACE, SUPPORTED_TYPES[ML_WORKSPACE], "workspace"),
        (STORAGE, SUPPORTED_TYPES[STORAGE], "storage account"),
        (REGISTRY, SUPPORTED_TYPES[REGISTRY], "container registry"), (WEB_APP, SUPPORTED_TYPES[WEB_APP], "app"),
        (DATA_FACTORY, SUPPORTED_TYPES[DATA_FACTORY], "data factory"),
        (MANAGED_HSM, SUPPORTED_TYPES[MANAGED_HSM], "managed HSM"),
        (DISK_ACCESS, "Microsoft.Compute/diskAccesses", "disk access"),
        (DATABRICKS, "Microsoft.Databricks/workspaces", "Databricks workspace"),
        (SYNAPSE, "Microsoft.Synapse/workspaces", "Synapse workspace"),
        (STORAGE_SYNC, "Microsoft.StorageSync/storageSyncServices", "Storage Sync service"),
        (MONITOR_SCOPE, "Microsoft.Insights/privateLinkScopes", "Azure Monitor private link scope"))},
}
"""The types whose private endpoints ``network.create-private-dns-zone-group`` gives zone groups (type key →
(ARM spelling, noun)): every type of the table."""


def cloud_of(arm_endpoint: str) -> str:
    """The cloud whose zone names apply, from the ARM endpoint the deployment uses (AzureCloud unless
    it is Azure Government's or Azure China's)."""
    host = arm_endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    return _ARM_HOSTS.get(host, AZURE_CLOUD)


def known_zone_names() -> tuple[str, ...]:
    """Every zone name a supported group id uses, in any cloud (for the settings' did-you-mean)."""
    names: set[str] = set()
    for by_cloud in (*_ZONES.values(), *_COGNITIVE_ZONES.values()):
        for suffixes in by_cloud.values():
            names.update(f"privatelink.{s}" for s in suffixes)
    return tuple(sorted(names))


def zone_names(resource_type: str, group_id: str, *, kind: str = "", cloud: str = AZURE_CLOUD) -> tuple[str, ...]:
    """The private DNS zone names that resolve ``group_id`` of a ``resource_type`` resource in ``cloud``
    (empty when the page lists none)."""
    key = ids.type_key(resource_type)
    if key == COGNITIVE:
        by_cloud = _COGNITIVE_ZONES.get(kind.lower(), _COGNITIVE_ZONES[""])
    elif key == WEB_APP and group_id.lower().startswith("sites-"):  # a slot's endpoint: sites-<slot name>
        by_cloud = _ZONES[(WEB_APP, "sites")]
    elif key == STORAGE:  # Storage's group ids are case-sensitive (the fake's InvalidValuesForRequestParameters)
        by_cloud = _ZONES.get((key, group_id), {})
    else:
        by_cloud = _ZONES_FOLDED.get((key, group_id.lower()), {})
    return tuple(f"privatelink.{s}" for s in by_cloud.get(cloud, ()))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def cosmos_api(doc: Mapping[str, Any]) -> str:
    """A Cosmos DB account's group id, from its kind and capabilities (see the module docstring)."""
    if str(doc.get("kind") or "").lower() == "mongodb":
        return "MongoDB"
    caps = _mapping(doc.get("properties")).get("capabilities")
    names = {str(_mapping(c).get("name") or "").lower() for c in caps} if isinstance(caps, list) else set()
    for api in ("Cassandra", "Gremlin", "Table"):
        if f"enable{api.lower()}" in names:
            return api
    return "Sql"


def group_ids(doc: Mapping[str, Any], extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The sub-resources a private endpoint fix connects for the resource ``doc`` (one endpoint each);
    ``extra``: more sub-resources a playbook asks for (storage: file, queue, …; a data factory: portal).
    Empty for an unsupported type."""
    key = ids.type_key(str(doc.get("type") or ids.resource_type(str(doc.get("id") or ""))))
    if key == COGNITIVE:
        return ("account",)
    if key == SEARCH:
        return ("searchService",)
    if key == COSMOS:
        return (cosmos_api(doc),)
    if key == VAULT:
        return ("vault",)
    if key == ML_WORKSPACE:
        return ("amlworkspace",)
    if key == REGISTRY:
        return ("registry",)
    if key == WEB_APP:
        return ("sites",)
    if key == DATA_FACTORY:  # the data plane; "portal" (ADF Studio) is a second endpoint a playbook can ask for
        return ("dataFactory", *(["portal"] if "portal" in extra else []))
    if key == MANAGED_HSM:
        return ("managedhsm",)
    if key == STORAGE:
        if str(doc.get("kind") or "").lower() == "filestorage":
            # a premium file shares account serves files only ("FileStorage … file shares only", MicrosoftDocs/
            # azure-docs articles/storage/common/storage-account-overview.md): its one sub-resource is file
            return ("file",)
        out = ["blob"]
        if _mapping(doc.get("properties")).get("isHnsEnabled") is True:
            out.append("dfs")
        out.extend(s for s in extra if s in STORAGE_GROUPS and s not in out)
        return tuple(out)
    return ()


# --- settings ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PrivateLinkSettings:
    """Where new private endpoints go and which central zones resolve them (the settings
    ``private_link_subnets`` and ``private_dns_zones``; ``cloud`` from the ARM endpoint)."""

    subnets: Mapping[str, str] = field(default_factory=dict)
    """Region (lower-case, no spaces) or ``*`` → subnet id."""
    zones: Mapping[str, str] = field(default_factory=dict)
    """Zone name (lower-case) → ``Microsoft.Network/privateDnsZones`` id."""
    cloud: str = AZURE_CLOUD

    def subnet_for(self, region: str) -> tuple[str, str] | None:
        """(the key that matched, the subnet id) for a resource in ``region``: its own entry, else ``*``."""
        key = region_key(region)
        if key in self.subnets:
            return key, self.subnets[key]
        if "*" in self.subnets:
            return "*", self.subnets["*"]
        return None

    def zone(self, name: str) -> str | None:
        return self.zones.get(name.lower())

    @property
    def configured(self) -> bool:
        return bool(self.subnets)


def region_key(region: str) -> str:
    """``West Europe`` and ``westeurope`` alike: lower-case, without spaces."""
    return "".join(str(region or "").split()).lower()


def zone_suggestion(name: str) -> str:
    """``did you mean …`` for a zone name no supported group id uses ("" when nothing is close)."""
    close = difflib.get_close_matches(name.lower(), known_zone_names(), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""

"""Action registry. Importing this package registers every shipped action.

How a fix is written, from the most shared to the most particular:

1. **Profiles** (``profiles``): each ARM type once: its type, the API version writes are pinned to,
   the least-privileged built-in role (GUID, name and source) and the RBAC operations a write needs.
2. **Declarations** (``properties.PropertyAction``): "set these properties to safe values" on one
   profile's type: a few class attributes (``name``, ``profile``, ``settings``, ``breaks``, the
   docstring's playbook ``example``); plan, apply (one PATCH by id), verify and undo follow.
3. **Families**, declarations with shared behaviour: ``firewall`` (close a public endpoint: firewall
   rules with one IP/subnet validator, or private endpoints only, saying who is cut off; what
   differs per service is data) and ``children`` (whole resources created, updated and deleted by
   id: security rules, peerings, exemptions, role assignments; verify and undo from the plan's
   documents).
4. **Special cases** keep their own plan: NSG rule arithmetic (``network``, ``ports``), peerings,
   exemptions, role assignments, credential rotation (``acr``), disk exports (a POST, ``disks``).

ARM writes go through ``remediator.azure.lro.write`` (credential rotation through the registry SDK
and Key Vault's data plane). The action modules import the Azure SDKs lazily, inside ``apply``;
importing them costs only pydantic.
"""

from remediator.actions import (
    acr,
    advise,
    ai,
    aks,
    approles,
    cognitive,
    cognitive_outbound,
    containerapps,
    continuous_export,
    cosmos,
    databricks,
    defender,
    diagnostics,
    disk_settings,
    disks,
    eligible,
    exemptions,
    hosting_environments,
    keyvault,
    ml,
    ml_network,
    modify,
    network,
    network_settings,
    peering,
    pipelines,
    private_link,
    rbac,
    registry_settings,
    search,
    storage,
    storage_settings,
    storage_sync,
    synapse,
    vault_settings,
    waf,
    web,
)
from remediator.actions.base import REGISTRY, Action, ApplyResult, BuiltinRole, Params, PlanContext, suggest

__all__ = [
    "REGISTRY",
    "Action",
    "ApplyResult",
    "BuiltinRole",
    "Params",
    "PlanContext",
    "acr",
    "advise",
    "ai",
    "aks",
    "approles",
    "cognitive",
    "cognitive_outbound",
    "containerapps",
    "continuous_export",
    "cosmos",
    "databricks",
    "defender",
    "diagnostics",
    "disk_settings",
    "disks",
    "eligible",
    "exemptions",
    "get",
    "hosting_environments",
    "keyvault",
    "ml",
    "ml_network",
    "modify",
    "network",
    "network_settings",
    "peering",
    "pipelines",
    "private_link",
    "rbac",
    "registry_settings",
    "search",
    "storage",
    "storage_settings",
    "storage_sync",
    "suggest",
    "synapse",
    "vault_settings",
    "waf",
    "web",
]


def get(name: str) -> Action:  # type: ignore[type-arg]
    """The registered action ``name``; KeyError when unknown (use ``suggest`` for the message)."""
    return REGISTRY[name]

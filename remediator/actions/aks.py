"""AKS clusters (``AKS_CLUSTER``): cluster-level settings of the clusters that serve and train models.

AKS takes no property change by PATCH (ManagedClusters_UpdateTags changes tags only): every action here writes
the cluster by ``PUT`` (ManagedClusters_CreateOrUpdate, long-running), the document the plan read with the
change made and the spec's read-only properties left out, as ``az aks update`` does. ``ManagedClusterProperties``
of managedClusters.json, aks stable 2025-07-01 (the ManagedClustersGet.json example has no ``aadProfile``,
``disableLocalAccounts``, ``apiServerAccessProfile``, ``securityProfile``, ``autoUpgradeProfile``,
``storageProfile`` or ``addonProfiles``: the service defaults).

=====================================  ==============================================  ===========================
action                                 sets                                            Azure Policy
=====================================  ==============================================  ===========================
aks.disable-local-accounts             disableLocalAccounts true; refused without       993c2fcd
                                       managed Entra integration (aadProfile.managed)
aks.set-authorized-ip-ranges           apiServerAccessProfile.authorizedIPRanges        0e246bcf
aks.disable-command-invoke             apiServerAccessProfile.disableRunCommand true    89f2d532, 1b708b0a
aks.enable-image-cleaner               securityProfile.imageCleaner enabled             af3c26b2, 7e49285c
aks.enable-workload-identity           securityProfile.workloadIdentity.enabled and     2cc2e023
                                       oidcIssuerProfile.enabled true (one way)
aks.enable-auto-upgrade                autoUpgradeProfile.upgradeChannel                5c345cdf
aks.enable-node-os-upgrade             autoUpgradeProfile.nodeOSUpgradeChannel          04408ca5, 40f1aee2
aks.enable-csi-drivers                 storageProfile disk/file CSI, snapshot           c5110b6e
                                       controller enabled
aks.enable-azure-policy-addon          addonProfiles.azurepolicy.enabled true           0a15ec92, a8eff44f
aks.enable-entra-integration           aadProfile.managed true, adminGroupObjectIDs     450d2877, 36a27de4
                                       (one way)
=====================================  ==============================================  ===========================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from remediator.actions.base import Example, Params, PlanContext, no_items, register
from remediator.actions.firewall import valid_ip_ranges
from remediator.actions.profiles import AKS_CLUSTER
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path

HIGH = "{mode: slack, approvers: [security-oncall, security-leads], quorum: 2, expires_after: 1d}"
# readOnly in managedClusters.json (aks stable 2025-07-01): never sent back in the PUT
READ_ONLY = (
    "properties.provisioningState", "properties.powerState", "properties.maxAgentPools",
    "properties.currentKubernetesVersion", "properties.fqdn", "properties.privateFQDN", "properties.azurePortalFQDN",
    "properties.resourceUID", "properties.oidcIssuerProfile.issuerURL",
    "properties.networkProfile.loadBalancerProfile.effectiveOutboundIPs",
    "properties.agentPoolProfiles.*.provisioningState", "properties.agentPoolProfiles.*.powerState",
    "properties.agentPoolProfiles.*.currentOrchestratorVersion", "properties.agentPoolProfiles.*.nodeImageVersion",
    "properties.agentPoolProfiles.*.eTag",
)


class _Cluster(PropertyAction[Any]):
    profile = AKS_CLUSTER
    method = "PUT"
    read_only = READ_ONLY


def _entra_managed(doc: Mapping[str, Any]) -> bool:
    return get_path(doc, "properties.aadProfile.managed") is True


@register
class DisableLocalAccounts(_Cluster):
    """Set disableLocalAccounts to true: no static cluster-admin kubeconfig, Microsoft Entra ID only."""

    name = "aks.disable-local-accounts"
    settings = (Setting("properties.disableLocalAccounts", True, absent=False),)
    breaks = ("kubeconfigs from az aks get-credentials --admin (and pipelines using them) stop working; users need "
              "Entra ID and a Kubernetes or Azure RBAC role")
    example = Example("AKS clusters with Entra integration keep no local admin accounts.",
                      why="Azure Kubernetes Service Clusters should have local authentication methods disabled",
                      policies=("993c2fcd-2b29-49d2-9eb0-df2c3a730c32",))

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        if _entra_managed(doc):
            return None
        return ("the cluster has no managed Microsoft Entra integration (aadProfile.managed): without it, local "
                "accounts are the only way in; integrate it with Entra ID first (aks.enable-entra-integration)")


class AuthorizedRangesParams(Params):
    authorized_ip_ranges: list[str] = Field(default_factory=no_items, min_length=1)
    """Public IPv4 ranges allowed to reach the API server, e.g. ['203.0.113.0/24'] (at least one; the existing
    ranges are kept)."""

    @field_validator("authorized_ip_ranges")
    @classmethod
    def _valid(cls, value: list[str]) -> list[str]:
        return [v if "/" in v else f"{v}/32" for v in valid_ip_ranges(value, frozenset())]


@register
class SetAuthorizedIpRanges(_Cluster):
    """Set apiServerAccessProfile.authorizedIPRanges: only those ranges reach the public API server."""

    name = "aks.set-authorized-ip-ranges"
    Params = AuthorizedRangesParams
    settings = (Setting("properties.apiServerAccessProfile.authorizedIPRanges", [], absent=[]),)
    breaks = ("kubectl, CI/CD agents and tools outside the authorized ranges can no longer reach the API server "
              "(the cluster's own nodes and outbound IPs keep access)")
    example = Example("AKS API servers accept the estate's own ranges only.",
                      why="Authorized IP ranges should be defined on Kubernetes Services",
                      policies=("0e246bcf-5f6f-4f87-bc6f-775d4712c7ea",),
                      params="{authorized_ip_ranges: [203.0.113.0/24]}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        have = get_path(doc, "properties.apiServerAccessProfile.authorizedIPRanges", [])
        ranges = [str(r) for r in have] if isinstance(have, list) else []
        return {"properties.apiServerAccessProfile.authorizedIPRanges":
                ranges + [r for r in params.authorized_ip_ranges if r not in ranges]}

    def refusal(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> str | None:
        if get_path(doc, "properties.apiServerAccessProfile.enablePrivateCluster") is True:
            return "the cluster is private: its API server has no public endpoint to restrict"
        return None


@register
class DisableCommandInvoke(_Cluster):
    """Set apiServerAccessProfile.disableRunCommand to true: no az aks command invoke."""

    name = "aks.disable-command-invoke"
    settings = (Setting("properties.apiServerAccessProfile.disableRunCommand", True, absent=False),)
    breaks = "operators and scripts using az aks command invoke (often the only way into a private cluster) lose it"
    example = Example("No remote command execution into AKS clusters through ARM.",
                      why="Azure Kubernetes Service Clusters should disable Command Invoke",
                      policies=("89f2d532-c53c-4f8f-9afa-4927b1114a0d",))


@register
class EnableImageCleaner(_Cluster):
    """Turn on Image Cleaner: unused (and vulnerable) images are removed from nodes every week."""

    name = "aks.enable-image-cleaner"
    settings = (Setting("properties.securityProfile.imageCleaner", None, absent={"enabled": False}),)
    breaks = "images not used by a running pod are deleted from nodes weekly; the next pod start pulls them again"
    example = Example("AKS nodes drop unused images weekly.",
                      why="Azure Kubernetes Service Clusters should enable Image Cleaner",
                      policies=("af3c26b2-6fad-493e-9236-9c68928516ab",))

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        hours = get_path(doc, "properties.securityProfile.imageCleaner.intervalHours", 168)
        return {"properties.securityProfile.imageCleaner": {"enabled": True, "intervalHours": hours}}

    def same(self, path: str, have: Any, want: Any) -> bool:
        if isinstance(have, Mapping) and isinstance(want, Mapping) and want.get("enabled") is True:
            return have.get("enabled") is True
        return super().same(path, have, want)


@register
class EnableWorkloadIdentity(_Cluster):
    """Turn on workload identity (and the OIDC issuer it needs): pods use Entra identities, not secrets."""

    name = "aks.enable-workload-identity"
    settings = (Setting("properties.securityProfile.workloadIdentity.enabled", True, absent=False),
                Setting("properties.oidcIssuerProfile.enabled", True, absent=False))
    irreversible = "AKS cannot turn the cluster's OIDC issuer off once it is on"
    breaks = ("nothing that runs stops; the cluster gets a public OIDC issuer URL (its tokens' issuer), which "
              "cannot be turned off again")
    example = Example("AKS clusters let pods use Microsoft Entra workload identities.",
                      why="Azure Kubernetes Service Clusters should enable workload identity",
                      policies=("2cc2e023-0dac-4046-875b-178f683929d5",), risk="high", approval=HIGH)


class UpgradeChannelParams(Params):
    channel: Literal["patch", "stable", "rapid", "node-image"] = "stable"
    """The cluster auto-upgrade channel (upgradeChannel)."""


@register
class EnableAutoUpgrade(_Cluster):
    """Set autoUpgradeProfile.upgradeChannel: the cluster upgrades itself within its maintenance window."""

    name = "aks.enable-auto-upgrade"
    Params = UpgradeChannelParams
    settings = (Setting("properties.autoUpgradeProfile.upgradeChannel", "stable", absent="none"),)
    breaks = ("Kubernetes versions change without a person starting the upgrade: workloads using removed APIs "
              "break; nodes are drained and replaced during the maintenance window")
    example = Example("AKS clusters upgrade themselves on the stable channel.",
                      why="Azure Kubernetes Service Clusters should enable cluster auto-upgrade",
                      policies=("5c345cdf-2049-47e0-b8fe-b0e96bc2df35",), params="{channel: stable}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"properties.autoUpgradeProfile.upgradeChannel": params.channel}


class NodeOsChannelParams(Params):
    channel: Literal["NodeImage", "SecurityPatch", "Unmanaged"] = "NodeImage"
    """The node OS upgrade channel (nodeOSUpgradeChannel)."""


@register
class EnableNodeOsUpgrade(_Cluster):
    """Set autoUpgradeProfile.nodeOSUpgradeChannel: nodes get OS security updates automatically."""

    name = "aks.enable-node-os-upgrade"
    Params = NodeOsChannelParams
    settings = (Setting("properties.autoUpgradeProfile.nodeOSUpgradeChannel", "NodeImage", absent="None"),)
    breaks = "nodes are reimaged (drained and replaced) when a new node image ships, within the maintenance window"
    example = Example("AKS nodes get OS security updates automatically.",
                      why="Azure Kubernetes Service Clusters should enable node os auto-upgrade",
                      policies=("04408ca5-aa10-42ce-8536-98955cdddd4c",), params="{channel: NodeImage}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"properties.autoUpgradeProfile.nodeOSUpgradeChannel": params.channel}

    def same(self, path: str, have: Any, want: Any) -> bool:
        if want == "NodeImage" and isinstance(have, str) and have.lower() == "securitypatch":
            return True  # a managed channel already: kept
        return super().same(path, have, want)


@register
class EnableCsiDrivers(_Cluster):
    """Turn on the disk and file CSI drivers and the snapshot controller."""

    name = "aks.enable-csi-drivers"
    settings = (Setting("properties.storageProfile.diskCSIDriver.enabled", True, absent=True),
                Setting("properties.storageProfile.fileCSIDriver.enabled", True, absent=True),
                Setting("properties.storageProfile.snapshotController.enabled", True, absent=True))
    breaks = "nothing stops; the CSI driver pods run on every node (a little CPU and memory)"
    example = Example("AKS clusters use the CSI storage drivers.",
                      why="Azure Kubernetes Clusters should enable Container Storage Interface(CSI)",
                      policies=("c5110b6e-5272-4989-9935-59ad06fdf341",))


@register
class EnableAzurePolicyAddon(_Cluster):
    """Turn on the Azure Policy add-on (Gatekeeper): in-cluster policies are audited and enforced."""

    name = "aks.enable-azure-policy-addon"
    settings = (Setting("properties.addonProfiles.azurepolicy.enabled", True, absent=False),)
    breaks = ("pods that violate assigned Kubernetes policy definitions with deny effects are refused admission; "
              "the add-on's pods run on the cluster")
    example = Example("AKS clusters run the Azure Policy add-on.",
                      why="Azure Policy Add-on for Kubernetes service (AKS) should be installed and enabled on your "
                          "clusters",
                      policies=("0a15ec92-a229-4763-bb14-0ea34a568f8d",))

    key: ClassVar[str] = "azurepolicy"

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        addons = get_path(doc, "properties.addonProfiles", {})
        # the add-on's key as the cluster spells it (azurepolicy, azurePolicy): one key, never a second
        key = next((k for k in (addons if isinstance(addons, Mapping) else {}) if k.lower() == self.key), self.key)
        return {f"properties.addonProfiles.{key}.enabled": True}


class EntraParams(Params):
    admin_group_object_ids: list[str] = Field(default_factory=no_items, min_length=1)
    """Object ids of the Microsoft Entra groups that get cluster-admin (at least one; the cluster's own are kept)."""

    @field_validator("admin_group_object_ids")
    @classmethod
    def _guids(cls, value: list[str]) -> list[str]:
        import uuid  # noqa: PLC0415

        out = []
        for item in value:
            try:
                out.append(str(uuid.UUID(item.strip())))
            except ValueError:
                raise ValueError(f"{item!r} is not a group object id (a GUID)") from None
        return out


@register
class EnableEntraIntegration(_Cluster):
    """Turn on AKS-managed Microsoft Entra integration with the given admin groups. One way."""

    name = "aks.enable-entra-integration"
    Params = EntraParams
    settings = (Setting("properties.aadProfile.managed", True, absent=False),
                Setting("properties.aadProfile.adminGroupObjectIDs", [], absent=[]))
    irreversible = "AKS cannot turn managed Microsoft Entra integration off once it is on"
    breaks = ("kubeconfigs with client certificates of non-admin users stop working; users sign in with Entra ID "
              "(kubelogin) and need Kubernetes RBAC bindings; the admin groups get cluster-admin")
    example = Example("AKS clusters authenticate users with Microsoft Entra ID.",
                      why="Azure Kubernetes Service Clusters should enable Microsoft Entra ID integration",
                      policies=("450d2877-ebea-41e8-b00c-e286317d21bf",), risk="high", approval=HIGH,
                      params="{admin_group_object_ids: [6c5d2b8e-3f1a-4e7b-9c0d-1a2b3c4d5e6f]}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        have = get_path(doc, "properties.aadProfile.adminGroupObjectIDs", [])
        groups = [str(g) for g in have] if isinstance(have, list) else []
        known = {g.lower() for g in groups}
        return {"properties.aadProfile.managed": True,
                "properties.aadProfile.adminGroupObjectIDs": groups + [g for g in params.admin_group_object_ids
                                                                       if g.lower() not in known]}

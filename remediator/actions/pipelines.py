"""The data pipelines that feed training: Azure Data Factory and Azure Synapse Analytics.

``datafactory.disable-public-network-access`` (``DATA_FACTORY``)
    ``publicNetworkAccess: Disabled`` (Azure Policy 1cf164be-6819-4a50-b8fa-4bcaa4f98fb6, Modify
    08b1442b-7789-4130-8506-4f99a97226a7); Factories_Update (PATCH) takes it (FactoryUpdateParameters,
    datafactory.json stable 2018-06-01). The factory's integration runtimes then reach it over private
    endpoints only.
``synapse.disable-public-network-access`` (``SYNAPSE_WORKSPACE``)
    ``publicNetworkAccess: Disabled`` (38d8df46-cf4e-4073-8e03-48c24b29de0d, Modify
    5c8cad01-ef30-4891-b230-652dadb4876a), Workspaces_Update (PATCH, WorkspacePatchProperties).
``synapse.enable-entra-only-auth`` (``SYNAPSE_ENTRA_ONLY``)
    ``azureADOnlyAuthentication: true`` on the workspace's fixed-name child
    ``azureADOnlyAuthentications/default`` (6ea81a52-5ca7-4575-9669-eaa910b7edf8, Modify
    738949be-6fd2-46b9-b969-99b53712b192), written by PUT (AzureADOnlyAuthentications_Create); a finding on
    the workspace itself maps to that child.
``synapse.set-minimum-tls`` (``SYNAPSE_SQL_TLS``)
    ``minimalTlsVersion: "1.2"`` on ``dedicatedSQLminimalTlsSettings/default`` (cb3738a6-82a2-4a18-b87b-
    15217b9deff4, Modify 8b5c654c-fb07-471b-aa8f-15fea733f140), by PUT
    (WorkspaceManagedSqlServerDedicatedSQLMinimalTlsSettings_Update).

All reversible.
"""

from __future__ import annotations

from remediator import ids
from remediator.actions.base import Example, PlanContext, register
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams
from remediator.actions.profiles import DATA_FACTORY, SYNAPSE_ENTRA_ONLY, SYNAPSE_SQL_TLS, SYNAPSE_WORKSPACE
from remediator.actions.properties import NoParams, PropertyAction, Setting

WORKSPACE_TYPE = SYNAPSE_WORKSPACE.type


def workspace_child(resource_id: str, child: str) -> str:
    """The Synapse workspace's fixed-name child ``<child>/default`` for a finding on the workspace or on it."""
    rid = ids.parse(resource_id)
    if ids.type_key(rid.type) == ids.type_key(WORKSPACE_TYPE):
        return f"{resource_id.rstrip('/')}/{child}/default"
    return resource_id


@register
class DataFactoryDisablePublicNetworkAccess(PrivateEndpointsOnly[PublicAccessParams]):
    """Disable public network access on a data factory: its runtimes connect over private endpoints only."""

    name = "datafactory.disable-public-network-access"
    profile = DATA_FACTORY
    breaks = ("self-hosted integration runtimes and clients that reach the factory over the Internet (not a "
              "private endpoint) stop connecting; Azure IR in a managed virtual network keeps working")
    example = Example("Close data factories that feed training data to the public network.",
                      why="Public network access on Azure Data Factory should be disabled",
                      policies=("1cf164be-6819-4a50-b8fa-4bcaa4f98fb6",))


@register
class SynapseDisablePublicNetworkAccess(PrivateEndpointsOnly[PublicAccessParams]):
    """Disable public network access on a Synapse workspace: approved private endpoints only."""

    name = "synapse.disable-public-network-access"
    profile = SYNAPSE_WORKSPACE
    breaks = ("Synapse Studio, SQL endpoints and Spark from outside the workspace's approved private endpoints "
              "(Internet clients, BI tools, notebooks) are refused")
    example = Example("Close Synapse workspaces to the public network; private endpoints only.",
                      why="Azure Synapse workspaces should disable public network access",
                      policies=("38d8df46-cf4e-4073-8e03-48c24b29de0d",),
                      params="{refuse_if_everyone_cut_off: true}")


@register
class SynapseEnableEntraOnlyAuth(PropertyAction[NoParams]):
    """Set azureADOnlyAuthentication to true: SQL logins stop working, Microsoft Entra ID only."""

    name = "synapse.enable-entra-only-auth"
    profile = SYNAPSE_ENTRA_ONLY
    resource_types = (SYNAPSE_ENTRA_ONLY.type, WORKSPACE_TYPE)
    method = "PUT"
    read_only = ("properties.state", "properties.creationDate")
    settings = (Setting("properties.azureADOnlyAuthentication", True, absent=False),)
    breaks = ("SQL authentication (the SQL admin login and every SQL login) to the dedicated and serverless "
              "pools is refused; applications must use Microsoft Entra ID")
    example = Example("Synapse workspaces accept Microsoft Entra ID only, no SQL logins.",
                      why="Synapse Workspaces should have Microsoft Entra-only authentication enabled",
                      policies=("6ea81a52-5ca7-4575-9669-eaa910b7edf8",))

    def target_id(self, ctx: PlanContext) -> str:
        return workspace_child(ctx.finding.resource_id, "azureADOnlyAuthentications")


@register
class SynapseSetMinimumTls(PropertyAction[NoParams]):
    """Set the dedicated SQL pools' minimalTlsVersion to 1.2."""

    name = "synapse.set-minimum-tls"
    profile = SYNAPSE_SQL_TLS
    resource_types = (SYNAPSE_SQL_TLS.type, WORKSPACE_TYPE)
    method = "PUT"
    read_only = ("properties.administratorLogin", "properties.fullyQualifiedDomainName", "properties.state")
    settings = (Setting("properties.minimalTlsVersion", "1.2", absent="1.0"),)
    breaks = "clients of the dedicated SQL pools that negotiate only TLS 1.0 or 1.1 cannot connect"
    example = Example("Synapse dedicated SQL pools accept TLS 1.2 and newer only.",
                      why="Azure Synapse Workspace SQL Server should be running TLS version 1.2 or newer",
                      policies=("cb3738a6-82a2-4a18-b87b-15217b9deff4",),
                      resource_types=("Microsoft.Synapse/workspaces/dedicatedSQLminimalTlsSettings",))

    def target_id(self, ctx: PlanContext) -> str:
        return workspace_child(ctx.finding.resource_id, "dedicatedSQLminimalTlsSettings")

"""Azure Synapse Analytics workspaces (``Microsoft.Synapse/workspaces``): the data pipelines and warehouses that
feed training. Every action here writes under remediator's custom role ``remediator Synapse Workspace Settings
Writer`` (``remediator.actions.custom_roles``: no built-in role narrower than Contributor writes a workspace).

``synapse.disable-public-network-access`` (``SYNAPSE_WORKSPACE``)
    ``publicNetworkAccess: Disabled`` (Azure Policy 38d8df46-cf4e-4073-8e03-48c24b29de0d, Modify
    5c8cad01-ef30-4891-b230-652dadb4876a), a PATCH (Workspaces_Update, WorkspacePatchProperties). Reversible.
``synapse.enable-entra-only-auth`` (``SYNAPSE_ENTRA_ONLY``)
    ``azureADOnlyAuthentication: true`` on the workspace's ``azureADOnlyAuthentications/default`` child (Azure
    Policy 6ea81a52-5ca7-4575-9669-eaa910b7edf8, Modify 738949be-6fd2-46b9-b969-99b53712b192), a PUT
    (AzureADOnlyAuthentications_Create; ``state`` and ``creationDate`` are read-only). Reversible.
``synapse.set-sql-minimal-tls`` (``SYNAPSE_SQL_TLS``)
    ``minimalTlsVersion: 1.2`` on ``dedicatedSQLminimalTlsSettings/default`` (Azure Policy
    cb3738a6-82a2-4a18-b87b-15217b9deff4, Modify 8b5c654c-fb07-471b-aa8f-15fea733f140), a PUT
    (WorkspaceManagedSqlServerDedicatedSQLminimalTlsSettings_Update). A higher version already set is kept.

``synapse.remove-firewall-rule`` (``SYNAPSE_FIREWALL_RULE``)
    deletes the IP firewall rule the finding names (Azure Policy 56fd377d-098c-4f02-8406-81eb055902b8 audits
    every ``workspaces/firewallRules`` resource), IpFirewallRules_Delete; undo re-creates it with its range.

What is not here, truthfully: the workspace's own ``azureADOnlyAuthentication`` property (definitions
2158ddbe-fefa-408e-b43f-d4faef8ff3b8 and c3624673-d2ff-48e0-b28c-5de1c6767c3c, "during workspace creation") is
taken from the create request; an existing workspace changes the child above instead. A managed virtual
network and data exfiltration protection (3484ce98…, 2d9dbfa3…) can only be chosen when a workspace is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator import ids
from remediator.actions.base import Example, PlanContext, label, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction, props
from remediator.actions.custom_roles import NeedsCustomRole
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams
from remediator.actions.profiles import SYNAPSE_ENTRA_ONLY, SYNAPSE_FIREWALL_RULE, SYNAPSE_SQL_TLS, SYNAPSE_WORKSPACE
from remediator.actions.properties import NoParams, PropertyAction, Setting
from remediator.azure.reader import register_api_version

WORKSPACE = SYNAPSE_WORKSPACE.type


def _child(ctx: PlanContext, child_type: str) -> str:
    """The finding's resource, or for a finding on the workspace its ``<child_type>/default``."""
    rid = ctx.finding.resource_id
    if ids.type_key(ids.resource_type(rid)) == ids.type_key(WORKSPACE):
        return f"{rid.rstrip('/')}/{child_type.rsplit('/', 1)[-1]}/default"
    return rid


@register
class DisablePublicNetworkAccess(NeedsCustomRole, PrivateEndpointsOnly[PublicAccessParams]):
    """Disable public network access on a Synapse workspace: approved private endpoints only."""

    name = "synapse.disable-public-network-access"
    profile = SYNAPSE_WORKSPACE
    breaks = ("Synapse Studio from browsers, pipelines' self-hosted integration runtimes and SQL clients that reach "
              "the workspace's dev, SQL and serverless SQL endpoints over the Internet (not a private endpoint or "
              "the workspace's private link hub) stop connecting")
    example = Example("Close Synapse workspaces that feed training data to the public network.",
                      why="Azure Synapse workspaces should disable public network access",
                      policies=("38d8df46-cf4e-4073-8e03-48c24b29de0d", "5c8cad01-ef30-4891-b230-652dadb4876a"),
                      params="{refuse_if_everyone_cut_off: true}")


@register
class EnableEntraOnlyAuth(NeedsCustomRole, PropertyAction[NoParams]):
    """Turn on Microsoft Entra-only authentication of a Synapse workspace (its azureADOnlyAuthentications child)."""

    name = "synapse.enable-entra-only-auth"
    profile = SYNAPSE_ENTRA_ONLY
    resource_types = (SYNAPSE_ENTRA_ONLY.type, WORKSPACE)
    finding_only = (WORKSPACE,)
    method = "PUT"
    read_only = ("location", "properties.state", "properties.creationDate")
    settings = (Setting("properties.azureADOnlyAuthentication", True, absent=False),)
    breaks = ("SQL authentication logins (the workspace's SQL admin and every SQL login) to its dedicated and "
              "serverless SQL endpoints are refused; only Microsoft Entra identities connect")
    example = Example("Synapse workspaces authenticate with Microsoft Entra identities only.",
                      why="Synapse Workspaces should have Microsoft Entra-only authentication enabled",
                      policies=("6ea81a52-5ca7-4575-9669-eaa910b7edf8", "738949be-6fd2-46b9-b969-99b53712b192"),
                      resource_types=(SYNAPSE_ENTRA_ONLY.type, WORKSPACE))

    def target_id(self, ctx: PlanContext) -> str:
        return _child(ctx, SYNAPSE_ENTRA_ONLY.type)


def _version(value: Any) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


@register
class SetSqlMinimalTls(NeedsCustomRole, PropertyAction[NoParams]):
    """Require TLS 1.2 or newer on a Synapse workspace's dedicated SQL endpoint."""

    name = "synapse.set-sql-minimal-tls"
    profile = SYNAPSE_SQL_TLS
    resource_types = (SYNAPSE_SQL_TLS.type, WORKSPACE)
    finding_only = (WORKSPACE,)
    method = "PUT"
    settings = (Setting("properties.minimalTlsVersion", "1.2"),)
    breaks = "SQL clients that connect to the dedicated SQL endpoint with TLS 1.0 or 1.1 are refused"
    example = Example("Synapse dedicated SQL endpoints accept TLS 1.2 or newer only.",
                      why="Azure Synapse Workspace SQL Server should be running TLS version 1.2 or newer",
                      policies=("cb3738a6-82a2-4a18-b87b-15217b9deff4", "8b5c654c-fb07-471b-aa8f-15fea733f140"),
                      resource_types=(SYNAPSE_SQL_TLS.type, WORKSPACE))

    def target_id(self, ctx: PlanContext) -> str:
        return _child(ctx, SYNAPSE_SQL_TLS.type)

    def same(self, path: str, have: Any, want: Any) -> bool:
        """A version at or above the safe one counts as it (1.3 is not lowered to 1.2); any other value
        (an undo's) is compared as it is."""
        got, need = _version(have), _version(want)
        if got is not None and need is not None and want == self.settings[0].value:
            return got >= need
        return super().same(path, have, want)


register_api_version(SYNAPSE_FIREWALL_RULE.type, SYNAPSE_FIREWALL_RULE.api_version)  # the plan reads the rule by id


class _FirewallRuleDelete(ChildResourceAction[NoParams]):
    """The plan: delete the finding's firewall rule (nothing when it is gone already)."""

    profile = SYNAPSE_FIREWALL_RULE
    writable = ("startIpAddress", "endIpAddress")
    id_hint = "<workspace>/firewallRules/<rule>"

    def plan(self, ctx: PlanContext, params: NoParams) -> list[Change]:
        rid = ctx.finding.resource_id
        self.check_id(rid)
        doc = ctx.state.get(rid)
        if doc is None:
            return []  # removed already: compliant
        rule = props(doc)
        start, end = rule.get("startIpAddress"), rule.get("endIpAddress")
        azure = "0.0.0.0"  # noqa: S104  (a rule's range, not a bind address: the AllowAllWindowsAzureIps rule)
        who = ("Azure services (the AllowAllWindowsAzureIps rule, 0.0.0.0)" if start == end == azure
               else f"clients from {start} to {end}")
        note = (f"delete firewall rule {label(rid)} ({start}-{end}); can break: {who} lose the workspace's public "
                "endpoints (dev, SQL, serverless SQL) unless another rule or a private endpoint admits them")
        return [Change(action=str(getattr(self, "name", "")), resource_id=str(doc.get("id") or rid),
                       operation="delete", before=doc, after=None, note=note)]

    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        return [f"{k} is {props(have).get(k)}, expected {props(want).get(k)}" for k in self.writable
                if props(want).get(k) != props(have).get(k)]

    def undo_note(self, change: Change) -> str:
        rule = props(change.before)
        return f"{rule.get('startIpAddress')}-{rule.get('endIpAddress')}"


@register
class RemoveFirewallRule(NeedsCustomRole, _FirewallRuleDelete):
    """Delete an IP firewall rule of a Synapse workspace: the range it admits loses the public endpoints."""

    name = "synapse.remove-firewall-rule"
    example = Example("Remove the IP firewall rules of Synapse workspaces; private endpoints only.",
                      why="IP firewall rules on Azure Synapse workspaces should be removed",
                      policies=("56fd377d-098c-4f02-8406-81eb055902b8",))

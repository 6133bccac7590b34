"""Azure Databricks workspaces (``Microsoft.Databricks/workspaces``): where training data is prepared and models
are trained. Both actions write under remediator's custom role ``remediator Databricks Workspace Network Writer``
(``remediator.actions.custom_roles``: no built-in role narrower than Contributor writes a workspace), by a PUT of
the whole workspace: Workspaces_Update takes tags only (databricks/…/stable/2024-05-01 WorkspaceUpdate.json),
so properties change by Workspaces_CreateOrUpdate, as the portal and ``az databricks workspace update`` do; the
spec's read-only properties are left out of the body.

``databricks.disable-public-network-access``
    ``publicNetworkAccess: Disabled`` (Azure Policy 0e7849de-b939-4c50-ab48-fc6b0f5eeba2). Databricks takes it
    only with back-end Private Link, i.e. ``requiredNsgRules: NoAzureDatabricksRules`` (the shape of
    WorkspaceGetParameters.json): a workspace whose clusters still reach the control plane publicly
    (``AllRules``) is refused with that reason, since moving them is a network redesign, not a property.
``databricks.disable-public-ip``
    ``parameters.enableNoPublicIp.value: true`` (secure cluster connectivity; Azure Policy
    51c1490f-3319-459c-bbbc-7f391bbed753): cluster nodes get no public IP address.

Both are reversible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.actions.base import Example, PlanContext, register
from remediator.actions.custom_roles import NeedsCustomRole
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams
from remediator.actions.profiles import DATABRICKS_WORKSPACE
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path

# readOnly in databricks.json 2024-05-01 (WorkspaceProperties; the output-only resourceTags parameter): never
# written back. The custom parameters go back as read (with their ``type``), as a GET-change-PUT does.
READ_ONLY = ("properties.provisioningState", "properties.createdBy", "properties.updatedBy",
             "properties.createdDateTime", "properties.workspaceId", "properties.workspaceUrl",
             "properties.privateEndpointConnections", "properties.storageAccountIdentity",
             "properties.managedDiskIdentity", "properties.diskEncryptionSetId", "properties.isUcEnabled",
             "properties.parameters.resourceTags")


@register
class DisablePublicNetworkAccess(NeedsCustomRole, PrivateEndpointsOnly[PublicAccessParams]):
    """Disable public network access on a Databricks workspace (front-end and back-end Private Link only)."""

    name = "databricks.disable-public-network-access"
    profile = DATABRICKS_WORKSPACE
    method = "PUT"
    read_only = READ_ONLY
    breaks = ("users opening the workspace URL and REST API clients from the Internet (not through the workspace's "
              "browser_authentication or databricks_ui_api private endpoints) are refused")
    example = Example("Close Databricks workspaces to the public network; Private Link only.",
                      why="Azure Databricks Workspaces should disable public network access",
                      policies=("0e7849de-b939-4c50-ab48-fc6b0f5eeba2",),
                      params="{refuse_if_everyone_cut_off: true}")

    def refusal(self, ctx: PlanContext, params: PublicAccessParams, doc: Mapping[str, Any]) -> str | None:
        rules = str(get_path(doc, "properties.requiredNsgRules", "AllRules"))
        if rules.lower() != "noazuredatabricksrules":
            return (f"requiredNsgRules is {rules}: the clusters reach the control plane over the public network, so "
                    "Databricks keeps public network access; it is disabled only with back-end Private Link "
                    "(requiredNsgRules NoAzureDatabricksRules and a databricks_ui_api private endpoint), a network "
                    "change remediator does not make")
        return super().refusal(ctx, params, doc)


@register
class DisablePublicIp(NeedsCustomRole, PropertyAction[NoParams]):
    """Turn on secure cluster connectivity (no public IP) on a Databricks workspace's clusters."""

    name = "databricks.disable-public-ip"
    profile = DATABRICKS_WORKSPACE
    method = "PUT"
    read_only = READ_ONLY
    settings = (Setting("properties.parameters.enableNoPublicIp.value", True, absent=False),)
    breaks = ("running clusters keep their public IPs until restarted; new cluster nodes have none and reach the "
              "control plane through the secure cluster connectivity relay, and reach the Internet only through "
              "the workspace's NAT gateway or the customer network's egress (inbound SSH to nodes stops)")
    example = Example("Databricks cluster nodes get no public IP address (secure cluster connectivity).",
                      why="Azure Databricks Clusters should disable public IP",
                      policies=("51c1490f-3319-459c-bbbc-7f391bbed753",))

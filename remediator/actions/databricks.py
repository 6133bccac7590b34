"""Azure Databricks workspaces (``DATABRICKS_WORKSPACE``): where training data is prepared.

Workspaces_Update (PATCH) takes tags only; settings change by Workspaces_CreateOrUpdate, a PUT of the workspace
(databricks.json stable 2024-05-01; the WorkspaceGet.json example has ``parameters: null`` and no
``publicNetworkAccess``, which then means Enabled), with the spec's read-only properties left out.

``databricks.disable-public-network-access``
    ``publicNetworkAccess: Disabled`` (Azure Policy 0e7849de-b939-4c50-ab48-fc6b0f5eeba2): the workspace UI and
    REST API answer on private endpoints only. Azure accepts it only with ``requiredNsgRules:
    NoAzureDatabricksRules`` (back-end Private Link, private-link.md); the plan refuses otherwise, and without an
    approved private endpoint when ``refuse_if_everyone_cut_off``.
``databricks.enable-no-public-ip``
    ``parameters.enableNoPublicIp.value: true`` (51c1490f-3319-459c-bbbc-7f391bbed753, "secure cluster
    connectivity"): cluster nodes get no public IP. Azure changes it on an existing workspace only when the
    workspace is deployed in the customer's virtual network (``parameters.customVirtualNetworkId``): refused
    otherwise.

Both reversible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.actions.base import Example, PlanContext, register
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams
from remediator.actions.profiles import DATABRICKS_WORKSPACE
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path

READ_ONLY = ("properties.provisioningState", "properties.workspaceId", "properties.workspaceUrl",
             "properties.createdDateTime", "properties.createdBy", "properties.updatedBy", "properties.isUcEnabled",
             "properties.privateEndpointConnections", "properties.storageAccountIdentity",
             "properties.managedDiskIdentity", "properties.diskEncryptionSetId")


@register
class DisablePublicNetworkAccess(PrivateEndpointsOnly[PublicAccessParams]):
    """Disable public network access on a Databricks workspace: approved private endpoints only."""

    name = "databricks.disable-public-network-access"
    profile = DATABRICKS_WORKSPACE
    method = "PUT"
    read_only = READ_ONLY
    breaks = ("the workspace UI, REST API and JDBC/ODBC endpoints refuse every client outside the approved private "
              "endpoints (browsers, BI tools, CI on the Internet)")
    example = Example("Close Databricks workspaces that prepare training data to the public network.",
                      why="Azure Databricks Workspaces should disable public network access",
                      policies=("0e7849de-b939-4c50-ab48-fc6b0f5eeba2",), params="{refuse_if_everyone_cut_off: true}")

    def refusal(self, ctx: PlanContext, params: PublicAccessParams, doc: Mapping[str, Any]) -> str | None:
        rules = str(get_path(doc, "properties.requiredNsgRules", "AllRules"))
        if rules.lower() != "noazuredatabricksrules":
            return (f"requiredNsgRules is {rules}: Azure disables public network access only with "
                    "NoAzureDatabricksRules (back-end Private Link); configure Private Link first")
        return super().refusal(ctx, params, doc)


@register
class EnableNoPublicIp(PropertyAction[NoParams]):
    """Set parameters.enableNoPublicIp to true: cluster nodes get no public IP (secure cluster connectivity)."""

    name = "databricks.enable-no-public-ip"
    profile = DATABRICKS_WORKSPACE
    method = "PUT"
    read_only = READ_ONLY
    settings = (Setting("properties.parameters.enableNoPublicIp.value", True, absent=False),)
    breaks = ("new clusters start without public IPs: they need the virtual network's outbound path (NAT gateway or "
              "firewall) to reach the control plane and package repositories; running clusters keep theirs until "
              "restarted")
    example = Example("Databricks cluster nodes get no public IP addresses.",
                      why="Azure Databricks Clusters should disable public IP",
                      policies=("51c1490f-3319-459c-bbbc-7f391bbed753",))

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        if get_path(doc, "properties.parameters.customVirtualNetworkId.value"):
            return None
        return ("the workspace is not deployed in your virtual network (parameters.customVirtualNetworkId): Azure "
                "changes secure cluster connectivity on existing workspaces only with VNet injection")

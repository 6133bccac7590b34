"""Azure Machine Learning and AI Foundry workspaces' managed network (``ML_WORKSPACE``).

``ml.isolate-managed-network``
    ``managedNetwork.isolationMode: AllowOnlyApprovedOutbound`` (Azure Policy 6ddb1705-c8cf-450e-aa4b-
    19ad6703c440, whose ``isolationMode`` parameter names the mode): compute in the workspace's managed
    network reaches only the outbound rules' destinations. One way: Azure does not let a workspace leave
    managed network isolation, nor go from AllowOnlyApprovedOutbound back to AllowInternetOutbound
    (how-to-managed-network.md: "you can't change the isolation mode ... once enabled"), and FQDN outbound
    rules add an Azure Firewall the workspace is billed for. IRREVERSIBLE and cost-bearing: the playbook
    is high risk with two approvers. Workspaces_Update (a long-running PATCH) takes ``managedNetwork``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from remediator.actions.base import Example, Params, PlanContext, register
from remediator.actions.profiles import ML_WORKSPACE
from remediator.actions.properties import PropertyAction, Setting


class IsolateParams(Params):
    isolation_mode: Literal["AllowOnlyApprovedOutbound", "AllowInternetOutbound"] = "AllowOnlyApprovedOutbound"
    """The managed network's isolation mode (the definition's isolationMode parameter)."""


@register
class IsolateManagedNetwork(PropertyAction[IsolateParams]):
    """Set managedNetwork.isolationMode: compute reaches approved outbound destinations only. One way."""

    name = "ml.isolate-managed-network"
    profile = ML_WORKSPACE
    settings = (Setting("properties.managedNetwork.isolationMode", "AllowOnlyApprovedOutbound", absent="Disabled"),)
    irreversible = ("a workspace cannot leave managed network isolation, nor return from AllowOnlyApprovedOutbound to "
                    "AllowInternetOutbound")
    breaks = ("jobs, compute instances and endpoints that download from destinations without an outbound rule (pip, "
              "Hugging Face, public datasets) fail; FQDN rules deploy a billed Azure Firewall; existing compute "
              "must be recreated to join the managed network")
    example = Example("ML and AI Foundry workspaces send outbound traffic to approved destinations only.",
                      why="Azure Machine Learning and Ai Studio should use Allow Only Approved Outbound Managed Vnet "
                          "mode",
                      policies=("6ddb1705-c8cf-450e-aa4b-19ad6703c440",), risk="high",
                      approval="{mode: slack, approvers: [security-oncall, security-leads], quorum: 2, "
                               "expires_after: 1d}",
                      params="{isolation_mode: AllowOnlyApprovedOutbound}")

    def values(self, ctx: PlanContext, params: IsolateParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"properties.managedNetwork.isolationMode": params.isolation_mode}

"""Azure Machine Learning: workspaces (kind Default, Hub, Project, FeatureStore) and online endpoints.

``ml.disable-public-network-access``
    ``publicNetworkAccess: Disabled`` on a workspace. Hubs and projects are the same ARM type
    (``Microsoft.MachineLearningServices/workspaces``) told apart by ``kind`` (``Hub``, ``Project``;
    a project names its hub in ``properties.hubResourceId``); the plan says which, and who is cut off
    (the workspace's approved private endpoints are all that remain). ``refuse_if_everyone_cut_off``
    refuses when there is none.
``ml.disable-endpoint-public-network-access``
    An online (inference) endpoint's ``publicNetworkAccess``. The update API does not take it: the
    plan refuses with the reason (see below) unless the endpoint is already Disabled.

API (Azure/azure-rest-api-specs, specification/machinelearningservices/resource-manager/
Microsoft.MachineLearningServices/stable/2024-10-01):

* ``Workspaces_Update`` (workspaceRP.json) is a PATCH of ``WorkspaceUpdateParameters`` whose
  properties include ``publicNetworkAccess``; a long-running operation answering 200 or 202 with
  ``Location`` (examples/Workspace/update.json patches ``"publicNetworkAccess": "Disabled"``).
* ``OnlineEndpoints_Update`` (mfe.json) is a PATCH of ``PartialMinimalTrackedResourceWithIdentity``:
  ``tags`` and ``identity`` only (examples/Workspace/OnlineEndpoint/update.json; the SDKs'
  ``begin_update(..., body: PartialMinimalTrackedResourceWithIdentity)``). ``publicNetworkAccess``
  lives in ``OnlineEndpointProperties`` and is set by ``OnlineEndpoints_CreateOrUpdate``, a PUT of
  the whole endpoint (traffic split, auth mode, write-only keys): a redeployment, not a property
  fix, so this action does not do it.

Both are declarations on the ``ML_WORKSPACE`` / ``ML_ONLINE_ENDPOINT`` profiles
(``remediator.actions.profiles``: Azure AI Administrator, and why no narrower role writes a workspace).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.actions.base import Example, PlanContext, register
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams
from remediator.actions.profiles import ML_ONLINE_ENDPOINT, ML_WORKSPACE
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path


def _name(resource_id: object) -> str:
    return str(resource_id or "").rstrip("/").rsplit("/", 1)[-1]


@register
class DisablePublicNetworkAccess(PrivateEndpointsOnly[PublicAccessParams]):
    """Set publicNetworkAccess to Disabled on an ML workspace, hub or project."""

    name = "ml.disable-public-network-access"
    profile = ML_WORKSPACE
    breaks = ("studio, SDK and CLI users, pipelines and online endpoints reached through the workspace "
              "from outside its approved private endpoints lose access")
    example = Example("Take ML workspaces, hubs and projects off the public internet.",
                      why="Azure Machine Learning Workspaces should disable public network access",
                      policies=("438c38d2-3772-465a-a9cc-7a6666a275ce",), params="{refuse_if_everyone_cut_off: true}")

    def notes(self, ctx: PlanContext, params: PublicAccessParams, doc: Mapping[str, Any]) -> list[str]:
        kind = str(doc.get("kind") or "Default")
        out = [f"workspace kind {kind}"]
        if kind.lower() == "hub":
            out.append("its projects are reached through this hub's network settings")
        elif kind.lower() == "project":
            hub = get_path(doc, "properties.hubResourceId")
            if hub:
                out.append(f"project of hub {_name(hub)}: close the hub as well")
        return [*out, *super().notes(ctx, params, doc)]


@register
class DisableEndpointPublicNetworkAccess(PropertyAction[NoParams]):
    """Online (inference) endpoint public network access: refused, the update API cannot change it.

    Plans nothing when the endpoint is already ``publicNetworkAccess: Disabled``; otherwise refuses,
    naming the API and what to do instead (redeploy the endpoint with ``public_network_access:
    disabled``), so the finding is reported and not silently dropped."""

    name = "ml.disable-endpoint-public-network-access"
    profile = ML_ONLINE_ENDPOINT
    settings = (Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),)
    breaks = "scoring clients outside the workspace's private endpoints"
    example = Example("Report ML online endpoints open to the internet (the API cannot close them in place).",
                      why="no built-in policy covers an endpoint's publicNetworkAccess: name your own definition",
                      policies=("/providers/Microsoft.Authorization/policyDefinitions/ml-endpoints-no-public-access",),
                      name="ml-endpoint-public-network-access")

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        if str(get_path(doc, "properties.publicNetworkAccess", "Enabled")).lower() == "disabled":
            return None
        return ("the online endpoint update API (OnlineEndpoints_Update, PATCH, api-version "  # noqa: S608
                f"{self.api_version}) accepts only tags and identity (PartialMinimalTrackedResourceWithIdentity); "
                "publicNetworkAccess is set by OnlineEndpoints_CreateOrUpdate, a PUT of the whole endpoint. "
                "Redeploy it with public_network_access: disabled (az ml online-endpoint update "
                "--set public_network_access=disabled)")

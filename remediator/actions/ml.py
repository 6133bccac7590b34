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

Role: Azure AI Administrator, b78c5d69-af96-48a3-bf8d-a8b4d589de94 (actions include
``Microsoft.MachineLearningServices/workspaces/*``, which covers ``workspaces/write`` and
``workspaces/onlineEndpoints/write``; no Microsoft.Authorization writes; its definition as published
by Azure, mirrored at azadvertizer.net/azrolesadvertizer/b78c5d69-af96-48a3-bf8d-a8b4d589de94.html).
No narrower built-in role writes a workspace: AzureML Data Scientist (f6c7c914-…) and Azure AI
Developer (64702f94-…) list ``workspaces/write`` in their NotActions, AzureML Compute Operator
covers only computes (MicrosoftDocs/azure-docs built-in-roles/ai-machine-learning.md); the other
one that does is Contributor (what the built-in Modify policy a10ee784-7409-4941-b091-663697637c0f
uses), which is broader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from remediator.actions.base import BuiltinRole, Params, PlanContext, register
from remediator.actions.private_endpoints import cut_off
from remediator.actions.properties import PropertyAction, Setting, get_path

WORKSPACE_TYPE = "Microsoft.MachineLearningServices/workspaces"
ENDPOINT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
API_VERSION = "2024-10-01"
AZURE_AI_ADMINISTRATOR = BuiltinRole("Azure AI Administrator", "b78c5d69-af96-48a3-bf8d-a8b4d589de94")


class DisablePublicNetworkAccessParams(Params):
    refuse_if_everyone_cut_off: bool = Field(
        default=False,
        description="Refuse the change (write nothing) when the workspace has no approved private endpoint "
                    "connection, i.e. when disabling public network access would cut off every client.")


def _name(resource_id: object) -> str:
    return str(resource_id or "").rstrip("/").rsplit("/", 1)[-1]


@register
class DisablePublicNetworkAccess(PropertyAction[DisablePublicNetworkAccessParams]):
    """Disable public network access on an Azure Machine Learning workspace, hub or project.

    ```yaml
    name: ml-disable-public-network-access
    description: Take ML workspaces, hubs and projects off the public internet.
    match:
      # Azure Machine Learning Workspaces should disable public network access
      policies: [438c38d2-3772-465a-a9cc-7a6666a275ce]
      resource_types: [Microsoft.MachineLearningServices/workspaces]
    risk: medium
    approval: {mode: slack, approvers: [S0SECENGINEERS], expires_after: 1d}
    steps:
      - action: ml.disable-public-network-access
        params: {refuse_if_everyone_cut_off: true}
    ```
    """

    name = "ml.disable-public-network-access"
    summary = "Set publicNetworkAccess to Disabled on the ML workspace, hub or project"
    Params = DisablePublicNetworkAccessParams
    resource_types = (WORKSPACE_TYPE,)
    permissions = ("Microsoft.MachineLearningServices/workspaces/read",
                   "Microsoft.MachineLearningServices/workspaces/write")
    role = AZURE_AI_ADMINISTRATOR
    api_version = API_VERSION
    settings = (Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),)
    breaks = ("studio, SDK and CLI users, pipelines and online endpoints reached through the workspace "
              "from outside its approved private endpoints lose access")

    def refusal(self, ctx: PlanContext, params: DisablePublicNetworkAccessParams,
                doc: Mapping[str, Any]) -> str | None:
        return cut_off(doc, closing="public").refusal(params.refuse_if_everyone_cut_off)

    def notes(self, ctx: PlanContext, params: DisablePublicNetworkAccessParams,
              doc: Mapping[str, Any]) -> list[str]:
        kind = str(doc.get("kind") or "Default")
        out = [f"workspace kind {kind}"]
        if kind.lower() == "hub":
            out.append("its projects are reached through this hub's network settings")
        elif kind.lower() == "project":
            hub = get_path(doc, "properties.hubResourceId")
            if hub:
                out.append(f"project of hub {_name(hub)}: close the hub as well")
        out.append(cut_off(doc, closing="public").sentence)
        return out


class NoEndpointParams(Params):
    """No parameters."""


@register
class DisableEndpointPublicNetworkAccess(PropertyAction[NoEndpointParams]):
    """Online (inference) endpoint public network access: refused, the update API cannot change it.

    Plans nothing when the endpoint is already ``publicNetworkAccess: Disabled``; otherwise refuses,
    naming the API and what to do instead (redeploy the endpoint with ``public_network_access:
    disabled``), so the finding is reported and not silently dropped.

    ```yaml
    name: ml-endpoint-public-network-access
    description: Report ML online endpoints open to the internet (the API cannot close them in place).
    match:
      # no built-in policy or Defender key covers an endpoint's publicNetworkAccess: name your own
      # (custom) policy definition here
      policies: [/providers/Microsoft.Authorization/policyDefinitions/ml-endpoints-no-public-access]
      resource_types: [Microsoft.MachineLearningServices/workspaces/onlineEndpoints]
    risk: medium
    approval: {mode: slack, approvers: [S0SECENGINEERS], expires_after: 1d}
    steps:
      - action: ml.disable-endpoint-public-network-access
    ```
    """

    name = "ml.disable-endpoint-public-network-access"
    summary = "Online endpoint publicNetworkAccess: refused with the reason (the PATCH takes tags and identity only)"
    Params = NoEndpointParams
    resource_types = (ENDPOINT_TYPE,)
    permissions = ("Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read",
                   "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write")
    role = AZURE_AI_ADMINISTRATOR
    api_version = API_VERSION
    settings = (Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),)
    breaks = "scoring clients outside the workspace's private endpoints"

    def refusal(self, ctx: PlanContext, params: NoEndpointParams, doc: Mapping[str, Any]) -> str | None:
        if str(get_path(doc, "properties.publicNetworkAccess", "Enabled")).lower() == "disabled":
            return None
        return ("the online endpoint update API (OnlineEndpoints_Update, PATCH, api-version "  # noqa: S608
                f"{API_VERSION}) accepts only tags and identity (PartialMinimalTrackedResourceWithIdentity); "
                "publicNetworkAccess is set by OnlineEndpoints_CreateOrUpdate, a PUT of the whole endpoint. "
                "Redeploy it with public_network_access: disabled (az ml online-endpoint update "
                "--set public_network_access=disabled)")

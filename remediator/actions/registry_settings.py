"""Container registry policies and tokens (``CONTAINER_REGISTRY``, ``REGISTRY_TOKEN``).

The registry's ``policies`` object (registry examples 2025-11-01, RegistryGet.json: ``exportPolicy`` and
``azureADAuthenticationAsArmPolicy`` with ``status`` enabled|disabled), written by Registries_Update (PATCH):

``acr.disable-arm-audience-tokens``  ``policies.azureADAuthenticationAsArmPolicy.status: disabled`` (Azure
    Policy 42781ec6-6127-4c30-bdfa-fb423a0047d3, Modify 785596ed-054f-41bc-aaec-7f3d0ba05725): registry logins
    need a token issued for the registry's own audience, not any ARM token.
``acr.disable-exports``  ``policies.exportPolicy.status: disabled`` (524b0254-c285-4903-bee6-bb8126cde579,
    which also asks ``publicNetworkAccess: Disabled``). Azure accepts disabling exports only on a registry whose
    public network access is disabled ("Disable export" in container-registry-private-link.md / the
    definition's own pairing): the plan refuses with that reason until the registry is behind private
    endpoints (acr-disable-public-network-access first).

A repository-scoped token (``registries/tokens``, Tokens_Update, a PATCH; TokenGet.json shows ``status:
enabled``): ``acr.disable-repository-token`` sets ``status: disabled`` (ff05e24e-195c-447e-b322-5e90c9f9f366,
Modify a9b426fe-8856-4945-8600-18c5dd1cca2a).

All reversible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.actions.base import Example, PlanContext, register
from remediator.actions.profiles import CONTAINER_REGISTRY, REGISTRY_TOKEN
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path


@register
class DisableArmAudienceTokens(PropertyAction[NoParams]):
    """Set azureADAuthenticationAsArmPolicy to disabled: docker login needs a registry-audience token."""

    name = "acr.disable-arm-audience-tokens"
    profile = CONTAINER_REGISTRY
    settings = (Setting("properties.policies.azureADAuthenticationAsArmPolicy.status", "disabled",
                        absent="enabled"),)
    breaks = ("clients that log in with an ARM-audience Entra token (older az acr login, some CI tasks) get 401; "
              "tokens for the registry audience (containerregistry.azure.net) keep working")
    example = Example("Registry logins accept registry-audience tokens only, not any ARM token.",
                      why="Container registries should have ARM audience token authentication disabled.",
                      policies=("42781ec6-6127-4c30-bdfa-fb423a0047d3",))


@register
class DisableExports(PropertyAction[NoParams]):
    """Set exportPolicy to disabled: images cannot be exported (import/transfer pipelines) out of the registry."""

    name = "acr.disable-exports"
    profile = CONTAINER_REGISTRY
    settings = (Setting("properties.policies.exportPolicy.status", "disabled", absent="enabled"),)
    breaks = "az acr import from this registry into another, and transfer (export) pipelines, are refused"
    example = Example("Model images must not be exported from private registries.",
                      why="Container registries should have exports disabled",
                      policies=("524b0254-c285-4903-bee6-bb8126cde579",))

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        if str(get_path(doc, "properties.publicNetworkAccess", "Enabled")).lower() == "disabled":
            return None
        return ("Azure disables exports only on a registry whose public network access is disabled; put it behind "
                "private endpoints first (playbook acr-disable-public-network-access), then plan again")


@register
class DisableRepositoryToken(PropertyAction[NoParams]):
    """Set a repository-scoped token's status to disabled: its passwords stop working."""

    name = "acr.disable-repository-token"
    profile = REGISTRY_TOKEN
    settings = (Setting("properties.status", "disabled", absent="enabled"),)
    breaks = "pulls and pushes with this token's passwords (CI jobs, edge devices) get 401"
    example = Example("Repository-scoped registry tokens are turned off.",
                      why="Container registries should have repository scoped access token disabled.",
                      policies=("ff05e24e-195c-447e-b322-5e90c9f9f366",))

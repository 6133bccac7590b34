"""Azure AI Search services (``Microsoft.Search/searchServices``), on the ``SEARCH_SERVICE`` profile:
the retrieval indexes and vector stores that ground an AI estate's answers in its product, pricing and
customer data.

``search.disable-public-network-access``
    ``publicNetworkAccess: Disabled``: only approved private endpoints reach the service (Azure Policy
    ee980b6d-0eca-4501-8d54-f6290fd512c3, Modify 9cee519f-d9c1-4fd9-9f79-24ec3449ed30; and, for search
    services, 037eea7a-bd0a-46c5-9a66-03aea78705d3, which also passes on IP rules).
``search.disable-local-auth``
    ``disableLocalAuth: true`` and ``authOptions`` removed, as Azure Policy's Modify
    4eb216f2-9dba-4979-86e6-5d7e63ce3b75 does (``disableLocalAuth=true``, ``authOptions=None``): the
    service refuses both at once, and ``SearchUpdateServiceDisableLocalAuth.json`` answers
    ``authOptions: null`` (Azure/azure-rest-api-specs search/…/Search/examples/2025-05-01).

Both are declarations (one PATCH, Services_Update) and reversible.
"""

from __future__ import annotations

from remediator.actions.base import Example, register
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams
from remediator.actions.profiles import SEARCH_SERVICE
from remediator.actions.properties import NoParams, PropertyAction, Setting


@register
class DisablePublicNetworkAccess(PrivateEndpointsOnly[PublicAccessParams]):
    """Disable public network access on a search service: approved private endpoints only."""

    name = "search.disable-public-network-access"
    profile = SEARCH_SERVICE
    breaks = ("every client outside the service's approved private endpoints (apps, indexers pulling from "
              "public sources, the portal's Search explorer from a browser) gets 403 from the endpoint")
    example = Example("Close AI Search services (RAG indexes) to the public network; private endpoints only.",
                      why="Azure AI Search services should disable public network access",
                      policies=("ee980b6d-0eca-4501-8d54-f6290fd512c3",),
                      params="{refuse_if_everyone_cut_off: true}")


@register
class DisableLocalAuth(PropertyAction[NoParams]):
    """Set disableLocalAuth to true (and drop authOptions): Microsoft Entra ID only, no API keys."""

    name = "search.disable-local-auth"
    profile = SEARCH_SERVICE
    settings = (Setting("properties.disableLocalAuth", True, absent=False),
                Setting("properties.authOptions", None))
    breaks = ("clients calling with an admin or query API key (api-key header) get 401; they need Microsoft "
              "Entra ID tokens and a Search Index Data role")
    example = Example("Turn off API keys on AI Search services; Entra ID only.",
                      why="Azure AI Search services should have local authentication methods disabled",
                      recommendations=("13b10b36-aa99-4db6-b00c-dcf87c4761e6",),
                      policies=("6300012e-e9a4-4649-b41f-a85f5c43be91",),
                      resource_types=("Microsoft.Search/searchServices",))

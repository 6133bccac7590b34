"""The data pipelines that feed training: Azure Data Factory.

``datafactory.disable-public-network-access`` (``DATA_FACTORY``)
    ``publicNetworkAccess: Disabled`` (Azure Policy 1cf164be-6819-4a50-b8fa-4bcaa4f98fb6, Modify
    08b1442b-7789-4130-8506-4f99a97226a7); Factories_Update (PATCH) takes it (FactoryUpdateParameters,
    datafactory.json stable 2018-06-01). The factory's integration runtimes then reach it over private
    endpoints only. Reversible.

Synapse and Databricks workspaces are in ``remediator.actions.synapse`` and ``remediator.actions.databricks``: no
built-in role narrower than Contributor writes them, so they grant remediator's custom roles
(``remediator.actions.custom_roles``).
"""

from __future__ import annotations

from remediator.actions.base import Example, register
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams
from remediator.actions.profiles import DATA_FACTORY


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

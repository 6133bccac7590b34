"""AI services accounts' outbound restriction (``COGNITIVE_ACCOUNT``).

``cognitive.restrict-outbound-access``
    ``restrictOutboundNetworkAccess: true`` with ``allowedFqdnList`` (``AccountProperties``,
    cognitiveservices.json stable 2024-10-01): the account (Azure OpenAI "on your data", fine-tuning, content
    filters calling out) reaches only the listed host names. The playbook names them (``allowed_fqdns``,
    at least one); the account's existing list is kept and extended. Azure Policy has no built-in definition for
    it (none in the catalog reads ``restrictOutboundNetworkAccess`` on accounts): a deployment matches its own
    definition or Defender finding. One PATCH (Accounts_Update), reversible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from remediator.actions.base import Example, Params, PlanContext, no_items, register
from remediator.actions.profiles import COGNITIVE_ACCOUNT
from remediator.actions.properties import PropertyAction, Setting, get_path

_FQDN = re.compile(r"^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
FQDNS = "properties.allowedFqdnList"


class RestrictOutboundParams(Params):
    allowed_fqdns: list[str] = Field(default_factory=no_items, min_length=1)
    """Host names the account may call, e.g. ['srch-products.search.windows.net', 'stdata.blob.core.windows.net']
    (at least one; added to the account's list)."""

    @field_validator("allowed_fqdns")
    @classmethod
    def _valid(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            name = item.strip().lower().rstrip(".")
            if not _FQDN.match(name):
                raise ValueError(f"{item!r} is not a host name (such as stdata.blob.core.windows.net)")
            out.append(name)
        return out


@register
class RestrictOutboundAccess(PropertyAction[RestrictOutboundParams]):
    """Set restrictOutboundNetworkAccess to true, with the allowed host names: no other outbound calls."""

    name = "cognitive.restrict-outbound-access"
    profile = COGNITIVE_ACCOUNT
    settings = (Setting("properties.restrictOutboundNetworkAccess", True, absent=False),
                Setting(FQDNS, [], absent=[]))
    breaks = ("features that call other hosts from the account (On Your Data to search or storage, fine-tuning "
              "data, web grounding) fail for every host not in allowedFqdnList")
    example = Example("AI services accounts call only the estate's own data stores.",
                      why="a deployment's own definition (Azure Policy has no built-in for outbound restriction)",
                      policies=("/providers/Microsoft.Management/managementGroups/contoso/providers/"
                                "Microsoft.Authorization/policyDefinitions/ai-restrict-outbound",),
                      params="{allowed_fqdns: [srch-products.search.windows.net]}")

    def values(self, ctx: PlanContext, params: RestrictOutboundParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        have = get_path(doc, FQDNS, [])
        listed = [str(h) for h in have] if isinstance(have, list) else []
        known = {h.lower() for h in listed}
        return {"properties.restrictOutboundNetworkAccess": True,
                FQDNS: listed + [h for h in params.allowed_fqdns if h not in known]}

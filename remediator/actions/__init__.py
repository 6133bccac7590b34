"""Action registry. Importing this package registers every shipped action.

The action modules import the Azure management SDKs lazily, inside ``apply``; importing them
costs only pydantic.
"""

from remediator.actions import (
    acr,
    cognitive,
    disks,
    exemptions,
    keyvault,
    ml,
    network,
    peering,
    rbac,
    storage,
)
from remediator.actions.base import REGISTRY, Action, ApplyResult, BuiltinRole, Params, PlanContext, suggest

__all__ = [
    "REGISTRY",
    "Action",
    "ApplyResult",
    "BuiltinRole",
    "Params",
    "PlanContext",
    "acr",
    "cognitive",
    "disks",
    "exemptions",
    "get",
    "keyvault",
    "ml",
    "network",
    "peering",
    "rbac",
    "storage",
    "suggest",
]


def get(name: str) -> Action:  # type: ignore[type-arg]
    """The registered action ``name``; KeyError when unknown (use ``suggest`` for the message)."""
    return REGISTRY[name]

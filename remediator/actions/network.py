"""Network actions: close NSG inbound rules that open ports to the whole Internet."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from remediator.actions.base import Action, ApplyResult, BuiltinRole, Params, PlanContext, register
from remediator.errors import ActionError
from remediator.plan import Change
from remediator.state import StateReader

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

# Network Contributor, 4d97b98b-1d4f-4787-a291-c67834d212e7: MicrosoftDocs/azure-docs
# articles/role-based-access-control/built-in-roles.md (Networking table).
NETWORK_CONTRIBUTOR = BuiltinRole("Network Contributor", "4d97b98b-1d4f-4787-a291-c67834d212e7")


class RestrictInboundParams(Params):
    ports: list[int | str] = Field(default_factory=lambda: [22, 3389, 5985, 5986])
    mode: Literal["remove", "deny", "narrow"] = "remove"
    allowed_sources: list[str] = Field(default_factory=list)
    include_subnet_nsgs: bool = True


@register
class RestrictInbound(Action[RestrictInboundParams]):
    """Close NSG inbound rules open to the Internet on the given ports (skeleton)."""

    name: ClassVar[str] = "network.restrict-inbound"
    Params: ClassVar[type[RestrictInboundParams]] = RestrictInboundParams
    resource_types: ClassVar[tuple[str, ...]] = (
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Network/networkInterfaces",
    )
    permissions: ClassVar[tuple[str, ...]] = (
        "Microsoft.Network/networkSecurityGroups/securityRules/read",
        "Microsoft.Network/networkSecurityGroups/securityRules/write",
        "Microsoft.Network/networkSecurityGroups/securityRules/delete",
    )
    role: ClassVar[BuiltinRole] = NETWORK_CONTRIBUTOR
    reversible: ClassVar[bool] = True

    def plan(self, ctx: PlanContext, params: RestrictInboundParams) -> list[Change]:
        raise ActionError("not implemented yet", action=self.name)

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        raise ActionError("not implemented yet", action=self.name)

    def verify(self, state: StateReader, change: Change) -> str | None:
        raise ActionError("not implemented yet", action=self.name)



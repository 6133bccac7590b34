"""RBAC actions: revoke a principal's privileged role assignments."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from remediator.actions.base import Action, ApplyResult, BuiltinRole, Params, PlanContext, register
from remediator.errors import ActionError
from remediator.plan import Change
from remediator.state import StateReader

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

# Role Based Access Control Administrator, f58310d9-a9f6-439a-9e8d-f62e7b41a168:
# MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles.md (Privileged).
RBAC_ADMINISTRATOR = BuiltinRole("Role Based Access Control Administrator", "f58310d9-a9f6-439a-9e8d-f62e7b41a168")


class RevokeRoleAssignmentsParams(Params):
    principal_id: str | None = None
    roles: list[str] = Field(default_factory=lambda: [
        "Owner", "Contributor", "User Access Administrator", "Role Based Access Control Administrator"])
    scope: str | None = None


@register
class RevokeRoleAssignments(Action[RevokeRoleAssignmentsParams]):
    """Revoke a principal's privileged role assignments (skeleton)."""

    name: ClassVar[str] = "rbac.revoke-role-assignments"
    Params: ClassVar[type[RevokeRoleAssignmentsParams]] = RevokeRoleAssignmentsParams
    resource_types: ClassVar[tuple[str, ...]] = ("",)
    permissions: ClassVar[tuple[str, ...]] = (
        "Microsoft.Authorization/roleAssignments/read",
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleAssignments/delete",
    )
    role: ClassVar[BuiltinRole] = RBAC_ADMINISTRATOR
    reversible: ClassVar[bool] = True

    def plan(self, ctx: PlanContext, params: RevokeRoleAssignmentsParams) -> list[Change]:
        raise ActionError("not implemented yet", action=self.name)

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        raise ActionError("not implemented yet", action=self.name)

    def verify(self, state: StateReader, change: Change) -> str | None:
        raise ActionError("not implemented yet", action=self.name)

"""``entra.remove-app-role-assignment``: take a tenant-wide Microsoft Graph application permission from an app.

The finding (``remediator.findings.approles``: the backlog scan or the Entra audit event) names a client service
principal and the app role it was granted. The plan reads Microsoft Graph live: the service principal (its
display name and app id), Microsoft Graph's own service principal in the tenant, and the app role assignments
the client holds (``GET /v1.0/servicePrincipals/{id}/appRoleAssignments``); each assignment of that role of
Microsoft Graph becomes one ``delete`` change, unless the playbook's ``allow`` list lets that application keep it
(then nothing is planned, and the plan says why). The change's note names the application and its app id, the
permission, when it was granted and, when the audit event said so, by whom (an app role assignment records its
``createdDateTime`` only; the grantor is in the Entra audit log).

Apply: ``DELETE /v1.0/servicePrincipals/{id}/appRoleAssignments/{assignment id}`` ("Delete appRoleAssignment",
https://learn.microsoft.com/graph/api/serviceprincipal-delete-approleassignments); a 404 means it is gone already.
Verify: the assignment is no longer listed. Undo: ``POST /v1.0/servicePrincipals/{resource id}/appRoleAssignedTo``
with the same ``principalId``, ``resourceId`` and ``appRoleId`` ("Grant an appRoleAssignment for a service
principal", https://learn.microsoft.com/graph/api/serviceprincipal-post-approleassignedto), verified by listing.

What undo can and cannot restore: it restores the *access* (the same app, the same permission of the same
resource). It cannot restore the original assignment object: the new one has a new id and a new
``createdDateTime``, and the original grant's context (who consented, through which consent flow, recorded in the
Entra audit log) stays with the old, deleted assignment; the undo's own grant is audited as remediator's. The
removal itself is immediate for new tokens, but access tokens already issued keep their ``roles`` claim until they
expire (typically an hour): the app may keep working that long. Hence ``weighs``: high risk, two approvers.

Privilege: no Azure role and no PIM grant applies to Microsoft Graph application permissions (PIM for Azure
resources grants Azure roles; PIM for Microsoft Entra roles grants directory roles, never an app role of Graph).
The executor holds the Microsoft Graph application permission ``AppRoleAssignment.ReadWrite.All`` (the least
privileged permission on both pages above) as a standing permission; ``grants`` returns a non-ARM scope, so every
elevation strategy records the grant as not required. ``remediator doctor`` checks the executor holds it
(``remediator.app.doctor.check_directory_permissions``); README and docs/deploy.md say how to limit it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from remediator.actions.base import Action, ApplyResult, BuiltinRole, GrantNeed, Params, PlanContext, register
from remediator.actions.change import Change
from remediator.azure.approles import graph_service_principal
from remediator.azure.state import StateReader
from remediator.checks import params as checks
from remediator.errors import ActionError, DirectoryError
from remediator.findings import approles
from remediator.findings.approles import PERMISSION_IDS, RESOURCE_TYPE, TENANT_WIDE_DATA

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients
    from remediator.azure.directory import DirectoryClient

APP_ROLE_ASSIGNMENT_READWRITE_ALL = "06b708a9-e830-4db3-a914-8e69da51d44f"
"""Microsoft Graph application permission ``AppRoleAssignment.ReadWrite.All`` (permissions reference)."""
GRAPH_PERMISSION = BuiltinRole("Microsoft Graph AppRoleAssignment.ReadWrite.All (application permission)",
                               APP_ROLE_ASSIGNMENT_READWRITE_ALL)
_ASSIGNMENT_FIELDS = ("id", "appRoleId", "principalId", "principalType", "principalDisplayName", "resourceId",
                      "resourceDisplayName", "createdDateTime")


class RemoveAppRoleAssignmentParams(Params):
    allow: dict[str, list[str]] = Field(default_factory=dict)
    """Applications that may keep Microsoft Graph application permissions: application (client) id → the
    permissions it may keep (names such as Files.Read.All, app role ids, or '*' for every one). Every other
    application loses the finding's permission."""

    _allow = field_validator("allow")(checks.app_permission_allow_list)

    def allows(self, app_id: str, app_role_id: str) -> bool:
        kept = self.allow.get(app_id.strip().lower(), [])
        wanted = app_role_id.lower()
        return any(k == "*" or k.lower() == wanted or PERMISSION_IDS.get(k.lower()) == wanted for k in kept)


def assignment_id(sp: str, assignment: str) -> str:
    """The change's resource: ``msgraph:/servicePrincipals/<client>/appRoleAssignments/<assignment id>``."""
    return f"{approles.resource_id(sp)}/appRoleAssignments/{assignment.strip()}"


def _parts(resource: str) -> tuple[str, str]:
    """(client object id, assignment id) of a change's resource."""
    head, sep, tail = resource.rpartition("/appRoleAssignments/")
    sp = approles.sp_of(head) if sep else None
    if sp is None or not tail:
        raise ActionError("not an app role assignment (msgraph:/servicePrincipals/<id>/appRoleAssignments/<id>)",
                          action=RemoveAppRoleAssignment.name, resource_id=resource)
    return sp, tail


def _directory(state: StateReader, name: str, resource: str) -> DirectoryClient:
    clients = getattr(state, "clients", None)
    if clients is None or not hasattr(clients, "msgraph"):
        raise ActionError("app role assignments are read from Microsoft Graph live only (no saved state holds "
                          "them): plan with live state", action=name, resource_id=resource)
    try:
        client: DirectoryClient = clients.msgraph()
    except DirectoryError as e:
        raise ActionError(str(e), action=name, resource_id=resource) from e
    return client


@register
class RemoveAppRoleAssignment(Action[RemoveAppRoleAssignmentParams]):
    """Remove a Microsoft Graph application permission with tenant-wide data access from an application.

    ```yaml
    name: entra-remove-graph-data-permissions
    description: Take tenant-wide Microsoft Graph data permissions from applications not approved to hold them.
    match:
      # an application granted a Microsoft Graph application permission with tenant-wide data access
      operations: [Microsoft.Graph/servicePrincipals/appRoleAssignments/write]
      resource_types: [Microsoft.Graph/servicePrincipals]
    risk: high
    approval: {mode: slack, approvers: [security-oncall], quorum: 2, expires_after: 1d}
    steps:
      - action: entra.remove-app-role-assignment
        params: {allow: {11111111-2222-3333-4444-555555555555: [Sites.Read.All]}}
    ```
    """

    name = "entra.remove-app-role-assignment"
    summary = "Remove a tenant-wide Microsoft Graph application permission from an application"
    resource_types = (RESOURCE_TYPE,)
    # the Entra directory operation behind it ("Update service principal role assignments", Microsoft Entra built-in
    # roles reference, Cloud Application Administrator): what a directory role would need; the executor holds the
    # Graph application permission instead (directory_permissions)
    permissions = ("microsoft.directory/servicePrincipals/appRoleAssignedTo/update",)
    role = GRAPH_PERMISSION
    api_version = "v1.0"
    reversible = True
    directory_permissions = ("AppRoleAssignment.ReadWrite.All",)
    @property
    def noun(self) -> str:
        return "application permission"

    def plan(self, ctx: PlanContext, params: RemoveAppRoleAssignmentParams) -> list[Change]:
        finding = ctx.finding
        sp = approles.sp_of(finding.resource_id) or (finding.principal_id or "").strip().lower()
        if not sp:
            raise ActionError("the finding names no service principal (msgraph:/servicePrincipals/<object id>)",
                              action=self.name, resource_id=finding.resource_id)
        if sp in {p.strip().lower() for p in ctx.protected_principals}:
            raise ActionError(f"refusing to remove permissions of remediator's own identity {sp} (it is a protected "
                              "principal)", action=self.name, resource_id=finding.resource_id)
        role = str(finding.additional_data.get("approleid") or "").lower()
        wanted = {role} if role else set(TENANT_WIDE_DATA)
        client = _directory(ctx.state, self.name, finding.resource_id)
        try:
            principal = client.service_principal(sp)
            if principal is None:
                return []  # the application is gone: so are its permissions
            graph_sp = str(graph_service_principal(client)["id"]).lower()
            held = client.app_role_assignments(sp)
        except DirectoryError as e:
            raise ActionError(str(e), action=self.name, resource_id=finding.resource_id) from e
        app_id = str(principal.get("appId") or "")
        app = str(principal.get("displayName") or sp)
        changes: list[Change] = []
        for a in sorted(held, key=lambda x: str(x.get("id") or "")):
            app_role = str(a.get("appRoleId") or "").lower()
            if str(a.get("resourceId") or "").lower() != graph_sp or app_role not in wanted or not a.get("id"):
                continue
            permission = TENANT_WIDE_DATA.get(app_role, app_role)
            if params.allows(app_id, app_role):
                ctx.warn(f"{app} (app {app_id}) keeps Microsoft Graph {permission}: the playbook's allow list "
                         "lets it")
                continue
            granted_by = str(finding.additional_data.get("grantedby") or "")
            before = {k: a.get(k) for k in _ASSIGNMENT_FIELDS if k in a}
            before.update({"appId": app_id, "permission": permission, "grantedBy": granted_by or None})
            when = str(a.get("createdDateTime") or "an unknown date")
            who = f" by {granted_by}" if granted_by else " (grantor: see the Entra audit log)"
            changes.append(Change(
                action=self.name, resource_id=assignment_id(sp, str(a["id"])), operation="delete", before=before,
                after=None,
                note=f"remove Microsoft Graph application permission {permission} from {app} (app {app_id}), "
                     f"granted {when}{who}; undo re-grants the same permission under a new assignment"))
        return changes

    def grants(self, change: Change) -> list[GrantNeed]:
        """A Graph application permission held by the executor, not an Azure role: a non-ARM scope, so every
        elevation strategy records it as not required (see the module docstring)."""
        return [GrantNeed(change.resource_id, self.role, "Microsoft Graph application permission, held by the "
                                                         "executor; PIM does not apply")]

    def weighs(self, change: Change) -> str:
        if change.operation != "delete":
            return ""
        return ("the application loses tenant-wide data access at once; undo re-grants the permission but not the "
                "original grant (new assignment id and date, the consent record stays in the audit log)")

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        sp, assignment = _parts(change.resource_id)
        try:
            client = clients.msgraph()
            if change.operation == "delete":
                removed = client.remove_app_role_assignment(sp, assignment)
                detail = "removed" if removed else "already gone"
                return ApplyResult(change=change, response={"removed": removed},
                                   detail=f"app role assignment {assignment} of {sp}: {detail}")
            after = change.after or {}
            made = client.grant_app_role(principal_id=str(after.get("principalId") or sp),
                                         resource_id=str(after.get("resourceId") or ""),
                                         app_role_id=str(after.get("appRoleId") or ""))
        except DirectoryError as e:
            raise ActionError(str(e), action=self.name, resource_id=change.resource_id) from e
        return ApplyResult(change=change, response={"id": made.get("id")},
                           detail=f"re-granted {after.get('permission') or after.get('appRoleId')} to {sp}: "
                                  f"new assignment {made.get('id')}")

    def verify(self, state: StateReader, change: Change) -> str | None:
        sp, assignment = _parts(change.resource_id)
        client = _directory(state, self.name, change.resource_id)
        try:
            held = client.app_role_assignments(sp)
        except DirectoryError as e:
            return f"the app role assignments of {sp} could not be read: {e}"
        if change.operation == "delete":
            still = any(str(a.get("id") or "").lower() == assignment.lower() for a in held)
            return f"app role assignment {assignment} is still there" if still else None
        after: dict[str, Any] = dict(change.after or {})
        back = any(str(a.get("appRoleId") or "").lower() == str(after.get("appRoleId") or "").lower()
                   and str(a.get("resourceId") or "").lower() == str(after.get("resourceId") or "").lower()
                   for a in held)
        return None if back else f"{after.get('permission') or after.get('appRoleId')} was not granted again to {sp}"

    def undo(self, change: Change) -> Change:
        before = dict(change.before or {})
        if change.operation != "delete" or not before.get("appRoleId") or not before.get("resourceId"):
            raise ActionError("only a removal can be undone", action=self.name, resource_id=change.resource_id)
        after = {k: before.get(k) for k in ("principalId", "resourceId", "appRoleId", "appId", "permission")}
        return Change(action=self.name, resource_id=change.resource_id, operation="create", before=None, after=after,
                      note=f"re-grant Microsoft Graph application permission {before.get('permission')} to "
                           f"{before.get('principalDisplayName') or before.get('principalId')} (app "
                           f"{before.get('appId')}): a new assignment, not the original grant")

"""RBAC actions: revoke one principal's privileged Azure role assignments.

``rbac.revoke-role-assignments`` deletes the role assignments of ONE principal (a user, group,
service principal or managed identity) whose role is in a privileged set and whose scope lies at or
under the finding's scope. It never touches another principal's assignments, assignments above the
scope (a management group or parent scope is out of this finding's reach: the plan says so, and
fails when that is all there is), or the remediator's own identities (``protected_principals``:
a loud error). Revoking the last Owner of a subscription is refused.

Writes, verify and undo are the child-resource base's (``remediator.actions.children``): a DELETE by
id, and for undo a PUT that re-creates each assignment with the same name, role, principal, principal
type, condition and description (``createdOn``/``createdBy`` are ARM's and come back new).

Not covered: PIM *eligible* assignments (``roleEligibilitySchedules``) and classic administrators;
PIM-managed active assignments may refuse a plain DELETE (the error is reported as is).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from remediator import ids
from remediator.actions.base import Params, PlanContext, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction
from remediator.actions.profiles import RBAC_ADMINISTRATOR, ROLE_ASSIGNMENT
from remediator.azure.state import StateReader
from remediator.checks import params as checks
from remediator.errors import ActionError
from remediator.findings.model import Finding

# Built-in role definition GUIDs (same page). The first four are Azure's "privileged administrator"
# roles: the default set to revoke.
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
KNOWN_ROLES: dict[str, str] = {
    "owner": OWNER,
    "contributor": CONTRIBUTOR,
    "user access administrator": USER_ACCESS_ADMINISTRATOR,
    "role based access control administrator": RBAC_ADMINISTRATOR.id,
    "reader": READER,
}
ROLE_NAMES: dict[str, str] = {
    OWNER: "Owner",
    CONTRIBUTOR: "Contributor",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
    RBAC_ADMINISTRATOR.id: "Role Based Access Control Administrator",
    READER: "Reader",
}
DEFAULT_ROLES = checks.RBAC_DEFAULT_ROLES
SCOPE_KEYWORDS = checks.SCOPE_KEYWORDS

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_NIL_GUID = "00000000-0000-0000-0000-000000000000"
# entity keys (lower-cased by the parser) that carry an Entra object id on "account" entities
_ENTITY_PRINCIPAL_KEYS = ("aaduserid", "objectid")
# writable properties of a role assignment (api 2022-04-01), for re-creating one on undo
_CREATE_FIELDS = ("roleDefinitionId", "principalId", "principalType", "description", "condition",
                  "conditionVersion", "delegatedManagedIdentityResourceId")


class RevokeRoleAssignmentsParams(Params):
    principal_id: str | None = None
    """Object id of the principal whose assignments to revoke. Default: the finding's principal (identity
    recommendations: the /identities/<objectId> of the sub-assessment; alerts: the one account entity with an
    aadUserId)."""
    roles: list[str] = Field(default=list(DEFAULT_ROLES), min_length=1)
    """Roles to revoke: built-in names (Owner, Contributor, User Access Administrator, Role Based Access Control
    Administrator, Reader) or role definition GUIDs (custom roles). Default: Azure's privileged administrator roles."""
    scope: str | None = None
    """Where to revoke (at or under): 'resource' (the finding's resource; the subscription for identity
    recommendations), 'resource-group', 'subscription' (of the finding), or an ARM scope id. Default: resource."""

    _guid = field_validator("principal_id")(checks.rbac_principal)
    _roles = field_validator("roles")(checks.rbac_roles)
    _scope = field_validator("scope")(checks.rbac_scope)

    def role_ids(self) -> frozenset[str]:
        """The role definition GUIDs to revoke (lower-case)."""
        return frozenset(KNOWN_ROLES.get(r.strip().lower(), r.strip().lower()) for r in self.roles)


def role_guid(role_definition_id: object) -> str:
    """The GUID at the end of a ``roleDefinitionId`` (lower-case); ``""`` when absent."""
    return str(role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


def assignment_scope(doc: Mapping[str, Any]) -> str:
    """The scope a role assignment is at: ``properties.scope``, else its id before the provider."""
    props = doc.get("properties") or {}
    scope = props.get("scope")
    if isinstance(scope, str) and scope.strip():
        return scope
    rid = str(doc.get("id", ""))
    cut = re.split(r"/providers/microsoft\.authorization/roleassignments/", rid, maxsplit=1,
                   flags=re.IGNORECASE)
    return cut[0] or "/"


def _identity_path(resource_id: str) -> tuple[str, str] | None:
    """``/subscriptions/s/identities/<oid>`` (Defender's identity findings) → (``/subscriptions/s``, oid)."""
    m = re.match(r"^(/subscriptions/[^/]+)/identities/([^/]+)/?$", resource_id.strip(), re.IGNORECASE)
    return (m.group(1), m.group(2)) if m else None


def _role_label(guid: str) -> str:
    return ROLE_NAMES.get(guid, guid)


@register
class RevokeRoleAssignments(ChildResourceAction[RevokeRoleAssignmentsParams]):
    """Revoke a principal's privileged Azure role assignments at or under the finding's scope.

    The principal is ``principal_id``, else the finding's principal, else the ``/identities/<objectId>``
    of an identity sub-assessment, else the single alert ``account`` entity with an ``aadUserId``.
    Each assignment becomes one delete Change carrying the full assignment document; undo re-creates it.

    ```yaml
    name: rbac-remove-blocked-owners
    description: Revoke privileged roles of blocked (disabled) accounts that Defender reports.
    match:
      recommendations:
        - 050ac097-3dda-4d24-ab6d-82568e7a50cf  # Blocked accounts with owner permissions should be removed
        - e52064aa-6853-e252-a11e-dffc675689c2  # Deprecated accounts with owner permissions should be removed
      resource_types: [subscription]
    risk: high
    approval:
      mode: slack
      approvers: [security-oncall]
      quorum: 2
      expires_after: 1d
    steps:
      - action: rbac.revoke-role-assignments
        params:
          roles: [Owner, User Access Administrator, Role Based Access Control Administrator, Contributor]
          scope: subscription
    ```
    """

    name = "rbac.revoke-role-assignments"
    summary = "Revoke one principal's privileged role assignments"
    # "subscription": subscription-scoped findings (identity recommendations); RBAC alerts also land on
    # resource groups and arbitrary resources, hence "*" (any ARM type).
    resource_types = ("subscription", "Microsoft.Resources/resourceGroups", "*")
    profile = ROLE_ASSIGNMENT
    writable = _CREATE_FIELDS

    # plan ------------------------------------------------------------------------------------------
    def plan(self, ctx: PlanContext, params: RevokeRoleAssignmentsParams) -> list[Change]:
        finding = ctx.finding
        principal = self.principal(finding, params)
        if principal.lower() in {p.strip().lower() for p in ctx.protected_principals}:
            raise ActionError(f"refusing to revoke roles of remediator's own identity {principal} "
                              "(it is a protected principal)",
                              action=self.name, resource_id=finding.resource_id)
        scope = self.scope(finding, params)
        wanted = params.role_ids()
        in_reach: list[dict[str, Any]] = []
        above: list[str] = []
        for doc in ctx.state.role_assignments(scope, principal):
            props = doc.get("properties") or {}
            if str(props.get("principalId", "")).strip().lower() != principal.lower():
                continue  # never another principal's, whatever the reader returned
            guid = role_guid(props.get("roleDefinitionId"))
            if guid not in wanted:
                continue
            at = assignment_scope(doc)
            if ids.is_under(at, scope):
                in_reach.append(doc)
            else:  # ARM lists assignments at, above (incl. management groups) and below the scope
                above.append(f"{_role_label(guid)} at {at}")
        above_note = f"; also holds {', '.join(sorted(above))} above {scope}, not revoked" if above else ""
        if not in_reach:
            if above:
                raise ActionError(f"principal {principal} holds {', '.join(sorted(above))}, above the scope "
                                  f"{scope}: out of this finding's reach (set scope to revoke it there)",
                                  action=self.name, resource_id=finding.resource_id)
            return []
        in_reach.sort(key=lambda d: ids.key(str(d["id"])))
        for doc in in_reach:
            self._refuse_last_owner(ctx.state, doc, principal)
        changes = []
        for doc in in_reach:
            role = _role_label(role_guid((doc.get("properties") or {}).get("roleDefinitionId")))
            changes.append(Change(
                action=self.name, resource_id=str(doc["id"]), operation="delete", before=doc, after=None,
                note=f"revoke {role} of {principal} at {assignment_scope(doc)}{above_note}"))
        return changes

    def principal(self, finding: Finding, params: RevokeRoleAssignmentsParams) -> str:
        """The object id to act on (see the class docstring for the order)."""
        if params.principal_id:
            return params.principal_id
        if finding.principal_id and _GUID.match(finding.principal_id.strip()):
            return finding.principal_id.strip()
        identity = _identity_path(finding.resource_id)
        if identity and _GUID.match(identity[1]):
            return identity[1]
        found: list[str] = []
        seen: set[str] = set()
        for entity in finding.entities:
            if str(entity.get("type", "")).lower() != "account" or entity.get("isvalid") is False:
                continue
            for key in _ENTITY_PRINCIPAL_KEYS:
                value = str(entity.get(key) or "").strip()
                if _GUID.match(value) and value != _NIL_GUID and value.lower() not in seen:
                    seen.add(value.lower())
                    found.append(value)
        if len(found) > 1:
            raise ActionError(f"several account entities ({', '.join(found)}): set principal_id in the step",
                              action=self.name, resource_id=finding.resource_id)
        if found:
            return found[0]
        raise ActionError("no principal to revoke: the finding has no principal id, no "
                          "/identities/<objectId> resource and no account entity with an aadUserId; "
                          "set principal_id",
                          action=self.name, resource_id=finding.resource_id)

    def scope(self, finding: Finding, params: RevokeRoleAssignmentsParams) -> str:
        """The scope to revoke at or under."""
        wanted = params.scope or "resource"
        if wanted.startswith("/"):
            return wanted.rstrip("/") or "/"
        identity = _identity_path(finding.resource_id)
        resource = identity[0] if identity else finding.resource_id.rstrip("/")
        if wanted == "resource":
            return resource
        rid = ids.parse(resource)
        if not rid.subscription_id:
            raise ActionError(f"scope {wanted!r}: the finding's resource is not in a subscription",
                              action=self.name, resource_id=finding.resource_id)
        if wanted == "subscription":
            return f"/subscriptions/{rid.subscription_id}"
        if not rid.resource_group:
            raise ActionError("scope 'resource-group': the finding's resource is not in a resource group",
                              action=self.name, resource_id=finding.resource_id)
        return f"/subscriptions/{rid.subscription_id}/resourceGroups/{rid.resource_group}"

    def _refuse_last_owner(self, state: StateReader, doc: Mapping[str, Any], principal: str) -> None:
        """Never leave a subscription without an Owner (at the subscription or above)."""
        props = doc.get("properties") or {}
        at = assignment_scope(doc)
        sub = ids.parse(at).subscription_id
        if role_guid(props.get("roleDefinitionId")) != OWNER or not sub:
            return
        if not ids.same(at, f"/subscriptions/{sub}"):
            return
        for other in state.role_assignments(at):
            oprops = other.get("properties") or {}
            other_at = assignment_scope(other)
            below = ids.is_under(other_at, at) and not ids.same(other_at, at)
            if (str(oprops.get("principalId", "")).strip().lower() != principal.lower()
                    and role_guid(oprops.get("roleDefinitionId")) == OWNER and not below):
                return  # another Owner at the subscription or inherited from above it
        raise ActionError(f"refusing to revoke the last Owner of subscription {sub} ({principal}); add "
                          "another owner first", action=self.name, resource_id=str(doc.get("id", "")))

    # what the child-resource base compares -------------------------------------------------------------
    def mismatch(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> str | None:
        want_props, have_props = want.get("properties") or {}, have.get("properties") or {}
        have_principal, want_principal = str(have_props.get("principalId", "")), str(want_props.get("principalId", ""))
        if have_principal.lower() != want_principal.lower():
            return f"is for principal {have_principal}, planned {want_principal}"
        have_role = role_guid(have_props.get("roleDefinitionId"))
        want_role = role_guid(want_props.get("roleDefinitionId"))
        if have_role != want_role:
            return f"has role {have_role}, planned {want_role}"
        return None

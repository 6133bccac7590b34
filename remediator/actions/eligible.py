"""``rbac.make-eligible``: standing privileged access on AI scopes becomes just-in-time (PIM eligible).

The finding is one role assignment (the backlog scan's ``authorizationresources`` row, or a role assignment
write event: ``type`` ``microsoft.authorization/roleassignments/write``). The step acts when the role is one
of ``roles`` and the assignment's scope is in the playbook's scopes (every criterion given must hold:
``resource_types``, the scope is such a resource or under one; ``resource_groups``, the scope is in one of
them; ``tags``, the scope resource, a resource it is under, or its resource group carries all of them), and
when it is *standing*: its PIM schedule instance (``roleAssignmentScheduleInstances``) has no end and is not
an activation. A time-bound or activated assignment is already just-in-time: nothing to do. Without a schedule
instance the plan refuses (it cannot tell).

* **A user or a group** (``principalType`` User or Group): ``PUT {scope}/providers/Microsoft.Authorization/
  roleEligibilityScheduleRequests/{guid}`` (api-version 2020-10-01), ``requestType: AdminAssign``, the same
  principal, role, scope and condition, ``AfterDuration`` of ``duration``, the playbook's ``justification``
  (Azure/azure-rest-api-specs …/Microsoft.Authorization/stable/2020-10-01/examples/
  PutRoleEligibilityScheduleRequest.json); the eligibility schedule is then read back
  (``roleEligibilitySchedules``, GetRoleEligibilitySchedulesByScope.json), and only then is the active
  assignment deleted. A failure before the delete leaves the active assignment in place and says so; a failed
  delete says that the principal now holds both. Undo re-creates the active assignment (same name, role,
  principal, condition), then removes the eligibility (``AdminRemove``).
* **A service principal or managed identity** is never made eligible: Microsoft documents that "you can't
  create eligible role assignments for applications, service principals, or managed identities because they
  can't perform the activation steps" (learn.microsoft.com role-based-access-control pim-integration). The
  playbook's ``service_principals`` chooses ``time-bound``: a ``roleAssignmentScheduleRequests`` request of
  type ``AdminUpdate`` gives the existing active assignment an end (``AfterDuration`` of
  ``time_bound_duration``; PIM answers ``RoleAssignmentExists`` to an ``AdminAssign`` beside a permanent
  assignment of the same principal, role and scope, so the assignment is updated in place rather than
  re-created and deleted, and the principal never loses access in between); undo makes it permanent again
  (``AdminUpdate``, ``NoExpiration``). Or ``remove``: the assignment is deleted; undo re-creates it.

The plan names the PIM role settings that govern activation, read live at the scope
(``roleManagementPolicyAssignments`` of the role, GetRoleManagementPolicyAssignmentByScope.json): approval
(``Approval_EndUser_Assignment``), MFA and justification (``Enablement_EndUser_Assignment``), the longest
activation (``Expiration_EndUser_Assignment``); a ``duration`` over the eligibility maximum
(``Expiration_Admin_Eligibility``) is refused in the plan. The settings are part of what is approved: a
change to them before the apply makes the plan stale.

An assignment remediator itself re-created (``createdBy`` is the executor: an approved undo, of this action or
of ``rbac.revoke-role-assignments``) is left standing with a warning: the undo was the decision, and its write
event must not open the same request again.

Guard rails (the plan refuses, with the reason, recorded like any plan error): never the last Owner of a
scope (no other principal's Owner assignment at or above it); never remediator's own identities (the
executor, ``executor_principal_id``) or a protected principal (``protected_principals``: the broker, the
host); never an emergency-access account (``break_glass_principals``).

Privilege: the executor's grant is User Access Administrator at the assignment's scope, the narrowest
built-in role holding ``Microsoft.Authorization/roleEligibilityScheduleRequests/write``: Role Based Access
Control Administrator holds only ``roleAssignments/write`` and ``/delete`` (MicrosoftDocs/azure-docs
articles/role-based-access-control/built-in-roles/privileged.md); User Access Administrator holds
``Microsoft.Authorization/*``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import ApplyResult, BuiltinRole, Params, PlanContext, label, no_items, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction, props
from remediator.actions.profiles import ROLE_ASSIGNMENT
from remediator.actions.rbac import assignment_scope
from remediator.azure.reader import register_extension_list
from remediator.azure.state import StateReader
from remediator.checks import params as checks
from remediator.errors import ActionError, StateError
from remediator.findings import roles as privileged
from remediator.findings.roles import role_guid

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

PIM_API = "2020-10-01"
SCHEDULES = "Microsoft.Authorization/roleEligibilitySchedules"
INSTANCES = "Microsoft.Authorization/roleAssignmentScheduleInstances"
POLICIES = "Microsoft.Authorization/roleManagementPolicyAssignments"
for _type in (SCHEDULES, INSTANCES, POLICIES):  # listed at a scope with a generic GET (LiveState.list)
    register_extension_list(_type, PIM_API)

# privileged.md: "Lets you manage user access to Azure resources" (*/read, Microsoft.Authorization/*)
USER_ACCESS_ADMINISTRATOR = BuiltinRole("User Access Administrator", privileged.USER_ACCESS_ADMINISTRATOR)
ELIGIBLE_TYPES = frozenset({"user", "group"})
PERMANENT, ELIGIBLE, TIME_BOUND = "active (permanent)", "eligible", "active (time-bound)"
DEFAULT_JUSTIFICATION = "Standing privileged access on an AI scope made eligible (just-in-time, PIM) by remediator"
_NAMES = {n.lower(): g for g, n in privileged.PRIVILEGED_ROLES.items()}
PIM_REFUSED = frozenset({"Denied", "AdminDenied", "Failed", "Canceled", "Revoked", "TimedOut", "Invalid",
                         "PendingApproval", "PendingApprovalProvisioning", "PendingAdminDecision"})


class MakeEligibleParams(Params):
    roles: list[str] = Field(default=list(checks.ELIGIBLE_ROLE_NAMES), min_length=1)
    """Roles whose standing assignments to change: Owner, Contributor, User Access Administrator, Role Based
    Access Control Administrator, Azure AI Administrator, Key Vault Administrator, Storage Blob Data Owner, or
    role definition GUIDs. Default: all of them."""
    resource_types: list[str] = Field(default_factory=no_items)
    """The assignment's scope is a resource of one of these ARM types, or under one."""
    resource_groups: list[str] = Field(default_factory=no_items)
    """The assignment's scope is in one of these resource groups (or is the group)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """The scope resource, a resource it is under, or its resource group carries every one of these tags (values
    compared without case)."""
    duration: str = "P365D"
    """How long the eligibility lasts (ISO 8601, e.g. P365D); at most the role setting's eligibility maximum."""
    justification: str = Field(default=DEFAULT_JUSTIFICATION, min_length=1, max_length=400)
    """The justification PIM records on the eligibility request."""
    service_principals: Literal["time-bound", "remove"] = "time-bound"
    """What happens to a service principal's or managed identity's assignment (they cannot be eligible): an
    end date (``time_bound_duration``), or removal."""
    time_bound_duration: str = "P30D"
    """How long a service principal keeps its (now time-bound) assignment (ISO 8601)."""

    _roles = field_validator("roles")(checks.eligible_roles)
    _types = field_validator("resource_types")(checks.resource_type_names)
    _groups = field_validator("resource_groups")(checks.resource_group_names)
    _duration = field_validator("duration", "time_bound_duration")(checks.pim_duration)
    _scope = model_validator(mode="after")(checks.some_scope)

    def role_ids(self) -> frozenset[str]:
        return frozenset(_NAMES.get(r.strip().lower(), r.strip().lower()) for r in self.roles)


def _pim(doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    value = (doc or {}).get("pim")
    return value if isinstance(value, Mapping) else {}


def _role_name(guid: str) -> str:
    return privileged.PRIVILEGED_ROLES.get(guid, guid)


def _end(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@register
class MakeEligible(ChildResourceAction[MakeEligibleParams]):
    """Make a standing privileged role assignment PIM-eligible (users, groups); time-bound or remove it
    (service principals, managed identities). See the module docstring.

    ```yaml
    name: rbac-make-ai-access-eligible
    description: Standing privileged access to ML workspaces and training storage becomes just-in-time (PIM).
    match:
      operations: [Microsoft.Authorization/roleAssignments/write]
      resource_types: [Microsoft.Authorization/roleAssignments]
    risk: high
    approval: {mode: slack, approvers: [security-oncall, security-leads], quorum: 2, expires_after: 2d}
    steps:
      - action: rbac.make-eligible
        params:
          resource_types: [Microsoft.MachineLearningServices/workspaces, Microsoft.Storage/storageAccounts]
          tags: {workload: ml-training}
          duration: P90D
          service_principals: time-bound
    ```
    """

    name = "rbac.make-eligible"
    summary = "Make standing privileged access PIM-eligible (just-in-time)"
    profile = ROLE_ASSIGNMENT
    role = USER_ACCESS_ADMINISTRATOR
    permissions = (
        "Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleAssignments/delete",
        "Microsoft.Authorization/roleEligibilityScheduleRequests/write",
        "Microsoft.Authorization/roleEligibilityScheduleRequests/read",
        "Microsoft.Authorization/roleEligibilitySchedules/read",
        "Microsoft.Authorization/roleAssignmentScheduleRequests/write",
        "Microsoft.Authorization/roleAssignmentScheduleInstances/read",
        "Microsoft.Authorization/roleManagementPolicyAssignments/read",
    )
    writable = ("roleDefinitionId", "principalId", "principalType", "description", "condition", "conditionVersion",
                "delegatedManagedIdentityResourceId")
    id_hint = "…/providers/Microsoft.Authorization/roleAssignments/<name>"

    # plan ------------------------------------------------------------------------------------------------
    def plan(self, ctx: PlanContext, params: MakeEligibleParams) -> list[Change]:
        rid = ctx.finding.resource_id
        self.check_id(rid)
        doc = ctx.state.get(rid)
        if doc is None:
            return []  # gone already: nothing standing
        p = props(doc)
        principal = str(p.get("principalId") or "").strip()
        kind = str(p.get("principalType") or "")
        guid = role_guid(p.get("roleDefinitionId"))
        if guid not in params.role_ids():
            return []
        scope = assignment_scope(doc)
        if not self.in_scopes(ctx.state, scope, params):
            return []
        role = _role_name(guid)
        self._guard(ctx, doc, principal=principal, role=role, scope=scope)
        executor = str(ctx.settings.get("executor_principal_id") or "").strip().lower()
        if executor and str(p.get("createdBy") or "").strip().lower() == executor:
            ctx.warn(f"{role} of {principal} at {scope} was re-created by remediator (an approved undo): left "
                     "standing; a new decision to change it is a request by hand (rbac.revoke-role-assignments)")
            return []
        if not self._standing(ctx.state, doc, principal=principal, guid=guid, scope=scope):
            return []
        if not kind:
            raise ActionError(f"the assignment names no principalType: cannot tell whether {principal} may be "
                              "eligible (users and groups only); nothing planned", action=self.name, resource_id=rid)
        before = {**json_copy(dict(doc)), "pim": {"membership": PERMANENT}}
        who = f"{kind} {principal}"
        if kind.lower() in ELIGIBLE_TYPES:
            activation = self._activation(ctx, guid=guid, role=role, scope=scope, duration=params.duration)
            after = {**json_copy(dict(doc)), "pim": {"membership": ELIGIBLE, "duration": params.duration,
                                                     "justification": params.justification,
                                                     "activation": activation}}
            note = (f"make {role} of {who} at {scope} eligible for {params.duration} (PIM), then remove the "
                    f"standing assignment; activation: {activation}")
            return [Change(action=self.name, resource_id=rid, operation="update", before=before, after=after,
                           note=note)]
        if params.service_principals == "remove":
            return [Change(action=self.name, resource_id=rid, operation="delete", before=json_copy(dict(doc)),
                           after=None, note=f"remove {role} of {who} at {scope} (a {kind} cannot be eligible)")]
        after = {**json_copy(dict(doc)), "pim": {"membership": TIME_BOUND, "duration": params.time_bound_duration}}
        return [Change(action=self.name, resource_id=rid, operation="update", before=before, after=after,
                       note=f"make {role} of {who} at {scope} time-bound ({params.time_bound_duration}; a {kind} "
                            "cannot be eligible)")]

    def in_scopes(self, state: StateReader, scope: str, params: MakeEligibleParams) -> bool:
        """Whether ``scope`` meets every scope criterion the playbook gives (module docstring)."""
        rid = ids.parse(scope)
        if params.resource_types:
            wanted = {ids.type_key(t) for t in params.resource_types}
            node: ids.ResourceId | None = rid
            found = False
            while node is not None and node.types:
                if ids.type_key(node.type) in wanted:
                    found = True
                    break
                node = node.parent()
            if not found:
                return False
        if params.resource_groups and (rid.resource_group or "").lower() not in {
                g.lower() for g in params.resource_groups}:
            return False
        if params.tags:
            holders: list[str] = []
            walk: ids.ResourceId | None = rid
            while walk is not None and walk.types:  # the scope resource and the resources it is under
                holders.append(walk.id)
                walk = walk.parent()
            if rid.resource_group:
                holders.append(f"/subscriptions/{rid.subscription_id}/resourceGroups/{rid.resource_group}")
            if not any(self._tagged(state, h, params.tags) for h in holders):
                return False
        return True

    @staticmethod
    def _tagged(state: StateReader, resource_id: str, wanted: Mapping[str, str]) -> bool:
        doc = state.get(resource_id)
        tags = {str(k).lower(): str(v).lower() for k, v in ((doc or {}).get("tags") or {}).items()}
        return all(tags.get(k.lower()) == v.lower() for k, v in wanted.items())

    def _guard(self, ctx: PlanContext, doc: Mapping[str, Any], *, principal: str, role: str, scope: str) -> None:
        """The guard rails: remediator's own identities, protected and break-glass principals, the last Owner."""
        rid, who = str(doc.get("id", "")), principal.lower()
        executor = str(ctx.settings.get("executor_principal_id") or "").lower()
        if who and who == executor:
            raise ActionError(f"refusing to change {role} of {principal}: it is remediator's own executor identity",
                              action=self.name, resource_id=rid)
        if who in {p.strip().lower() for p in ctx.protected_principals}:
            raise ActionError(f"refusing to change {role} of {principal}: it is a protected principal "
                              "(remediator's broker or host, or listed in protected_principals)",
                              action=self.name, resource_id=rid)
        if who in {str(p).strip().lower() for p in ctx.settings.get("break_glass_principals") or ()}:
            raise ActionError(f"refusing to change {role} of {principal}: it is an emergency-access (break-glass) "
                              "account (break_glass_principals)", action=self.name, resource_id=rid)
        if role_guid(props(doc).get("roleDefinitionId")) != privileged.OWNER:
            return
        for other in ctx.state.role_assignments(scope):
            op = props(other)
            at = assignment_scope(other)
            if (str(op.get("principalId", "")).strip().lower() != who and role_guid(op.get("roleDefinitionId"))
                    == privileged.OWNER and (at == "/" or ids.is_under(scope, at))):
                return  # another Owner at the scope or inherited from above it
        raise ActionError(f"refusing to change Owner of {principal} at {scope}: it is the last Owner of that scope "
                          "(no other Owner assignment at or above it); add another owner first",
                          action=self.name, resource_id=rid)

    def _standing(self, state: StateReader, doc: Mapping[str, Any], *, principal: str, guid: str,
                  scope: str) -> bool:
        """Whether PIM reports the assignment as permanent and assigned (not time-bound, not an activation)."""
        rid = str(doc.get("id", ""))
        try:
            instances = state.list(INSTANCES, scope)
        except StateError as e:
            raise ActionError(f"cannot tell whether the assignment is standing: {e}", action=self.name,
                              resource_id=rid) from None
        mine = [i for i in instances if ids.same(str(props(i).get("originRoleAssignmentId") or ""), rid)
                or (str(props(i).get("principalId", "")).lower() == principal.lower()
                    and role_guid(props(i).get("roleDefinitionId")) == guid
                    and ids.same(str(props(i).get("scope") or ""), scope))]
        if not mine:
            raise ActionError(f"cannot tell whether the assignment is standing: PIM lists no role assignment schedule "
                              f"instance for it at {scope}; for an offline plan save them with the state (az rest "
                              f"--url '{scope}/providers/{INSTANCES}?api-version={PIM_API}'); nothing planned",
                              action=self.name, resource_id=rid)
        return all(str(props(i).get("assignmentType") or "Assigned") == "Assigned"
                   and _end(props(i).get("endDateTime")) is None for i in mine)

    def _activation(self, ctx: PlanContext, *, guid: str, role: str, scope: str, duration: str) -> str:
        """The PIM role settings that govern activation, in words (and the eligibility maximum, checked)."""
        try:
            found = [d for d in ctx.state.list(POLICIES, scope) if role_guid(props(d).get("roleDefinitionId")) == guid]
        except StateError as e:
            ctx.warn(f"PIM role settings of {role} at {scope} not read ({e}): activation rules not shown")
            return "PIM role settings not read"
        if not found:
            ctx.warn(f"PIM lists no role settings of {role} at {scope}: activation rules not shown")
            return "PIM role settings not found"
        activation, maximum = role_settings(found[0])
        if maximum and _minutes(duration) > _minutes(maximum):
            raise ActionError(f"duration {duration} is longer than the eligibility maximum {maximum} of {role}'s PIM "
                              f"settings at {scope} (Expiration_Admin_Eligibility); set duration to at most {maximum}",
                              action=self.name, resource_id=ctx.finding.resource_id)
        return activation

    # apply ----------------------------------------------------------------------------------------------
    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        if change.operation != "update":
            return super().apply(clients, change)  # remove (delete), or undo's re-create (create)
        self.check_id(change.resource_id)
        want, was = _pim(change.after).get("membership"), _pim(change.before).get("membership")
        if want == ELIGIBLE and was == PERMANENT:
            return self._make_eligible(clients, change)
        if want == PERMANENT and was == ELIGIBLE:
            return self._restore_active(clients, change)
        if {want, was} == {PERMANENT, TIME_BOUND}:
            return self._update_schedule(clients, change, str(_pim(change.after).get("duration") or "")
                                         if want == TIME_BOUND else None)
        raise ActionError(f"cannot apply a change from {was!r} to {want!r}", action=self.name,
                          resource_id=change.resource_id)

    def _client(self, clients: ArmClients, scope: str) -> Any:
        return clients.authorization(ids.parse(scope).subscription_id or "")

    def _make_eligible(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415  (lazy SDK import)
        from azure.mgmt.authorization.v2020_10_01.models import (  # noqa: PLC0415
            RoleEligibilityScheduleRequest,
            RoleEligibilityScheduleRequestPropertiesScheduleInfo,
            RoleEligibilityScheduleRequestPropertiesScheduleInfoExpiration,
        )

        from remediator.azure.lro import write  # noqa: PLC0415
        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        rid, doc, pim = change.resource_id, change.before or {}, _pim(change.after)
        p, scope = props(doc), assignment_scope(doc)
        principal, role = str(p.get("principalId")), _role_name(role_guid(p.get("roleDefinitionId")))
        client = self._client(clients, scope)
        kept = "; the active assignment was left in place"
        schedule = self._eligibility(client, p, scope)
        request = "(an earlier delivery's)"
        if schedule is None:
            request = str(uuid.uuid4())
            body = RoleEligibilityScheduleRequest(
                principal_id=principal, role_definition_id=p.get("roleDefinitionId"), request_type="AdminAssign",
                schedule_info=RoleEligibilityScheduleRequestPropertiesScheduleInfo(
                    start_date_time=datetime.now(UTC),
                    expiration=RoleEligibilityScheduleRequestPropertiesScheduleInfoExpiration(
                        type="AfterDuration", duration=str(pim.get("duration")))),
                justification=str(pim.get("justification") or DEFAULT_JUSTIFICATION)[:500],
                condition=p.get("condition"), condition_version=p.get("conditionVersion"))
            try:
                made = client.role_eligibility_schedule_requests.create(scope, request, body)
            except HttpResponseError as e:
                raise ActionError(f"PIM eligibility request for {role} of {principal} failed: {http_error_line(e)}"
                                  f"{kept}", action=self.name, resource_id=rid) from None
            status = str(made.status or "")
            if status in PIM_REFUSED:
                raise ActionError(f"PIM eligibility request {request} for {role} of {principal} is {status}{kept}",
                                  action=self.name, resource_id=rid)
            schedule = self._eligibility(client, p, scope)
            if schedule is None:
                raise ActionError(f"PIM eligibility request {request} for {role} of {principal} is {status or '?'}, "
                                  f"but no eligibility schedule exists at {scope}{kept}", action=self.name,
                                  resource_id=rid)
        try:
            write(clients, "DELETE", rid, self.api_version)
        except HttpResponseError as e:
            raise ActionError(f"{principal} is now eligible for {role} at {scope} (schedule {schedule}), but "
                              f"deleting the active assignment failed: {http_error_line(e)}; it holds both until the "
                              "delete is retried", action=self.name, resource_id=rid) from None
        log.info("made %s of %s at %s eligible (%s) and deleted %s", role, principal, scope, schedule, rid)
        return ApplyResult(change=change, detail=f"made {role} of {principal} eligible at {label(scope) or scope} "
                                                 f"(PIM request {request}, schedule {ids.parse(schedule).name}) and "
                                                 "deleted the active assignment")

    def _restore_active(self, clients: ArmClients, change: Change) -> ApplyResult:
        """Undo: re-create the active assignment first, then remove the eligibility (never a moment without)."""
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415
        from azure.mgmt.authorization.v2020_10_01.models import RoleEligibilityScheduleRequest  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        created = super().apply(clients, Change(action=self.name, resource_id=change.resource_id, operation="create",
                                                before=None, after=change.after))
        p = props(change.after)
        scope = assignment_scope(change.after or {})
        principal, role = str(p.get("principalId")), _role_name(role_guid(p.get("roleDefinitionId")))
        client = self._client(clients, scope)
        if self._eligibility(client, p, scope) is not None:
            body = RoleEligibilityScheduleRequest(principal_id=principal, role_definition_id=p.get("roleDefinitionId"),
                                                  request_type="AdminRemove",
                                                  justification="remediator: undo of making the assignment eligible")
            try:
                client.role_eligibility_schedule_requests.create(scope, str(uuid.uuid4()), body)
            except HttpResponseError as e:
                raise ActionError(f"re-created the active assignment, but removing the eligibility of {role} of "
                                  f"{principal} failed: {http_error_line(e)}", action=self.name,
                                  resource_id=change.resource_id) from None
        return ApplyResult(change=change,
                           detail=f"{created.detail} and removed the eligibility of {role} of {principal}")

    def _update_schedule(self, clients: ArmClients, change: Change, duration: str | None) -> ApplyResult:
        """``AdminUpdate`` of the active assignment's schedule: an end after ``duration``, or none (permanent)."""
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415
        from azure.mgmt.authorization.v2020_10_01.models import (  # noqa: PLC0415
            RoleAssignmentScheduleRequest,
            RoleAssignmentScheduleRequestPropertiesScheduleInfo,
            RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration,
        )

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        p = props(change.after)
        scope = assignment_scope(change.after or {})
        principal, role = str(p.get("principalId")), _role_name(role_guid(p.get("roleDefinitionId")))
        expiration = RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration(
            type="AfterDuration", duration=duration) if duration else \
            RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration(type="NoExpiration")
        body = RoleAssignmentScheduleRequest(
            principal_id=principal, role_definition_id=p.get("roleDefinitionId"), request_type="AdminUpdate",
            schedule_info=RoleAssignmentScheduleRequestPropertiesScheduleInfo(start_date_time=datetime.now(UTC),
                                                                              expiration=expiration),
            justification=("remediator: a service principal cannot be eligible; its assignment becomes time-bound"
                           if duration else "remediator: undo of the time-bound assignment"),
            condition=p.get("condition"), condition_version=p.get("conditionVersion"))
        name = str(uuid.uuid4())
        try:
            out = self._client(clients, scope).role_assignment_schedule_requests.create(scope, name, body)
        except HttpResponseError as e:
            raise ActionError(f"PIM AdminUpdate of {role} of {principal} failed: {http_error_line(e)}; the "
                              "assignment is unchanged", action=self.name, resource_id=change.resource_id) from None
        status = str(out.status or "")
        if status in PIM_REFUSED:
            raise ActionError(f"PIM AdminUpdate {name} of {role} of {principal} is {status}; the assignment is "
                              "unchanged", action=self.name, resource_id=change.resource_id)
        what = f"time-bound ({duration})" if duration else "permanent again"
        return ApplyResult(change=change, detail=f"made {role} of {principal} at {scope} {what} (PIM request {name})")

    def _eligibility(self, client: Any, p: Mapping[str, Any], scope: str) -> str | None:
        """The id of a current eligibility schedule of the principal's role at exactly ``scope``, or None."""
        principal, guid = str(p.get("principalId", "")).lower(), role_guid(p.get("roleDefinitionId"))
        now = datetime.now(UTC)
        for s in client.role_eligibility_schedules.list_for_scope(scope, filter=f"principalId eq '{principal}'"):
            end = s.end_date_time
            if (str(s.principal_id or "").lower() == principal and role_guid(s.role_definition_id) == guid
                    and ids.same(str(s.scope or ""), scope) and str(s.status or "Provisioned") == "Provisioned"
                    and (end is None or end > now)):
                return str(s.id)
        return None

    # verify and undo -------------------------------------------------------------------------------------
    def verify(self, state: StateReader, change: Change) -> str | None:
        if change.operation != "update":
            return super().verify(state, change)
        want = _pim(change.after).get("membership")
        doc = change.after or {}
        p, scope = props(doc), assignment_scope(doc)
        eligible = [s for s in state.list(SCHEDULES, scope)
                    if str(props(s).get("principalId", "")).lower() == str(p.get("principalId", "")).lower()
                    and role_guid(props(s).get("roleDefinitionId")) == role_guid(p.get("roleDefinitionId"))
                    and ids.same(str(props(s).get("scope") or ""), scope)
                    and (_end(props(s).get("endDateTime")) or datetime.max.replace(tzinfo=UTC)) > datetime.now(UTC)]
        current = state.get(change.resource_id)
        if want == ELIGIBLE:
            if not eligible:
                return f"no eligibility schedule of {p.get('principalId')} at {scope}"
            return None if current is None else "the active assignment still exists"
        if current is None:
            return "the active assignment does not exist"
        instances = [i for i in state.list(INSTANCES, scope)
                     if ids.same(str(props(i).get("originRoleAssignmentId") or ""), change.resource_id)]
        ends = [_end(props(i).get("endDateTime")) for i in instances]
        if want == TIME_BOUND:
            return None if ends and all(ends) else "the assignment has no end date in PIM"
        if _pim(change.before).get("membership") == ELIGIBLE and eligible:
            return "the eligibility still exists"
        return None if not any(ends) else "the assignment still has an end date in PIM"

    def undo_note(self, change: Change) -> str:
        was = _pim(change.before).get("membership")
        return {PERMANENT: "the standing assignment comes back; the eligibility or end date goes"}.get(str(was), "")

    def weighs(self, change: Change) -> str:
        p = props(change.before)
        role, principal = _role_name(role_guid(p.get("roleDefinitionId"))), p.get("principalId")
        want = _pim(change.after).get("membership")
        if change.operation == "delete":
            return f"removes {role} of {principal}: what runs as it loses that access"
        if want == ELIGIBLE:
            return f"ends the standing {role} of {principal}: from now on they activate it through PIM"
        if want == TIME_BOUND:
            return f"{role} of {principal} ends after {_pim(change.after).get('duration')}"
        return ""


def role_settings(doc: Mapping[str, Any]) -> tuple[str, str | None]:
    """A ``roleManagementPolicyAssignments`` document's activation rules in words (approval and its approvers,
    MFA, justification, the longest activation) and the eligibility maximum (None: permanent eligibility
    allowed). Rule ids as in GetRoleManagementPolicyAssignmentByScope.json."""
    rules = {str(r.get("id")): r for r in props(doc).get("effectiveRules") or [] if isinstance(r, Mapping)}
    approval = (rules.get("Approval_EndUser_Assignment") or {}).get("setting") or {}
    approvers = [str(a.get("description") or a.get("id")) for stage in approval.get("approvalStages") or []
                 for a in stage.get("primaryApprovers") or [] if isinstance(a, Mapping)]
    enabled = {str(x) for x in (rules.get("Enablement_EndUser_Assignment") or {}).get("enabledRules") or []}
    longest = (rules.get("Expiration_EndUser_Assignment") or {}).get("maximumDuration") or "?"
    eligibility = rules.get("Expiration_Admin_Eligibility") or {}
    maximum = eligibility.get("maximumDuration") if eligibility.get("isExpirationRequired") else None
    parts = [f"approval by {', '.join(approvers) or 'an approver'}" if approval.get("isApprovalRequired")
             else "no approval", "MFA" if "MultiFactorAuthentication" in enabled else "no MFA",
             *(["justification"] if "Justification" in enabled else []), f"at most {longest}"]
    return ", ".join(parts), str(maximum) if maximum else None


def minutes(duration: str) -> int:
    """Minutes of an ISO 8601 duration (see :func:`_minutes`)."""
    return _minutes(duration)


def _minutes(duration: str) -> int:
    """Minutes of an ISO 8601 duration of days, hours and minutes (``P365D``, ``PT8H``); years and months as
    365 and 30 days (PIM's settings use days)."""
    m = re.match(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$", duration.strip().upper())
    if m is None:
        return 0
    y, mo, d, h, mi = (int(g or 0) for g in m.groups())
    return ((y * 365 + mo * 30 + d) * 24 + h) * 60 + mi

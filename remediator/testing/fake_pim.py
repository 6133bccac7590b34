"""FakeArm's PIM eligibility, schedule instances and role settings (``arm.pim``).

Shapes follow ``Microsoft.Authorization`` 2020-10-01 (Azure/azure-rest-api-specs
specification/authorization/resource-manager/Microsoft.Authorization/stable/2020-10-01/examples:
PutRoleEligibilityScheduleRequest.json, GetRoleEligibilitySchedulesByScope.json,
GetRoleAssignmentScheduleInstancesByScope.json, GetRoleManagementPolicyAssignmentByScope.json):

* ``PUT {scope}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{name}`` → 201 with the
  request. ``AdminAssign`` for a ``User`` or ``Group`` creates a ``roleEligibilitySchedules`` document and its
  ``roleEligibilityScheduleInstances`` document (what ``pim-activate`` lists), status ``Provisioned`` (or the
  outcome queued with ``arm.pim.eligibility_outcome(status)``); a service principal or managed identity → 400
  (PIM cannot make them eligible: they cannot activate); a duration over the role setting's
  ``Expiration_Admin_Eligibility`` maximum → 400 ``RoleAssignmentRequestPolicyValidationFailed``
  (ExpirationRule); an eligibility that exists → 400 ``RoleAssignmentExists``. ``AdminRemove`` deletes both
  (400 ``RoleAssignmentDoesNotExist`` without one). ``GET`` reads a request back.
* ``GET {scope}/providers/Microsoft.Authorization/roleEligibilitySchedules`` (``$filter`` ``principalId eq
  '…'``, ``atScope()``): schedules at or above the scope, and below it without ``atScope()``.
* ``GET {scope}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances`` (same filters): one
  instance per active role assignment, ``assignmentType`` ``Activated`` for a ``SelfActivate`` grant and
  ``Assigned`` otherwise, ``endDateTime`` the grant's end (``null``: permanent), ``originRoleAssignmentId``
  the assignment's id.
* ``AdminUpdate`` of a ``roleAssignmentScheduleRequests`` (``FakeArm``'s PIM requests): the principal's
  active assignment of the role at the scope gets the request's schedule (an end date: time-bound), as
  PIM's update of an assignment does; 400 ``RoleAssignmentDoesNotExist`` without one.
* ``GET {scope}/providers/Microsoft.Authorization/roleManagementPolicyAssignments``: the role settings
  seeded with ``arm.pim.set_policy(scope, role, …)`` at or above the scope, shaped as the example (effective
  rules: ``Approval_EndUser_Assignment``, ``Enablement_EndUser_Assignment``, ``Expiration_EndUser_Assignment``,
  ``Expiration_Admin_Eligibility``), then stored ``roleManagementPolicyAssignment`` documents (``arm.load``, the
  spec example's shape) whose ``properties.scope`` is at or above the scope, then, as PIM lists settings for
  every role, the fake's defaults (no approval, MFA and justification, at most PT8H, eligible up to P365D) for the
  other privileged roles.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from remediator import ids
from remediator.findings.roles import PRIVILEGED_ROLES

if TYPE_CHECKING:
    from remediator.testing.fake_arm import FakeArm

_AUTHZ = r"^(?P<scope>.*?)/providers/microsoft\.authorization/"
_ELIGIBILITY_REQUEST = re.compile(_AUTHZ + r"roleeligibilityschedulerequests/(?P<name>[^/]+)/?$", re.IGNORECASE)
_COLLECTION = re.compile(_AUTHZ + r"(?P<kind>roleeligibilityschedules|roleassignmentscheduleinstances|"
                                  r"rolemanagementpolicyassignments)/?$", re.IGNORECASE)
_ONE_SCHEDULE = re.compile(_AUTHZ + r"roleeligibilityschedules/(?P<name>[^/]+)/?$", re.IGNORECASE)
_FILTER_PRINCIPAL = re.compile(r"^principalId\s+eq\s+'([^']*)'$", re.IGNORECASE)
SCHEDULES = "microsoft.authorization/roleeligibilityschedules"
INSTANCES = "microsoft.authorization/roleeligibilityscheduleinstances"
ROLE_ASSIGNMENTS = "microsoft.authorization/roleassignments"
ELIGIBLE_TYPES = frozenset({"user", "group"})
POLICY_TYPES = frozenset({"microsoft.authorization/rolemanagementpolicyassignment",
                          "microsoft.authorization/rolemanagementpolicyassignments"})


@dataclass(frozen=True, slots=True)
class RoleSetting:
    """One role's PIM settings at a scope (``arm.pim.set_policy``)."""

    scope: str
    role: str
    approval: bool = False
    approvers: tuple[str, ...] = ()
    mfa: bool = True
    justification: bool = True
    max_activation: str = "PT8H"
    max_eligibility: str | None = "P365D"  # None: permanent eligibility allowed


def _guid(role: Any) -> str:
    return str(role or "").rstrip("/").rsplit("/", 1)[-1].lower()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Pim:
    """The eligibility part of a :class:`FakeArm` (``arm.pim``); see the module docstring."""

    def __init__(self, arm: FakeArm, *, reply: Callable[..., Exception], error: Callable[..., Exception],
                 schedule: Callable[[Any, datetime], tuple[datetime, datetime | None]]) -> None:
        self.arm = arm
        self._reply = reply
        self._error = error
        self._schedule = schedule
        self._requests: dict[str, dict[str, Any]] = {}
        self._settings: list[RoleSetting] = []
        self._outcomes: list[str] = []
        self.ends: dict[str, datetime | None] = {}  # AdminUpdate: assignment key → its new end

    # -- seeding and faults ---------------------------------------------------------------------------
    def set_policy(self, scope: str, role: str, **rules: Any) -> RoleSetting:
        """Seed the PIM settings of ``role`` (a GUID or definition id) at ``scope``."""
        setting = RoleSetting(scope="/" + scope.strip("/"), role=_guid(role), **rules)
        with self.arm._lock:
            self._settings.append(setting)
        return setting

    def eligibility_outcome(self, status: str) -> None:
        """The next eligibility AdminAssign answers ``status`` (``PendingApproval``, ``Failed`` …) and makes nothing."""
        with self.arm._lock:
            self._outcomes.append(status)

    def eligibilities(self, principal_id: str | None = None) -> list[dict[str, Any]]:
        """The eligibility schedules (copies), of one principal when given."""
        with self.arm._lock:
            return [copy.deepcopy(d) for d in self.arm._docs.values() if _type(d) == SCHEDULES
                    and (principal_id is None or _props(d).get("principalId", "").lower() == principal_id.lower())]

    def request(self, name: str) -> dict[str, Any] | None:
        with self.arm._lock:
            found = next((r for r in self._requests.values() if r["name"].lower() == name.lower()), None)
            return copy.deepcopy(found) if found else None

    # -- dispatch (FakeArm calls this under its lock) ------------------------------------------------------
    def handle(self, method: str, path: str, query: Mapping[str, str], body: Any, *, caller: str | None,
               api_version: str) -> Any:
        """The reply to a request this part serves, else None."""
        m = _ELIGIBILITY_REQUEST.match(path)
        if m is not None:
            scope = "/" + m.group("scope").strip("/")
            if method == "PUT":
                return self._put_request(scope, m.group("name"), body, caller)
            if method == "GET":
                found = self._requests.get(ids.key(path))
                if found is None:
                    raise self._error(404, "RoleEligibilityScheduleRequestNotFound",
                                      f"The role eligibility schedule request '{m.group('name')}' was not found.")
                return self._reply(200, copy.deepcopy(found))
            raise self._error(400, "UnsupportedRequest", f"FakeArm does not implement {method} '{path}'.")
        if method != "GET":
            return None
        m = _ONE_SCHEDULE.match(path)
        if m is not None:
            doc = self.arm._docs.get(ids.key(path))
            if doc is None:
                raise self._error(404, "RoleEligibilityScheduleNotFound",
                                  "The role eligibility schedule was not found.")
            return self._reply(200, copy.deepcopy(doc))
        m = _COLLECTION.match(path)
        if m is None:
            return None
        token = query.get("$skiptoken") or query.get("$skipToken")
        if token is not None:
            return self._reply(200, self.arm._page([], token, path, api_version))
        scope, kind = "/" + m.group("scope").strip("/"), m.group("kind").lower()
        principal, at_scope = self._filter(query.get("$filter"))
        if kind == "rolemanagementpolicyassignments":
            items = self._policies(scope)
        else:
            docs = self._schedules() if kind == "roleeligibilityschedules" else self._instances()
            items = [d for d in docs if _in_reach(_props(d).get("scope") or "/", scope, at_scope)
                     and (principal is None or str(_props(d).get("principalId", "")).lower() == principal)]
        return self._reply(200, self.arm._page(items, None, path, api_version))

    def update_assignment(self, props: Mapping[str, Any], scope: str,
                          now: datetime) -> tuple[datetime, datetime | None]:
        """``AdminUpdate`` of an active assignment: its schedule becomes the request's (raises without one)."""
        principal = str(props.get("principalId") or "").lower()
        existing = self.arm._assignments(principal, str(props.get("roleDefinitionId") or ""), scope)
        if not existing:
            raise self._error(400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
        start, end = self._schedule(props.get("scheduleInfo"), now)
        for doc in existing:
            self.ends[ids.key(str(doc["id"]))] = end
        return start, end

    # -- internals ---------------------------------------------------------------------------------------
    def _filter(self, text: str | None) -> tuple[str | None, bool]:
        principal, at_scope = None, False
        for part in re.split(r"\s+and\s+", text or "", flags=re.IGNORECASE):
            clause = part.strip()
            if not clause:
                continue
            if clause.lower() == "atscope()":
                at_scope = True
            elif (m := _FILTER_PRINCIPAL.match(clause)) is not None:
                principal = m.group(1).lower()
            else:
                raise self._error(400, "UnsupportedQuery", f"The filter '{clause}' is not supported.")
        return principal, at_scope

    def _put_request(self, scope: str, name: str, body: Any, caller: str | None) -> Any:
        arm = self.arm
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise self._error(400, "InvalidRequestContent", "The request content must have 'properties'.")
        rtype = props.get("requestType")
        principal = str(props.get("principalId") or "").lower()
        role = str(props.get("roleDefinitionId") or "")
        if rtype not in ("AdminAssign", "AdminRemove") or not principal or not _guid(role):
            raise self._error(400, "InvalidRequestContent", "principalId, roleDefinitionId and requestType "
                                                            "AdminAssign or AdminRemove are required.")
        rid = f"{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{name}"
        if ids.key(rid) in self._requests:
            raise self._error(409, "RoleEligibilityScheduleRequestExists", f"The request '{name}' already exists.")
        principal_type = arm._principal_types.get(principal) or self._principal_type(principal)
        now = datetime.now(UTC)
        existing = [d for d in self._schedules() if _props(d).get("principalId", "").lower() == principal
                    and _guid(_props(d).get("roleDefinitionId")) == _guid(role)
                    and ids.same(str(_props(d).get("scope") or ""), scope)]
        status, target = "Provisioned", None
        if rtype == "AdminAssign":
            if principal_type.lower() not in ELIGIBLE_TYPES:
                raise self._error(400, "RoleAssignmentRequestPolicyValidationFailed",
                                  f"A {principal_type} cannot be made eligible: only users and groups can activate.")
            start, end = self._schedule(props.get("scheduleInfo"), now)
            self._check_maximum(scope, role, start, end)
            if existing:
                raise self._error(400, "RoleAssignmentExists", "The Role eligibility already exists.")
            status = self._outcomes.pop(0) if self._outcomes else "Provisioned"
            if status == "Provisioned":
                target = self._provision(scope, principal, principal_type, role, request_id=rid, start=start,
                                         end=end, now=now)
        else:
            if not existing:
                raise self._error(400, "RoleAssignmentDoesNotExist", "The Role eligibility does not exist.")
            status = "Revoked"
            for doc in existing:
                arm._docs.pop(ids.key(str(doc["id"])), None)
                for inst in [d for d in arm._docs.values() if _type(d) == INSTANCES and ids.same(
                        str(_props(d).get("roleEligibilityScheduleId") or ""), str(doc["id"]))]:
                    arm._docs.pop(ids.key(str(inst["id"])), None)
        doc = {
            "id": rid, "name": name, "type": "Microsoft.Authorization/RoleEligibilityScheduleRequests",
            "properties": {
                "targetRoleEligibilityScheduleId": target, "targetRoleEligibilityScheduleInstanceId": None,
                "scope": scope, "roleDefinitionId": role, "principalId": props.get("principalId"),
                "principalType": principal_type, "requestType": rtype, "status": status, "approvalId": None,
                "scheduleInfo": props.get("scheduleInfo"),
                "ticketInfo": props.get("ticketInfo") or {"ticketNumber": None, "ticketSystem": None},
                "justification": props.get("justification"), "requestorId": caller, "createdOn": _iso(now),
                "condition": props.get("condition"), "conditionVersion": props.get("conditionVersion"),
            },
        }
        self._requests[ids.key(rid)] = doc
        return self._reply(201, copy.deepcopy(doc))

    def _principal_type(self, principal: str) -> str:
        """The principal's type as its role assignments say (PIM knows it from the directory)."""
        for doc in self.arm._docs.values():
            if _type(doc) == ROLE_ASSIGNMENTS and str(_props(doc).get("principalId", "")).lower() == principal:
                return str(_props(doc).get("principalType") or "User")
        return "User"

    def _check_maximum(self, scope: str, role: str, start: datetime, end: datetime | None) -> None:
        setting = self._setting(scope, _guid(role))
        if setting is None or setting.max_eligibility is None:
            return
        from remediator.testing.fake_arm import _parse_duration  # noqa: PLC0415  (one parser of ISO durations)

        limit = _parse_duration(setting.max_eligibility)
        if end is None or (limit is not None and end - start > limit + timedelta(minutes=1)):
            raise self._error(400, "RoleAssignmentRequestPolicyValidationFailed",
                              'The following policy rules failed: ["ExpirationRule"]')

    def _provision(self, scope: str, principal: str, principal_type: str, role: str, *, request_id: str,
                   start: datetime, end: datetime | None, now: datetime) -> str:
        name = str(uuid.uuid4())
        self.arm._principal_types[principal] = principal_type  # what an activation of it is assigned to
        schedule_id = f"{scope}/providers/Microsoft.Authorization/roleEligibilitySchedules/{name}"
        common = {"scope": scope, "roleDefinitionId": role, "principalId": principal, "principalType": principal_type,
                  "status": "Provisioned", "startDateTime": _iso(start), "endDateTime": _iso(end) if end else None,
                  "memberType": "Direct", "createdOn": _iso(now)}
        self.arm._put({"id": schedule_id, "name": name, "type": "Microsoft.Authorization/RoleEligibilitySchedules",
                       "properties": {**common, "roleEligibilityScheduleRequestId": request_id,
                                      "updatedOn": _iso(now)}}, stamp=False)
        instance = str(uuid.uuid4())
        self.arm._put({"id": f"{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/{instance}",
                       "name": instance, "type": "Microsoft.Authorization/roleEligibilityScheduleInstances",
                       "properties": {**common, "roleEligibilityScheduleId": schedule_id}}, stamp=False)
        return schedule_id

    def _schedules(self) -> list[dict[str, Any]]:
        return [d for d in self.arm._docs.values() if _type(d) == SCHEDULES]

    def _instances(self) -> list[dict[str, Any]]:
        """roleAssignmentScheduleInstances, one per active role assignment (module docstring)."""
        grants = {ids.key(g.assignment_id): g for g in self.arm._pim_grants}
        out = []
        for doc in self.arm._docs.values():
            if _type(doc) != ROLE_ASSIGNMENTS:
                continue
            p = _props(doc)
            key = ids.key(str(doc["id"]))
            grant = grants.get(key)
            end = self.ends.get(key, grant.expires_at if grant else None)
            scope = str(p.get("scope") or str(doc["id"]).rsplit("/providers/", 1)[0] or "/")
            name = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
            out.append({
                "id": f"{scope}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances/{name}",
                "name": name, "type": "Microsoft.Authorization/RoleAssignmentScheduleInstances",
                "properties": {
                    "scope": scope, "roleDefinitionId": p.get("roleDefinitionId"), "principalId": p.get("principalId"),
                    "principalType": p.get("principalType"), "originRoleAssignmentId": doc["id"],
                    "roleAssignmentScheduleId": f"{scope}/providers/Microsoft.Authorization/roleAssignmentSchedules/"
                                                f"{name}",
                    "status": "Provisioned", "startDateTime": p.get("createdOn"),
                    "endDateTime": _iso(end) if end else None,
                    "assignmentType": "Activated" if grant and grant.request_type == "SelfActivate" else "Assigned",
                    "memberType": "Direct", "createdOn": p.get("createdOn"),
                },
            })
        return out

    def _setting(self, scope: str, role: str) -> RoleSetting | None:
        """The narrowest seeded setting of ``role`` at or above ``scope``."""
        found = [s for s in self._settings if s.role == role and (s.scope == "/" or ids.is_under(scope, s.scope))]
        return max(found, key=lambda s: len(s.scope)) if found else None

    def _policies(self, scope: str) -> list[dict[str, Any]]:
        """Seeded settings, then stored ``roleManagementPolicyAssignment`` documents at or above the scope."""
        roles = sorted({s.role for s in self._settings})
        out = [_policy_document(s, scope) for s in (self._setting(scope, r) for r in roles) if s is not None]
        seeded = {_guid(_props(d).get("roleDefinitionId")) for d in out}
        for doc in self.arm._docs.values():
            at = str(_props(doc).get("scope") or "/")
            if (_type(doc) in POLICY_TYPES and (at == "/" or ids.is_under(scope, at))
                    and _guid(_props(doc).get("roleDefinitionId")) not in seeded):
                out.append(doc)
                seeded.add(_guid(_props(doc).get("roleDefinitionId")))
        sub = ids.parse(scope).subscription_id
        if sub:  # PIM lists settings for every role at every scope: the fake's defaults where none were set
            out.extend(_policy_document(RoleSetting(scope=f"/subscriptions/{sub}", role=role), scope)
                       for role in PRIVILEGED_ROLES if role not in seeded)
        return out


def _policy_document(s: RoleSetting, scope: str) -> dict[str, Any]:
    sub = ids.parse(scope).subscription_id or ""
    policy = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{s.scope.lower()}|{s.role}"))
    role_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{s.role}"
    policy_id = f"{s.scope}/providers/Microsoft.Authorization/roleManagementPolicies/{policy}"

    def target(caller: str, level: str) -> dict[str, Any]:
        return {"caller": caller, "operations": ["All"], "level": level, "targetObjects": None,
                "inheritableSettings": None, "enforcedSettings": None}

    enabled = [r for r, on in (("MultiFactorAuthentication", s.mfa), ("Justification", s.justification)) if on]
    rules = [
        {"id": "Expiration_Admin_Eligibility", "ruleType": "RoleManagementPolicyExpirationRule",
         "isExpirationRequired": s.max_eligibility is not None, "maximumDuration": s.max_eligibility or "P365D",
         "target": target("Admin", "Eligibility")},
        {"id": "Approval_EndUser_Assignment", "ruleType": "RoleManagementPolicyApprovalRule",
         "setting": {"isApprovalRequired": s.approval, "isApprovalRequiredForExtension": False,
                     "isRequestorJustificationRequired": s.justification, "approvalMode": "SingleStage",
                     "approvalStages": [{"approvalStageTimeOutInDays": 1, "isApproverJustificationRequired": True,
                                         "escalationTimeInMinutes": 0, "isEscalationEnabled": False,
                                         "escalationApprovers": None,
                                         "primaryApprovers": [{"id": a, "description": a, "isBackup": False,
                                                               "userType": "Group"} for a in s.approvers]}]},
         "target": target("EndUser", "Assignment")},
        {"id": "Enablement_EndUser_Assignment", "ruleType": "RoleManagementPolicyEnablementRule",
         "enabledRules": enabled, "target": target("EndUser", "Assignment")},
        {"id": "Expiration_EndUser_Assignment", "ruleType": "RoleManagementPolicyExpirationRule",
         "isExpirationRequired": True, "maximumDuration": s.max_activation, "target": target("EndUser", "Assignment")},
    ]
    name = f"{policy}_{s.role}"
    return {"id": f"{scope}/providers/Microsoft.Authorization/roleManagementPolicyAssignment/{name}", "name": name,
            "type": "Microsoft.Authorization/RoleManagementPolicyAssignment",
            "properties": {"scope": scope, "roleDefinitionId": role_id, "policyId": policy_id, "effectiveRules": rules}}


def _type(doc: Mapping[str, Any]) -> str:
    return ids.type_key(str(doc.get("type") or ids.resource_type(str(doc.get("id", "")))))


def _props(doc: Mapping[str, Any]) -> dict[str, Any]:
    p = doc.get("properties")
    return p if isinstance(p, dict) else {}


def _in_reach(at: str, scope: str, at_scope: bool) -> bool:
    """At or above ``scope``, or (without ``atScope()``) below it: as PIM's list-for-scope answers."""
    above = at == "/" or ids.is_under(scope, at)
    below = ids.is_under(at, scope) and not ids.same(at, scope)
    return above or (below and not at_scope)

"""Privilege for one change: the port and its strategies.

The executor identity holds no standing write role. Before a write, an ``Elevator`` grants the
action's least-privileged role on exactly the one resource (``elevate``); the write runs through
``run`` (which retries role propagation); afterwards the grant is released (``release``), also when
the write failed. Strategies, chosen per deployment (``make_elevator``):

* ``pim-assign`` (the default in Azure): a *broker* identity creates a PIM time-bound **active**
  assignment for the executor (``roleAssignmentScheduleRequests``, ``AdminAssign``,
  ``AfterDuration``), scoped to the resource, justified by the remediation and its approvers.
* ``pim-activate``: the executor ``SelfActivate``\\ s an *eligible* assignment. Microsoft documents
  that service principals and managed identities cannot hold eligible assignments ("you can't
  create eligible role assignments for applications, service principals, or managed identities
  because they can't perform the activation steps", learn.microsoft.com role-based-access-control
  pim-integration), so this strategy is for executors that are users (or members of an eligible
  group), e.g. an operator running the CLI.
* ``standing``: explicit opt-out; the executor already holds the role. Every change is logged (and
  audited) as made under standing privilege.

How the engine calls it (one change)::

    ticket = Ticket(remediation_id=rem.id, fingerprint=rem.fingerprint, approvers=(...))
    grant = elevator.elevate(action=action, change=change, ticket=ticket)  # ActionError: nothing applied
    store.audit(..., detail=grant.audit())
    try:
        result = elevator.run(grant, lambda: action.apply(clients, change), clients=clients)
    finally:
        released = elevator.release(grant)          # never raises
        if released is not None:
            store.audit(..., detail=released.audit())

PIM request statuses (``RoleManagementScheduleStatus``): ``Provisioned`` is success. ``Granted`` and
the other in-flight statuses (``Accepted``, ``PendingEvaluation``, ``PendingProvisioning``,
``ProvisioningStarted``, ``PendingScheduleCreation``, ``ScheduleCreated``,
``PendingExternalProvisioning``, ``AdminApproved``) are polled with
``role_assignment_schedule_requests.get`` until ``Provisioned``; while ``Granted``, an active role
assignment for the principal, role and scope also counts as success. ``PendingApproval`` (and
``PendingApprovalProvisioning``, ``PendingAdminDecision``) means the role's PIM setting requires an
approver: remediator does not wait for one (the Slack approval already happened, and a Functions
invocation cannot wait hours), so the request is canceled and ``elevate`` raises. ``Denied``,
``AdminDenied``, ``Failed``, ``FailedAsResourceIsLocked``, ``Canceled``, ``Revoked``,
``PendingRevocation``, ``TimedOut`` and ``Invalid`` raise at once. A status still in flight at
``poll_timeout`` raises (after a cancel). Each ``ActionError`` names the status and the request id.

Retries: ``run`` retries only what azure-core does not (a propagation ``403 AuthorizationFailed``
and ``409 AnotherOperationInProgress``) with ``remediator.azure.errors.retry_propagation``, never
past the grant's expiry, refreshing the executor's token first when its clients carry a
``remediator.azure.credentials.FreshTokenCredential``.

Request ids: the worker chooses each grant request's name (a GUID) and audits it before asking
(``Ticket.request_id``). Asked again with that name after a crash, the elevator first reads the
request (``role_assignment_schedule_requests.get``): if it was made, its grant is resumed as this
change's own (polled, then released as usual), never taken for an assignment that existed before;
otherwise it is made now under the same name. Only an active assignment that no request of this
change made is ``AlreadyActive`` (kept, not removed).

The elevator knows nothing of the remediation life cycle: the worker passes a ``Ticket`` (the
remediation id, its plan fingerprint and who approved it), which PIM records as the request's
justification and ``ticketInfo``.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from remediator import ids
from remediator.actions.base import Action, BuiltinRole, CustomRole, GrantNeed
from remediator.actions.change import Change, is_arm_scope
from remediator.azure.credentials import refresher
from remediator.azure.errors import DEFAULT_BACKOFF, Backoff, error_code, http_error, retry_propagation
from remediator.errors import ActionError, ConfigError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger("remediator.elevation")

T = TypeVar("T")

MIN_DURATION = timedelta(minutes=5)  # PIM refuses shorter assignments (and removal within 5 minutes)
JUSTIFICATION_MAX = 500
TICKET_SYSTEM = "remediator"
STRATEGIES = ("pim-activate", "pim-assign", "standing")

# RoleManagementScheduleStatus values, grouped by what remediator does with them (module docstring)
PIM_ACTIVE = frozenset({"Provisioned"})
PIM_IN_FLIGHT = frozenset({
    "Accepted", "PendingEvaluation", "Granted", "PendingProvisioning", "ProvisioningStarted",
    "PendingScheduleCreation", "ScheduleCreated", "PendingExternalProvisioning", "AdminApproved",
})
PIM_NEEDS_APPROVER = frozenset({"PendingApproval", "PendingApprovalProvisioning", "PendingAdminDecision"})
PIM_REFUSED = frozenset({
    "Denied", "AdminDenied", "Failed", "FailedAsResourceIsLocked", "Canceled", "Revoked", "PendingRevocation",
    "TimedOut", "Invalid",
})
_WHY = {
    "PendingApproval": "the role's PIM setting requires approval; remediator does not wait for a PIM approver",
    "PendingApprovalProvisioning": "the role's PIM setting requires approval",
    "PendingAdminDecision": "PIM is waiting for an administrator's decision",
    "Denied": "PIM denied the request",
    "AdminDenied": "a PIM administrator denied the request",
    "Failed": "PIM failed to provision the assignment",
    "FailedAsResourceIsLocked": "the resource is locked",
    "Canceled": "the request was canceled",
    "Revoked": "the assignment was revoked",
    "PendingRevocation": "the assignment is being revoked",
    "TimedOut": "the request timed out in PIM",
    "Invalid": "PIM found the request invalid",
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
def _utcnow() -> datetime:
    return datetime.now(UTC)


# -- values -------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Grant:
    """What was granted for one change; recorded in the audit trail."""

    strategy: str
    role_name: str
    role_id: str
    scope: str
    principal_id: str | None = None
    request_id: str | None = None  # the PIM schedule request name (GUID); for AlreadyActive, the one refused
    status: str = ""  # PIM status (Provisioned, …), "Standing", "AlreadyActive" or "NotRequired"
    expires_at: datetime | None = None
    duration: timedelta | None = field(default=None, compare=False)  # the PIM request's AfterDuration (audited)

    def audit(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy, "role": self.role_name, "role_id": self.role_id, "scope": self.scope,
            "principal_id": self.principal_id, "request_id": self.request_id, "status": self.status,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "duration": _iso_duration(self.duration) if self.duration else None,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Release:
    """What ``release`` did: ``status`` is the PIM status of the removal request (``Revoked``, …),
    ``"LeftToExpire"`` when PIM refused or the request failed, ``"NotActive"`` when there was no
    assignment to remove (it ended, or its request was never made), or ``"Kept"`` for an assignment
    remediator did not create."""

    strategy: str
    scope: str
    request_id: str | None
    status: str
    detail: str = ""
    grant_request_id: str | None = field(default=None, compare=False)  # the grant's request (audited)

    def audit(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "scope": self.scope, "request_id": self.request_id,
                "status": self.status, "detail": self.detail, "grant_request_id": self.grant_request_id}


@dataclass(frozen=True, kw_only=True, slots=True)
class Ticket:
    """What a grant is for, as PIM records it: ``ticketNumber`` is the remediation id; the
    justification names the plan's fingerprint and who approved it."""

    remediation_id: str
    fingerprint: str | None = None
    approvers: tuple[str, ...] = ()
    # the name (a GUID) of the grant request to make, chosen and recorded by the caller before asking;
    # asked again with the same name (a retry after a crash), the request already made is resumed and
    # its grant is this change's, never "pre-existing". None: the elevator picks one.
    request_id: str | None = None


class Elevator(Protocol):
    strategy: str

    def elevate(self, *, action: Action[Any], change: Change, ticket: Ticket, need: GrantNeed | None = None) -> Grant:
        """Grant ``need.role`` at ``need.scope`` (default: ``action.role`` on the change's resource, the
        action's first ``grants``); raise ``ActionError`` when not granted."""

    def run(self, grant: Grant, fn: Callable[[], T], *, clients: ArmClients | None = None) -> T:
        """Call ``fn`` (the write) under ``grant``, retrying only propagation 403s and 409
        AnotherOperationInProgress (``retry_propagation``); ``clients``: the executor's, for a fresh token."""

    def release(self, grant: Grant) -> Release | None:
        """Remove the grant if allowed now, else leave it to expire; never raises."""


# -- standing -------------------------------------------------------------------------------------------


class StandingElevator:
    """Explicit opt-in: no grant is made; each change is logged as done under standing privilege.

    ``run`` retries only ``409 AnotherOperationInProgress`` (there is no grant to propagate: a 403
    is a real refusal).
    """

    strategy = "standing"

    def __init__(self, *, retry_attempts: int = 4, backoff: Backoff = DEFAULT_BACKOFF,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._attempts = retry_attempts
        self._backoff = backoff
        self._sleep = sleep

    def elevate(self, *, action: Action[Any], change: Change, ticket: Ticket, need: GrantNeed | None = None) -> Grant:
        need = need or action.grants(change)[0]
        log.warning("standing privilege: %s on %s for remediation %s (role %s is held permanently)",
                    action.name, need.scope, ticket.remediation_id, need.role.name)
        return Grant(strategy=self.strategy, role_name=need.role.name, role_id=need.role.id, scope=need.scope,
                     status="Standing")

    def run(self, grant: Grant, fn: Callable[[], T], *, clients: ArmClients | None = None) -> T:
        return retry_propagation(fn, attempts=self._attempts, wait=self._backoff, forbidden=False,
                                 sleep=self._sleep)

    def release(self, grant: Grant) -> Release | None:
        return None


# -- PIM --------------------------------------------------------------------------------------------------


def _iso_duration(value: timedelta) -> str:
    """``timedelta(minutes=5)`` → ``PT5M``; ``timedelta(hours=1, minutes=30)`` → ``PT1H30M``."""
    total = int(value.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n]
    return "PT" + ("".join(parts) or "0S")


def _role_guid(role_definition_id: str | None) -> str:
    return str(role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


def _subscription(scope: str, action: Action[Any], role: BuiltinRole) -> str:
    sub = ids.parse(scope).subscription_id
    if not sub:
        raise ActionError(f"cannot grant {role.name} at {scope}: PIM grants here need a scope inside a "
                          "subscription", action=action.name, resource_id=scope)
    return sub


def _check_principal(principal_id: str) -> str:
    if not _GUID.match(principal_id or ""):
        raise ConfigError(f"executor_principal_id must be the executor's object id (a GUID), got {principal_id!r}")
    return principal_id.lower()


def justification(*, ticket: Ticket, action: Action[Any], scope: str, why: str = "") -> str:
    """``remediator <id>: <action> on <scope>[ (<why>)]; plan <fingerprint>; approved by <user ids>`` (capped)."""
    who = ", ".join(ticket.approvers) if ticket.approvers else "(no approval recorded)"
    what = f" ({why})" if why else ""
    text = (f"remediator {ticket.remediation_id}: {action.name} on {scope}{what}; plan {ticket.fingerprint or '-'}; "
            f"approved by {who}")
    return text if len(text) <= JUSTIFICATION_MAX else text[: JUSTIFICATION_MAX - 1] + "…"


class _PimElevator:
    """What both PIM strategies share: request bodies, status polling, release, ``run``."""

    strategy: str
    _remove_type: str

    def __init__(self, *, requester: ArmClients, executor_principal_id: str, duration: timedelta = MIN_DURATION,
                 poll_interval: float = 2.0, poll_timeout: float = 60.0, propagation_attempts: int = 8,
                 propagation_backoff: Backoff = DEFAULT_BACKOFF,
                 clock: Callable[[], datetime] = _utcnow, sleep: Callable[[float], None] = time.sleep) -> None:
        self.requester = requester  # whose clients send the schedule requests (broker or executor)
        if duration < MIN_DURATION:
            raise ConfigError(f"PIM duration must be at least 5 minutes (PIM's minimum), got {duration}")
        if poll_interval <= 0 or poll_timeout <= 0:
            raise ConfigError("PIM poll_interval and poll_timeout must be positive")
        if propagation_attempts < 1:
            raise ConfigError(f"propagation_attempts must be at least 1, got {propagation_attempts}")
        self.executor_principal_id = _check_principal(executor_principal_id)
        self.duration = duration
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.propagation_attempts = propagation_attempts
        self.propagation_backoff = propagation_backoff
        self._clock = clock
        self._sleep = sleep

    # the client that makes the requests (broker for pim-assign, executor for pim-activate)
    def _client(self, subscription_id: str) -> Any:
        return self.requester.authorization(subscription_id)

    # -- elevate helpers --------------------------------------------------------------------------
    def _not_required(self, action: Action[Any], change: Change, role: BuiltinRole) -> Grant:
        log.info("%s: %s is not an ARM scope (a data-plane write); no grant, the deployment's role on it applies",
                 action.name, change.resource_id)
        return Grant(strategy=self.strategy, role_name=role.name, role_id=role.id,
                     scope=change.resource_id, principal_id=self.executor_principal_id, status="NotRequired")

    def _request(self, *, request_type: str, action: Action[Any], need: GrantNeed, ticket: Ticket,
                 start: datetime, linked_eligibility: str | None = None) -> Any:
        from azure.mgmt.authorization.v2020_10_01.models import (  # noqa: PLC0415
            RoleAssignmentScheduleRequest,
            RoleAssignmentScheduleRequestPropertiesScheduleInfo,
            RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration,
            RoleAssignmentScheduleRequestPropertiesTicketInfo,
        )

        return RoleAssignmentScheduleRequest(
            principal_id=self.executor_principal_id,
            role_definition_id=need.role.definition_id(need.scope),
            request_type=request_type,
            linked_role_eligibility_schedule_id=linked_eligibility,
            schedule_info=RoleAssignmentScheduleRequestPropertiesScheduleInfo(
                start_date_time=start,
                expiration=RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration(
                    type="AfterDuration", duration=_iso_duration(self.duration))),
            justification=justification(ticket=ticket, action=action, scope=need.scope, why=need.why),
            ticket_info=RoleAssignmentScheduleRequestPropertiesTicketInfo(
                ticket_number=ticket.remediation_id, ticket_system=TICKET_SYSTEM),
        )

    def _grant(self, *, action: Action[Any], change: Change, ticket: Ticket, request_type: str,
               linked_eligibility: str | None = None, need: GrantNeed | None = None) -> Grant:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        need = need or action.grants(change)[0]
        scope, role = need.scope, need.role
        client = self._client(_subscription(scope, action, role))
        name = ticket.request_id or str(uuid.uuid4())
        if ticket.request_id:
            resumed = self._resume(client, action=action, role=role, scope=scope, name=name)
            if resumed is not None:
                return resumed
        start = self._clock()
        body = self._request(request_type=request_type, action=action, need=need, ticket=ticket,
                             start=start, linked_eligibility=linked_eligibility)
        try:
            created = client.role_assignment_schedule_requests.create(scope, name, body)
        except HttpResponseError as e:
            if error_code(e) == "RoleAssignmentScheduleRequestExists":  # made meanwhile under this name: ours
                resumed = self._resume(client, action=action, role=role, scope=scope, name=name)
                if resumed is not None:
                    return resumed
            if error_code(e) == "RoleAssignmentExists" and self._assignment_active(client, role, scope):
                log.warning("%s: %s already holds %s on %s (an earlier grant still active); using it, and leaving "
                            "it in place", action.name, self.executor_principal_id, role.name, scope)
                return Grant(strategy=self.strategy, role_name=role.name, role_id=role.id,
                             scope=scope, principal_id=self.executor_principal_id, status="AlreadyActive",
                             request_id=name)  # the request PIM refused: the assignment is not its
            hint = ""
            if isinstance(role, CustomRole) and error_code(e) == "RoleDefinitionDoesNotExist":
                from remediator.actions.custom_roles import refusal_line  # noqa: PLC0415

                hint = f"; {refusal_line(role, f'not assignable at {scope}')}"
            raise ActionError(f"PIM {request_type} request {name} for {role.name} failed: "
                              f"{http_error_line(e)}; nothing was applied{hint}", action=action.name,
                              resource_id=scope) from None
        status = self._wait(client, action=action, role=role, scope=scope, name=name, status=str(created.status or ""))
        grant = Grant(strategy=self.strategy, role_name=role.name, role_id=role.id, scope=scope,
                      principal_id=self.executor_principal_id, request_id=name, status=status,
                      expires_at=start + self.duration, duration=self.duration)
        log.info("PIM %s %s: %s on %s for %s until %s (%s)", request_type, name, role.name, scope,
                 self.executor_principal_id, grant.expires_at.isoformat() if grant.expires_at else "?", status)
        return grant

    def _resume(self, client: Any, *, action: Action[Any], role: BuiltinRole, scope: str, name: str) -> Grant | None:
        """The grant of request ``name`` if it was made already (an earlier delivery, before a crash):
        polled like a new one, and this change's grant (released as usual); None when there is none."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # noqa: PLC0415

        try:
            found = client.role_assignment_schedule_requests.get(scope, name)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as e:
            if e.status_code == 404:
                return None
            raise ActionError(f"reading PIM request {name} failed: {error_code(e) or e.status_code}; nothing was "
                              "applied", action=action.name, resource_id=scope) from None
        status = self._wait(client, action=action, role=role, scope=scope, name=name, status=str(found.status or ""))
        info = getattr(found, "schedule_info", None)
        start = getattr(info, "start_date_time", None) or getattr(found, "created_on", None) or self._clock()
        log.info("PIM request %s (%s on %s) was made before; resuming it (%s)", name, role.name, scope, status)
        return Grant(strategy=self.strategy, role_name=role.name, role_id=role.id, scope=scope,
                     principal_id=self.executor_principal_id, request_id=name, status=status,
                     expires_at=start + self.duration, duration=self.duration)

    def _wait(self, client: Any, *, action: Action[Any], role: BuiltinRole, scope: str, name: str, status: str) -> str:
        """Poll the request until ``Provisioned``; raise ``ActionError`` for any refusal or timeout."""
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        deadline = self._clock() + timedelta(seconds=self.poll_timeout)
        max_polls = math.ceil(round(self.poll_timeout / self.poll_interval, 6))  # bounded even if the clock stands
        polls = 0
        while True:
            if status in PIM_ACTIVE:
                return status
            if status in PIM_NEEDS_APPROVER or status in PIM_REFUSED:
                if status in PIM_NEEDS_APPROVER:
                    self._cancel(client, scope, name)
                why = _WHY.get(status, status)
                raise ActionError(f"PIM request {name} for {role.name} is {status}: {why}; nothing was "
                                  "applied", action=action.name, resource_id=scope)
            if status == "Granted" and self._assignment_active(client, role, scope):
                return status
            if status not in PIM_IN_FLIGHT:
                log.warning("PIM request %s: unknown status %r, polling on", name, status)
            if polls >= max_polls or self._clock() >= deadline:
                self._cancel(client, scope, name)
                raise ActionError(f"PIM request {name} for {role.name} is still {status or 'without status'} "
                                  f"after {self.poll_timeout:g}s; canceled, nothing was applied",
                                  action=action.name, resource_id=scope)
            self._sleep(self.poll_interval)
            polls += 1
            try:
                status = str(client.role_assignment_schedule_requests.get(scope, name).status or "")
            except HttpResponseError as e:
                self._cancel(client, scope, name)
                raise ActionError(f"polling PIM request {name} failed: {http_error_line(e)}; nothing was applied",
                                  action=action.name, resource_id=scope) from None

    def _assignment_active(self, client: Any, role: BuiltinRole, scope: str) -> bool:
        """An active role assignment of ``role`` for the executor at exactly ``scope``."""
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        try:
            found: Iterable[Any] = client.role_assignments.list_for_scope(
                scope, filter=f"principalId eq '{self.executor_principal_id}'")
            for ra in found:
                if _role_guid(ra.role_definition_id) == role.id.lower() and ids.same(ra.scope or "", scope):
                    return True
        except HttpResponseError:
            log.warning("could not list role assignments at %s", scope, exc_info=True)
        return False

    def _cancel(self, client: Any, scope: str, name: str) -> None:
        """Cancel a request left pending, so it cannot be approved (and grant) after remediator gave up."""
        from azure.core.exceptions import AzureError  # noqa: PLC0415

        try:
            client.role_assignment_schedule_requests.cancel(scope, name)
            log.info("canceled PIM request %s", name)
        except AzureError:
            log.warning("could not cancel PIM request %s at %s", name, scope, exc_info=True)

    # -- run / release ---------------------------------------------------------------------------------
    def run(self, grant: Grant, fn: Callable[[], T], *, clients: ArmClients | None = None) -> T:
        until = grant.expires_at - timedelta(seconds=15) if grant.expires_at else None
        return retry_propagation(fn, attempts=self.propagation_attempts, wait=self.propagation_backoff,
                                 refresh=refresher(clients), forbidden=True, until=until, clock=self._clock,
                                 sleep=self._sleep)

    def release(self, grant: Grant) -> Release | None:
        """``AdminRemove``/``SelfDeactivate`` for the grant; PIM refuses this within 5 minutes of the grant
        (400 ``ActiveDurationTooShort``): then the grant is logged and left to expire. Never raises."""
        if grant.status in ("NotRequired", "Standing"):
            return None
        if grant.status == "AlreadyActive":
            return Release(strategy=self.strategy, scope=grant.scope, request_id=None, status="Kept",
                           detail="the assignment existed before this change; not removed",
                           grant_request_id=grant.request_id)
        name = str(uuid.uuid4())
        expires = grant.expires_at.isoformat() if grant.expires_at else "its end"
        try:
            out = self._remove(grant, name)
        except Exception as e:
            err = http_error(e)
            code = error_code(err) if err is not None else None
            what = f"{getattr(err, 'status_code', '')} {code or type(e).__name__}".strip()
            if code == "RoleAssignmentDoesNotExist":  # ended already (expired), or its request never got made
                log.info("PIM %s %s of %s on %s: no such assignment (it ended, or was never made)",
                         self._remove_type, name, grant.role_name, grant.scope)
                return Release(strategy=self.strategy, scope=grant.scope, request_id=name, status="NotActive",
                               detail=f"{what}: no assignment to remove (it ended, or the request was never made)",
                               grant_request_id=grant.request_id)
            if code == "ActiveDurationTooShort":
                log.info("PIM refused %s %s of %s on %s (%s: within PIM's 5-minute minimum); it expires at %s",
                         self._remove_type, name, grant.role_name, grant.scope, what, expires)
            else:
                log.warning("PIM %s %s of %s on %s failed (%s); the grant expires at %s", self._remove_type, name,
                            grant.role_name, grant.scope, what, expires)
            return Release(strategy=self.strategy, scope=grant.scope, request_id=name, status="LeftToExpire",
                           detail=f"{what}; expires at {expires}", grant_request_id=grant.request_id)
        status = str(getattr(out, "status", "") or "")
        log.info("PIM %s %s of %s on %s: %s", self._remove_type, name, grant.role_name, grant.scope, status)
        return Release(strategy=self.strategy, scope=grant.scope, request_id=name, status=status or "Submitted",
                       grant_request_id=grant.request_id)

    def _remove(self, grant: Grant, name: str) -> Any:
        from azure.mgmt.authorization.v2020_10_01.models import RoleAssignmentScheduleRequest  # noqa: PLC0415

        sub = ids.parse(grant.scope).subscription_id or ""
        role_definition_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{grant.role_id}"
        body = RoleAssignmentScheduleRequest(
            principal_id=self.executor_principal_id, role_definition_id=role_definition_id,
            request_type=self._remove_type,
            justification=f"remediator: release of PIM request {grant.request_id} on {grant.scope}")
        return self._client(sub).role_assignment_schedule_requests.create(grant.scope, name, body)


class PimAssignElevator(_PimElevator):
    """``pim-assign``: the broker creates a time-bound active assignment for the executor.

    ``broker`` is the broker identity's ``ArmClients`` (Role Based Access Control Administrator,
    constrained to the actions' roles and the executor). The request is ``AdminAssign`` at the
    resource (``grant_scope``), for ``duration`` (at least PIM's 5 minutes), with the justification
    and ``ticketInfo`` (``ticketNumber`` = remediation id, ``ticketSystem`` = ``remediator``).
    Release is ``AdminRemove`` by the broker.
    """

    strategy = "pim-assign"
    _remove_type = "AdminRemove"

    def __init__(self, *, broker: ArmClients, **options: Any) -> None:
        super().__init__(requester=broker, **options)
        self.broker = broker

    def elevate(self, *, action: Action[Any], change: Change, ticket: Ticket, need: GrantNeed | None = None) -> Grant:
        need = need or action.grants(change)[0]
        if not is_arm_scope(need.scope):
            return self._not_required(action, change, need.role)
        return self._grant(action=action, change=change, ticket=ticket, request_type="AdminAssign", need=need)


class PimActivateElevator(_PimElevator):
    """``pim-activate``: the executor (a user, or a member of an eligible group) activates an eligible
    assignment of the action's role.

    Eligibility: ``role_eligibility_schedule_instances.list_for_scope(resource, filter="asTarget()")``
    (the caller's own), keeping those of the action's role (by role definition GUID) whose scope is
    the resource or above it, currently valid; the narrowest wins. None → ``ActionError``.

    Activation scope: the resource itself, which is at or below the eligibility's scope. Microsoft
    documents activating with a reduced scope ("If you want to specify a reduced scope … you can
    specify the resource groups or resources that you need access to", learn.microsoft.com
    pim-resource-roles-activate-your-roles; the IAM page's Activate pane has a Scope tab,
    role-assignments-eligible-activate), so the grant is as narrow as with ``pim-assign``. The
    request carries ``linkedRoleEligibilityScheduleId`` exactly as the eligibility instance reports it.
    Release is ``SelfDeactivate`` (same 5-minute minimum as ``AdminRemove``).
    """

    strategy = "pim-activate"
    _remove_type = "SelfDeactivate"

    def __init__(self, *, executor: ArmClients, **options: Any) -> None:
        super().__init__(requester=executor, **options)
        self.executor = executor

    def elevate(self, *, action: Action[Any], change: Change, ticket: Ticket, need: GrantNeed | None = None) -> Grant:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        need = need or action.grants(change)[0]
        scope, role = need.scope, need.role
        if not is_arm_scope(scope):
            return self._not_required(action, change, role)
        client = self._client(_subscription(scope, action, role))
        try:
            found = list(client.role_eligibility_schedule_instances.list_for_scope(scope, filter="asTarget()"))
        except HttpResponseError as e:
            raise ActionError(f"listing PIM eligibilities at the resource failed: {http_error_line(e)}; nothing was "
                              "applied", action=action.name, resource_id=scope) from None
        now = self._clock()
        usable = [
            e for e in found
            if _role_guid(e.role_definition_id) == role.id.lower()
            and e.scope and ids.is_under(scope, e.scope)
            and (e.status in (None, "Provisioned"))
            and (e.start_date_time is None or e.start_date_time <= now)
            and (e.end_date_time is None or e.end_date_time > now)
            and e.role_eligibility_schedule_id
        ]
        if not usable:
            raise ActionError(f"no eligible PIM assignment of {role.name} at or above the resource for "
                              f"{self.executor_principal_id} (pim-activate needs a user or group eligibility; service "
                              "principals and managed identities cannot hold one); nothing was applied",
                              action=action.name, resource_id=scope)
        best = max(usable, key=lambda e: len(ids.key(e.scope)))
        log.info("activating eligibility %s (%s at %s) at %s", best.role_eligibility_schedule_id, role.name,
                 best.scope, scope)
        return self._grant(action=action, change=change, ticket=ticket, request_type="SelfActivate",
                           linked_eligibility=best.role_eligibility_schedule_id, need=need)


# -- factory --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ElevationSettings:
    """Deployment settings of the privilege strategy (see ``make_elevator``)."""

    strategy: str = "pim-assign"
    executor_principal_id: str | None = None
    duration: timedelta = MIN_DURATION
    poll_interval: float = 2.0
    poll_timeout: float = 60.0
    propagation_attempts: int = 8
    propagation_backoff: Backoff = DEFAULT_BACKOFF


def make_elevator(settings: ElevationSettings, *, broker: ArmClients | None = None,
                  executor: ArmClients | None = None, clock: Callable[[], datetime] = _utcnow,
                  sleep: Callable[[float], None] = time.sleep) -> Elevator:
    """The ``Elevator`` for ``settings.strategy``: ``pim-assign`` needs ``broker`` (the broker
    identity's clients) and the executor's principal id; ``pim-activate`` needs ``executor`` (the
    executor's own clients) and its principal id; ``standing`` needs nothing. ``ConfigError`` names
    what is missing or the valid strategies."""
    name = (settings.strategy or "").strip().lower()
    common: dict[str, Any] = {
        "duration": settings.duration, "poll_interval": settings.poll_interval, "poll_timeout": settings.poll_timeout,
        "propagation_attempts": settings.propagation_attempts, "propagation_backoff": settings.propagation_backoff,
        "clock": clock, "sleep": sleep,
    }
    if name == "standing":
        return StandingElevator(backoff=settings.propagation_backoff, sleep=sleep)
    if name not in STRATEGIES:
        raise ConfigError(f"elevation strategy {settings.strategy!r} is not one of: {', '.join(STRATEGIES)}")
    if not settings.executor_principal_id:
        raise ConfigError(f"elevation strategy {name} needs executor_principal_id (the executor identity's object id)")
    if name == "pim-assign":
        if broker is None:
            raise ConfigError("elevation strategy pim-assign needs the broker identity's clients (broker=)")
        return PimAssignElevator(broker=broker, executor_principal_id=settings.executor_principal_id, **common)
    if executor is None:
        raise ConfigError("elevation strategy pim-activate needs the executor's own clients (executor=)")
    return PimActivateElevator(executor=executor, executor_principal_id=settings.executor_principal_id, **common)

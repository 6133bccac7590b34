"""``FakeArm``: a local Azure Resource Manager (and Key Vault secrets) server for tests.

A real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, port 0, daemon thread) that the real
Azure SDK clients talk to, so tests exercise the SDK's serialisation, long-running-operation
polling and paging exactly as production does::

    with FakeArm() as arm:
        arm.load(documents)                      # seed ARM documents (dicts with "id")
        clients = arm.clients()                  # ArmClients wired to the fake
        clients.storage(sub).storage_accounts.get_properties("rg", "sa")
        assert arm.writes == []                  # nothing but reads so far

What it serves, following each operation's status codes in the REST specs:

* every request needs ``api-version`` (400 ``MissingApiVersionParameter`` otherwise); every
  error has a JSON body ``{"error": {"code", "message"}}`` (the SDK needs one to raise
  ``HttpResponseError`` rather than a JSON decoding error);
* ``GET`` of a stored id → 200 (stored casing), else 404 ``ResourceNotFound``; children kept inside
  their parent's ``properties`` (an NSG's ``securityRules``/``defaultSecurityRules``, a VNet's
  ``subnets`` and ``virtualNetworkPeerings``) are served, written and deleted in place, so the
  parent and the child always agree;
* collections (``…/providers/Microsoft.Network/networkInterfaces`` at a resource group or a
  subscription, ``…/networkSecurityGroups/n/securityRules``, any type) → ``{"value", "nextLink"}``
  pages of ``page_size`` with an absolute ``nextLink``;
* Defender plans (``{subscription}/providers/Microsoft.Security/pricings/{plan}``, security 2024-01-01): GET,
  and PUT of a stored plan → 200 (``_put_pricing``); at a machine (``{vm}/providers/Microsoft.Security/pricings/
  VirtualMachines``): GET answers the subscription's plan, ``inherited: "True"``, until the machine has its own
  (GetResourcePricingByNameVirtualMachines_example.json), PUT → 201/200 with ``inherited: "False"`` (VirtualMachines
  only, Standard with sub-plan P1 only, no ``enforce``: else 400), DELETE → 200, 204 when it had none
  (DeleteResourcePricing_example.json); Advanced Threat Protection settings (``{resource}/providers/
  Microsoft.Security/advancedThreatProtectionSettings/current``, security 2019-01-01): GET answers ``isEnabled:
  false`` for an existing resource never set, PUT → 200 (``_put_atp_setting``); diagnostic settings, an
  extension resource on any stored resource (``{resource}/providers/Microsoft.Insights/diagnosticSettings/
  {name}``, monitor 2021-05-01-preview): GET, list on the resource, PUT → 200 (400 without a destination),
  DELETE → 200 (``_put_diagnostic_setting``);
  under ``enforce_grants`` a PUT also needs the right to use each destination (``DIAGNOSTIC_SINKS``: the
  workspace's sharedKeys, the storage account's listKeys) at the destination, else 403
  ``LinkedAuthorizationFailed``, as ARM checks linked scopes;
* Defender continuous export (``…/providers/Microsoft.Security/automations/{name}``, security 2023-12-01-preview):
  GET, list at the resource group or subscription, PUT → 201/200 with a new etag, validated and without the
  secrets the spec never returns (``_put_automation``), DELETE → 200/204;
* role assignments list-for-scope returns assignments at, above or below the scope, with
  ``$filter=principalId eq '…'`` and ``atScope()``; PUT → 201 (409 ``RoleAssignmentExists`` for a
  duplicate principal/role/scope), DELETE → 200 with the deleted body, 204 when absent;
* ``PATCH`` merges the body into the stored document (RFC 7396: objects merge, ``null`` removes,
  arrays replace, ``tags`` replaced whole) → 200 and the full document; 404 when absent;
* ``PUT`` → 201 created / 200 replaced (a resource's embedded ``privateEndpointConnections``, read-only in
  every spec, survive a PUT that leaves them out); ``Microsoft.Network`` resources and ACR registries answer
  with ``Azure-AsyncOperation`` (absolute URL on the fake; the operation reports ``InProgress``
  once, then ``Succeeded``); ``Microsoft.Network`` DELETE → 202 + ``Location`` (polled: 202 once,
  then 204), other DELETEs → 200, or 204 when the resource does not exist;
* ACR registry PATCH → 200 (``FakeArm(async_registry_update=True)`` → 201 + Azure-AsyncOperation);
  Cognitive Services account PATCH → 202 + Azure-AsyncOperation; ML workspace PATCH → 202 + Location
  (polled: 202 once, then 200 with the resource), as their specs' long-running Update operations;
  managed disk and snapshot PATCH → 202 + ``Location`` (the resource; polled: 200 and the document);
  ``POST …/disks|snapshots/{name}/endGetAccess`` → 202 + ``Location`` (polled to 204), ending an
  active export SAS (``diskState`` ActiveSAS → Reserved when owned, else Unattached; ActiveSASFrozen →
  Frozen); Key Vault vault PATCH is synchronous (200);
  ``POST …/listCredentials`` and ``…/regenerateCredential {"name": "password"|"password2"}`` over
  random passwords the fake holds (``arm.credentials(registry_id)``); storage ``POST …/listKeys``; AI services
  ``POST …/accounts/{a}/listKeys`` and ``…/regenerateKey {"keyName": "Key1"|"Key2"}`` (``arm.account_keys(id)``);
  model deployments: PATCH (sku and tags only, else 400) → 202 + Azure-AsyncOperation, PUT long-running; RAI
  policies: PUT 200/201, and a write to a built-in ``Microsoft.*`` policy → 400 (it cannot be edited);
* Key Vault secrets (data plane) under ``/_vault/<vault host>/secrets/<name>``, reached by a real
  ``SecretClient`` through ``RedirectTransport`` (see ``remediator.testing.auth``): the
  challenge handshake (401 + ``WWW-Authenticate`` to an unauthenticated request), ``PUT`` (set)
  and ``GET`` (latest or a version); ``arm.secret(vault_url, name)`` reads the value back.

Azure Policy (for ``policy.apply-modify`` and ``remediator coverage``): policy definitions and
assignments are documents like any other (``arm.add``; a built-in definition's id has no
subscription); ``arm.add_provider(sub, namespace, {type: (api_versions, {alias: path})})`` serves
``GET /subscriptions/{id}/providers/{namespace}`` (Providers - Get, 2021-04-01) with its aliases
shaped as the spec's ``Alias`` model, only under ``$expand=resourceTypes/aliases``;
``arm.add_policy_state(...)`` feeds ``POST …/providers/Microsoft.PolicyInsights/policyStates/latest/
summarize`` (shaped as the PolicyStates_SummarizeResourceGroupScope example; a read, not a write).

Private Link (``arm.private_link``, remediator.testing.fake_private_link): ``PUT``/``DELETE`` of
``Microsoft.Network/privateEndpoints`` and their ``privateDnsZoneGroups`` as the Network RP answers them
(long-running, validated, ``LinkedAuthorizationFailed`` without the subnet, approval or zone join right under
``enforce_grants``), the connection they put on the target (``…/privateEndpointConnections/{name}``: GET, PUT to
approve or reject, DELETE), the A records a zone group writes, and faults (``fail_endpoint_provisioning``,
``keep_pending``, ``fail_zone_group``).

PIM (``Microsoft.Authorization`` 2020-10-01 shapes, as in tests/fixtures/arm/authorization__2020-10-01__*):

* ``PUT {scope}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{name}`` → 201 with the
  request document and its ``status``. ``AdminAssign``/``SelfActivate`` take the next outcome queued
  with ``arm.pim_outcome(status, after_polls=, then=)`` (default: ``Provisioned`` at once): e.g.
  ``Granted`` that becomes ``Provisioned`` after N polls, ``PendingApproval``, ``Denied``, ``Failed``. A
  request that reaches ``Provisioned`` creates a role assignment document at the request's scope
  (listed and served by the role assignment endpoints) that the fake deletes when its schedule ends
  (``arm.pim_grants()`` shows it with its expiry). Policy checks: ``AfterDuration`` under ``PT5M`` →
  400 ``RoleAssignmentRequestPolicyValidationFailed`` (ExpirationRule); an already active assignment →
  400 ``RoleAssignmentExists``; ``SelfActivate`` needs the caller's eligibility at or above the scope
  (``linkedRoleEligibilityScheduleId``; else 400, EligibilityRule). ``AdminRemove``/``SelfDeactivate``
  delete the assignment (status ``Revoked``), 400 ``RoleAssignmentDoesNotExist`` when there is none,
  and 400 ``ActiveDurationTooShort`` within ``arm.refuse_early_removal(minimum)`` of its creation.
  ``GET`` of a request polls it; ``POST …/{name}/cancel`` cancels a pending one.
* ``GET {scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances`` with
  ``$filter=asTarget()`` (the caller's), ``atScope()``, ``principalId eq '…'``: instances seeded with
  ``arm.add_eligibility(...)`` at, above (and without ``atScope()``, below) the scope.
* ``GET /subscriptions`` lists the subscriptions of the stored documents (and any added with
  ``arm.add_subscription``); ``GET {scope}/providers/Microsoft.Authorization/permissions`` answers the
  caller's effective ``actions``/``notActions`` from its role assignments at or above the scope
  (built-in roles in ``ROLE_ACTIONS``, a custom role from its stored definition; an unknown role grants nothing).
* Custom roles: a role definition is a document like any other (``arm.add``, id ``/subscriptions/{id}/providers/
  Microsoft.Authorization/roleDefinitions/{guid}``), served by GET at every subscription its ``assignableScopes``
  cover (one definition per tenant). A PIM request for a role with a stored
  definition needs one whose ``assignableScopes`` cover the request's scope, and one for remediator's custom
  roles (``remediator.actions.custom_roles``) needs a stored definition at all: else 400
  ``RoleDefinitionDoesNotExist``, as ARM answers for a role not visible at the scope.
* Callers: ``arm.clients(principal_id=…)`` sends ``principal_token(principal_id)``; with
  ``credential=`` the clients use azure-core's real bearer-token policy (token caching and refresh
  as in production, https check off), so a test sees which token each request carried
  (``Recorded.principal``, ``Recorded.headers``). ``arm.clients()`` is an unidentified caller.
* ``arm.enforce_grants(principal_id, role_id=…)``: every write (PUT/PATCH/DELETE/POST action, PIM
  requests and Key Vault aside) by that principal or an unidentified caller needs a role assignment of
  the principal (of ``role_id`` when given) at or above the target, else 403 ``AuthorizationFailed``.
* ``arm.deny_writes_until_granted(requests=, seconds=, fresh_token=)``: after each PIM grant becomes
  active, the grantee's writes under its scope answer 403 ``AuthorizationFailed`` for the next
  ``requests`` writes and/or ``seconds``, and with ``fresh_token`` while they carry a token first
  presented before the grant (ARM's cache keyed on the token; a newly issued token is re-evaluated).

Optimistic concurrency: a ``PUT``, ``PATCH`` or ``DELETE`` with ``If-Match`` is refused with 412
``PreconditionFailed`` unless the stored document's ``etag`` is that value (``*``: it exists), as
ARM does; documents of ``ETAG_NAMESPACES`` get a fresh ``etag`` on every write.

Faults: ``arm.fail_next(...)`` answers an error (``fail_next("GET", name, 503, times=3)``: a
transient outage while planning); ``arm.stall(...)`` holds a request before it is served (a write
slower than a lease), or serves it and holds its answer (``land_first``: past the client's read
timeout) or closes the connection without one (``drop``).

Recording: ``arm.requests`` lists every request as ``Recorded``; ``arm.writes`` those that are
PUT/PATCH/DELETE or a POST action that changes something (``listCredentials``/``listKeys`` and
Resource Graph queries are reads, the first two flagged ``sensitive``; ``regenerateCredential`` is a
write). Key Vault's unauthenticated challenge probe is recorded but is not a write (nothing was
stored). ``arm.resource_writes`` leaves out PIM requests (``Recorded.is_pim``). ``arm.fail_next(...)`` injects errors.

Resource Graph (``remediator.testing.fake_graph``, not a KQL engine: it answers the query shapes
remediator sends): ``POST /providers/Microsoft.ResourceGraph/resources`` over the fake's documents,
with paging (``$top``/``$skipToken``), the ``x-ms-user-quota-*`` headers and ``arm.graph_quota(...)``;
``arm.freeze_graph()`` serves a stale snapshot; ``arm.add_subscription(sub, management_group=…)``.

Pace: ``FakeArm(latency=0.1)`` (or ``arm.latency``) delays every answer; every ARM answer carries
``x-ms-ratelimit-remaining-subscription-reads``/``-writes`` (``arm.ratelimit(reads=, writes=)``
sets the budgets; a spent budget answers 429 with ``Retry-After``); ``arm.throttle(fraction, retry_after=)``
answers that fraction of matching requests 429 and then throttles the whole subscription for
``retry_after`` seconds, as ARM does (``arm.throttle_stats``); ``arm.calls_per_subscription()`` counts
the requests per subscription and ``Recorded.at`` is each request's arrival (``arm.clock()``).
``FakeArm(clock=…)`` (or ``arm.clock``): the monotonic clock of the throttle windows, the Resource
Graph quota and the PIM propagation delay (``time.monotonic`` unless given; tests pass a virtual one
shared with ``ArmClients(clock=…, sleep=…)``, so that waiting out a 429 takes no time).

Chaos: ``arm.slow_writes(seconds, times=)`` holds the next resource writes before they land (a write
slower than the caller's lease or timeout); ``arm.in_flight()`` lists the requests not answered yet with
the caller's address (which process is inside a write).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy

from remediator import ids
from remediator.azure.clients import ArmClients
from remediator.testing import fake_graph
from remediator.testing.auth import (
    FAKE_TOKEN,
    VAULT_PREFIX,
    FakeCredential,
    RedirectTransport,
    StaticAuthPolicy,
)
from remediator.testing.fake_pim import Pim
from remediator.testing.fake_private_link import PrivateLink
from remediator.testing.serving import serve, shut

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})
# POST actions that only read (list-type actions); they return secrets, so they are "sensitive".
READ_ACTIONS = frozenset({"listcredentials", "listkeys", "listaccountsas", "listservicesas", "summarize"})
SENSITIVE_ACTIONS = frozenset({"listcredentials", "listkeys", "regeneratecredential", "regeneratekey"})

# children ARM returns inside the parent's ``properties`` (parent type → child type segments)
EMBEDDED: dict[str, tuple[str, ...]] = {
    "microsoft.network/networksecuritygroups": ("securityRules", "defaultSecurityRules"),
    "microsoft.network/virtualnetworks": ("subnets", "virtualNetworkPeerings"),
}
ROLE_ASSIGNMENTS = "microsoft.authorization/roleassignments"
ROLE_DEFINITIONS = "microsoft.authorization/roledefinitions"
SUMMARY_TAIL = "/providers/microsoft.policyinsights/policystates/latest"
ELIGIBILITY_INSTANCES = "microsoft.authorization/roleeligibilityscheduleinstances"
PIM_ASSIGN_TYPES = frozenset({"AdminAssign", "SelfActivate"})
PIM_UPDATE_TYPES = frozenset({"AdminUpdate"})
PIM_REMOVE_TYPES = frozenset({"AdminRemove", "SelfDeactivate"})
PIM_PENDING = frozenset({"Accepted", "PendingEvaluation", "Granted", "PendingProvisioning", "PendingApproval",
                         "PendingApprovalProvisioning", "PendingAdminDecision", "PendingScheduleCreation"})
PIM_MIN_DURATION = timedelta(minutes=5)
_PIM_REQUEST = re.compile(r"^(?P<scope>.*?)/providers/microsoft\.authorization/roleassignmentschedulerequests"
                          r"(?:/(?P<name>[^/]+)(?:/(?P<op>[^/]+))?)?/?$", re.IGNORECASE)
_PIM_ELIGIBILITY = re.compile(r"^(?P<scope>.*?)/providers/microsoft\.authorization/roleeligibilityscheduleinstances/?$",
                              re.IGNORECASE)
_ISO_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
                           re.IGNORECASE)
# Cognitive Services Deployments_CreateOrUpdate is long-running too (cognitiveservices.json 2024-10-01,
# x-ms-long-running-operation; its RAI policies' PUT is not: PutRaiPolicy.json answers 200/201).
ASYNC_PUT_TYPES = ("microsoft.network/", "microsoft.containerregistry/registries",
                   "microsoft.cognitiveservices/accounts/deployments")
PRICINGS = "microsoft.security/pricings"
AUTOMATIONS = "microsoft.security/automations"
# security 2024-01-01 pricings.json: a pricing at a resource ("Supported resources are: 'VirtualMachines, VMSS and
# ARC Machines' and only for plan='VirtualMachines' and subPlan='P1'"); ``enforce`` is subscription-level only.
PRICING_RESOURCE_TYPES = ("microsoft.compute/virtualmachines", "microsoft.compute/virtualmachinescalesets",
                          "microsoft.hybridcompute/machines")
# security 2019-01-01 advancedThreatProtectionSettings.json: ``{resourceId}/providers/Microsoft.Security/
# advancedThreatProtectionSettings/current``, GET and PUT, both answered 200 only (PutAdvancedThreatProtection
# Settings_example.json).
ATP_SETTINGS = "microsoft.security/advancedthreatprotectionsettings"
DIAGNOSTIC_SETTINGS = "microsoft.insights/diagnosticsettings"
# what ARM checks on a diagnostic setting's destinations, as linked scopes of its PUT (LinkedAuthorizationFailed):
# MicrosoftDocs/azure-docs issue #80159 and articles/azure-monitor/logs/manage-access.md
DIAGNOSTIC_SINKS = {"workspaceId": "Microsoft.OperationalInsights/workspaces/sharedKeys/action",
                    "storageAccountId": "Microsoft.Storage/storageAccounts/listKeys/action",
                    "eventHubAuthorizationRuleId": "Microsoft.EventHub/namespaces/authorizationRules/listkeys/action"}
# PATCHes that are long-running operations in their REST spec, answered the way the spec's examples do:
# Cognitive Services Accounts_Update 202 + azure-AsyncOperation (2024-10-01 UpdateAccount.json); ML
# Workspaces_Update 202 + Location (2024-10-01 Workspace/update.json), the Location ending in the resource.
ASYNC_PATCH_TYPES = {"microsoft.cognitiveservices/accounts": "async",
                     # Deployments_Update: 202 + azure-asyncoperation (2024-10-01 UpdateDeployment.json)
                     "microsoft.cognitiveservices/accounts/deployments": "async",
                     "microsoft.machinelearningservices/workspaces": "location"}
# ARM documents that carry an ``etag`` (a new one on every write): network resources, and Cognitive
# Services accounts (``etag: string (ReadOnly): Resource Etag`` in the 2023-05-01 types generated from
# the REST specs, Azure/bicep-types-az generated/cognitiveservices/…/2023-05-01/types.md)
ETAG_NAMESPACES = ("microsoft.network/", "microsoft.cognitiveservices/accounts")
DISK_TYPES = frozenset({"microsoft.compute/disks", "microsoft.compute/snapshots"})

_ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "AuthorizationFailed",
    404: "ResourceNotFound",
    409: "Conflict",
    412: "PreconditionFailed",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the fake received. ``path`` is URL-decoded, ``query`` maps names to values."""

    method: str
    path: str
    query: dict[str, str]
    body: Any | None
    headers: dict[str, str] = field(repr=False)
    status: int = 0
    at: float = 0.0  # arrival, on the fake's clock (time.monotonic unless given)

    @property
    def subscription_id(self) -> str | None:
        """The subscription in the path, lower-cased (None for tenant-level requests)."""
        sub = ids.parse(self.path).subscription_id
        return sub.lower() if sub else None

    @property
    def is_graph(self) -> bool:
        return self.path.lower().rstrip("/") == fake_graph.GRAPH_PATH

    @property
    def action(self) -> str:
        """The POST action name (``listCredentials``), lower-cased; ``""`` for other requests."""
        if self.method != "POST":
            return ""
        return self.path.rstrip("/").rsplit("/", 1)[-1].lower()

    @property
    def is_write(self) -> bool:
        if self.method not in WRITE_METHODS:
            return False
        if self.status == 401 and self.path.startswith(VAULT_PREFIX):
            return False  # Key Vault's challenge probe: nothing was stored
        if self.is_graph:
            return False  # a Resource Graph query is a POST that only reads
        return not (self.method == "POST" and self.action in READ_ACTIONS)

    @property
    def sensitive(self) -> bool:
        """Requests whose request or response carries a secret."""
        return self.action in SENSITIVE_ACTIONS or (
            self.path.startswith(VAULT_PREFIX) and "/secrets/" in self.path.lower()
        )

    @property
    def principal(self) -> str | None:
        """The caller's principal id, from a ``principal_token`` bearer token; None when unidentified."""
        return _bearer(self.headers)[1]

    @property
    def is_pim(self) -> bool:
        """A PIM request (a role assignment schedule request, its poll or cancel, an eligibility list)."""
        low = self.path.lower()
        return "/providers/microsoft.authorization/roleassignmentschedulerequests" in low or \
            "/providers/microsoft.authorization/roleeligibilityscheduleinstances" in low


@dataclass(slots=True)
class _Failure:
    method: str
    path_substring: str
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass(slots=True)
class _Stall:
    method: str
    path_substring: str
    seconds: float
    until: threading.Event | None
    land_first: bool
    drop: bool
    times: int
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait(self) -> None:
        self.arrived.set()
        if self.until is not None:
            self.until.wait(self.seconds or 30.0)  # never a hung test: at most 30 s
        elif self.seconds > 0:
            time.sleep(self.seconds)


@dataclass(slots=True)
class _Operation:
    kind: str  # "async" (Azure-AsyncOperation) or "location"
    polls: int = 0
    result: str | None = None  # a "location" operation that ends with 200 and this resource's document


class _Reply(Exception):
    """An HTTP answer, raised inside the handler as control flow; never escapes it."""

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


RAI_POLICIES = "microsoft.cognitiveservices/accounts/raipolicies"
DEPLOYMENTS = "microsoft.cognitiveservices/accounts/deployments"


def _system_policy(name: str) -> _Reply:
    """A write to a built-in (``SystemManaged``) content filter such as ``Microsoft.Default``: refused (the
    code is the fake's; Microsoft documents only that the default policies cannot be edited)."""
    return _error(400, "BadRequest", f"The content filter policy '{name}' is system-managed and cannot be modified; "
                  "create a custom policy instead.")


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message}}, headers)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _merge(target: dict[str, Any], patch: Mapping[str, Any], *, top: bool = True) -> None:
    """RFC 7396 merge patch; at the top level ``tags`` replaces the whole object (ARM semantics)."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(target.get(k), dict) and not (top and k == "tags"):
            _merge(target[k], v, top=False)
        else:
            target[k] = copy.deepcopy(v)


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def principal_token(principal_id: str, serial: str | int = "") -> str:
    """The bearer token FakeArm reads as ``principal_id``'s (``serial`` tells tokens apart)."""
    token = f"{FAKE_TOKEN}:{principal_id.lower()}"
    return f"{token}:{serial}" if serial != "" else token


def _bearer(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(token, principal id) of a request's ``Authorization: Bearer`` header."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if not value.lower().startswith("bearer "):
        return None, None
    token = value[7:].strip()
    parts = token.split(":")
    principal = parts[1].lower() if len(parts) > 1 and parts[0] == FAKE_TOKEN and parts[1] else None
    return token, principal


class HttpBearerPolicy(BearerTokenCredentialPolicy):  # type: ignore[type-arg]
    """azure-core's bearer-token policy (its token caching and refresh, as in production) without its
    https-only check, so clients with a real credential can talk to the fake's http URL."""

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        request.context["enforce_https"] = False
        super().on_request(request)


@dataclass(frozen=True, slots=True)
class PimGrant:
    """A role assignment PIM created through the fake (``arm.pim_grants()``)."""

    assignment_id: str
    request_id: str
    request_type: str
    principal_id: str
    role_definition_id: str
    scope: str
    created_at: datetime
    expires_at: datetime | None
    ended: str | None = None  # "removed" or "expired"


@dataclass(slots=True)
class _PimOutcome:
    status: str
    after_polls: int
    then: str
    times: int


@dataclass(slots=True)
class _PimRequest:
    doc: dict[str, Any]
    polls_left: int
    then: str
    start: datetime
    expires: datetime | None


@dataclass(slots=True)
class _Propagation:
    assignment_id: str
    principal_id: str
    scope: str
    remaining: int
    until: float | None
    since_seq: int
    fresh_token: bool


def _role_guid(role_definition_id: Any) -> str:
    return str(role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _error(400, "InvalidRequestContent", f"'{value}' is not a date-time.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_duration(value: Any) -> timedelta | None:
    m = _ISO_DURATION.match(value) if isinstance(value, str) and value not in ("P", "PT") else None
    if m is None:
        return None
    d, h, mi, sec = (float(m.group(g) or 0) for g in ("d", "h", "m", "s"))
    return timedelta(days=d, hours=h, minutes=mi, seconds=sec)




def _policy_failed(rule: str) -> _Reply:
    return _error(400, "RoleAssignmentRequestPolicyValidationFailed", f'The following policy rules failed: ["{rule}"]')


class FakeArm:
    """A local fake of ARM for the real Azure SDK clients; see the module docstring."""

    def __init__(self, *, page_size: int = 2, async_registry_update: bool = False, latency: float = 0.0,
                 graph_page_size: int = fake_graph.MAX_TOP, clock: Callable[[], float] = time.monotonic) -> None:
        if page_size < 1 or not 1 <= graph_page_size <= fake_graph.MAX_TOP:
            raise ValueError(f"page_size must be at least 1 and graph_page_size 1-{fake_graph.MAX_TOP}")
        self.page_size = page_size
        self.latency = latency  # seconds added to every answer (real ARM: ~0.1 s a read)
        self.clock = clock  # the windows' monotonic time (see the module docstring)
        self.graph_page_size = graph_page_size
        self._graph_pages: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._graph_snapshot: list[dict[str, Any]] | None = None
        self._graph_quota: fake_graph.GraphQuota | None = None
        self._management_groups: dict[str, set[str]] = {}
        self._throttle: _Throttle | None = None
        self._throttled_until: dict[str, float] = {}
        self._throttle_counts = {"injected": 0, "in_window": 0, "budget": 0}
        self._injected_by_sub: dict[str, int] = {}
        self._budgets: dict[str, dict[str, int]] = {}
        self._budget_limits = {"reads": 12000, "writes": 1200}
        self._budget_retry_after = 1.0
        self.async_registry_update = async_registry_update
        self._docs: dict[str, dict[str, Any]] = {}
        self._credentials: dict[str, dict[str, str]] = {}
        self._storage_keys: dict[str, list[dict[str, str]]] = {}
        self._policy_states: list[dict[str, str]] = []
        self._cognitive_keys: dict[str, dict[str, str]] = {}
        self._secrets: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
        self._operations: dict[str, _Operation] = {}
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self._failures: list[_Failure] = []
        self._stalls: list[_Stall] = []
        self._requests: list[Recorded] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        # PIM
        self._pim_requests: dict[str, _PimRequest] = {}
        self._pim_outcomes: list[_PimOutcome] = []
        self._pim_grants: list[PimGrant] = []
        self._min_active = timedelta(0)
        self._principal_types: dict[str, str] = {}
        self._enforced: tuple[str, str | None] | None = None
        self._propagation: tuple[int, float | None, bool] | None = None
        self._windows: list[_Propagation] = []
        self._subscriptions: dict[str, str] = {}  # id → display name (``add_subscription``)
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._token_seq: dict[str, int] = {}
        self._slow: list[_Slow] = []  # ``slow_writes``
        self._in_flight: dict[int, InFlight] = {}
        # private endpoints, their connections and DNS zone groups (remediator.testing.fake_private_link)
        self.private_link = PrivateLink(self, reply=_Reply, error=_error)
        # PIM eligibility, schedule instances and role settings (remediator.testing.fake_pim)
        self.pim = Pim(self, reply=_Reply, error=_error, schedule=_Handler._schedule)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeArm:
        if self._server is not None:
            return self
        fake = self

        class Handler(_Handler):
            arm = fake

        self._server, self._thread = serve(Handler, name="FakeArm")
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        shut(self._server, self._thread)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeArm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeArm is not started (use `with FakeArm() as arm:` or arm.start())")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def clients(self, *, principal_id: str | None = None, credential: Any = None, **client_kwargs: Any) -> ArmClients:
        """``ArmClients`` for this fake: fake credential, static bearer policy, no retries, no waits.

        ``principal_id``: the requests carry ``principal_token(principal_id)`` (the fake knows the caller).
        ``credential``: use it through azure-core's bearer-token policy (``HttpBearerPolicy``) instead,
        so its tokens (e.g. ``FakeCredential(principal_token(p, n))``) and their refresh reach the fake.
        ``client_kwargs`` override the defaults (for example ``retry_total=2``).
        """
        if credential is not None:
            auth: Any = HttpBearerPolicy(credential, f"{self.base_url}/.default")
        else:
            token = principal_token(principal_id) if principal_id else FAKE_TOKEN
            auth, credential = StaticAuthPolicy(token), FakeCredential(token)
        kwargs: dict[str, Any] = {
            "authentication_policy": auth,
            "retry_total": 0,
            "polling_interval": 0,
        }
        kwargs.update(client_kwargs)
        return ArmClients(
            credential,
            base_url=self.base_url,
            keyvault_kwargs={"transport": RedirectTransport(self.base_url), "retry_total": 0},
            **kwargs,
        )

    # -- seeding and reading state ----------------------------------------------------------
    def add(self, doc: Mapping[str, Any]) -> None:
        """Store an ARM document (a copy). A child of an embedded type goes into its parent."""
        if not isinstance(doc.get("id"), str) or not str(doc["id"]).strip():
            raise ValueError("an ARM document needs an 'id'")
        with self._lock:
            self._put(copy.deepcopy(dict(doc)), stamp=False)

    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            self.add(doc)

    def add_provider(self, subscription_id: str, namespace: str,
                     resource_types: Mapping[str, tuple[Sequence[str], Mapping[str, str]]]) -> dict[str, Any]:
        """Serve ``GET /subscriptions/{id}/providers/{namespace}`` (Providers - Get, Microsoft.Resources
        2021-04-01): ``resource_types`` maps a type below the namespace (``storageAccounts``) to its API
        versions (newest first) and its aliases (name → property path). Each alias is shaped as the spec's
        ``Alias`` (``name``, ``paths`` [{``path``, ``apiVersions``, ``metadata``: {``type``,
        ``attributes``}}], ``type``, ``defaultPath``, ``defaultMetadata``), ``Modifiable`` unless its path
        is written ``!path`` (metadata ``attributes: None``). The aliases are served only with
        ``$expand=resourceTypes/aliases``, as ARM does."""
        types = []
        for rtype, (versions, aliases) in resource_types.items():
            entries = []
            for name, path in aliases.items():
                modifiable = not path.startswith("!")
                meta = {"type": "String", "attributes": "Modifiable" if modifiable else "None"}
                clean = path.lstrip("!")
                entries.append({"name": name, "paths": [{"path": clean, "apiVersions": list(versions),
                                                          "metadata": meta}],
                                "type": "NotSpecified", "defaultPath": clean, "defaultMetadata": meta})
            types.append({"resourceType": rtype, "locations": ["East US", "West Europe"], "aliases": entries,
                          "apiVersions": list(versions), "capabilities": "None"})
        doc = {"id": f"/subscriptions/{subscription_id}/providers/{namespace}", "namespace": namespace,
               "registrationState": "Registered", "registrationPolicy": "RegistrationRequired",
               "resourceTypes": types}
        self.add(doc)
        return doc

    def add_policy_state(self, *, resource_id: str, assignment_id: str, definition_id: str,
                         compliance: str = "NonCompliant", effect: str = "audit",
                         set_definition_id: str = "") -> None:
        """A policy state (Microsoft.PolicyInsights) that ``…/policyStates/latest/summarize`` counts."""
        with self._lock:
            self._policy_states.append({"resourceId": resource_id, "policyAssignmentId": assignment_id,
                                        "policyDefinitionId": definition_id, "complianceState": compliance,
                                        "policyDefinitionAction": effect, "policySetDefinitionId": set_definition_id})

    def _summarize(self, scope: str) -> dict[str, Any]:
        """PolicyStates - Summarize For Subscription / Resource Group (2019-10-01 … 2024-10-01), shaped as
        the spec example PolicyStates_SummarizeResourceGroupScope.json: per assignment, per definition, the
        number of distinct non-compliant resources under ``scope``."""
        states = [s for s in self._policy_states if ids.is_under(s["resourceId"], scope)]

        def results(rows: list[dict[str, Any]]) -> dict[str, Any]:
            bad = {ids.key(r["resourceId"]) for r in rows if r["complianceState"].lower() == "noncompliant"}
            good = {ids.key(r["resourceId"]) for r in rows} - bad
            return {"queryResultsUri": None, "nonCompliantResources": len(bad),
                    "nonCompliantPolicies": len({r["policyDefinitionId"].lower() for r in rows
                                                 if r["complianceState"].lower() == "noncompliant"}),
                    "resourceDetails": [{"complianceState": "compliant", "count": len(good)},
                                        {"complianceState": "noncompliant", "count": len(bad)}]}

        assignments = []
        for aid in dict.fromkeys(s["policyAssignmentId"] for s in states):
            rows = [s for s in states if s["policyAssignmentId"] == aid]
            definitions = [{"policyDefinitionId": did, "policyDefinitionReferenceId": "",
                            "effect": next(r["policyDefinitionAction"] for r in rows if r["policyDefinitionId"] == did),
                            "results": results([r for r in rows if r["policyDefinitionId"] == did])}
                           for did in dict.fromkeys(r["policyDefinitionId"] for r in rows)]
            assignments.append({"policyAssignmentId": aid, "policySetDefinitionId": rows[0]["policySetDefinitionId"],
                                "results": results(rows), "policyDefinitions": definitions})
        context = f"{self.base_url}{scope}/providers/Microsoft.PolicyInsights/policyStates/$metadata#summary"
        return {"@odata.context": context, "@odata.count": 1,
                "value": [{"@odata.id": None, "@odata.context": context + "/$entity", "results": results(states),
                           "policyAssignments": assignments}]}

    def get(self, resource_id: str) -> dict[str, Any] | None:
        """The current document (a copy), or None."""
        with self._lock:
            doc = self._find(resource_id)
            return copy.deepcopy(doc) if doc is not None else None

    def remove(self, resource_id: str) -> bool:
        """Delete a stored document out of band (as someone else would, between a plan and its apply); whether
        it was there. Not recorded as a request."""
        with self._lock:
            return self._docs.pop(ids.key(resource_id), None) is not None

    def credentials(self, registry_id: str) -> dict[str, str]:
        """The ACR admin passwords the fake holds for a registry: ``{"password": …, "password2": …}``."""
        with self._lock:
            return dict(self._creds(registry_id))

    def account_keys(self, account_id: str) -> dict[str, str]:
        """The AI services account's two keys (``{"key1", "key2"}``) as listKeys answers them."""
        return dict(self._cognitive_keys.setdefault(ids.key(account_id), {"key1": _password(), "key2": _password()}))

    def set_credential(self, registry_id: str, name: str, value: str) -> None:
        """Set one ACR admin password (``password`` or ``password2``) the fake holds."""
        if name not in ("password", "password2"):
            raise ValueError("name must be 'password' or 'password2'")
        with self._lock:
            self._creds(registry_id)[name] = value

    def secret(self, vault_url: str, name: str) -> str | None:
        """The latest value of a Key Vault secret set through the fake, or None."""
        host = urlsplit(vault_url).netloc.lower() or vault_url.lower()
        with self._lock:
            versions = self._secrets.get((host, name.lower()))
            return str(versions[-1][1]["value"]) if versions else None

    # -- PIM --------------------------------------------------------------------------------
    def pim_outcome(self, status: str = "Provisioned", *, after_polls: int = 0, then: str = "Provisioned",
                    times: int = 1) -> None:
        """Queue the outcome of the next ``times`` AdminAssign/SelfActivate requests: ``status`` at once,
        and ``then`` after ``after_polls`` GETs of the request (when ``after_polls`` > 0)."""
        if after_polls < 0 or times < 1:
            raise ValueError("after_polls must be >= 0 and times >= 1")
        with self._lock:
            self._pim_outcomes.append(_PimOutcome(status, after_polls, then, times))

    def refuse_early_removal(self, minimum: timedelta = PIM_MIN_DURATION) -> None:
        """AdminRemove/SelfDeactivate within ``minimum`` of the assignment's creation → 400
        ``ActiveDurationTooShort`` (PIM's rule; off by default so tests can see removals)."""
        with self._lock:
            self._min_active = minimum

    def add_eligibility(self, principal_id: str, role_definition_id: str, scope: str, *,
                        principal_type: str = "User", member_type: str = "Direct",
                        start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
        """Seed an eligible assignment (a ``roleEligibilityScheduleInstances`` document); returns it."""
        name, schedule = str(uuid.uuid4()), str(uuid.uuid4())
        scope = "/" + scope.strip("/")
        now = datetime.now(UTC)
        doc = {
            "id": f"{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/{name}",
            "name": name,
            "type": "Microsoft.Authorization/roleEligibilityScheduleInstances",
            "properties": {
                "scope": scope,
                "roleDefinitionId": role_definition_id,
                "principalId": principal_id,
                "principalType": principal_type,
                "roleEligibilityScheduleId": f"{scope}/providers/Microsoft.Authorization/roleEligibilitySchedules/"
                                             f"{schedule}",
                "status": "Provisioned",
                "startDateTime": _iso(start or now - timedelta(days=1)),
                "endDateTime": _iso(end) if end else None,
                "memberType": member_type,
                "createdOn": _iso(now - timedelta(days=1)),
            },
        }
        with self._lock:
            self._principal_types[principal_id.lower()] = principal_type
            self._put(copy.deepcopy(doc), stamp=False)
        return doc

    def add_subscription(self, subscription_id: str, display_name: str = "", *,
                         management_group: str | None = None) -> None:
        """A subscription ``GET /subscriptions`` lists (and Resource Graph's ``resourcecontainers``
        knows) even without documents in it, optionally inside a management group."""
        with self._lock:
            self._subscriptions[subscription_id.lower()] = display_name or subscription_id
            if management_group:
                self._management_groups.setdefault(management_group.lower(), set()).add(subscription_id.lower())

    def assign_role(self, principal_id: str, role_id: str, scope: str) -> dict[str, Any]:
        """Seed a standing role assignment (``role_id``: a GUID or a definition id); returns it."""
        guid = _role_guid(role_id)
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope.lower()}|{principal_id.lower()}|{guid}"))
        sub = ids.parse(scope).subscription_id or "00000000-0000-0000-0000-000000000000"
        doc = {
            "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
            "name": name, "type": "Microsoft.Authorization/roleAssignments",
            "properties": {"roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                                                f"roleDefinitions/{guid}",
                           "principalId": principal_id.lower(), "principalType": "ServicePrincipal",
                           "scope": scope.rstrip("/")},
        }
        self.add(doc)
        return doc

    def enforce_grants(self, principal_id: str | None, *, role_id: str | None = None) -> None:
        """Writes by ``principal_id`` (or an unidentified caller) need a covering role assignment of that
        principal (of role ``role_id``, a GUID or definition id, when given); ``None`` turns this off."""
        with self._lock:
            self._enforced = (principal_id.lower(), _role_guid(role_id) if role_id else None) \
                if principal_id else None

    def deny_writes_until_granted(self, *, requests: int | None = None, seconds: float | None = None,
                                  fresh_token: bool = False) -> None:
        """Role propagation: after each PIM grant becomes active, the grantee's writes under its scope
        answer 403 ``AuthorizationFailed`` for the next ``requests`` writes and/or ``seconds``, and, with
        ``fresh_token``, while they carry a token first presented before the grant."""
        if requests is None and seconds is None and not fresh_token:
            raise ValueError("give requests, seconds or fresh_token")
        with self._lock:
            self._propagation = (requests or 0, seconds, fresh_token)

    def pim_grants(self, principal_id: str | None = None, *, active_only: bool = True) -> list[PimGrant]:
        """Role assignments created by PIM requests (``active_only``: not yet removed or expired)."""
        with self._lock:
            self._expire_grants()
            return [g for g in self._pim_grants
                    if (principal_id is None or g.principal_id == principal_id.lower())
                    and (g.ended is None or not active_only)]

    def pim_request(self, name_or_id: str) -> dict[str, Any] | None:
        """A PIM schedule request document (a copy) by name or id, or None."""
        want = name_or_id.rstrip("/").rsplit("/", 1)[-1].lower()
        with self._lock:
            for req in self._pim_requests.values():
                if str(req.doc["name"]).lower() == want:
                    return copy.deepcopy(req.doc)
        return None

    # -- Resource Graph, pace and throttling -------------------------------------------------
    def freeze_graph(self) -> None:
        """Resource Graph answers from a snapshot of the documents as they are now (it lags ARM)."""
        with self._lock:
            self._graph_snapshot = copy.deepcopy(list(self._docs.values()))

    def thaw_graph(self) -> None:
        with self._lock:
            self._graph_snapshot = None

    def graph_quota(self, limit: int | None, window: float = 5.0) -> None:
        """Resource Graph's per-caller quota: ``limit`` requests per ``window`` seconds (None: no quota)."""
        with self._lock:
            self._graph_quota = fake_graph.GraphQuota(limit, window, {}) if limit else None

    def throttle(self, fraction: float, *, retry_after: float = 1.0,
                 methods: Iterable[str] = ("PUT", "PATCH", "DELETE", "POST"), subscription: str | None = None) -> None:
        """Answer ``fraction`` of the matching requests (every ``1/fraction``-th, deterministic) 429 with
        ``Retry-After: retry_after``; ARM then throttles the whole subscription: every request to it
        in the next ``retry_after`` seconds is answered 429 too. ``fraction=0`` turns this off."""
        if not 0 <= fraction <= 1 or retry_after < 0:
            raise ValueError("fraction must be within 0-1 and retry_after >= 0")
        with self._lock:
            self._throttle = _Throttle(fraction, retry_after, frozenset(m.upper() for m in methods),
                                       subscription.lower() if subscription else None) if fraction else None

    @property
    def throttle_stats(self) -> dict[str, int]:
        """429s answered: ``injected`` (picked by ``throttle``), ``in_window`` (a request to a subscription
        still throttled), ``budget`` (an ``x-ms-ratelimit`` budget spent)."""
        with self._lock:
            return dict(self._throttle_counts)

    @property
    def injected_by_subscription(self) -> dict[str, int]:
        """The 429s ``throttle`` picked, per subscription (those that opened a throttled window)."""
        with self._lock:
            return dict(self._injected_by_sub)

    def ratelimit(self, *, reads: int = 12000, writes: int = 1200, retry_after: float = 1.0) -> None:
        """Per-subscription budgets reported in ``x-ms-ratelimit-remaining-subscription-reads``/``-writes``;
        a spent budget answers 429 (``Retry-After``) and is refilled after it."""
        with self._lock:
            self._budget_limits = {"reads": reads, "writes": writes}
            self._budget_retry_after = retry_after
            self._budgets.clear()

    def slow_writes(self, seconds: float, *, times: int = 1, methods: Iterable[str] = ("PATCH", "PUT"),
                    path_substring: str = "") -> None:
        """Hold the next ``times`` resource writes (``methods``, path containing ``path_substring``,
        case-insensitive; PIM requests are never held) ``seconds`` before they are served: the write
        lands after the wait, as a slow ARM write does, whether or not the caller still listens."""
        if seconds < 0 or times < 1:
            raise ValueError("seconds must be >= 0 and times >= 1")
        with self._lock:
            self._slow.append(_Slow(frozenset(m.upper() for m in methods), path_substring.lower(), seconds, times))

    def in_flight(self) -> list[InFlight]:
        """The requests received and not answered yet (with the caller's address)."""
        with self._lock:
            return list(self._in_flight.values())

    def _take_slow(self, method: str, path: str) -> float:
        if "/providers/microsoft.authorization/roleassignmentschedulerequests/" in path.lower():
            return 0.0
        with self._lock:
            for slow in self._slow:
                if method in slow.methods and slow.path_substring in path.lower():
                    slow.times -= 1
                    if slow.times <= 0:
                        self._slow.remove(slow)
                    return slow.seconds
        return 0.0

    def calls_per_subscription(self, *, method: str | None = None) -> dict[str, int]:
        """How many requests each subscription received (Resource Graph requests are tenant-level: not counted)."""
        out: dict[str, int] = {}
        for r in self.requests:
            if r.subscription_id and (method is None or r.method == method.upper()):
                out[r.subscription_id] = out.get(r.subscription_id, 0) + 1
        return out

    @property
    def graph_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.is_graph]

    # -- recording and failure injection ----------------------------------------------------
    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.is_write]

    @property
    def resource_writes(self) -> list[Recorded]:
        """Writes other than PIM requests: what the actions did (or tried) to resources."""
        return [r for r in self.requests if r.is_write and not r.is_pim]

    @property
    def sensitive(self) -> list[Recorded]:
        return [r for r in self.requests if r.sensitive]

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def fail_next(self, method: str, path_substring: str, status: int, body: Any = None,  # noqa: PLR0917
                  headers: Mapping[str, str] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``method`` (``"*"``: any) and
        ``path_substring`` (case-insensitive, on the decoded path) with ``status``.

        ``body`` defaults to ``{"error": {"code": <usual code for status>, "message": …}}``.
        """
        if body is None:
            code = _ERROR_CODES.get(status, f"Status{status}")
            body = {"error": {"code": code, "message": f"Injected failure: {code}."}}
        with self._lock:
            self._failures.append(
                _Failure(method.upper(), path_substring.lower(), status, body, dict(headers or {}), times)
            )

    def stall(self, method: str, path_substring: str, *, seconds: float = 0.0, until: threading.Event | None = None,
              land_first: bool = False, drop: bool = False, times: int = 1) -> threading.Event:
        """Hold the next ``times`` requests matching ``method`` and ``path_substring`` (as ``fail_next``)
        for ``seconds``, or until the event ``until`` is set (at most ``seconds`` when both are given,
        else at most 30 s).

        By default the request waits *before* it is served (a write slower than a lease: it lands at
        the end). ``land_first``: it is served first (the write lands) and its answer waits (past the
        client's read timeout). ``drop``: after the wait the connection is closed with no answer (a
        connection reset: the client cannot tell whether it landed), with ``land_first`` once the
        request was served, else before (it never lands). Returns an event set when a request
        starts waiting (the test knows the worker is stuck there)."""
        stall = _Stall(method.upper(), path_substring.lower(), seconds, until, land_first, drop, times)
        with self._lock:
            self._stalls.append(stall)
        return stall.arrived

    def _take_stall(self, method: str, path: str) -> _Stall | None:
        with self._lock:
            for stall in self._stalls:
                if stall.method in (method, "*") and stall.path_substring in path.lower():
                    stall.times -= 1
                    if stall.times <= 0:
                        self._stalls.remove(stall)
                    return stall
        return None

    # -- internals: store -------------------------------------------------------------------
    def _embedded_key(self, child_id: str) -> tuple[dict[str, Any], str] | None:
        """(parent document, property key) when ``child_id`` is an embedded child type."""
        rid = ids.parse(child_id)
        parent = rid.parent()
        if parent is None or len(rid.types) != len(rid.names):
            return None
        keys = EMBEDDED.get(ids.type_key(parent.type), ())
        for k in keys:
            if k.lower() == rid.types[-1].lower():
                pdoc = self._docs.get(ids.key(parent.id))
                return (pdoc, k) if pdoc is not None else None
        return None

    def _find(self, resource_id: str) -> dict[str, Any] | None:
        doc = self._docs.get(ids.key(resource_id))
        if doc is not None:
            return doc
        rid = ids.parse(resource_id)
        if ids.type_key(rid.type) == ROLE_DEFINITIONS and rid.subscription_id and not rid.resource_group:
            # one definition per tenant, served at every subscription where it is assignable
            for found in self._role_definitions(str(rid.name or "").lower()):
                scopes = (found.get("properties") or {}).get("assignableScopes") or ()
                if any(str(s) == "/" or ids.is_under(f"/subscriptions/{rid.subscription_id}", str(s)) for s in scopes):
                    return {**found, "id": resource_id}
            return None
        emb = self._embedded_key(resource_id)
        if emb is None:
            return None
        pdoc, k = emb
        for child in (pdoc.get("properties") or {}).get(k) or []:
            if isinstance(child, dict) and ids.same(str(child.get("id", "")), resource_id):
                return child
        return None

    def _put(self, doc: dict[str, Any], *, stamp: bool = True) -> bool:
        """Store ``doc``; True when it was created. Keeps embedded children inside the parent.

        ``stamp``: a write through the API gets a fresh etag and provisioningState; seeded
        documents (``add``) are stored exactly as given, so reads return what was saved.
        """
        rid = str(doc["id"])
        if stamp:
            self._stamp(doc)
        emb = self._embedded_key(rid)
        if emb is not None:
            pdoc, k = emb
            children = pdoc.setdefault("properties", {}).setdefault(k, [])
            for i, child in enumerate(children):
                if isinstance(child, dict) and ids.same(str(child.get("id", "")), rid):
                    children[i] = doc
                    if stamp:
                        self._stamp(pdoc)
                    return False
            children.append(doc)
            if stamp:
                self._stamp(pdoc)
            return True
        created = ids.key(rid) not in self._docs
        self._docs[ids.key(rid)] = doc
        return created

    def _delete(self, resource_id: str) -> dict[str, Any] | None:
        emb = self._embedded_key(resource_id)
        if emb is not None:
            pdoc, k = emb
            children = (pdoc.get("properties") or {}).get(k) or []
            for i, child in enumerate(children):
                if isinstance(child, dict) and ids.same(str(child.get("id", "")), resource_id):
                    del children[i]
                    self._stamp(pdoc)
                    return child
            return None
        return self._docs.pop(ids.key(resource_id), None)

    @staticmethod
    def _stamp(doc: dict[str, Any]) -> None:
        """Fresh etag on network resources; provisioningState where ARM reports one."""
        rtype = ids.type_key(str(doc.get("type") or ids.resource_type(str(doc.get("id", "")))))
        if rtype.startswith(ETAG_NAMESPACES):
            doc["etag"] = _etag()
            props = doc.setdefault("properties", {})
            if isinstance(props, dict):
                props["provisioningState"] = "Succeeded"

    def _creds(self, registry_id: str) -> dict[str, str]:
        k = ids.key(registry_id)
        if k not in self._credentials:
            self._credentials[k] = {"password": _password(), "password2": _password()}
        return self._credentials[k]

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self._requests.append(rec)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        with self._lock:
            for f in self._failures:
                if f.method in ("*", method) and f.path_substring in path.lower():
                    f.times -= 1
                    if f.times <= 0:
                        self._failures.remove(f)
                    return f
        return None

    def _throttled(self, method: str, sub: str) -> _Reply | None:
        """ARM's 429s for a request to ``sub``: a throttled window, an injected one, a spent budget."""
        now = self.clock()
        with self._lock:
            until = self._throttled_until.get(sub, 0.0)
            if now < until:
                self._throttle_counts["in_window"] += 1
                return _error(429, "SubscriptionRequestsThrottled", "Too many requests; retry later.",
                              {"Retry-After": _seconds(until - now)})
            t = self._throttle
            if t is not None and method in t.methods and (t.subscription is None or t.subscription == sub):
                t.seen += 1
                if int(t.seen * t.fraction) > int((t.seen - 1) * t.fraction):
                    self._throttled_until[sub] = now + t.retry_after
                    self._throttle_counts["injected"] += 1
                    self._injected_by_sub[sub] = self._injected_by_sub.get(sub, 0) + 1
                    return _error(429, "SubscriptionRequestsThrottled", "Too many requests; retry later.",
                                  {"Retry-After": _seconds(t.retry_after)})
            kind = "reads" if method == "GET" else "writes"
            budget = self._budgets.setdefault(sub, dict(self._budget_limits))
            if budget[kind] <= 0:
                budget[kind] = self._budget_limits[kind]  # refilled once the caller has waited
                self._throttled_until[sub] = now + self._budget_retry_after
                self._throttle_counts["budget"] += 1
                return _error(429, "SubscriptionRequestsThrottled", f"Subscription {kind} budget spent.",
                              {"Retry-After": _seconds(self._budget_retry_after)})
            budget[kind] -= 1
            return None

    def _budget_headers(self, method: str, sub: str) -> dict[str, str]:
        with self._lock:
            budget = self._budgets.get(sub) or dict(self._budget_limits)
        kind = "reads" if method == "GET" else "writes"
        return {f"x-ms-ratelimit-remaining-subscription-{kind}": str(max(budget[kind], 0))}

    def _graph(self, body: Any, caller: str) -> _Reply:
        now = self.clock()
        with self._lock:
            quota = self._graph_quota
            if quota is not None:
                allowed, remaining, resets = quota.take(caller, now)
            else:
                allowed, remaining, resets = True, 1000, 5.0
            headers = {"x-ms-user-quota-remaining": str(remaining),
                       "x-ms-user-quota-resets-after": fake_graph.hms(resets)}
            if not allowed:
                raise _error(429, "RateLimiting", "Please provide below info when asking for support: too many "
                             "requests; the quota resets after the time in x-ms-user-quota-resets-after.",
                             {**headers, "Retry-After": _seconds(resets)})
            docs = self._graph_snapshot if self._graph_snapshot is not None else list(self._docs.values())
            in_docs = (ids.parse(str(d.get("id", ""))).subscription_id for d in docs)
            subs = set(self._subscriptions) | {s for s in in_docs if s}
            out = fake_graph.answer(body, documents=docs, subscriptions={s.lower() for s in subs},
                                    management_groups=self._management_groups, pages=self._graph_pages,
                                    page_size=self.graph_page_size, error=_error)
        return _Reply(200, out, headers)

    def _new_operation(self, kind: str, result: str | None = None) -> str:
        op = f"op{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        self._operations[op] = _Operation(kind, result=result)
        return op

    def _page(self, items: list[dict[str, Any]], token: str | None, path: str,
              api_version: str) -> dict[str, Any]:
        if token is not None:
            items = self._pages.pop(token, [])
        first, rest = items[: self.page_size], items[self.page_size:]
        out: dict[str, Any] = {"value": copy.deepcopy(first)}
        if rest:
            nxt = uuid.uuid4().hex
            self._pages[nxt] = rest
            out["nextLink"] = f"{self.base_url}{path}?api-version={api_version}&$skiptoken={nxt}"
        return out


    # -- internals: PIM and authorization ----------------------------------------------------------
    def _note_request(self, token: str | None) -> int:
        """A sequence number for this request; remembers when each token was first presented."""
        seq = next(self._seq)
        self._last_seq = seq
        if token is not None:
            self._token_seq.setdefault(token, seq)
        return seq

    def _expire_grants(self) -> None:
        now = datetime.now(UTC)
        for i, g in enumerate(self._pim_grants):
            if g.ended is None and g.expires_at is not None and g.expires_at <= now:
                self._docs.pop(ids.key(g.assignment_id), None)
                self._pim_grants[i] = replace(g, ended="expired")

    def _assignments(self, principal_id: str, role_definition_id: str, scope: str) -> list[dict[str, Any]]:
        """Role assignments of exactly this principal, role (by GUID) and scope."""
        out = []
        for doc in self._docs.values():
            if ids.type_key(str(doc.get("type", ""))) != ROLE_ASSIGNMENTS:
                continue
            props = doc.get("properties") or {}
            if (str(props.get("principalId", "")).lower() == principal_id
                    and _role_guid(props.get("roleDefinitionId")) == _role_guid(role_definition_id)
                    and ids.same(_assignment_scope(doc), scope)):
                out.append(doc)
        return out

    def _subscription_docs(self) -> list[dict[str, Any]]:
        with self._lock:
            subs = {ids.parse(str(d["id"])).subscription_id for d in self._docs.values()} | set(self._subscriptions)
        return [{"id": f"/subscriptions/{s}", "subscriptionId": s, "displayName": self._subscriptions.get(s, s),
                 "state": "Enabled"} for s in sorted(x for x in subs if x)]

    def _role_definitions(self, guid: str) -> list[dict[str, Any]]:
        """The stored role definition documents named ``guid`` (custom roles, added with ``arm.add``)."""
        return [d for d in self._docs.values() if ids.type_key(str(d.get("type", ""))) == ROLE_DEFINITIONS
                and str(d.get("name", "")).lower() == guid]

    def _check_role_definition(self, role_definition_id: str, scope: str) -> None:
        """A grant of a custom role needs its definition, assignable at ``scope``: a stored definition whose
        ``assignableScopes`` do not cover the scope, or one of remediator's custom roles with no stored definition,
        is 400 ``RoleDefinitionDoesNotExist`` (ARM resolves a role definition at the scope; a custom role is
        visible only where it is assignable). Other GUIDs are taken as built-in roles, which exist everywhere."""
        from remediator.actions.custom_roles import CUSTOM_ROLES  # noqa: PLC0415

        guid = _role_guid(role_definition_id) or ""
        found = self._role_definitions(guid)
        known_custom = guid in {r.id for r in CUSTOM_ROLES.values()}
        if not found and not known_custom:
            return
        for doc in found:
            scopes = (doc.get("properties") or {}).get("assignableScopes") or ()
            if any(str(s) == "/" or ids.is_under(scope, str(s)) for s in scopes):
                return
        raise _error(400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not "
                                                        "exist.")

    def _permissions(self, principal_id: str | None, scope: str) -> list[dict[str, Any]]:
        """The permissions API: one entry per role the caller holds at or above ``scope``."""
        out = []
        for doc in self._docs.values():
            if ids.type_key(str(doc.get("type", ""))) != ROLE_ASSIGNMENTS:
                continue
            props = doc.get("properties") or {}
            if principal_id is None or str(props.get("principalId", "")).lower() != principal_id:
                continue
            at = _assignment_scope(doc)
            if at != "/" and not ids.is_under(scope, at):
                continue
            guid = _role_guid(props.get("roleDefinitionId")) or ""
            actions, not_actions = ROLE_ACTIONS.get(guid, ((), ()))
            for definition in self._role_definitions(guid):  # a custom role's own permissions
                for entry in (definition.get("properties") or {}).get("permissions") or ():
                    actions = (*actions, *(entry.get("actions") or ()))
                    not_actions = (*not_actions, *(entry.get("notActions") or ()))
            out.append({"actions": list(actions), "notActions": list(not_actions), "dataActions": [],
                        "notDataActions": []})
        return out

    def _covered(self, principal_id: str, role_guid: str | None, target: str) -> bool:
        for doc in self._docs.values():
            if ids.type_key(str(doc.get("type", ""))) != ROLE_ASSIGNMENTS:
                continue
            props = doc.get("properties") or {}
            if str(props.get("principalId", "")).lower() != principal_id:
                continue
            if role_guid and _role_guid(props.get("roleDefinitionId")) != role_guid:
                continue
            at = _assignment_scope(doc)
            if at == "/" or ids.is_under(target, at):
                return True
        return False

    def _authorize(self, method: str, path: str, token: str | None, caller: str | None) -> None:
        """Propagation windows, then enforcement; raises 403 ``AuthorizationFailed``."""
        for w in self._windows:
            if caller not in (None, w.principal_id) or not ids.is_under(path, w.scope):
                continue
            if ids.key(w.assignment_id) not in self._docs:
                continue  # removed or expired: enforcement decides
            counted = w.remaining > 0
            if counted:
                w.remaining -= 1
            timed = w.until is not None and self.clock() < w.until
            stale = w.fresh_token and self._token_seq.get(token or "", 0) <= w.since_seq
            if counted or timed or stale:
                raise _forbidden(method, path, caller or w.principal_id)
        if self._enforced is not None:
            principal, role = self._enforced
            if caller in (None, principal) and not self._covered(principal, role, path):
                raise _forbidden(method, path, caller or principal)

    def _next_outcome(self) -> _PimOutcome:
        if not self._pim_outcomes:
            return _PimOutcome("Provisioned", 0, "Provisioned", 1)
        outcome = self._pim_outcomes[0]
        outcome.times -= 1
        if outcome.times <= 0:
            self._pim_outcomes.pop(0)
        return outcome

    def _provision(self, req: _PimRequest) -> None:
        """The request reached Provisioned: create its role assignment (and a propagation window)."""
        props = req.doc["properties"]
        scope = str(props["scope"])
        name = str(uuid.uuid4())
        principal = str(props["principalId"]).lower()
        assignment_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        assignment: dict[str, Any] = {
            "id": assignment_id,
            "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": props["roleDefinitionId"],
                "principalId": props["principalId"],
                "principalType": self._principal_types.get(principal, "ServicePrincipal"),
                "scope": scope,
                "createdOn": _now(),
                "updatedOn": _now(),
            },
        }
        self._put(assignment, stamp=False)
        props["targetRoleAssignmentScheduleId"] = f"{scope}/providers/Microsoft.Authorization/" \
                                                  f"roleAssignmentSchedules/{uuid.uuid4()}"
        self._pim_grants.append(PimGrant(
            assignment_id=assignment_id, request_id=str(req.doc["id"]), request_type=str(props["requestType"]),
            principal_id=principal, role_definition_id=str(props["roleDefinitionId"]), scope=scope,
            created_at=datetime.now(UTC), expires_at=req.expires))
        if self._propagation is not None:
            requests, seconds, fresh = self._propagation
            self._windows.append(_Propagation(
                assignment_id=assignment_id, principal_id=principal, scope=scope, remaining=requests,
                until=self.clock() + seconds if seconds else None, since_seq=self._last_seq,
                fresh_token=fresh))


def _assignment_scope(doc: Mapping[str, Any]) -> str:
    props = doc.get("properties") or {}
    return str(props.get("scope") or str(doc.get("id", "")).rsplit("/providers/", 1)[0] or "/")


def _forbidden(method: str, path: str, principal: str) -> _Reply:
    rtype = ids.resource_type(path) or "Microsoft.Resources/scopes"
    verb = {"PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(method, "action")
    return _error(403, "AuthorizationFailed",
                  f"The client '{principal}' with object id '{principal}' does not have authorization to perform "
                  f"action '{rtype}/{verb}' over scope '{path}' or the scope is invalid. If access was recently "
                  "granted, please refresh your credentials.")


@dataclass(slots=True)
class _Slow:
    methods: frozenset[str]
    path_substring: str
    seconds: float
    times: int


@dataclass(frozen=True, slots=True)
class InFlight:
    """A request the fake received and has not answered yet (``arm.in_flight()``)."""

    method: str
    path: str
    client: tuple[str, int]  # the caller's address: which process holds the connection
    held: float = 0.0  # seconds ``slow_writes`` holds it before it is served


@dataclass(slots=True)
class _Throttle:
    fraction: float
    retry_after: float
    methods: frozenset[str]
    subscription: str | None
    seen: int = 0


def _seconds(value: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up (a fraction is kept below one second)."""
    if value <= 0:
        return "0"
    return str(int(value + 0.999)) if value >= 1 else f"{value:.3f}"


def _password() -> str:
    return secrets.token_urlsafe(24)


# What the built-in roles allow (their Actions/NotActions), for the permissions API: the roles the
# actions and the template use, from the built-in role definitions.
ROLE_ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": (("*",), ()),  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c": (("*",), ("Microsoft.Authorization/*/Delete",  # Contributor
                                                       "Microsoft.Authorization/*/Write",
                                                       "Microsoft.Authorization/elevateAccess/Action")),
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": (("*/read",), ()),  # Reader
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": (("*/read", "Microsoft.Authorization/*"), ()),  # User Access Administrator
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": (("Microsoft.Authorization/roleAssignments/write",  # RBAC Administrator
                                              "Microsoft.Authorization/roleAssignments/delete", "*/read"), ()),
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": (("Microsoft.Storage/storageAccounts/*", "*/read"), ()),
    "4d97b98b-1d4f-4787-a291-c67834d212e7": (("Microsoft.Network/*", "*/read"), ()),
    # Container Registry Contributor and Data Access Configuration Administrator: 55 explicit Actions, no wildcard over
    # registries (azadvertizer's mirror of 3bc748fc…); the control-plane ones the fake serves, per MicrosoftDocs/azure-
    # management-docs articles/container-registry/container-registry-rbac-built-in-roles-directory-reference.md
    # ("Create, update, view, list, and delete registries"; authentication settings: admin user, credentials;
    # "Configure private endpoint settings (set up, approve, reject, and list private endpoint connections …)").
    # No push or pull: the role has no data plane.
    "3bc748fc-213d-45c1-8d91-9da5725539b9": (("Microsoft.Authorization/*/read",
                                              "Microsoft.ContainerRegistry/registries/read",
                                              "Microsoft.ContainerRegistry/registries/write",
                                              "Microsoft.ContainerRegistry/registries/delete",
                                              "Microsoft.ContainerRegistry/registries/listCredentials/action",
                                              "Microsoft.ContainerRegistry/registries/regenerateCredential/action",
                                              "Microsoft.ContainerRegistry/registries/operationStatuses/read",
                                              "Microsoft.ContainerRegistry/registries/privateEndpointConnectionsApproval/"
                                              "action",
                                              "Microsoft.ContainerRegistry/registries/privateEndpointConnections/*",
                                              "Microsoft.ContainerRegistry/registries/privateLinkResources/read"), ()),
    # Security Admin
    "fb1c8493-542b-48eb-b624-b4c8fea62acd": (("Microsoft.Security/*", "Microsoft.Authorization/policyAssignments/*",
                                              "Microsoft.Authorization/policyDefinitions/*", "*/read"), ()),
    # Monitoring Contributor
    "749f88d5-cbae-40b8-bcfc-e573ddc772fa": (("Microsoft.Insights/DiagnosticSettings/*",
                                              "Microsoft.OperationalInsights/workspaces/sharedKeys/action",
                                              "*/read"), ()),
    # Reader and Data Access
    "c12c1c16-33a1-487b-954d-41c89c60f349": (("Microsoft.Storage/storageAccounts/listKeys/action",
                                              "Microsoft.Storage/storageAccounts/read"), ()),
    # Azure Event Hubs Data Owner (MicrosoftDocs/azure-docs built-in-roles/analytics.md: actions Microsoft.EventHub/*)
    "f526a384-b230-433a-b45c-95f59c4a2dec": (("Microsoft.EventHub/*",), ()),
    # The roles of the Private Link path (remediator.testing.fake_private_link), their Actions as published in
    # MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/ (networking.md, ai-machine-
    # learning.md, security.md, databases.md, web-and-mobile.md) and, for Azure AI Administrator, azadvertizer's
    # mirror of its definition; the monitoring/support/deployment actions they also hold are left out.
    "b12aa53e-6015-4669-85d0-8515ebb3ae7f": (("Microsoft.Network/privateDnsZones/*",  # Private DNS Zone Contributor
                                              "Microsoft.Network/privateDnsOperationResults/*",
                                              "Microsoft.Network/privateDnsOperationStatuses/*",
                                              "Microsoft.Network/virtualNetworks/read",
                                              "Microsoft.Network/virtualNetworks/join/action",
                                              "Microsoft.Authorization/*/read",
                                              "Microsoft.Resources/subscriptions/resourceGroups/read"), ()),
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68": (("Microsoft.CognitiveServices/*",  # Cognitive Services Contributor
                                              "Microsoft.Authorization/*/read",
                                              "Microsoft.Resources/subscriptions/resourceGroups/read"), ()),
    "f25e0fa2-a7c8-4377-a976-54943a77a395": (("Microsoft.KeyVault/*", "Microsoft.Authorization/*/read",  # Key Vault C.
                                              "Microsoft.Resources/subscriptions/resourceGroups/read"),
                                             ("Microsoft.KeyVault/locations/deletedVaults/purge/action",
                                              "Microsoft.KeyVault/hsmPools/*", "Microsoft.KeyVault/managedHsms/*")),
    "7ca78c08-252a-4471-8644-bb5ff32d4ba0": (("Microsoft.Search/searchServices/*",  # Search Service Contributor
                                              "Microsoft.Authorization/*/read",
                                              "Microsoft.Resources/subscriptions/resourceGroups/read"), ()),
    "5bd9cd88-fe45-4216-938b-f97437e15450": (("Microsoft.DocumentDb/databaseAccounts/*",  # DocumentDB Account C.
                                              "Microsoft.Authorization/*/read",
                                              "Microsoft.Resources/subscriptions/resourceGroups/read"), ()),
    "b78c5d69-af96-48a3-bf8d-a8b4d589de94": (("Microsoft.MachineLearningServices/workspaces/*",  # Azure AI Admin.
                                              "Microsoft.CognitiveServices/*",
                                              "Microsoft.ContainerRegistry/registries/*",
                                              "Microsoft.DocumentDb/databaseAccounts/*",
                                              "Microsoft.Authorization/*/read"), ()),
    "de139f84-1756-47ae-9be6-808fbbe84772": (("Microsoft.Web/sites/*",  # Website Contributor (web-and-mobile.md)
                                              "Microsoft.Web/serverFarms/read", "Microsoft.Web/serverFarms/join/action",
                                              "Microsoft.Web/certificates/*", "Microsoft.Authorization/*/read",
                                              "Microsoft.Resources/subscriptions/resourceGroups/read"), ()),
    "673868aa-7521-48a0-acc6-0f60742d39f5": (("Microsoft.DataFactory/dataFactories/*",  # Data Factory Contributor
                                              "Microsoft.DataFactory/factories/*",  # (analytics.md)
                                              "Microsoft.DataFactory/locations/getFeatureValue/read",
                                              "Microsoft.Authorization/*/read",
                                              "Microsoft.Resources/subscriptions/resourceGroups/read"), ()),
    "18500a29-7fe2-46b2-a342-b16a415e101d": (("Microsoft.KeyVault/managedHSMs/*",  # Managed HSM contributor
                                              "Microsoft.KeyVault/deletedManagedHsms/read",  # (security.md)
                                              "Microsoft.KeyVault/locations/deletedManagedHsms/read",
                                              "Microsoft.KeyVault/locations/managedHsmOperationResults/read"), ()),
}
_PERMISSIONS = re.compile(r"^(?P<scope>.*?)/providers/microsoft\.authorization/permissions/?$", re.IGNORECASE)

_FILTER_PRINCIPAL = re.compile(r"^principalId\s+eq\s+'([^']*)'$", re.IGNORECASE)


class _Handler(BaseHTTPRequestHandler):
    arm: FakeArm
    protocol_version = "HTTP/1.1"
    server_version = "FakeArm/1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines may carry names the tests check never leak."""

    def parse_request(self) -> bool:
        """The request line and headers read: the request is in flight (and a slow write is held here)."""
        if not super().parse_request():
            return False
        path = unquote(urlsplit(self.path).path)
        host, port = self.client_address[:2]
        hold = self.arm._take_slow(self.command, path)
        with self.arm._lock:
            self.arm._in_flight[id(self)] = InFlight(self.command, path, (str(host), int(port)), hold)
        if hold:
            time.sleep(hold)
        return True

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except ConnectionError:  # the caller gave up (a timeout, a killed process): what it missed stays done
            self.close_connection = True
        finally:
            with self.arm._lock:
                self.arm._in_flight.pop(id(self), None)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_POST(self) -> None:
        self._serve("POST")

    # -- plumbing ---------------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = dict(self.headers.items())
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        arrived = self.arm.clock()
        if self.arm.latency > 0:
            time.sleep(self.arm.latency)
        stall = self.arm._take_stall(method, path)
        if stall is not None and not stall.land_first:
            stall.wait()
            if stall.drop:  # dropped before it was served: it never lands
                self.close_connection = True
                return
        body: Any = None
        reply: _Reply
        try:
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                    raise _error(400, "InvalidRequestContent",
                                 "The request content was invalid JSON.") from None
            reply = self._dispatch(method, path, query, body, headers)
        except _Reply as r:
            reply = r
        except Exception as e:  # a bug in the fake: answer like ARM would, never hang the client
            reply = _error(500, "InternalServerError", f"FakeArm error: {type(e).__name__}: {e}")
        self.arm._record(Recorded(method, path, query, body, headers, reply.status, arrived))
        if stall is not None and stall.land_first:
            stall.wait()
            if stall.drop:  # no answer at all: the client sees the connection closed
                self.close_connection = True
                return
        try:
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (its read timeout)
            self.close_connection = True

    def _send(self, reply: _Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any,
                  headers: dict[str, str]) -> _Reply:
        arm = self.arm
        failure = arm._take_failure(method, path)
        if failure is not None:
            return _Reply(failure.status, failure.body, failure.headers)
        api_version = query.get("api-version")
        if not api_version:
            raise _error(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.")
        if path.lower().rstrip("/") == fake_graph.GRAPH_PATH:
            if method != "POST":
                raise _error(405, "MethodNotAllowed", "Resource Graph queries are POST requests.")
            return arm._graph(body, _bearer(headers)[0] or "anonymous")
        sub = ids.parse(path).subscription_id
        if sub and not path.startswith(("/_operations/", VAULT_PREFIX)):
            throttled = arm._throttled(method, sub.lower())
            if throttled is not None:
                return throttled
            try:
                reply = self._dispatch_arm(method, path, query, body, headers, api_version)
            except _Reply as r:
                reply = r
            reply.headers.update(arm._budget_headers(method, sub.lower()))
            return reply
        return self._dispatch_arm(method, path, query, body, headers, api_version)

    def _dispatch_arm(self, method: str, path: str, query: dict[str, str], body: Any,  # noqa: PLR0917
                      headers: dict[str, str], api_version: str) -> _Reply:
        arm = self.arm
        if path.startswith(VAULT_PREFIX):
            return self._vault(method, path, query, body, headers)
        if path.startswith("/_operations/"):
            return self._operation(path)
        token, caller = _bearer(headers)
        if method == "GET" and path.rstrip("/").lower() == "/subscriptions":
            return _Reply(200, {"value": arm._subscription_docs()})
        permissions = _PERMISSIONS.match(path) if method == "GET" else None
        if permissions is not None:
            with arm._lock:
                return _Reply(200, {"value": arm._permissions(caller, "/" + permissions.group("scope").strip("/"))})
        with arm._lock:
            arm._note_request(token)
            arm._expire_grants()
            pim = self._pim(method, path, query, body, caller=caller, token=token, api_version=api_version)
            if pim is not None:
                return pim
            if method in WRITE_METHODS:
                arm._authorize(method, path, token, caller)
            private_link = arm.private_link.handle(method, path, body, caller, api_version)
            if private_link is not None:
                return private_link  # type: ignore[no-any-return]
            if method == "PUT" and ids.type_key(ids.resource_type(path)) == DIAGNOSTIC_SETTINGS:
                sinks = (body or {}).get("properties") if isinstance(body, dict) else None
                linked = [(op, str(sinks[k])) for k, op in DIAGNOSTIC_SINKS.items()
                          if isinstance(sinks, dict) and sinks.get(k)]
                arm.private_link._require_linked(caller, "Microsoft.Insights/diagnosticSettings/write", path, linked)
            if method == "POST":
                return self._post(path, body, api_version)
            rid = ids.parse(path)
            is_collection = len(rid.types) > len(rid.names)
            if method == "GET" and is_collection:
                return self._list(path, query, api_version)
            if is_collection or not rid.namespace:
                if method == "GET" and arm._find(path) is not None:
                    return _Reply(200, copy.deepcopy(arm._find(path)))
                raise _error(404, "NotFound" if method == "GET" else "InvalidResourceType",
                             f"The resource path '{path}' is not a resource the fake can {method}.")
            if method == "GET":
                doc = arm._find(path) or self._implied(path)
                if doc is None:
                    raise self._not_found(path)
                doc = arm.private_link.as_read(copy.deepcopy(doc))
                if rid.subscription_id and not rid.types and "aliases" not in query.get("$expand", "").lower():
                    for rtype in doc.get("resourceTypes") or []:  # a provider: aliases only when expanded
                        if isinstance(rtype, dict):
                            rtype.pop("aliases", None)
                return _Reply(200, doc)
            if_match = next((v for k, v in headers.items() if k.lower() == "if-match"), None)
            if if_match is not None:
                current = arm._find(path)
                if current is None or (if_match != "*" and current.get("etag") != if_match):
                    raise _error(412, "PreconditionFailed",
                                 f"The condition specified using HTTP conditional header(s) is not met: the "
                                 f"resource's ETag is not {if_match}.")
            if method == "PUT":
                return self._put(path, body, api_version, caller=caller)
            if method == "PATCH":
                return self._patch(path, body, api_version)
            return self._delete(path, api_version)

    @staticmethod
    def _not_found(path: str) -> _Reply:
        rid = ids.parse(path)
        if ids.type_key(rid.type) == ROLE_ASSIGNMENTS:
            return _error(404, "RoleAssignmentNotFound", "The role assignment does not exist.")
        where = f" under resource group '{rid.resource_group}'" if rid.resource_group else ""
        return _error(404, "ResourceNotFound",
                      f"The Resource '{rid.type}/{'/'.join(rid.names)}'{where} was not found.")

    def _async_headers(self, kind: str, api_version: str, result: str | None = None) -> dict[str, str]:
        op = self.arm._new_operation(kind, result)
        url = f"{self.arm.base_url}/_operations/{op}?api-version={api_version}"
        name = "Azure-AsyncOperation" if kind == "async" else "Location"
        return {name: url, "Retry-After": "0"}

    def _operation(self, path: str) -> _Reply:
        op_id = path.rstrip("/").rsplit("/", 1)[-1]
        with self.arm._lock:
            private_link = self.arm.private_link.operation(op_id)
            if private_link is not None:
                return private_link  # type: ignore[no-any-return]
            op = self.arm._operations.get(op_id)
            if op is None:
                raise _error(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
            op.polls += 1
            polls = op.polls
        if op.kind == "async":
            status = "InProgress" if polls == 1 else "Succeeded"
            return _Reply(200, {"status": status}, {"Retry-After": "0"} if polls == 1 else None)
        if polls == 1:
            location = f"{self.arm.base_url}{path}?api-version=x"
            return _Reply(202, None, {"Location": location, "Retry-After": "0"})
        if op.result is not None:
            with self.arm._lock:
                doc = self.arm._find(op.result)
            return _Reply(200, copy.deepcopy(doc)) if doc is not None else _Reply(204)
        return _Reply(204)

    # -- PIM ------------------------------------------------------------------------------------------
    def _pim(self, method: str, path: str, query: dict[str, str], body: Any, *, caller: str | None,
             token: str | None, api_version: str) -> _Reply | None:
        m = _PIM_REQUEST.match(path)
        if m is not None:
            scope, name, op = "/" + m.group("scope").strip("/"), m.group("name"), m.group("op")
            if name and not op and method == "PUT":
                if isinstance(body, dict) and (body.get("properties") or {}).get("requestType") in PIM_UPDATE_TYPES:
                    self.arm._authorize(method, path, token, caller)  # the executor's, under its grant
                return self._pim_put(scope, name, body, caller)
            if name and not op and method == "GET":
                return self._pim_get(scope, name)
            if name and op and op.lower() == "cancel" and method == "POST":
                return self._pim_cancel(scope, name)
            raise _error(400, "UnsupportedRequest", f"FakeArm does not implement {method} '{path}'.")
        m = _PIM_ELIGIBILITY.match(path)
        if m is not None and method == "GET":
            return self._eligibility(path, "/" + m.group("scope").strip("/"), query, caller, api_version)
        if method == "PUT" and "/roleeligibilityschedulerequests/" in path.lower():
            self.arm._authorize(method, path, token, caller)  # made by the executor under its grant, not the broker
        return self.arm.pim.handle(method, path, query, body, caller=caller, api_version=api_version)  # type: ignore[no-any-return]

    def _pim_request(self, scope: str, name: str) -> _PimRequest:
        req = self.arm._pim_requests.get(ids.key(f"{scope}/providers/microsoft.authorization/"
                                                 f"roleassignmentschedulerequests/{name}"))
        if req is None:
            raise _error(404, "RoleAssignmentScheduleRequestNotFound",
                         f"The role assignment schedule request '{name}' was not found.")
        return req

    def _pim_put(self, scope: str, name: str, body: Any, caller: str | None) -> _Reply:
        arm = self.arm
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise _error(400, "InvalidRequestContent", "The request content must have 'properties'.")
        rtype = props.get("requestType")
        principal = str(props.get("principalId") or "").lower()
        role = str(props.get("roleDefinitionId") or "")
        known = PIM_ASSIGN_TYPES | PIM_REMOVE_TYPES | PIM_UPDATE_TYPES
        if rtype not in known or not principal or not _role_guid(role):
            raise _error(400, "InvalidRequestContent",
                         "principalId, roleDefinitionId and a requestType the fake implements "
                         f"({', '.join(sorted(known))}) are required.")
        rid = f"{scope}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{name}"
        if ids.key(rid) in arm._pim_requests:
            raise _error(409, "RoleAssignmentScheduleRequestExists", f"The request '{name}' already exists.")
        if rtype.startswith("Self") and caller is not None and caller != principal:
            raise _forbidden("PUT", rid, caller)
        existing = arm._assignments(principal, role, scope)
        now = datetime.now(UTC)
        start, expires = now, None
        outcome = _PimOutcome("Revoked", 0, "Revoked", 1)
        if rtype in PIM_UPDATE_TYPES:
            start, expires = arm.pim.update_assignment(props, scope, now)
            outcome = _PimOutcome("Provisioned", 0, "Provisioned", 1)
        elif rtype in PIM_ASSIGN_TYPES:
            start, expires = self._schedule(props.get("scheduleInfo"), now)
            if rtype == "SelfActivate":
                self._check_eligibility(principal, role, scope, str(props.get("linkedRoleEligibilityScheduleId") or ""))
            arm._check_role_definition(role, scope)
            if existing:
                raise _error(400, "RoleAssignmentExists", "The Role assignment already exists.")
            outcome = arm._next_outcome()
        else:
            if not existing:
                raise _error(400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
            for doc in existing:
                grant = next((g for g in arm._pim_grants if ids.same(g.assignment_id, str(doc["id"]))), None)
                if grant is not None and now - grant.created_at < arm._min_active:
                    raise _error(400, "ActiveDurationTooShort",
                                 f"The active duration is too short; the minimum is "
                                 f"{int(arm._min_active.total_seconds() // 60)} minutes.")
            for doc in existing:
                arm._docs.pop(ids.key(str(doc["id"])), None)
                for i, g in enumerate(arm._pim_grants):
                    if ids.same(g.assignment_id, str(doc["id"])):
                        arm._pim_grants[i] = replace(g, ended="removed")
        doc = {
            "id": rid,
            "name": name,
            "type": "Microsoft.Authorization/RoleAssignmentScheduleRequests",
            "properties": {
                "targetRoleAssignmentScheduleId": None,
                "targetRoleAssignmentScheduleInstanceId": None,
                "scope": scope,
                "roleDefinitionId": role,
                "principalId": props.get("principalId"),
                "principalType": arm._principal_types.get(principal, "ServicePrincipal"),
                "requestType": rtype,
                "status": outcome.status,
                "approvalId": None,
                "scheduleInfo": props.get("scheduleInfo"),
                "linkedRoleEligibilityScheduleId": props.get("linkedRoleEligibilityScheduleId"),
                "ticketInfo": props.get("ticketInfo") or {"ticketNumber": None, "ticketSystem": None},
                "justification": props.get("justification"),
                "requestorId": caller,
                "createdOn": _iso(now),
            },
        }
        req = _PimRequest(doc, outcome.after_polls, outcome.then, start, expires)
        arm._pim_requests[ids.key(rid)] = req
        if rtype in PIM_ASSIGN_TYPES and outcome.status == "Provisioned":
            arm._provision(req)
        return _Reply(201, copy.deepcopy(doc))

    @staticmethod
    def _schedule(info: Any, now: datetime) -> tuple[datetime, datetime | None]:
        """(start, end) of an assignment's schedule; PIM's 5-minute minimum is its ExpirationRule."""
        info = info if isinstance(info, dict) else {}
        start = _parse_time(info.get("startDateTime")) or now
        expiration = info.get("expiration") if isinstance(info.get("expiration"), dict) else {}
        kind = expiration.get("type") or "NoExpiration"
        if kind == "AfterDuration":
            duration = _parse_duration(expiration.get("duration"))
            if duration is None or duration < PIM_MIN_DURATION:
                raise _policy_failed("ExpirationRule")
            return start, start + duration
        if kind == "AfterDateTime":
            end = _parse_time(expiration.get("endDateTime"))
            if end is None or end - start < PIM_MIN_DURATION:
                raise _policy_failed("ExpirationRule")
            return start, end
        if kind == "NoExpiration":
            return start, None
        raise _error(400, "InvalidRequestContent", f"Unknown expiration type '{kind}'.")

    def _check_eligibility(self, principal: str, role: str, scope: str, link: str) -> None:
        now = datetime.now(UTC)
        for doc in self.arm._docs.values():
            if ids.type_key(str(doc.get("type", ""))) != ELIGIBILITY_INSTANCES:
                continue
            p = doc.get("properties") or {}
            schedule = str(p.get("roleEligibilityScheduleId") or "")
            if not link or not (ids.same(schedule, link) or schedule.rsplit("/", 1)[-1].lower() == link.lower()):
                continue
            start, end = _parse_time(p.get("startDateTime")), _parse_time(p.get("endDateTime"))
            if (str(p.get("principalId", "")).lower() == principal
                    and _role_guid(p.get("roleDefinitionId")) == _role_guid(role)
                    and ids.is_under(scope, str(p.get("scope") or "/"))
                    and (start is None or start <= now) and (end is None or end > now)):
                return
        raise _policy_failed("EligibilityRule")

    def _pim_get(self, scope: str, name: str) -> _Reply:
        req = self._pim_request(scope, name)
        if req.polls_left > 0:
            req.polls_left -= 1
            if req.polls_left == 0:
                req.doc["properties"]["status"] = req.then
                if req.then == "Provisioned":
                    self.arm._provision(req)
        return _Reply(200, copy.deepcopy(req.doc))

    def _pim_cancel(self, scope: str, name: str) -> _Reply:
        req = self._pim_request(scope, name)
        props = req.doc["properties"]
        if props["status"] not in PIM_PENDING:
            raise _error(400, "InvalidRoleAssignmentScheduleRequestState",
                         f"A request in status '{props['status']}' cannot be canceled.")
        props["status"] = "Canceled"
        req.polls_left = 0
        return _Reply(200)

    def _eligibility(self, path: str, scope: str, query: dict[str, str], caller: str | None,
                     api_version: str) -> _Reply:
        arm = self.arm
        token = query.get("$skiptoken") or query.get("$skipToken")
        if token is not None:
            return _Reply(200, arm._page([], token, path, api_version))
        principals: set[str | None] = set()
        filtered = at_scope = False
        for part in re.split(r"\s+and\s+", query.get("$filter") or "", flags=re.IGNORECASE):
            clause = part.strip()
            if not clause:
                continue
            if clause.lower() == "atscope()":
                at_scope = True
            elif clause.lower() == "astarget()":
                filtered = True
                principals.add(caller)
            elif (m := _FILTER_PRINCIPAL.match(clause)) is not None:
                filtered = True
                principals.add(m.group(1).lower())
            else:
                raise _error(400, "UnsupportedQuery", f"The filter '{clause}' is not supported.")
        items = []
        for doc in arm._docs.values():
            if ids.type_key(str(doc.get("type", ""))) != ELIGIBILITY_INSTANCES:
                continue
            p = doc.get("properties") or {}
            at = str(p.get("scope") or "/")
            above = ids.is_under(scope, at) or at == "/"
            below = ids.is_under(at, scope) and not ids.same(at, scope)
            if not (above or (below and not at_scope)):
                continue
            if filtered and str(p.get("principalId", "")).lower() not in principals:
                continue
            items.append(doc)
        return _Reply(200, arm._page(items, None, path, api_version))

    # -- resources --------------------------------------------------------------------------
    def _put(self, path: str, body: Any, api_version: str, *, caller: str | None = None) -> _Reply:
        arm = self.arm
        if not isinstance(body, dict):
            raise _error(400, "InvalidRequestContent", "The request content must be a JSON object.")
        rid = ids.parse(path)
        rtype = ids.type_key(rid.type)
        if rtype == RAI_POLICIES and rid.name.lower().startswith("microsoft."):
            raise _system_policy(rid.name)
        existing = arm._find(path)
        doc = copy.deepcopy(body)
        for k in ("id", "name", "type"):
            doc.pop(k, None)
        doc = {"id": existing["id"] if existing else path, "name": rid.name, "type": rid.type, **doc}
        kept = ((existing or {}).get("properties") or {}).get("privateEndpointConnections")
        if kept is not None and isinstance(doc.get("properties"), dict):
            # read-only everywhere: connections come and go through their own resource, never through the PUT
            doc["properties"].setdefault("privateEndpointConnections", copy.deepcopy(kept))
        if rtype == ROLE_ASSIGNMENTS:
            return self._put_role_assignment(path, doc, existing, caller)
        if rtype == PRICINGS:
            return self._put_pricing(path, doc, existing)
        if rtype == ATP_SETTINGS:
            return self._put_atp_setting(path, doc)
        if rtype == DIAGNOSTIC_SETTINGS:
            return self._put_diagnostic_setting(path, doc)
        if rtype == AUTOMATIONS:
            return self._put_automation(path, doc, existing)
        parent = rid.parent()
        if arm._embedded_key(path) is None and parent is not None and \
                any(k.lower() == rid.types[-1].lower() for k in EMBEDDED.get(ids.type_key(parent.type), ())):
            raise _error(404, "ParentResourceNotFound", f"Parent resource '{parent.id}' was not found.")
        created = arm._put(doc)
        status = 201 if created else 200
        if rtype.startswith(ASYNC_PUT_TYPES):
            return _Reply(status, copy.deepcopy(doc), self._async_headers("async", api_version))
        return _Reply(status, copy.deepcopy(doc))

    def _implied(self, path: str) -> dict[str, Any] | None:
        """What ARM answers for an extension resource that every resource has without anyone writing it: a
        machine's Defender pricing (the subscription's, inherited) and a resource's Advanced Threat Protection
        setting (off); None for anything else."""
        rtype = ids.type_key(ids.resource_type(path))
        if rtype not in (PRICINGS, ATP_SETTINGS) or path.lower().count("/providers/") < 2:
            return None
        scope = path[: path.lower().rindex("/providers/")]
        if self.arm._find(scope) is None:
            return None
        rid = ids.parse(path)
        if rtype == ATP_SETTINGS:
            if rid.name.lower() != "current":
                return None
            return {"id": path, "name": rid.name, "type": "Microsoft.Security/advancedThreatProtectionSettings",
                    "properties": {"isEnabled": False}}
        if ids.type_key(ids.resource_type(scope)) not in PRICING_RESOURCE_TYPES:
            return None
        subscription = f"/subscriptions/{rid.subscription_id}"
        parent = self.arm._find(f"{subscription}/providers/Microsoft.Security/pricings/{rid.name}")
        if parent is None:
            return None
        props = {k: copy.deepcopy(v) for k, v in (parent.get("properties") or {}).items()
                 if k not in ("enforce", "resourcesCoverageStatus", "deprecated", "replacedBy")}
        props.update(inherited="True", inheritedFrom=subscription)
        return {"id": path, "name": str(parent.get("name") or rid.name), "type": "Microsoft.Security/pricings",
                "properties": props}

    def _put_atp_setting(self, path: str, doc: dict[str, Any]) -> _Reply:
        """AdvancedThreatProtection_Create (security 2019-01-01): 200 with the setting, on an existing resource."""
        scope = path[: path.lower().rindex("/providers/")] if path.lower().count("/providers/") > 1 else ""
        if not scope or self.arm._find(scope) is None:
            raise _error(404, "ResourceNotFound", f"The Resource '{scope or path}' was not found.")
        enabled = (doc.get("properties") or {}).get("isEnabled")
        if not isinstance(enabled, bool):
            raise _error(400, "InvalidInputJson", f"isEnabled must be true or false, got {enabled!r}.")
        doc["id"] = path
        self.arm._put(doc)
        return _Reply(200, copy.deepcopy(doc))

    def _put_resource_pricing(self, path: str, doc: dict[str, Any]) -> _Reply:
        """Pricings_Update at a machine (PutResourcePricingByNameVirtualMachines_example.json): 201 when it gets
        its own setting, 200 when it had one; ``inherited: "False"``, the subscription's extensions shown."""
        rid = ids.parse(path)
        scope = path[: path.lower().rindex("/providers/")]
        if rid.name.lower() != "virtualmachines":
            raise _error(400, "InvalidInputJson", f"Plan '{rid.name}' cannot be set at a resource; only "
                                                  "VirtualMachines.")
        implied = self._implied(path)
        stored = self.arm._find(path)
        if implied is None and stored is None:
            raise _error(404, "ResourceNotFound", f"The Resource '{scope}' was not found, or is not a virtual "
                                                  "machine, scale set or Arc machine, or its subscription has no "
                                                  f"pricing {rid.name}.")
        props = doc.setdefault("properties", {})
        tier = props.get("pricingTier")
        if tier not in ("Free", "Standard"):
            raise _error(400, "InvalidInputJson", f"pricingTier must be Free or Standard, got {tier!r}.")
        if tier == "Standard" and str(props.get("subPlan") or "") != "P1":
            raise _error(400, "InvalidInputJson", "At a resource the VirtualMachines plan supports subPlan 'P1' only.")
        if "enforce" in props:
            raise _error(400, "InvalidInputJson", "enforce is available for subscription-level pricing only.")
        old = (stored or implied or {}).get("properties") or {}
        props.update(inherited="False", inheritedFrom=None)
        if tier == "Standard":
            props["enablementTime"] = old.get("enablementTime") if old.get("pricingTier") == "Standard" else _now()
            props.setdefault("freeTrialRemainingTime", old.get("freeTrialRemainingTime") or "PT0S")
            if "extensions" not in props and old.get("extensions") is not None:
                props["extensions"] = copy.deepcopy(old["extensions"])
        doc["id"] = str((stored or {}).get("id") or path)
        self.arm._put(doc)
        return _Reply(200 if stored is not None else 201, copy.deepcopy(doc))

    def _put_pricing(self, path: str, doc: dict[str, Any], existing: dict[str, Any] | None) -> _Reply:
        """Pricings_Update (security 2024-01-01 PutPricingByName_example.json): every plan of a subscription
        exists (Free until enabled), so a PUT changes it: 200 with the pricing, read-only properties kept,
        ``enablementTime`` set when it becomes Standard, each extension answered with its ``operationStatus``."""
        if path.lower().count("/providers/") > 1:
            return self._put_resource_pricing(path, doc)
        if existing is None:
            raise _error(404, "PricingNotFound" if ids.parse(path).subscription_id else "InvalidResourceType",
                         f"The pricing bundle '{ids.parse(path).name}' does not exist for this subscription.")
        props = doc.setdefault("properties", {})
        tier = props.get("pricingTier")
        if tier not in ("Free", "Standard"):
            raise _error(400, "InvalidInputJson", f"pricingTier must be Free or Standard, got {tier!r}.")
        old = existing.get("properties") or {}
        for key in ("freeTrialRemainingTime", "enablementTime", "deprecated", "replacedBy", "resourcesCoverageStatus"):
            if key in old and key not in props:
                props[key] = copy.deepcopy(old[key])
        if tier == "Standard" and old.get("pricingTier") != "Standard":
            props["enablementTime"] = _now()
        if tier == "Free":  # as the examples show a Free plan: no sub-plan, extensions or enablement time
            for key in ("subPlan", "extensions", "enablementTime"):
                props.pop(key, None)
        for ext in props.get("extensions") or []:
            if isinstance(ext, dict):
                ext["operationStatus"] = {"code": "Succeeded", "message": "Successfully updated extension"}
        self.arm._put(doc)
        return _Reply(200, copy.deepcopy(doc))

    def _put_automation(self, path: str, doc: dict[str, Any], existing: dict[str, Any] | None) -> _Reply:
        """Automations_CreateOrUpdate (security 2023-12-01-preview automations.json, PutAutomationAllAssessments_
        example.json, PutDisableAutomation_example.json): 201 created / 200 replaced, with a new ``etag``; 404 when
        a new automation's resource group is not stored; 400 without a location, with an event source outside the spec's
        ``EventSource``, or an action without ``actionType`` (an ``EventHub`` one without ``eventHubResourceId``).
        What the spec says is never returned is not stored: an action's ``connectionString`` and a Logic App's
        ``uri``; an ``EventHub`` action answers its read-only ``sasPolicyName`` when it names a connection string's
        key (``SharedAccessKeyName=…``)."""
        from remediator.actions.continuous_export import EVENT_SOURCES  # noqa: PLC0415

        rid = ids.parse(path)
        if existing is None and self.arm._find(f"/subscriptions/{rid.subscription_id}/resourceGroups/"
                                               f"{rid.resource_group}") is None:
            raise _error(404, "ResourceGroupNotFound", f"Resource group '{rid.resource_group}' could not be found.")
        if not doc.get("location"):
            raise _error(400, "InvalidInputJson", "The automation's location is required.")
        props = doc.setdefault("properties", {})
        known = {s.lower() for s in EVENT_SOURCES}
        for source in props.get("sources") or []:
            if not isinstance(source, dict) or str(source.get("eventSource", "")).lower() not in known:
                raise _error(400, "InvalidInputJson", f"Invalid event source {source!r}.")
        for action in props.get("actions") or []:
            kind = str(action.get("actionType", "")) if isinstance(action, dict) else ""
            if kind not in ("LogicApp", "EventHub", "Workspace"):
                raise _error(400, "InvalidInputJson", f"Invalid action type {kind!r}.")
            if kind == "EventHub" and not action.get("eventHubResourceId"):
                raise _error(400, "InvalidInputJson", "An EventHub action needs eventHubResourceId.")
            secret = str(action.pop("connectionString", "") or "")
            action.pop("uri", None)
            key = re.search(r"SharedAccessKeyName=([^;]+)", secret)
            if key:
                action["sasPolicyName"] = key.group(1)
        doc["etag"] = f'"{uuid.uuid4()}"'
        created = self.arm._put(doc)
        return _Reply(201 if created else 200, copy.deepcopy(doc))

    def _put_diagnostic_setting(self, path: str, doc: dict[str, Any]) -> _Reply:
        """DiagnosticSettings_CreateOrUpdate (monitor 2021-05-01-preview createOrUpdateDiagnosticSetting.json):
        200 with the setting, created or replaced; 400 without a destination, with a log entry that names
        neither a category nor a category group, or sending a category to a destination another setting of the
        resource already sends it to; 404 when the resource it attaches to does not exist."""
        scope = path[: [m.start() for m in re.finditer(r"/providers/", path, flags=re.IGNORECASE)][-1]]
        if self.arm._find(scope) is None:
            raise _error(404, "ResourceNotFound", f"The Resource '{scope}' was not found.")
        props = doc.get("properties")
        if not isinstance(props, dict) or not any(props.get(k) for k in (
                "workspaceId", "storageAccountId", "eventHubAuthorizationRuleId", "marketplacePartnerId")):
            raise _error(400, "BadRequest", "At least one destination (storage account, Event Hub, Log Analytics "
                                            "workspace or partner) needs to be specified.")
        for entry in props.get("logs") or []:
            if not isinstance(entry, dict) or not (entry.get("category") or entry.get("categoryGroup")):
                raise _error(400, "BadRequest", "Each log setting needs a category or a categoryGroup.")
        self._refuse_reused_sink(scope, path, props)
        doc["id"] = path
        self.arm._put(doc)
        return _Reply(200, copy.deepcopy(doc))

    def _refuse_reused_sink(self, scope: str, path: str, props: Mapping[str, Any]) -> None:
        """ARM's 400 when another setting of the same resource already sends a category (or category group) of
        this one to the same destination ("Data sinks can't be reused in different settings on the same category
        for the same resource")."""
        def sent(p: Mapping[str, Any]) -> set[str]:
            return {str(e.get("categoryGroup") or e.get("category") or "").lower() for e in p.get("logs") or []
                    if isinstance(e, dict) and e.get("enabled") in (True, "true", "True")}

        mine = sent(props)
        for other in self.arm._docs.values():
            oid = str(other.get("id", ""))
            if ids.type_key(str(other.get("type", ""))) != DIAGNOSTIC_SETTINGS or ids.same(oid, path) or \
                    ids.key(oid).rsplit("/providers/", 1)[0] != ids.key(scope):
                continue
            theirs = other.get("properties") or {}
            for sink in ("workspaceId", "storageAccountId", "eventHubAuthorizationRuleId"):
                if props.get(sink) and theirs.get(sink) and ids.same(str(props[sink]), str(theirs[sink])):
                    both = sorted(mine & sent(theirs))
                    if both:
                        raise _error(400, "BadRequest", f"Data sink '{props[sink]}' is already used in diagnostic "
                                     f"setting '{other.get('name')}' for category '{both[0]}'. Data sinks can't be "
                                     "reused in different settings on the same category for the same resource.")

    def _put_role_assignment(self, path: str, doc: dict[str, Any], existing: dict[str, Any] | None,
                             caller: str | None) -> _Reply:
        """RoleAssignments_Create: ``createdBy``/``updatedBy`` are the caller's object id, as ARM records them
        (read-only in the 2022-04-01 spec; what a body sends for them is ignored)."""
        props = doc.setdefault("properties", {})
        for k in ("createdBy", "updatedBy", "createdOn", "updatedOn"):
            props.pop(k, None)
        if existing is not None:
            for k in ("createdBy", "createdOn"):
                if (existing.get("properties") or {}).get(k) is not None:
                    props[k] = existing["properties"][k]
        if caller:
            props.setdefault("createdBy", caller)
            props["updatedBy"] = caller
        scope = path.rsplit("/providers/", 1)[0] or "/"
        props.setdefault("scope", scope)
        for other in self.arm._docs.values():
            if other is existing or ids.type_key(str(other.get("type", ""))) != ROLE_ASSIGNMENTS:
                continue
            op = other.get("properties") or {}
            if (str(op.get("principalId", "")).lower() == str(props.get("principalId", "")).lower()
                    and ids.same(str(op.get("roleDefinitionId", "")), str(props.get("roleDefinitionId", "")))
                    and ids.same(str(op.get("scope", "")), scope)):
                raise _error(409, "RoleAssignmentExists", "The role assignment already exists.")
        if existing is None:
            props.setdefault("createdOn", _now())
        props["updatedOn"] = _now()
        created = self.arm._put(doc)
        return _Reply(201 if created else 200, copy.deepcopy(doc))

    def _patch(self, path: str, body: Any, api_version: str) -> _Reply:
        arm = self.arm
        if not isinstance(body, dict):
            raise _error(400, "InvalidRequestContent", "The request content must be a JSON object.")
        doc = arm._find(path)
        if doc is None:
            raise self._not_found(path)
        patch = {k: v for k, v in body.items() if k not in ("id", "name", "type")}
        if ids.type_key(ids.resource_type(path)) == DEPLOYMENTS and set(patch) - {"sku", "tags"}:
            # Deployments_Update takes PatchResourceTagsAndSku: sku and tags only (a deployment's properties
            # change through Deployments_CreateOrUpdate, a PUT)
            raise _error(400, "InvalidRequestContent", "Deployments_Update accepts only 'sku' and 'tags'; found "
                         f"{', '.join(sorted(set(patch) - {'sku', 'tags'}))}.")
        _merge(doc, patch)
        arm._stamp(doc)
        rtype = ids.type_key(ids.resource_type(path))
        if rtype == "microsoft.containerregistry/registries" and arm.async_registry_update:
            return _Reply(201, copy.deepcopy(doc), self._async_headers("async", api_version))
        kind = ASYNC_PATCH_TYPES.get(rtype)
        if kind == "async":
            return _Reply(202, copy.deepcopy(doc), self._async_headers("async", api_version))
        if kind == "location":
            return _Reply(202, None, self._async_headers("location", api_version, result=path))
        if rtype in DISK_TYPES:
            # Disks_Update / Snapshots_Update: 202 + Location (the resource itself), as in the
            # DiskRP example Disk_Update_RemoveDiskAccess.json; polling it answers 200 and the document
            location = f"{arm.base_url}{quote(str(doc['id']), safe='/')}?api-version={api_version}"
            return _Reply(202, copy.deepcopy(doc), {"Location": location, "Retry-After": "0"})
        return _Reply(200, copy.deepcopy(doc))

    def _delete(self, path: str, api_version: str) -> _Reply:
        arm = self.arm
        rtype = ids.type_key(ids.resource_type(path))
        if rtype == RAI_POLICIES and ids.parse(path).name.lower().startswith("microsoft."):
            raise _system_policy(ids.parse(path).name)
        if rtype == PRICINGS and path.lower().count("/providers/") < 2:
            raise _error(400, "InvalidInputJson", "Pricings_Delete is valid only for a resource scope.")
        gone = arm._delete(path)
        if rtype == ROLE_ASSIGNMENTS:
            return _Reply(200, gone) if gone is not None else _Reply(204)
        if gone is None:
            return _Reply(204)
        if rtype.startswith("microsoft.network/"):
            return _Reply(202, None, self._async_headers("location", api_version))
        return _Reply(200)

    def _list(self, path: str, query: dict[str, str], api_version: str) -> _Reply:
        arm = self.arm
        token = query.get("$skiptoken") or query.get("$skipToken")
        if token is not None:
            return _Reply(200, arm._page([], token, path, api_version))
        rid = ids.parse(path)
        want = ids.type_key(rid.type)
        if want == ROLE_ASSIGNMENTS:
            items = self._role_assignments(path, query.get("$filter"))
        else:
            cuts = [m.start() for m in re.finditer(r"/providers/", path, flags=re.IGNORECASE)]
            if len(cuts) > 1:  # an extension collection ({resource}/providers/Microsoft.Insights/diagnosticSettings)
                scope = path[: cuts[-1]]
                items = [d for d in arm._docs.values()
                         if ids.type_key(str(d.get("type") or ids.resource_type(str(d.get("id", ""))))) == want
                         and ids.key(str(d.get("id", ""))).rsplit("/providers/", 1)[0] == ids.key(scope)]
                return _Reply(200, arm._page(items, None, path, api_version))
            if len(rid.types) > 1:  # a child collection: its parent resource is the scope
                scope = path.rsplit("/", 1)[0]
            else:
                scope = re.split(r"/providers/", path, maxsplit=1, flags=re.IGNORECASE)[0]
            items = []
            for doc in arm._docs.values():
                did = str(doc.get("id", ""))
                dtype = ids.type_key(str(doc.get("type") or ids.resource_type(did)))
                if dtype == want and ids.is_under(did, scope):
                    items.append(doc)
            emb = arm._find(scope) if len(rid.types) > 1 else None
            if emb is not None:
                for k in EMBEDDED.get(ids.type_key(str(emb.get("type", ""))), ()):
                    if k.lower() == rid.types[-1].lower():
                        children = (emb.get("properties") or {}).get(k) or []
                        items.extend(c for c in children if isinstance(c, dict))
        return _Reply(200, arm._page(items, None, path, api_version))

    def _role_assignments(self, path: str, flt: str | None) -> list[dict[str, Any]]:
        scope = re.split(r"/providers/microsoft\.authorization/roleassignments", path, maxsplit=1,
                         flags=re.IGNORECASE)[0] or "/"
        principal: str | None = None
        at_scope = False
        for part in re.split(r"\s+and\s+", flt or "", flags=re.IGNORECASE):
            clause = part.strip()
            if not clause:
                continue
            if clause.lower() == "atscope()":
                at_scope = True
                continue
            m = _FILTER_PRINCIPAL.match(clause)
            if m is None:
                raise _error(400, "UnsupportedQuery", f"The filter '{clause}' is not supported.")
            principal = m.group(1).lower()
        out = []
        for doc in self.arm._docs.values():
            if ids.type_key(str(doc.get("type", ""))) != ROLE_ASSIGNMENTS:
                continue
            props = doc.get("properties") or {}
            at = str(props.get("scope") or str(doc["id"]).rsplit("/providers/", 1)[0] or "/")
            above = ids.is_under(scope, at) or at == "/"
            below = ids.is_under(at, scope) and not ids.same(at, scope)
            if not (above or (below and not at_scope)):
                continue
            if principal and str(props.get("principalId", "")).lower() != principal:
                continue
            out.append(doc)
        return out

    def _post(self, path: str, body: Any, api_version: str) -> _Reply:
        arm = self.arm
        resource, _, action = path.rstrip("/").rpartition("/")
        action_key = action.lower()
        if action_key == "summarize" and resource.lower().endswith(SUMMARY_TAIL):
            return _Reply(200, arm._summarize(resource[: -len(SUMMARY_TAIL)]))
        doc = arm._find(resource)
        if doc is None:
            raise self._not_found(resource)
        rtype = ids.type_key(ids.resource_type(resource))
        if rtype == "microsoft.containerregistry/registries" and action_key in ("listcredentials",
                                                                                "regeneratecredential"):
            creds = arm._creds(resource)
            if action_key == "regeneratecredential":
                name = body.get("name") if isinstance(body, dict) else None
                if name not in ("password", "password2"):
                    raise _error(400, "InvalidRequestContent",
                                 "The 'name' must be 'password' or 'password2'.")
                creds[name] = _password()
            return _Reply(200, {
                "username": ids.parse(resource).name,
                "passwords": [{"name": "password", "value": creds["password"]},
                              {"name": "password2", "value": creds["password2"]}],
            })
        if rtype in DISK_TYPES and action_key == "endgetaccess":
            return self._end_get_access(doc, api_version)
        if rtype == "microsoft.cognitiveservices/accounts" and action_key in ("listkeys", "regeneratekey"):
            # Accounts_ListKeys / Accounts_RegenerateKey (2024-10-01 ListKeys.json, RegenerateKey.json): 200 with
            # {key1, key2}; keyName is Key1 or Key2 (the KeyName enum)
            account_keys = arm._cognitive_keys.setdefault(ids.key(resource), {"key1": _password(), "key2": _password()})
            if action_key == "regeneratekey":
                name = body.get("keyName") if isinstance(body, dict) else None
                if name not in ("Key1", "Key2"):
                    raise _error(400, "InvalidRequestContent", "The 'keyName' must be 'Key1' or 'Key2'.")
                account_keys[str(name).lower()] = _password()
            return _Reply(200, dict(account_keys))
        if rtype == "microsoft.storage/storageaccounts" and action_key == "listkeys":
            keys = arm._storage_keys.setdefault(ids.key(resource), [
                {"keyName": "key1", "value": _password(), "permissions": "FULL"},
                {"keyName": "key2", "value": _password(), "permissions": "FULL"},
            ])
            return _Reply(200, {"keys": copy.deepcopy(keys)})
        raise _error(400, "UnsupportedAction", f"FakeArm does not implement POST '{action}' on '{rtype}'.")

    def _end_get_access(self, doc: dict[str, Any], api_version: str) -> _Reply:
        """Disks_RevokeAccess / Snapshots_RevokeAccess (DiskRP ``Disk_EndGetAccess.json``): 202 +
        ``Location`` polled to completion. The export SAS ends: ``ActiveSAS`` becomes ``Reserved``
        for a disk that has an owner (an export needs its VM deallocated) or else ``Unattached``;
        ``ActiveSASFrozen`` (a hibernated VM's disk) becomes ``Frozen``. Nothing else changes."""
        props = doc.setdefault("properties", {})
        state = str(props.get("diskState") or "")
        if state == "ActiveSASFrozen":
            props["diskState"] = "Frozen"
        elif state == "ActiveSAS":
            props["diskState"] = "Reserved" if doc.get("managedBy") else "Unattached"
        return _Reply(202, None, self._async_headers("location", api_version))

    # -- Key Vault data plane -------------------------------------------------------------------
    def _vault(self, method: str, path: str, query: dict[str, str], body: Any,
               headers: dict[str, str]) -> _Reply:
        rest = path[len(VAULT_PREFIX):]
        host, _, sub = rest.partition("/")
        host = host.lower()
        if not any(k.lower() == "authorization" for k in headers):
            domain = host.split(".", 1)[1] if "." in host else host
            raise _Reply(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a "
                                                                            "Bearer or PoP token."}},
                         {"WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/'
                                              '00000000-0000-0000-0000-000000000000", '
                                              f'resource="https://{domain}"'})
        parts = [p for p in sub.split("/") if p]
        if len(parts) < 2 or parts[0].lower() != "secrets":
            raise _error(400, "BadParameter", f"FakeArm's vault does not serve '/{sub}'.")
        name = parts[1]
        key = (host, name.lower())
        with self.arm._lock:
            if method == "PUT" and len(parts) == 2:
                if not isinstance(body, dict) or not isinstance(body.get("value"), str):
                    raise _error(400, "BadParameter", "The secret 'value' is required.")
                version = uuid.uuid4().hex
                ts = int(datetime.now(UTC).timestamp())
                bundle = {
                    "value": body["value"],
                    "id": f"https://{host}/secrets/{name}/{version}",
                    "attributes": {"enabled": True, "created": ts, "updated": ts,
                                   "recoveryLevel": "Recoverable+Purgeable",
                                   **(body.get("attributes") or {})},
                    "tags": body.get("tags") or {},
                }
                if body.get("contentType"):
                    bundle["contentType"] = body["contentType"]
                self.arm._secrets.setdefault(key, []).append((version, bundle))
                return _Reply(200, copy.deepcopy(bundle))
            if method == "GET":
                versions = self.arm._secrets.get(key) or []
                want = parts[2] if len(parts) > 2 and parts[2] else None
                for version, bundle in reversed(versions):
                    if want is None or version == want:
                        return _Reply(200, copy.deepcopy(bundle))
                raise _error(404, "SecretNotFound",
                             f"A secret with (name/id) {name} was not found in this key vault.")
        raise _error(405, "BadParameter", f"FakeArm's vault does not implement {method} '/{sub}'.")

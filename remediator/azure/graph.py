"""Azure Resource Graph: the backlog scan and bulk state reads (``azure-mgmt-resourcegraph``, imported lazily).

The scan (``Graph.scan``) asks for what is open now, each query paged with ``$skipToken``:

=================  ==============================================================================
assessments        ``securityresources``: ``microsoft.security/assessments``, status ``Unhealthy``
sub-assessments    ``securityresources``: ``microsoft.security/assessments/subassessments``, ``Unhealthy``
alerts             ``securityresources``: ``microsoft.security/locations/alerts``, ``Active``/``InProgress``
policy             ``policyresources``: ``microsoft.policyinsights/policystates``, ``NonCompliant``
exemptions         ``policyresources``: ``microsoft.authorization/policyexemptions``, every one
role-assignments   ``authorizationresources``: ``microsoft.authorization/roleassignments`` of the privileged
                   roles (``remediator.findings.roles.PRIVILEGED_ROLES``, by GUID with ``has_any``)
=================  ==============================================================================

over the given subscriptions, a management group, or (neither) every subscription the identity can
read: Resource Graph returns only what the caller may read, so the scan needs Reader on each scope
(``docs/deploy.md``). Rows go through ``remediator.findings.parse.parse_value``, the parser every pushed
payload goes through, so a finding has the same id whichever route brought it. Every query ends
with ``order by id asc``: an assessment's id starts with its resource's id, so findings of one
resource arrive together and land in the same plan job (one bulk read covers them).

Exemptions are findings of ``kind`` ``operation`` (``type`` ``microsoft.authorization/policyexemptions/write``,
as their write events are; see ``remediator.findings.parse``), so an exemption written before remediator
watched the writes is found too; all of them are brought, and the ``policy.limit-exemption`` plan says
``no_changes`` for those it finds in order. Their rows are the exemptions' own documents
(``arm_document``), kept in ``ScanResult.documents`` so that planning the scan reads none of them again.
Standing role assignments of privileged roles are brought the same way (``kind`` ``operation``, ``type``
``microsoft.authorization/roleassignments/write``, as a role assignment's write event), their rows kept as
documents; ``rbac.make-eligible`` decides which of them are in its playbook's scopes.
Reconcile leaves ``operation`` findings alone (``ScanResult.kinds``): a write event's request for an
exemption Resource Graph does not show yet (it lags ARM) must not be withdrawn; the worker re-reads the
exemption before it writes anyway.

The scan also lists the subscriptions of its scope (``resourcecontainers``), so that reconcile
knows where an absent finding means a healthy one. A scan that could not read everything
(a truncated result, a row the parser refused) is ``complete=False``, and reconcile then
withdraws nothing.

Bulk state (``Graph.resources``): ``resources | where id in~ (…)`` for up to ``BULK_IDS`` ids a
query, per subscription. Rows are turned back into ARM documents (``arm_document``: Resource
Graph's own columns dropped, the type's casing taken from the id). They are for planning only:
the worker re-reads each resource live before it writes, and a plan made from a stale or
differently shaped row has another fingerprint, so it ends ``stale`` and is asked again, never
written. ``GraphState`` is the ``StateReader`` planning uses: prefetched documents first, live
reads for everything else (linked resources, role assignments, ids the graph did not return).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediator import ids
from remediator.azure.clients import ArmClients
from remediator.azure.reader import http_error_line
from remediator.azure.state import StateReader
from remediator.errors import PayloadError, StateError
from remediator.findings.model import Finding, Record
from remediator.findings.roles import PRIVILEGED_ROLES

PAGE_SIZE = 1000  # Resource Graph's largest page
BULK_IDS = 300  # resource ids per bulk query ("hundreds"; the query text stays far below the service's limits)
SCAN_QUERIES: dict[str, str] = {
    "assessments": "securityresources | where type =~ 'microsoft.security/assessments' and "
                   "properties.status.code =~ 'Unhealthy' | order by id asc",
    "sub-assessments": "securityresources | where type =~ 'microsoft.security/assessments/subassessments' and "
                       "properties.status.code =~ 'Unhealthy' | order by id asc",
    "alerts": "securityresources | where type =~ 'microsoft.security/locations/alerts' and "
              "properties.status in~ ('Active', 'InProgress') | order by id asc",
    "policy": "policyresources | where type =~ 'microsoft.policyinsights/policystates' and "
              "properties.complianceState =~ 'NonCompliant' | order by id asc",
    "exemptions": "policyresources | where type =~ 'microsoft.authorization/policyexemptions' | order by id asc",
    "role-assignments": "authorizationresources | where type =~ 'microsoft.authorization/roleassignments' and "
                        "properties.roleDefinitionId has_any (" + ", ".join(f"'{g}'" for g in PRIVILEGED_ROLES) +
                        ") | order by id asc",
}
# rows that are the resource itself: kept as ARM documents
DOCUMENT_QUERIES = frozenset({"exemptions", "role-assignments"})
SUBSCRIPTIONS_QUERY = "resourcecontainers | where type =~ 'microsoft.resources/subscriptions'"
_ARG_COLUMNS = ("tenantId", "subscriptionId", "resourceGroup")
_NULLABLE_COLUMNS = ("kind", "managedBy", "sku", "plan", "identity", "zones", "extendedLocation", "location")

Progress = Callable[[str, int], None]  # (query name, rows so far)


def kql_string(value: str) -> str:
    """A KQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def arm_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``resources`` row as an ARM GET returns the resource: Resource Graph's columns dropped
    (``tenantId``, ``subscriptionId``, ``resourceGroup``; ``null`` columns; empty ``tags``) and the
    type's casing taken from the id."""
    doc = {k: v for k, v in row.items() if k not in _ARG_COLUMNS and not (k in _NULLABLE_COLUMNS and v is None)}
    if doc.get("tags") == {}:
        del doc["tags"]
    parsed = ids.parse(str(row.get("id", "")))
    if parsed.type and ids.type_key(str(doc.get("type", ""))) == ids.type_key(parsed.type):
        doc["type"] = parsed.type
    return doc


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What a scan covers: subscriptions, a management group, or (neither) the whole tenant."""

    subscriptions: tuple[str, ...] = ()
    management_group: str | None = None

    def request(self) -> dict[str, Any]:
        if self.subscriptions:
            return {"subscriptions": list(self.subscriptions)}
        if self.management_group:
            return {"management_groups": [self.management_group]}
        return {}

    def describe(self) -> str:
        if self.subscriptions:
            return "subscription" + ("s " if len(self.subscriptions) > 1 else " ") + ", ".join(self.subscriptions)
        if self.management_group:
            return f"management group {self.management_group}"
        return "every subscription the identity can read"


@dataclass(kw_only=True)
class ScanResult:
    """What a scan found. ``subscriptions``: the scope's subscriptions (lower-case), where an absent
    finding means a healthy one; ``complete`` False: reconcile must not withdraw anything;
    ``documents``: ARM documents of the resources the scan read whole (exemptions), by ``ids.key``."""

    records: list[Record] = field(default_factory=list)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset({"alert", "recommendation", "policy"})
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    queries: int = 0
    # subscriptions whose continuous export the reconcile read (remediator.lifecycle.export_watch): only there may it
    # withdraw a request about the export (an export that could not be read, or a scan by the CLI, says nothing)
    export_checked: frozenset[str] = frozenset()

    @property
    def findings(self) -> list[Finding]:
        return [r for r in self.records if isinstance(r, Finding)]


class Graph:
    """Resource Graph queries through ``ArmClients.resourcegraph()``; see the module docstring."""

    def __init__(self, clients: ArmClients, *, page_size: int = PAGE_SIZE, bulk_ids: int = BULK_IDS) -> None:
        self.clients = clients
        self.page_size = page_size
        self.bulk_ids = bulk_ids
        self.queries = 0

    def query(self, text: str, scope: Scope | None = None, *, name: str = "query") -> Iterator[dict[str, Any]]:
        """Every row of ``text``, page after page. Raises ``StateError`` (one line) when ARG refuses.

        A truncated page (``resultTruncated``) raises too: a partial answer must not pass for the whole."""
        from azure.core.exceptions import AzureError  # noqa: PLC0415
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions  # noqa: PLC0415

        client = self.clients.resourcegraph()
        token: str | None = None
        while True:
            request = QueryRequest(query=text, options=QueryRequestOptions(top=self.page_size, skip_token=token,
                                                                           result_format="objectArray"),
                                   **(scope.request() if scope else {}))
            try:
                page = client.resources(request, cls=_raw)
            except AzureError as e:
                raise StateError(f"Resource Graph {name}: {http_error_line(e)}") from None
            self.queries += 1
            if str(page.get("resultTruncated", "false")).lower() == "true":
                raise StateError(f"Resource Graph {name}: the result was truncated (resultTruncated); "
                                 "narrow the scope or page it")
            data = page.get("data")
            if not isinstance(data, list):
                raise StateError(f"Resource Graph {name}: the answer has no data array (resultFormat objectArray)")
            for row in data:
                if isinstance(row, dict):
                    yield row
            token = page.get("$skipToken") or None
            if not token:
                return

    def subscriptions(self, scope: Scope) -> frozenset[str]:
        if scope.subscriptions:
            return frozenset(s.lower() for s in scope.subscriptions)
        return frozenset(str(r.get("subscriptionId") or ids.parse(str(r.get("id", ""))).subscription_id or "").lower()
                         for r in self.query(SUBSCRIPTIONS_QUERY, scope, name="subscriptions")) - {""}

    def scan(self, scope: Scope, *, progress: Progress | None = None) -> ScanResult:
        """The open findings of ``scope`` (see the module docstring). ARG errors raise ``StateError``."""
        from remediator.findings.parse import parse_value  # noqa: PLC0415

        result = ScanResult(subscriptions=self.subscriptions(scope))
        for name, text in SCAN_QUERIES.items():
            count = 0
            for row in self.query(text, scope, name=name):
                count += 1
                try:
                    result.records.extend(parse_value(row, source=f"Resource Graph {name} row {count}"))
                except PayloadError as e:
                    result.problems.append(str(e))
                    result.complete = False
                else:
                    if name in DOCUMENT_QUERIES:
                        doc = arm_document(row)
                        result.documents[ids.key(str(doc.get("id", "")))] = doc
                if progress is not None and count % 500 == 0:
                    progress(name, count)
            result.rows[name] = count
            if progress is not None:
                progress(name, count)
        result.queries = self.queries
        return result

    def resources(self, resource_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """ARM documents of these resources from the ``resources`` table, keyed by ``ids.key``.
        Ids it does not return are absent (not there, not readable, or not yet in the graph)."""
        by_sub: dict[str, list[str]] = {}
        for rid in dict.fromkeys(ids.key(r) for r in resource_ids):
            sub = ids.parse(rid).subscription_id
            if sub and ids.parse(rid).resource_group:
                by_sub.setdefault(sub, []).append(rid)
        out: dict[str, dict[str, Any]] = {}
        for sub, wanted in by_sub.items():
            for start in range(0, len(wanted), self.bulk_ids):
                batch = wanted[start:start + self.bulk_ids]
                text = "resources | where id in~ (" + ", ".join(kql_string(r) for r in batch) + ")"
                for row in self.query(text, Scope(subscriptions=(sub,)), name="resources"):
                    doc = arm_document(row)
                    out[ids.key(str(doc.get("id", "")))] = doc
        return out


def _raw(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    """``cls`` hook: the answer as Resource Graph sent it (rows are not re-serialised through models)."""
    return json.loads(pipeline_response.http_response.text())


class GraphState:
    """Planning's ``StateReader``: documents prefetched from Resource Graph first, then ``live``.

    ``prefetch`` reads the given ids in bulk; ``get`` of a prefetched id answers from memory, any
    other read (an id the graph did not return, linked resources, lists, role assignments) goes to
    the live reader. Never used to check a resource before a write (the worker uses ``live``)."""

    def __init__(self, live: StateReader, graph: Graph) -> None:
        self.live = live
        self.graph = graph
        self._docs: dict[str, dict[str, Any]] = {}
        self.hits = 0

    def preload(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        """Documents already read (a scan's exemption rows), keyed by ``ids.key``."""
        self._docs.update({ids.key(k): dict(v) for k, v in documents.items()})

    def prefetch(self, resource_ids: Sequence[str]) -> int:
        docs = self.graph.resources(r for r in resource_ids if ids.key(r) not in self._docs)
        self._docs.update(docs)
        return len(docs)

    def get(self, resource_id: str) -> dict[str, Any] | None:
        doc = self._docs.get(ids.key(resource_id))
        if doc is not None:
            self.hits += 1
            return doc
        return self.live.get(resource_id)

    def list(self, resource_type: str, scope: str) -> builtins.list[dict[str, Any]]:
        return self.live.list(resource_type, scope)

    def role_assignments(self, scope: str, principal_id: str | None = None) -> builtins.list[dict[str, Any]]:
        return self.live.role_assignments(scope, principal_id)

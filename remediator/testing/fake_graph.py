"""FakeArm's Azure Resource Graph: ``POST /providers/Microsoft.ResourceGraph/resources``.

**Not a KQL engine.** It answers the query shapes remediator sends (``remediator.azure.graph``) and
nothing else, refusing any other text with 400 ``InvalidQuery`` that says what it understands::

    <table> | where <condition> [and <condition> …] [| order by id asc]

* tables: ``resources`` (the fake's ARM documents that are neither Defender, Policy nor
  authorization records), ``securityresources`` (``Microsoft.Security/*`` documents: assessments,
  sub-assessments, alerts), ``policyresources`` (``Microsoft.PolicyInsights/policyStates`` and
  ``Microsoft.Authorization/policyExemptions``), ``authorizationresources`` (role assignments) and
  ``resourcecontainers`` (the subscriptions the fake knows, ``type microsoft.resources/subscriptions``);
* conditions: ``<path> =~ '<text>'``, ``<path> !~ '<text>'`` and ``<path> in~ ('<a>', '<b>', …)``,
  case-insensitive, where ``<path>`` is a dotted path into the row (``type``, ``id``,
  ``properties.status.code``, ``properties.complianceState``); a missing path never matches ``=~``
  or ``in~``; and ``<path> has_any ('<a>', …)``: the value holds one of the texts as whole terms (KQL's
  ``has``: bounded by non-alphanumeric characters), e.g. a role GUID at the end of ``properties.roleDefinitionId``;
* scope: the request's ``subscriptions`` (rows of those subscriptions), ``managementGroups`` (the
  subscriptions ``FakeArm.add_subscription(…, management_group=)`` put in them) or neither (all);
* paging: ``options.$top`` (at most 1000; default ``FakeArm.graph_page_size``), ``$skip`` and
  ``$skipToken``: a page holds ``$top`` rows and, when more remain, a ``$skipToken`` that the next
  request sends back with the same query;
* rows look like Resource Graph's: ``type`` lower-cased, plus ``tenantId``, ``subscriptionId``,
  ``resourceGroup`` and, for ``resources``, the usual columns (``kind``, ``location``, ``managedBy``,
  ``sku``, ``plan``, ``identity``, ``zones``, ``extendedLocation``, ``tags``) with ``null`` for absent ones;
* throttling: every answer carries ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after``
  (``hh:mm:ss``); with ``FakeArm.graph_quota(limit, window)`` a caller over its quota gets 429 with
  those headers (Resource Graph's own quota is 15 requests per 5 seconds per user);
* staleness: ``FakeArm.freeze_graph()`` answers from a snapshot of the documents (Resource Graph lags
  ARM), ``thaw_graph()`` goes back to the live documents.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remediator import ids

GRAPH_PATH = "/providers/microsoft.resourcegraph/resources"
TABLES = ("resources", "securityresources", "policyresources", "authorizationresources", "resourcecontainers")
MAX_TOP = 1000
FAKE_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
_NOT_RESOURCES = ("microsoft.security/", "microsoft.policyinsights/", "microsoft.authorization/")
_RESOURCE_COLUMNS = ("kind", "location", "managedBy", "sku", "plan", "identity", "zones", "extendedLocation", "tags")
_CONDITION = re.compile(
    r"^\s*(?P<path>[A-Za-z_][\w.]*)\s*(?:(?P<op>=~|!~)\s*'(?P<value>(?:[^'\\]|\\.)*)'"
    r"|(?P<listop>in~|has_any)\s*\((?P<list>.*)\))\s*$", re.DOTALL)
_ITEM = re.compile(r"\s*'((?:[^'\\]|\\.)*)'\s*(?:,|$)")
UNDERSTOOD = ("<table> | where <path> =~ '<text>' [and <path> in~ ('<a>', …)] [and <path> !~ '<text>'] "
              "[and <path> has_any ('<a>', …)] "
              "[| order by id asc], with <table> one of " + ", ".join(TABLES))


class GraphQueryError(ValueError):
    """A query FakeArm's Resource Graph does not understand (answered 400 InvalidQuery)."""


@dataclass(frozen=True, slots=True)
class Condition:
    path: tuple[str, ...]
    op: str  # "=~", "!~", "in~" or "has_any"
    values: tuple[str, ...]

    def matches(self, row: Mapping[str, Any]) -> bool:
        value = _lookup(row, self.path)
        if self.op == "!~":
            return value is None or str(value).lower() != self.values[0]
        if self.op == "has_any":
            text = str(value).lower() if value is not None else ""
            return any(re.search(rf"(?<![a-z0-9]){re.escape(v)}(?![a-z0-9])", text) for v in self.values)
        return value is not None and str(value).lower() in self.values


@dataclass(frozen=True, slots=True)
class Query:
    table: str
    conditions: tuple[Condition, ...]
    ordered: bool


def parse_query(text: str) -> Query:
    """The one shape of query FakeArm understands (see the module docstring); else ``GraphQueryError``."""
    parts = [p.strip() for p in _split_pipes(text)]
    if not parts or parts[0].lower() not in TABLES:
        raise GraphQueryError(f"unknown table {parts[0] if parts else ''!r}; FakeArm understands {UNDERSTOOD}")
    conditions: list[Condition] = []
    ordered = False
    for part in parts[1:]:
        low = part.lower()
        if low.startswith("where "):
            for clause in _split_and(part[6:]):
                conditions.append(_condition(clause))
        elif re.fullmatch(r"order\s+by\s+id(\s+asc)?", low):
            ordered = True
        else:
            raise GraphQueryError(f"unsupported operator {part.split()[0]!r}; FakeArm is not a KQL engine and "
                                  f"understands {UNDERSTOOD}")
    return Query(table=parts[0].lower(), conditions=tuple(conditions), ordered=ordered)


def _split_pipes(text: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch == "|" and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def _split_and(text: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    quoted, i = False, 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        if not quoted and text[i:i + 5].lower() == " and ":
            out.append("".join(current))
            current = []
            i += 5
            continue
        if not quoted and text[i:i + 4].lower() == " or ":
            raise GraphQueryError(f"'or' is not supported; FakeArm understands {UNDERSTOOD}")
        current.append(ch)
        i += 1
    out.append("".join(current))
    return [c for c in out if c.strip()]


def _condition(clause: str) -> Condition:
    m = _CONDITION.match(clause)
    if m is None:
        raise GraphQueryError(f"unsupported condition {clause.strip()!r}; FakeArm understands {UNDERSTOOD}")
    path = tuple(m.group("path").lower().split("."))
    if m.group("op"):
        return Condition(path, m.group("op"), (_unescape(m.group("value")).lower(),))
    items, op = m.group("list"), m.group("listop")
    values = [_unescape(v).lower() for v in _ITEM.findall(items)]
    if not values or _ITEM.sub("", items).strip():
        raise GraphQueryError(f"{op} needs a list of quoted strings, got ({items.strip()[:80]})")
    return Condition(path, op, tuple(values))


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _lookup(row: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = row
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = next((v for k, v in value.items() if k.lower() == part), None)
    return value


# -------------------------------------------------------------------------------- rows


def table_of(doc: Mapping[str, Any]) -> str | None:
    """The Resource Graph table an ARM document belongs to (None: in none the fake serves)."""
    rid = str(doc.get("id", ""))
    rtype = ids.type_key(str(doc.get("type") or ids.resource_type(rid)))
    if rtype.startswith("microsoft.security/"):
        return "securityresources"
    if rtype in ("microsoft.policyinsights/policystates", "microsoft.authorization/policyexemptions"):
        return "policyresources"
    if rtype == "microsoft.authorization/roleassignments":
        return "authorizationresources"
    if rtype.startswith(_NOT_RESOURCES) or not ids.parse(rid).resource_group:
        return None
    return "resources"


def graph_row(doc: Mapping[str, Any], table: str) -> dict[str, Any]:
    """A document as Resource Graph returns it: lower-cased type, its columns added."""
    rid = str(doc.get("id", ""))
    parsed = ids.parse(rid)
    row: dict[str, Any] = copy.deepcopy(dict(doc))
    row["type"] = str(doc.get("type") or parsed.type).lower()
    row.setdefault("name", parsed.name)
    row["tenantId"] = FAKE_TENANT
    row["subscriptionId"] = parsed.subscription_id or ""
    row["resourceGroup"] = (parsed.resource_group or "").lower()
    if table == "resources":
        for column in _RESOURCE_COLUMNS:
            row.setdefault(column, {} if column == "tags" else None)
        row.setdefault("properties", {})
    return row


def subscription_row(subscription_id: str) -> dict[str, Any]:
    return {"id": f"/subscriptions/{subscription_id}", "name": subscription_id,
            "type": "microsoft.resources/subscriptions", "tenantId": FAKE_TENANT, "subscriptionId": subscription_id,
            "resourceGroup": "", "properties": {"state": "Enabled"}}


@dataclass
class GraphQuota:
    limit: int
    window: float
    seen: dict[str, list[float]]

    def take(self, caller: str, now: float) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until the window resets) for one request of ``caller``."""
        times = [t for t in self.seen.get(caller, []) if now - t < self.window]
        resets = self.window - (now - times[0]) if times else self.window
        if len(times) >= self.limit:
            self.seen[caller] = times
            return False, 0, max(resets, 0.0)
        times.append(now)
        self.seen[caller] = times
        return True, self.limit - len(times), max(resets, 0.0)


def hms(seconds: float) -> str:
    whole = int(seconds + 0.999)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def answer(body: Any, *, documents: Iterable[Mapping[str, Any]], subscriptions: Iterable[str],
           management_groups: Mapping[str, Iterable[str]], pages: dict[str, tuple[int, list[dict[str, Any]]]],
           page_size: int, error: Callable[[int, str, str], Exception]) -> dict[str, Any]:
    """The response body of one Resource Graph request (raises ``error(status, code, message)``)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise error(400, "InvalidRequestContent", "The request content must have a 'query' string.")
    given = body.get("options")
    options: dict[str, Any] = given if isinstance(given, dict) else {}
    fmt = options.get("resultFormat", "objectArray")
    if fmt != "objectArray":
        raise error(400, "InvalidQuery", f"FakeArm serves resultFormat objectArray only, not {fmt!r}.")
    top = options.get("$top", page_size)
    skip = options.get("$skip", 0) or 0
    if not isinstance(top, int) or not 1 <= top <= MAX_TOP or not isinstance(skip, int) or skip < 0:
        raise error(400, "InvalidQuery", f"$top must be 1-{MAX_TOP} and $skip a non-negative integer.")
    token = options.get("$skipToken")
    if token:
        held = pages.pop(str(token), None)
        if held is None:
            raise error(400, "InvalidSkipToken", "The $skipToken is not valid (expired or already used).")
        total, rows = held
    else:
        try:
            query = parse_query(body["query"])
        except GraphQueryError as e:
            raise error(400, "InvalidQuery", f"FakeArm's Resource Graph is not a KQL engine: {e}") from None
        rows = _rows(query, documents, subscriptions, _scope(body, management_groups))
        total = len(rows)
        rows = rows[skip:]
    page, rest = rows[:top], rows[top:]
    out: dict[str, Any] = {"totalRecords": total, "count": len(page), "resultTruncated": "false", "data": page}
    if rest:
        nxt = uuid.uuid4().hex
        pages[nxt] = (total, rest)
        out["$skipToken"] = nxt
    return out


def _scope(body: Mapping[str, Any], management_groups: Mapping[str, Iterable[str]]) -> set[str] | None:
    subs = body.get("subscriptions")
    groups = body.get("managementGroups")
    if not subs and not groups:
        return None
    scope = {str(s).lower() for s in subs or ()}
    for group in groups or ():
        scope.update(s.lower() for s in management_groups.get(str(group).lower(), ()))
    return scope


def _rows(query: Query, documents: Iterable[Mapping[str, Any]], subscriptions: Iterable[str],
          scope: set[str] | None) -> list[dict[str, Any]]:
    if query.table == "resourcecontainers":
        candidates = [subscription_row(s) for s in sorted(set(subscriptions))]
    else:
        candidates = [graph_row(d, query.table) for d in documents if table_of(d) == query.table]
    out = []
    for row in candidates:
        if scope is not None and str(row.get("subscriptionId", "")).lower() not in scope:
            continue
        if all(c.matches(row) for c in query.conditions):
            out.append(row)
    if query.ordered:
        out.sort(key=lambda r: str(r.get("id", "")).lower())
    return out

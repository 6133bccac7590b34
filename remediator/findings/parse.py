"""Defender for Cloud and Azure Policy payloads -> :class:`~remediator.findings.model.Finding` / ``Ignored``.

Public API: :func:`parse_bytes`, :func:`parse_value`, :func:`parse_file` (each returns a list of
``Finding | Ignored`` in payload order) and :func:`blob_containers`. Every problem with the input is
a :class:`~remediator.errors.PayloadError` whose message is one line naming the source (and the line
or record), never a traceback.

Envelopes: one object; a JSON array; ``{"records": [...]}`` (Event Hub / diagnostic settings);
``{"value": [...]}`` (ARM lists; ``nextLink`` is ignored); Resource Graph results (``{"count", "data":
[...]}``, the REST response or ``az graph query`` output; paging tokens are ignored); an
``azure-rest-api-specs`` example file
(``{"parameters", "responses": {"200": {"body": ...}}}``, so playbook authors can dry-run the spec
examples); NDJSON (a bad line is an error naming its number); UTF-8 with or without BOM, or UTF-16
with BOM. Keys are matched case-insensitively everywhere (§0.3 of the format reference).

Record shapes and what they give:

* ``arm-alert`` / ``arm-alert-2019``: ARM ``Microsoft.Security/locations/alerts`` (``properties.alertType``,
  or the 2019 ``alertName``/``reportedSeverity``/``state``/``associatedResource``).
* ``export-alert``: the PascalCase continuous-export / Logic App object (``AlertType``, ``SystemAlertId``);
  ``la-alert``: the Log Analytics ``SecurityAlert`` row (``Type: SecurityAlert``, JSON-string columns).
* ``assessment``: ``Microsoft.Security/assessments``; ``Unhealthy`` is a finding, other codes are Ignored.
* ``sub-assessment``: ``.../assessments/subAssessments``; ``type`` is the parent assessment key.
* ``policy-event``: ``Microsoft.PolicyInsights.PolicyState{Created,Changed}`` from Event Grid (Event Grid
  schema or CloudEvents) with ``complianceState: NonCompliant``; other Event Grid events are Ignored.
* ``policy-state``: a Policy Insights ``policyStates/…/queryResults`` record (``az policy state list``:
  camelCase ``complianceState``, ``policyDefinitionId``, ``resourceId`` at the top level) or a Resource
  Graph ``policyresources`` row (type ``microsoft.policyinsights/policystates``, fields in ``properties``).
* Resource Graph ``securityresources`` rows are the ARM shapes above (lower-case ``type``), and
  ``az security assessment list`` prints assessments with ``properties`` flattened into the record.

Resolutions: an ``Ignored`` with ``resolves=True`` says a finding is healthy now (Healthy/NotApplicable
or deleted assessments, resolved/dismissed alerts, Compliant or deleted policy states); the engine
withdraws an open approval request for it.
* ``activity-log-alert``: a Defender alert as an Activity Log event (``operationName``
  ``Microsoft.Security/locations/alerts/activate/action``), bare, in a ``records`` export, in the legacy
  activity-log webhook (``schemaId: Microsoft.Insights/activityLogs``) or the common alert schema.
  Decision: these *are* parsed as alert findings, so they are deduplicated and visible, but they
  carry no alert type and name the attacked resource only by display name
  (``properties.compromisedEntity``, kept in ``extended_properties``). So ``type`` is the event
  name (the alert's display name), else the first sentence of the description, else
  ``activity-log-security-alert``; ``resource_id`` is the alert's own ARM id (type
  ``Microsoft.Security/locations/alerts``). No remediation action handles that type, so they
  never trigger a fix by accident, yet a playbook can still match them by name.

* ``resource-event`` / ``activity-log``: a succeeded ARM write of a watched operation
  (:data:`WATCHED_OPERATIONS`: ``Microsoft.Authorization/policyExemptions/write``,
  ``Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write``), from Event Grid's
  ``Microsoft.Resources.ResourceWriteSuccess`` (Event Grid schema or CloudEvents; ``data.resourceUri``,
  ``data.operationName``, ``data.status``) or from the Activity Log (an administrative event: bare, in a
  ``records`` export with ``resultType``, in the legacy activity-log webhook or the common alert schema).
  Both give the same finding: ``kind`` ``operation``, ``type`` the operation name lower-cased (what a
  playbook lists under ``match.operations``), ``resource_id`` the written resource, the same ``id`` for
  the same write (``operation:`` + hash(operation, resource, ARM ``correlationId``)), so the Event Grid
  event and the Activity Log alert of one write deduplicate. ``additional_data`` keeps ``eventtime``,
  ``operationname``, ``status``, ``correlationid`` and ``caller`` (the caller's object id, else the
  Activity Log ``caller``); the event's ``claims``, ``authorization`` and ``httpRequest`` are dropped
  from ``raw`` and never copied anywhere. Other operations, and writes that did not succeed, are
  Ignored with the reason.
* ``exemption``: an existing ``Microsoft.Authorization/policyExemptions`` resource (a Resource Graph
  ``policyresources`` row, an ARM GET or list, or ``az policy exemption list`` output with the
  properties at the top level): the backlog of exemptions written before remediator watched the
  writes. The same ``kind`` ``operation`` and ``type`` as a write event of it, so the policy-limit-exemptions
  playbook claims both; every exemption is a finding (the action decides what, if anything, to change).
  ``id`` ``operation:`` + hash(operation, exemption id lower-cased, ``existing``): stable across scans,
  distinct from any write event's (those carry the write's correlation id). A scanned exemption and a
  write event of it still meet in one remediation: an open remediation is held per playbook and
  resource, so the second finding joins it. No ``eventtime``: the action's clock is the planner's or
  today's.

Never findings (``Ignored`` with a one-line reason): simulated alerts (``SIMULATED_*`` types,
``[SAMPLE ALERT]`` titles); alerts already ``Resolved``/``Dismissed``; assessment events whose
enrichment ``action`` is ``Delete``; ``Healthy``/``NotApplicable`` statuses; secure-score,
regulatory-compliance and other non-finding ``Microsoft.Security/*`` records; Event Grid validation
handshakes and unrelated events; ``Compliant`` or deleted policy states; non-Defender diagnostic
records inside a ``records`` envelope. A record with none of the known markers is an error naming
its index and keys, even in a batch: a batch is accepted whole or not at all.

Snapshots: weekly ``isSnapshot: true`` exports of an unhealthy assessment *are* findings (the
state still needs fixing). They dedup against the original event because the finding id ignores
``isSnapshot`` and the enrichment action; the flag stays visible in ``Finding.raw``.

Finding ids (stable across re-deliveries, distinct across findings):

* alerts: ``alert:`` + ``systemAlertId`` lower-cased (the 2019 schema has none: its ``name`` is the
  same ``ticks_GUID``; Activity Log events use the alert name in their ``resourceId``);
* assessments: ``assessment:`` + hash(key, resource id lower-cased, ``statusChangeDate`` or
  ``firstEvaluationDate``). Re-sent snapshots of one unhealthy state share the id; becoming unhealthy
  again after a fix changes ``statusChangeDate`` and so gives a new id. Without either date
  (some ARM lists) the id is per key and resource;
* sub-assessments: ``subassessment:`` + hash(key, sub-assessment ARM id, ``resourceDetails.id``,
  resolved resource, status dates). ``timeGenerated`` is left out on purpose: it changes on every
  re-scan and would defeat deduplication of snapshots;
* policy: ``policy:`` + hash(definition id, assignment id, resource id), all lower-cased: the same
  whether Event Grid, a queryResults export or Resource Graph brought it (each reports its own
  evaluation ``timestamp``, so it is left out).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, cast

from remediator import _json, ids
from remediator._json import (
    FieldError,
    array,
    first_string,
    key_names,
    kind,
    mapping,
    required_mapping,
    required_string,
    string,
    text,
)
from remediator.errors import PayloadError, one_line
from remediator.findings import ai, roles
from remediator.findings.model import Finding, Ignored, Record, Severity
from remediator.findings.operations import WATCHED_OPERATIONS

__all__ = ["MAX_PAYLOAD_BYTES", "WATCHED_OPERATIONS", "blob_containers", "parse_bytes", "parse_file", "parse_value"]

MAX_PAYLOAD_BYTES = 128 * 1024 * 1024
"""Larger payloads are refused before decoding (an Event Hub message is at most 1 MB)."""

Obj = dict[str, Any]

_IDENTITY = re.compile(r"^(/subscriptions/[^/]+)/identities/([^/]+)/?$", re.IGNORECASE)
_SUB_ASSESSMENT = re.compile(r"/assessments/([^/]+)/subassessments/", re.IGNORECASE)
_MAX_ENVELOPES = 3  # e.g. a spec example's body holding an ARM list inside a records batch
_CLOSED_ALERT = {"resolved": "resolved in Defender", "dismissed": "dismissed in Defender"}
_ALERT_ACTIVATE = "microsoft.security/locations/alerts/activate/action"
_POLICY_EVENTS = {f"microsoft.policyinsights.policystate{change}" for change in ("created", "changed")}
_EXEMPTION_TYPE = "microsoft.authorization/policyexemptions"
_EXEMPTION_WRITE = _EXEMPTION_TYPE + "/write"
_ROLE_ASSIGNMENT_TYPE = "microsoft.authorization/roleassignments"
_RESOURCE_EVENTS = "microsoft.resources.resource"  # Event Grid's resource (group/subscription) events
_WRITE_SUCCESS = "microsoft.resources.resourcewritesuccess"
_SUCCEEDED = frozenset({"succeeded", "success"})
_SECRET_KEYS = frozenset({"claims", "authorization", "httprequest", "identity", "calleripaddress"})
_OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_EXPECTED = (
    "expected a Defender alert (AlertType/properties.alertType), an assessment (type "
    "Microsoft.Security/assessments), a sub-assessment, an Event Grid policy event, or a policy state "
    "(complianceState and policyDefinitionId)"
)


_Item = tuple[Obj, Obj, str, bool]
"""A record, its lower-cased keys, where it is (``x.json: record 2``), and whether a ``records``
envelope carried it (plain tuples: a frozen dataclass per record costs more than parsing fields)."""


# --------------------------------------------------------------------------- public API


def parse_file(path: str | Path) -> list[Record]:
    """Parse a payload file (any supported envelope); the file name is the error source."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_PAYLOAD_BYTES:
            raise PayloadError(one_line(f"{path}: file is {size} bytes, over the limit of {MAX_PAYLOAD_BYTES}"))
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PayloadError(one_line(f"{path}: cannot read: {exc.strerror or exc}")) from None
    return parse_bytes(data, source=str(path))


def parse_bytes(data: bytes | str, *, source: str, max_bytes: int = MAX_PAYLOAD_BYTES) -> list[Record]:
    """Parse a payload as received (file content, HTTP body, Event Hub message body).

    ``source`` names the payload in errors (``findings/x.json:3: not JSON: …``); payloads longer
    than ``max_bytes`` (bytes, or characters for text) are refused before decoding.
    """
    where = one_line(source) or "<payload>"
    given: object = data  # callers outside mypy's reach pass anything
    if not isinstance(given, bytes | bytearray | memoryview | str):
        raise PayloadError(f"{where}: payload is {kind(given)}, expected bytes or text")
    if len(data) > max_bytes:
        raise PayloadError(f"{where}: payload is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        docs = _json.decode(data)
    except _json.DecodeError as exc:
        at = f"{where}:{exc.line}" if exc.line is not None else where
        prefix = "not JSON: " if exc.line is not None else ""
        raise PayloadError(one_line(f"{at}: {prefix}{exc.message}")) from None
    if len(docs) == 1 and docs[0][0] is None:
        return _parse(docs[0][1], where)
    out: list[Record] = []
    repeats = _Repeats()  # NDJSON: a line equal to an earlier one is parsed once too
    for number, value in docs:
        out.extend(_parse(value, f"{where}:{number}", repeats))
    return out


def parse_value(value: object, *, source: str) -> list[Record]:
    """Parse an already-decoded JSON value (the same envelopes and shapes as :func:`parse_bytes`).

    The value is what a JSON decoder returns: inside records only ``dict`` and ``list`` count as
    containers (a top-level record may be any ``Mapping``). Records are kept, not copied, as ``raw``.
    """
    return _parse(value, one_line(source) or "<payload>")


def blob_containers(f: Finding) -> tuple[str, ...]:
    """Blob container names a storage finding names, deduplicated, in order of appearance.

    Sources: ``extended_properties`` ``container`` / ``container name`` (and the ``blob container``
    variants), ``blob-container`` entities' ``name``, and ``blob`` entities' ``container`` field,
    resolved ``blobcontainer`` reference or, failing those, the first path segment of their ``url``.
    """
    names: list[str] = []
    for key in ("container", "container name", "blob container", "blob container name"):
        names.append(f.extended_properties.get(key, ""))
    for entity in f.entities:
        etype = string(entity, "type").lower()
        if etype == "blob-container":
            names.append(string(entity, "name"))
        elif etype == "blob":
            names.append(_blob_container(entity))
    out: list[str] = []
    seen: set[str] = set()
    for name in (n.strip() for n in names):
        if name and name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return tuple(out)


def _blob_container(entity: Mapping[str, Any]) -> str:
    for key in ("container", "blobcontainer", "parent"):
        value = entity.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and string(value, "type").lower() in ("blob-container", ""):
            name = string(value, "name")
            if name:
                return name
    url = string(entity, "url")
    if "://" in url:
        path = url.split("://", 1)[1].partition("/")[2]
        return path.split("/", 1)[0]
    return ""


# --------------------------------------------------------------------------- envelopes


def _parse(value: object, where: str, repeats: _Repeats | None = None) -> list[Record]:
    repeats = _Repeats() if repeats is None else repeats
    if isinstance(value, Mapping):
        hit = repeats.find(value, False)
        if hit is not None:
            return [hit]
    try:
        out: list[Record] = []
        for item in _expand(value, where, False, 0, repeats):
            if type(item) is tuple:
                parsed = _record(*item)
                repeats.remember(item[0], item[3], parsed)
                out.append(parsed)
            else:  # a record equal to one parsed before: the same result
                out.append(cast("Record", item))
        return out
    except (RecursionError, _json.NestingError):
        raise PayloadError(f"{where}: nested too deeply to be a Defender payload") from None


class _Repeats:
    """Parses each distinct record once: a record equal to one parsed just before gets its result.

    Batches repeat records verbatim (an exporter re-sending, 50,000 copies of one alert); comparing
    two dicts is C code and many times cheaper than classifying one, and it runs before anything
    else touches the record. The last ``_KEEP`` records of each size are kept, most recent first,
    so a batch of distinct records costs a few comparisons that fail early, and a hostile batch can
    neither grow the memory nor make the search quadratic. Equality is Python's (``1``, ``1.0``
    and ``true`` are equal): such twins share a finding id, which ingest and ``plan`` fold into
    one anyway.
    """

    __slots__ = ("_recent",)
    _KEEP = 4

    def __init__(self) -> None:
        self._recent: dict[tuple[bool, int], list[tuple[Mapping[Any, Any], Record]]] = {}

    def find(self, rec: Mapping[Any, Any], in_records: bool) -> Record | None:
        recent = self._recent.get((in_records, len(rec)))
        if recent:
            for earlier, parsed in recent:
                if earlier == rec:
                    return parsed
        return None

    def remember(self, rec: Obj, in_records: bool, parsed: Record) -> None:
        recent = self._recent.setdefault((in_records, len(rec)), [])
        recent.insert(0, (rec, parsed))
        del recent[self._KEEP:]


def _expand(value: object, where: str, in_records: bool, depth: int, repeats: _Repeats) -> Iterator[_Item | Record]:
    """Unwrap envelopes (``depth`` counts them) down to records, each labelled with where it is;
    a record equal to a recent one comes out as that one's result instead."""
    if isinstance(value, list):
        for i, item in enumerate(value, 1):
            if not isinstance(item, Mapping):  # records are objects; arrays of arrays are no envelope
                raise PayloadError(f"{where}: record {i}: expected a JSON object, found {kind(item)}")
            hit = repeats.find(item, in_records)
            if hit is not None:
                yield hit
            else:
                yield from _expand(item, f"{where}: record {i}", in_records, depth, repeats)
        return
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)  # parse_value handed another Mapping type: records are plain dicts from here on
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected a JSON object or array, found {kind(value)}")
    lk = _json.lower_keys(value)
    inner = _envelope(lk)
    if inner is None:
        yield value, lk, where, in_records
    elif depth >= _MAX_ENVELOPES:
        raise PayloadError(f"{where}: more than {_MAX_ENVELOPES} envelopes nested in each other")
    else:
        yield from _expand(inner[1], where, in_records or inner[0] == "records", depth + 1, repeats)


def _envelope(lk: Obj) -> tuple[str, object] | None:
    """``("records"|"value"|"body", inner)`` when the object only wraps other records."""
    for key in ("records", "value"):
        if isinstance(lk.get(key), list) and "type" not in lk and "properties" not in lk:
            return key, lk[key]
    if isinstance(lk.get("data"), list) and ("count" in lk or "totalrecords" in lk or "total_records" in lk):
        return "data", lk["data"]  # Resource Graph results: the REST response or `az graph query` output
    responses = lk.get("responses")
    if "parameters" in lk and isinstance(responses, dict):
        for status, response in responses.items():
            if str(status).startswith("2") and isinstance(response, dict):
                body = _json.lower_keys(response).get("body")
                if isinstance(body, dict | list):
                    return "body", body
    return None


# --------------------------------------------------------------------------- dispatch


def _record(rec: Obj, lk: Obj, where: str, in_records: bool) -> Record:
    try:
        return _classify(rec, lk, in_records)
    except FieldError as exc:
        raise PayloadError(one_line(f"{where}: {exc}")) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # Last line of defence for a field of a type no branch foresaw: still one line, never a traceback.
        raise PayloadError(one_line(f"{where}: malformed record ({type(exc).__name__}: {exc})")) from None


def _classify(rec: Obj, lk: Obj, in_records: bool) -> Record:
    if "alerttype" in lk or "systemalertid" in lk:
        return _export_alert(rec, lk)
    if "specversion" in lk or "eventtype" in lk:
        return _event_grid(rec, lk)
    if "schemaid" in lk:
        return _monitor_webhook(rec, lk)
    rtype = string(lk, "type").lower()
    if rtype.startswith("microsoft.security/"):
        return _security_record(rec, lk, rtype)
    if rtype == _EXEMPTION_TYPE:
        return _exemption(rec, lk)
    if rtype == _ROLE_ASSIGNMENT_TYPE:
        return _role_assignment(rec, lk)
    props = lk.get("properties")
    if isinstance(props, dict):
        plk = _json.lower_keys(props)
        if "alerttype" in plk or "systemalertid" in plk:
            return _arm_alert(rec, lk, plk)
        if "alertname" in plk and ("reportedseverity" in plk or "associatedresource" in plk):
            return _arm_alert_2019(rec, lk, plk)
    if rtype == "microsoft.policyinsights/policystates" or ("compliancestate" in lk and "policydefinitionid" in lk):
        return _policy_state(rec, lk)
    operation = _operation(lk)
    if operation == _ALERT_ACTIVATE or (operation and (in_records or "eventdataid" in lk)):
        return _activity_log(rec, lk)
    if in_records:
        if "metricname" in lk:
            return Ignored(reason=f"not a Defender record: platform metric {string(lk, 'metricname') or '?'}")
        if "category" in lk:
            category = text(lk["category"]) or "?"
            return Ignored(reason=f"not a Defender record: diagnostic log category {category}")
    raise FieldError(f"no known shape: {_EXPECTED}; found keys: {key_names(rec)}")


def _security_record(rec: Obj, lk: Obj, rtype: str) -> Record:
    if rtype == "microsoft.security/assessments":
        return _assessment(rec, lk)
    if rtype == "microsoft.security/assessments/subassessments":
        return _sub_assessment(rec, lk)
    if rtype == "microsoft.security/locations/alerts":
        plk = _json.lower_keys(required_mapping(lk, "properties"))
        if "alerttype" not in plk and "alertname" in plk:
            return _arm_alert_2019(rec, lk, plk)
        return _arm_alert(rec, lk, plk)
    shown = string(lk, "type")
    if rtype.startswith("microsoft.security/securescore"):
        return Ignored(reason=f"secure-score record ({shown}): a score, not a finding", type=shown)
    if "regulatorycompliance" in rtype:
        state = string(_json.lower_keys(mapping(lk, "properties")), "state")
        suffix = f", state {state}" if state else ""
        return Ignored(reason=f"regulatory-compliance record ({shown}{suffix}): not a finding", type=shown)
    if rtype == "microsoft.security/assessmentmetadata":
        return Ignored(reason="assessment metadata: a recommendation definition, not a result", type=shown)
    return Ignored(reason=f"Defender record of type {shown} is not a finding", type=shown)


# --------------------------------------------------------------------------- alerts


def _export_alert(rec: Obj, lk: Obj) -> Record:
    """Continuous-export / Logic App PascalCase alert, or a Log Analytics ``SecurityAlert`` row."""
    source = "la-alert" if string(lk, "type").lower() == "securityalert" else "export-alert"
    head = _AlertHead(
        source=source,
        alert_id=required_string(lk, "systemalertid", "SystemAlertId"),
        alert_type=required_string(lk, "alerttype", "AlertType"),
        title=first_string(lk, "alertdisplayname", "displayname", "alertname"),
        status=string(lk, "status"),
    )
    direct = [string(lk, "azureresourceid"), string(lk, "resourceid")]
    skipped = head.skip(direct)
    if skipped:
        return skipped
    ext = _ext_props(_maybe_json(lk.get("extendedproperties")))
    identifiers = array(lk, "resourceidentifiers")
    return head.finding(
        rec,
        severity=first_string(lk, "severity", "alertseverity"),
        description=string(lk, "description"),
        candidates=[ext.get("effectiveazureresourceid", ""), *_identifier_ids(identifiers), *direct],
        ext=ext,
        entities=_entities(_maybe_json(lk.get("entities")), identifiers),
        subscription=ext.get("effectivesubscriptionid", ""),
    )


def _arm_alert(rec: Obj, lk: Obj, p: Obj) -> Record:
    """ARM ``Microsoft.Security/locations/alerts`` (2020-01-01 and later): the alert is ``properties``."""
    head = _AlertHead(
        source="arm-alert",
        alert_id=required_string(p, "systemalertid", "properties.systemAlertId"),
        alert_type=required_string(p, "alerttype", "properties.alertType"),
        title=string(p, "alertdisplayname"),
        status=string(p, "status"),
    )
    identifiers = array(p, "resourceidentifiers")
    skipped = head.skip(_identifier_ids(identifiers))
    if skipped:
        return skipped
    ext = _ext_props(p.get("extendedproperties"))
    return head.finding(
        rec,
        severity=string(p, "severity"),
        description=string(p, "description"),
        candidates=[ext.get("effectiveazureresourceid", ""), *_identifier_ids(identifiers)],
        ext=ext,
        entities=_entities(p.get("entities"), identifiers),
        subscription=ext.get("effectivesubscriptionid") or ids.parse(string(lk, "id")).subscription_id or "",
    )


def _arm_alert_2019(rec: Obj, lk: Obj, p: Obj) -> Record:
    """ARM alert, api 2019-01-01 and older: ``alertName`` is the type and ``name`` the alert id."""
    alert_id = string(lk, "name") or string(lk, "id").rstrip("/").rpartition("/")[2]
    if not alert_id:
        raise FieldError("alert (2019-01-01 schema) has no name or id to identify it")
    head = _AlertHead(
        source="arm-alert-2019",
        alert_id=alert_id,
        alert_type=required_string(p, "alertname", "properties.alertName"),
        title=string(p, "alertdisplayname"),
        status=string(p, "state"),
    )
    candidates = [string(p, "associatedresource")]
    return head.skip(candidates) or head.finding(
        rec,
        severity=string(p, "reportedseverity"),
        description=string(p, "description"),
        candidates=candidates,
        ext=_ext_props(p.get("extendedproperties")),
        entities=_entities(p.get("entities"), []),
        subscription=string(p, "subscriptionid"),
    )


class _AlertHead(NamedTuple):
    """What every alert shape yields cheaply, enough to decide whether it is a finding at all."""

    source: str
    alert_id: str
    alert_type: str
    title: str
    status: str

    @property
    def id(self) -> str:
        return "alert:" + self.alert_id.strip().lower()

    def skip(self, resources: list[str]) -> Ignored | None:
        """Simulated or closed alerts: Ignored before any entity work (most sample traffic stops here)."""
        closed = _CLOSED_ALERT.get(self.status.strip().lower())
        if _simulated(self.alert_type, self.title):
            why = f"simulated alert {self.alert_type} ({self.title or 'sample'}): not a real detection"
        elif closed:
            why = f"alert status {self.status}: already {closed}, nothing to remediate"
        else:
            return None
        resource = next((r for r in resources if r), None)
        return Ignored(reason=why, id=self.id, kind="alert", type=self.alert_type, resource_id=resource,
                       source=self.source, resolves=bool(closed) and not _simulated(self.alert_type, self.title))

    def finding(self, rec: Obj, *, severity: str, description: str, candidates: list[str],
                ext: dict[str, str], entities: tuple[Obj, ...], subscription: str) -> Finding:
        parsed = _alert_resource(candidates, entities)
        if parsed is None:
            raise FieldError(f"alert {self.alert_type} names no Azure resource (EffectiveAzureResourceId, "
                             "resourceIdentifiers[AzureResource], AzureResourceId or azure-resource entities)")
        resource = parsed.id
        if ai.is_ai_alert(self.alert_type):  # prompt or completion text is withheld before anything keeps it
            ext, entities, rec = ai.withhold(ext, entities, rec)
            link = ai.alert_link(rec)
            if link:
                ext.setdefault("alerturi", link)
        return Finding(
            id=self.id, kind="alert", type=self.alert_type, title=self.title or self.alert_type,
            severity=Severity.parse(severity), status=self.status, resource_id=resource,
            subscription_id=parsed.subscription_id or subscription or None,
            resource_group=parsed.resource_group, resource_type=parsed.type, source=self.source,
            description=description, extended_properties=ext, entities=entities, raw=rec,
        )


def _alert_resource(candidates: list[str], entities: tuple[Obj, ...]) -> ids.ResourceId | None:
    """The resource an alert is about.

    Preference: ``ExtendedProperties.EffectiveAzureResourceId`` (added by Defender precisely to name
    the effective target), the ``AzureResource`` resource identifier, then ``AzureResourceId`` /
    ``associatedResource``. Control-plane alerts (``ARM_*``) often name only the subscription there
    while an ``azure-resource`` entity (or ``AzureResourceId``) names the storage account or vault
    that was touched; when the preferred id is a bare subscription or resource-group scope, the
    first more specific candidate *inside that scope* wins, so a playbook can act on the resource
    rather than on the whole subscription.
    """
    entity_ids = [string(e, "resourceid") for e in entities if string(e, "type").lower() == "azure-resource"]
    ordered = [c.strip() for c in (*candidates, *entity_ids) if c and c.strip().startswith("/")]
    if not ordered:
        return None
    primary = ids.parse(ordered[0])
    if primary.type:
        return primary
    for other in ordered[1:]:
        if ids.is_under(other, primary.id):
            parsed = ids.parse(other)
            if parsed.type:
                return parsed
    return primary


def _simulated(alert_type: str, title: str) -> bool:
    return alert_type.lower().startswith("simulated_") or title.lstrip().upper().startswith("[SAMPLE ALERT]")


def _identifier_ids(identifiers: list[Any]) -> list[str]:
    """``azureResourceId`` of the ``AzureResource`` entries of ``resourceIdentifiers``."""
    out = []
    for ident in identifiers:
        if isinstance(ident, dict):
            lk = _json.lower_keys(ident)
            if string(lk, "type").lower() == "azureresource":
                out.append(string(lk, "azureresourceid"))
    return out


def _entities(value: object, identifiers: list[Any]) -> tuple[Obj, ...]:
    """Entities with keys lower-cased and Json.NET references resolved (see ``_json.RefResolver``).

    ``ResourceIdentifiers`` share the entities' id space (their ``$id`` values come first), but
    references into them are rare, so they are walked only when an entity reference missed.
    """
    if not isinstance(value, list):
        return ()
    refs = _json.RefResolver()
    resolved = refs.resolve(value)
    if refs.missed and identifiers:
        refs = _json.RefResolver()
        refs.resolve(identifiers)
        resolved = refs.resolve(value)
    return tuple(e for e in resolved if isinstance(e, dict))


def _ext_props(value: object) -> dict[str, str]:
    """``extendedProperties`` as ``str -> str`` with lower-cased keys (nulls dropped, others as JSON)."""
    if not isinstance(value, dict):
        return {}
    lk = _json.lower_keys(value)
    out = {k: v for k, v in lk.items() if type(v) is str}
    if len(out) < len(lk):
        for k, v in lk.items():
            if v is not None and type(v) is not str:
                out[k] = json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)
    return out


def _maybe_json(value: object) -> object:
    """Log Analytics stores ``Entities``/``ExtendedProperties`` as JSON text: decode it, else drop it."""
    if not isinstance(value, str):
        return value
    try:
        return _json.loads(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------- activity log


def _operation(lk: Obj) -> str:
    return text(lk.get("operationname")).lower()


def _monitor_webhook(rec: Obj, lk: Obj) -> Record:
    """Azure Monitor action-group webhooks: legacy activity-log schema or the common alert schema."""
    schema = string(lk, "schemaid")
    data = _json.lower_keys(mapping(lk, "data"))
    if schema.lower() == "microsoft.insights/activitylogs":
        event = mapping(_json.lower_keys(mapping(data, "context")), "activitylog")
        if event:
            return _activity_log(rec, _json.lower_keys(event), status=string(data, "status"))
    elif schema.lower() == "azuremonitorcommonalertschema":
        essentials = _json.lower_keys(mapping(data, "essentials"))
        event = _json.lower_keys(mapping(data, "alertcontext"))
        if _operation(event):
            targets = [t for t in array(essentials, "alerttargetids") if isinstance(t, str)]
            return _activity_log(rec, event, target=targets[0] if targets else "")
        service = string(essentials, "monitoringservice") or "unknown service"
        return Ignored(reason=f"Azure Monitor alert from {service} is not a Defender finding")
    return Ignored(reason=f"Azure Monitor webhook (schemaId {schema or '?'}) carries no Defender alert")


def _activity_log(rec: Obj, ev: Obj, *, status: str = "", target: str = "") -> Record:
    """A Defender alert as an Activity Log event; see the module docstring for the decision.

    ``target`` is the common alert schema's ``alertTargetIDs[0]``, used when the event itself
    carries no ``resourceId``; ``status`` is the legacy webhook's, used when the event has none.
    """
    if _operation(ev) in WATCHED_OPERATIONS:
        return _activity_write(rec, ev, status=status, target=target)
    if _operation(ev) != _ALERT_ACTIVATE:
        what = text(ev.get("operationname")) or "?"
        return Ignored(reason=f"Activity Log event {what} is not a Defender alert activation or a watched ARM "
                              "write", source="activity-log-alert")
    props = _json.lower_keys(mapping(ev, "properties"))
    alert_rid = string(ev, "resourceid") or string(ev, "id") or target
    alert_id = _alert_name(alert_rid) or string(ev, "eventdataid") or string(ev, "correlationid")
    if not alert_rid or not alert_id:
        raise FieldError("Activity Log alert event has no resourceId naming the alert")
    description = string(ev, "description")
    alert_type = text(ev.get("eventname")) or string(props, "eventname") or description.split(". ", 1)[0].strip()
    entity = string(props, "compromisedentity")
    title = alert_type or (f"Defender alert on {entity}" if entity else "Defender alert (Activity Log)")
    alert_type = alert_type or "activity-log-security-alert"
    status = text(ev.get("status")) or status
    fid = "alert:" + alert_id.lower()
    closed = _CLOSED_ALERT.get(status.strip().lower())
    if closed:
        return Ignored(reason=f"alert status {status}: already {closed}, nothing to remediate", id=fid,
                       kind="alert", type=alert_type, resource_id=alert_rid, source="activity-log-alert",
                       resolves=True)
    parsed = ids.parse(alert_rid)
    # no alert type tells an AI alert here: whatever field holds prompt or response text is withheld all the same
    ext, _, rec = ai.withhold(_ext_props(props), (), rec)
    return Finding(
        id=fid, kind="alert", type=alert_type, title=title, severity=Severity.parse(props.get("severity")),
        status=status, resource_id=alert_rid,
        subscription_id=parsed.subscription_id or string(ev, "subscriptionid") or None,
        resource_group=parsed.resource_group or string(ev, "resourcegroupname") or None,
        resource_type=parsed.type, source="activity-log-alert", description=description,
        extended_properties=ext, raw=rec,
    )


def _alert_name(alert_rid: str) -> str:
    """``…/locations/<loc>/alerts/<name>[/events/…]`` -> ``<name>`` (the alert's systemAlertId)."""
    low = alert_rid.lower()
    at = low.find("/alerts/")
    return alert_rid[at + len("/alerts/"):].split("/", 1)[0] if at >= 0 else ""


# --------------------------------------------------------------------------- assessments


def _assessment(rec: Obj, lk: Obj) -> Record:
    """``Microsoft.Security/assessments`` (ARM, continuous export, a Resource Graph ``securityresources``
    row, or ``az security assessment list`` output, whose ``properties`` are flattened into the
    record). Only ``Unhealthy`` is a finding; the other statuses are Ignored that ``resolves``."""
    p = _json.lower_keys(_properties(lk))
    key = (string(lk, "name") or string(lk, "id").rstrip("/").rpartition("/")[2]).lower()
    if not key:
        raise FieldError("assessment has no name (the assessment key)")
    details = _json.lower_keys(mapping(p, "resourcedetails"))
    resource = _arm_or_empty(string(details, "id")) or _arm_or_empty(string(details, "nativeresourceid"))
    resource = resource or _before_security(string(lk, "id"))
    if not resource:
        raise FieldError(f"assessment {key} names no resource (properties.resourceDetails.id or an id)")
    status = _json.lower_keys(mapping(p, "status"))
    metadata = _json.lower_keys(mapping(p, "metadata"))
    fid = "assessment:" + _hash(key, resource.lower(), _status_date(status))
    skip = _skip(lk, "assessmenteventdataenrichment", status)
    if skip:
        return Ignored(reason=f"assessment {skip}", id=fid, kind="recommendation", type=key,
                       resource_id=resource, source="assessment", resolves=True)
    extra = _json.lower_deep(mapping(p, "additionaldata"))
    parsed = ids.parse(resource)
    return Finding(
        id=fid, kind="recommendation", type=key,
        title=string(p, "displayname") or string(metadata, "displayname") or key,
        severity=Severity.parse(metadata.get("severity") or status.get("severity")),
        status=string(status, "code"), resource_id=resource, subscription_id=parsed.subscription_id,
        resource_group=parsed.resource_group, resource_type=parsed.type, source="assessment",
        description=string(status, "description") or string(metadata, "description"),
        principal_id=_embedded_principal(extra),
        policy_definition_id=string(metadata, "policydefinitionid") or None,
        additional_data=extra, raw=rec,
    )


def _sub_assessment(rec: Obj, lk: Obj) -> Record:
    """A sub-assessment: one finding beneath a recommendation (a vulnerability, an identity, …)."""
    p = _json.lower_keys(_properties(lk))
    rid = string(lk, "id")
    match = _SUB_ASSESSMENT.search(rid)
    if match is None:
        raise FieldError("sub-assessment id does not contain /assessments/{key}/subAssessments/{id}")
    key = match[1].lower()
    details = _json.lower_keys(mapping(p, "resourcedetails"))
    detail_id = string(details, "id")
    identity = _IDENTITY.match(detail_id.strip())
    principal = identity[2] if identity else None
    resource = identity[1] if identity else (
        _arm_or_empty(detail_id) or _arm_or_empty(string(details, "nativeresourceid")) or _before_security(rid))
    if not resource:
        raise FieldError(f"sub-assessment of {key} names no Azure resource")
    status = _json.lower_keys(mapping(p, "status"))
    dates = _status_date(status)
    fid = "subassessment:" + _hash(key, rid.lower(), detail_id.lower(), resource.lower(), dates)
    skip = _skip(lk, "subassessmenteventdataenrichment", status)
    if skip:
        return Ignored(reason=f"sub-assessment {skip}", id=fid, kind="recommendation", type=key,
                       resource_id=resource, source="sub-assessment", resolves=True, principal_id=principal)
    extra = _json.lower_deep(mapping(p, "additionaldata"))
    parsed = ids.parse(resource)
    return Finding(
        id=fid, kind="recommendation", type=key, title=string(p, "displayname") or key,
        severity=Severity.parse(status.get("severity")), status=string(status, "code"), resource_id=resource,
        subscription_id=parsed.subscription_id, resource_group=parsed.resource_group,
        resource_type=parsed.type, source="sub-assessment", description=string(p, "description"),
        principal_id=principal, additional_data=extra, raw=rec,
    )


def _properties(lk: Obj) -> Obj:
    """``properties``, or the record itself when the Azure CLI flattened them into it (``az security
    assessment list`` prints ``status``/``resourceDetails`` at the top level, as the SDK models do)."""
    props = lk.get("properties")
    if props is None and ("status" in lk or "resourcedetails" in lk):
        return lk
    return required_mapping(lk, "properties")


def _skip(lk: Obj, enrichment: str, status: Obj) -> str:
    """Why an assessment-like record is not a finding ("" when it is one)."""
    for key in (enrichment, "securityeventdataenrichment"):
        action = string(_json.lower_keys(mapping(lk, key)), "action")
        if action.lower() == "delete":
            return "deleted (enrichment action Delete): nothing left to remediate"
    code = status.get("code")
    if not isinstance(code, str) or not code:
        raise FieldError(f"properties.status.code is {'missing' if code is None else kind(code)}, "
                         "expected Healthy, Unhealthy or NotApplicable")
    if code.lower() == "unhealthy":
        return ""
    cause = string(status, "cause")
    return f"status {code} ({cause})" if cause else f"status {code}"


def _status_date(status: Obj) -> str:
    return string(status, "statuschangedate") or string(status, "firstevaluationdate")


def _embedded_principal(extra: Obj) -> str | None:
    """Identity recommendations may embed one sub-assessment whose resource is ``…/identities/<oid>``."""
    sub = extra.get("subassessment")
    if not isinstance(sub, dict):
        return None
    details = mapping(mapping(sub, "properties"), "resourcedetails")
    match = _IDENTITY.match(string(details, "id").strip())
    return match[2] if match else None


def _arm_or_empty(rid: str) -> str:
    """``rid`` when it names an Azure resource (not an image reference or a Defender sub-path)."""
    rid = rid.strip()
    low = rid.lower()
    if not low.startswith("/subscriptions/") or "/providers/microsoft.security/" in low:
        return ""
    return rid


def _before_security(rid: str) -> str:
    """The assessed resource of an assessment id: the part before ``/providers/Microsoft.Security/``."""
    cut = rid.lower().find("/providers/microsoft.security/")
    return rid[:cut] if cut > 0 else ""


# --------------------------------------------------------------------------- Event Grid


def _event_grid(rec: Obj, lk: Obj) -> Record:
    """Event Grid events, Event Grid schema (``eventType``) or CloudEvents 1.0 (``type``)."""
    etype = string(lk, "eventtype") or string(lk, "type")
    low = etype.lower()
    event_id = string(lk, "id") or None
    if low == "microsoft.eventgrid.subscriptionvalidationevent":
        return Ignored(reason="Event Grid subscription validation handshake", id=event_id)
    if low == "microsoft.policyinsights.policystatedeleted":
        data = _json.lower_keys(mapping(lk, "data"))
        guid = string(data, "policydefinitionid").rstrip("/").rpartition("/")[2].lower() or None
        return Ignored(reason="policy state deleted (resource or assignment removed)", id=event_id,
                       kind="policy", type=guid, resource_id=string(lk, "subject") or None, source="policy-event",
                       resolves=guid is not None)
    if low == _WRITE_SUCCESS:
        return _resource_event(rec, lk)
    if low.startswith(_RESOURCE_EVENTS):
        return Ignored(reason=f"Event Grid event {etype}: only a ResourceWriteSuccess of a watched operation is "
                              "a finding", id=event_id, source="resource-event")
    if low not in _POLICY_EVENTS:
        what = etype or "(no type)"
        return Ignored(reason=f"Event Grid event {what} is not a policy-state or resource-write event",
                       id=event_id)
    return _policy(rec, lk)


# --------------------------------------------------------------------------- ARM writes (operations)


def _resource_event(rec: Obj, lk: Obj) -> Record:
    """``Microsoft.Resources.ResourceWriteSuccess`` (Event Grid schema or CloudEvents)."""
    data = _json.lower_keys(required_mapping(lk, "data"))
    operation = string(data, "operationname").strip().lower()
    resource = string(data, "resourceuri") or string(lk, "subject")
    if operation not in WATCHED_OPERATIONS:
        return Ignored(reason=f"ResourceWriteSuccess of {operation or '(no operationName)'}: not a watched "
                              f"operation ({', '.join(sorted(WATCHED_OPERATIONS))})",
                       id=string(lk, "id") or None, resource_id=resource or None, source="resource-event")
    claims = data.get("claims")
    return _write(rec, operation=operation, resource=resource, status=string(data, "status") or "Succeeded",
                  time=string(lk, "eventtime") or string(lk, "time"), correlation=string(data, "correlationid"),
                  caller=_claimed_caller(claims), subscription=string(data, "subscriptionid"),
                  source="resource-event")


def _activity_write(rec: Obj, ev: Obj, *, status: str, target: str) -> Record:
    """A watched write as an Activity Log event (REST, ``records`` export, either webhook schema)."""
    identity = _json.lower_keys(mapping(ev, "identity"))  # the records export nests claims here
    caller = _claimed_caller(ev.get("claims")) or _claimed_caller(identity.get("claims")) or \
        string(ev, "caller")
    status = text(ev.get("status")) or string(ev, "resulttype") or status
    return _write(rec, operation=_operation(ev), resource=string(ev, "resourceid") or target, status=status,
                  time=string(ev, "eventtimestamp") or string(ev, "time"),
                  correlation=string(ev, "correlationid"), caller=caller,
                  subscription=string(ev, "subscriptionid"), source="activity-log")


def _claimed_caller(claims: object) -> str:
    """The caller's object id from a token's claims (an object, or JSON text in the webhooks); ``""``."""
    if isinstance(claims, str) and claims.strip().startswith("{"):
        try:
            claims = _json.loads(claims)
        except ValueError:
            return ""
    if not isinstance(claims, dict):
        return ""
    lk = _json.lower_keys(claims)
    return string(lk, _OBJECT_ID_CLAIM) or string(lk, "oid")


def _redacted(value: Any) -> Any:
    """A copy without the token claims, the authorization evidence, the HTTP request and the client IP."""
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items() if str(k).lower() not in _SECRET_KEYS}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _write(rec: Obj, *, operation: str, resource: str, status: str, time: str, correlation: str, caller: str,
           subscription: str, source: str) -> Record:
    resource = resource.strip()
    if not resource.startswith("/"):
        raise FieldError(f"write event of {operation} names no resource id (resourceUri/resourceId)")
    fid = "operation:" + _hash(operation, resource.lower(), correlation.lower() or time)
    if status.strip().lower() not in _SUCCEEDED:
        return Ignored(reason=f"{operation} status {status or '(none)'}: only a succeeded write is a finding",
                       id=fid, kind="operation", type=operation, resource_id=resource, source=source)
    parsed = ids.parse(resource)
    by = f" by {caller}" if caller else ""
    facts = {"operationname": operation, "status": status, "eventtime": time, "correlationid": correlation,
             "caller": caller}
    return Finding(
        id=fid, kind="operation", type=operation, title=f"{operation} on {parsed.name or resource}{by}",
        severity=Severity.UNKNOWN, status=status, resource_id=resource,
        subscription_id=parsed.subscription_id or subscription or None, resource_group=parsed.resource_group,
        resource_type=parsed.type, source=source,
        description=f"ARM write {operation} succeeded{by}" + (f" at {time}" if time else ""),
        extended_properties={k: v for k, v in facts.items() if v}, additional_data=facts, raw=_redacted(rec),
    )


def _exemption(rec: Obj, lk: Obj) -> Record:
    """An existing policy exemption (Resource Graph row, ARM document, ``az policy exemption list``)."""
    resource = required_string(lk, "id", "id (the exemption's resource id)").strip()
    parsed = ids.parse(resource)
    if not resource.startswith("/") or ids.type_key(parsed.type or "") != _EXEMPTION_TYPE:
        raise FieldError(f"id {one_line(resource)[:200]!r} is not a policy exemption id "
                         "(…/providers/Microsoft.Authorization/policyExemptions/<name>)")
    given = lk.get("properties")
    props = _json.lower_keys(given) if isinstance(given, dict) else lk
    facts = {"operationname": _EXEMPTION_WRITE, "exemptioncategory": string(props, "exemptioncategory"),
             "expireson": text(props.get("expireson")), "policyassignmentid": string(props, "policyassignmentid")}
    expiry = facts["expireson"] or "no expiry"
    return Finding(
        id="operation:" + _hash(_EXEMPTION_WRITE, resource.lower(), "existing"), kind="operation",
        type=_EXEMPTION_WRITE, title=f"Existing policy exemption {parsed.name or resource} ({expiry})",
        severity=Severity.UNKNOWN, status="Existing", resource_id=resource,
        subscription_id=parsed.subscription_id or string(lk, "subscriptionid") or None,
        resource_group=parsed.resource_group, resource_type=parsed.type, source="exemption",
        description=f"Policy exemption of {facts['policyassignmentid'] or 'an unnamed assignment'}, "
                    f"category {facts['exemptioncategory'] or '(none)'}, {expiry}",
        extended_properties={k: v for k, v in facts.items() if v}, additional_data=facts, raw=rec,
    )


def _role_assignment(rec: Obj, lk: Obj) -> Record:
    """An existing role assignment (a Resource Graph ``authorizationresources`` row, an ARM GET or list): the
    backlog of standing access, a finding of the same ``kind`` and ``type`` as a write event of it
    (``microsoft.authorization/roleassignments/write``); the action decides what, if anything, to change."""
    resource = required_string(lk, "id", "id (the role assignment's resource id)").strip()
    parsed = ids.parse(resource)
    if not resource.startswith("/") or ids.type_key(parsed.type or "") != _ROLE_ASSIGNMENT_TYPE:
        raise FieldError(f"id {one_line(resource)[:200]!r} is not a role assignment id "
                         "(…/providers/Microsoft.Authorization/roleAssignments/<name>)")
    props = _json.lower_keys(required_mapping(lk, "properties"))
    principal = required_string(props, "principalid", "properties.principalId")
    role = required_string(props, "roledefinitionid", "properties.roleDefinitionId")
    scope = string(props, "scope") or re.split(r"/providers/microsoft\.authorization/", resource, maxsplit=1,
                                               flags=re.IGNORECASE)[0]
    guid = roles.role_guid(role)
    name = roles.PRIVILEGED_ROLES.get(guid, guid)
    kind_of = string(props, "principaltype") or "principal"
    facts = {"operationname": roles.ROLE_ASSIGNMENT_WRITE, "roledefinitionid": role, "role": name,
             "principalid": principal, "principaltype": string(props, "principaltype"), "scope": scope}
    scope_name = ids.parse(scope).name or scope
    return Finding(
        id="operation:" + _hash(roles.ROLE_ASSIGNMENT_WRITE, resource.lower(), "existing"), kind="operation",
        type=roles.ROLE_ASSIGNMENT_WRITE, title=f"{name} of {kind_of} {principal} on {scope_name}",
        severity=Severity.UNKNOWN, status="Existing", resource_id=resource,
        subscription_id=parsed.subscription_id or string(lk, "subscriptionid") or None,
        resource_group=parsed.resource_group, resource_type=parsed.type, source="role-assignment",
        description=f"Role assignment of {name} to {kind_of} {principal} at {scope}",
        principal_id=principal, extended_properties={k: v for k, v in facts.items() if v},
        additional_data=facts, raw=rec,
    )


def _policy(rec: Obj, lk: Obj) -> Record:
    data = _json.lower_keys(required_mapping(lk, "data"))
    resource = required_string(lk, "subject", "subject (the resource id)")
    return _policy_result(rec, data, resource, "policy-event", "data.")


def _policy_state(rec: Obj, lk: Obj) -> Record:
    """A policy state record: Policy Insights ``policyStates/…/queryResults`` (what ``az policy state
    list`` prints: camelCase fields at the top level) or a Resource Graph ``policyresources`` row
    (type ``microsoft.policyinsights/policystates``, the same fields under ``properties``)."""
    if string(lk, "type").lower() == "microsoft.policyinsights/policystates":
        data, at = _json.lower_keys(required_mapping(lk, "properties")), "properties."
    else:
        data, at = lk, ""
    resource = required_string(data, "resourceid", f"{at}resourceId")
    return _policy_result(rec, data, resource, "policy-state", at)


def _policy_result(rec: Obj, data: Obj, resource: str, source: str, at: str) -> Record:
    """A policy compliance result, whichever route brought it (Event Grid, queryResults, Resource Graph).

    The id is the same for all of them: definition, assignment and resource, lower-cased. The
    evaluation ``timestamp`` is left out: each route reports its own evaluation time for the same
    non-compliance."""
    definition = required_string(data, "policydefinitionid", f"{at}policyDefinitionId")
    assignment = string(data, "policyassignmentid")
    state = required_string(data, "compliancestate", f"{at}complianceState")
    reference = string(data, "policydefinitionreferenceid")
    guid = definition.rstrip("/").rpartition("/")[2].lower()
    fid = "policy:" + _hash(definition.lower(), assignment.lower(), resource.lower())
    if state.lower() != "noncompliant":
        return Ignored(reason=f"policy state {state}: only NonCompliant is a finding", id=fid, kind="policy",
                       type=guid, resource_id=resource, source=source, resolves=state.lower() == "compliant")
    reason = string(data, "compliancereasoncode")
    parsed = ids.parse(resource)
    return Finding(
        id=fid, kind="policy", type=guid, title=f"Azure Policy non-compliance: {reference or guid}",
        severity=Severity.UNKNOWN, status=state, resource_id=resource,
        subscription_id=parsed.subscription_id or string(data, "subscriptionid") or None,
        resource_group=parsed.resource_group, resource_type=parsed.type, source=source,
        description=f"Non-compliant with policy definition {definition}" + (f" ({reason})" if reason else ""),
        policy_definition_id=definition, policy_assignment_id=assignment or None,
        additional_data=_json.lower_deep(data), raw=rec,
    )


def _hash(*parts: str) -> str:
    """A short, stable digest of the parts (96 bits: collisions are not a practical concern)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]

"""Serialization shared by the stores: records ↔ JSON-safe dicts, datetimes as ISO-8601 UTC.

Both backends keep a remediation as one JSON document (plus a few indexed columns or
properties), so the encoding lives here once:

- datetimes are written as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width, so the text sorts like
  the instant) and read back as aware UTC datetimes; a naive datetime is refused (``ValueError``)
  rather than guessed at;
- sequences (``approvers``, ``votes``, ``changes``, ``warnings``) come back as tuples, mappings as dicts, so a
  round trip of a value built with tuples compares equal;
- ``finding``, ``changes`` and job payloads must be JSON values (``Change.to_json()``); anything
  else is a ``TypeError`` naming the offending type, never a silent ``str()``.

``version`` is not part of the document: each store sets it from its own compare-and-set token.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from pydantic_core import PydanticSerializationError, from_json, to_json

from remediator.lifecycle.model import STATES, ApprovalVote, AuditEvent, Inbound, Remediation, State, check_transition
from remediator.words import noun

# What decoding a stored document can raise when the text is corrupt (bad JSON, a missing or mistyped
# field, a broken compressed part): the stores quarantine the row instead of failing the read.
DECODE_ERRORS: tuple[type[Exception], ...] = (ValueError, KeyError, TypeError, AttributeError, IndexError,
                                              zlib.error, UnicodeDecodeError)

# Fields a caller may not change through ``transition``/``update``: identity, the token, the dedup
# slot (its key is the identity of the slot) and the state (``transition``'s ``to`` sets it).
FROZEN_FIELDS = frozenset({"id", "version", "state", "dedup_key"})
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Remediation))
_FIELDS = frozenset(_FIELD_NAMES)
_DATETIME_FIELDS = ("created_at", "updated_at", "expires_at")


def dt_to_str(value: datetime) -> str:
    """An aware datetime as fixed-width ISO-8601 UTC text (sortable)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} (the stores keep aware UTC datetimes)")
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def dt_from_str(text: str) -> datetime:
    """The inverse of :func:`dt_to_str` (accepts any ISO-8601 text with an offset)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {text!r}")
    return value.astimezone(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch (for comparisons in SQL and sortable keys)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} (the stores keep aware UTC datetimes)")
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        raise TypeError(f"a set is not a JSON value (got {sorted(map(repr, value))[:3]}…); use a list")
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def dumps(value: object) -> str:
    """Compact JSON (UTF-8 text, non-ASCII kept). Mappings of any kind are accepted.

    pydantic-core's Rust serializer (already a dependency through pydantic) is several times
    faster than the json module on the large ARM documents a remediation carries; values it does
    not know natively go through ``_json_default``. A top-level set is refused; a nested one is
    written as an array (its order is not kept; nothing the engine stores holds sets).
    """
    if isinstance(value, (set, frozenset)):
        _json_default(value)
    try:
        return to_json(value, fallback=_json_default, serialize_unknown=False).decode()
    except PydanticSerializationError as e:
        raise TypeError(str(e)) from None


def loads(text: str | bytes) -> Any:
    """JSON text → Python values, with pydantic-core's parser (about twice as fast as ``json.loads``
    on stored documents); invalid text is a ``ValueError``, as with ``json.loads``."""
    return from_json(text)


def _freeze(value: Any) -> Any:
    """JSON arrays of the top-level sequences become tuples (nested values stay as parsed)."""
    return tuple(value)


def _fields(record: object, names: Sequence[str]) -> dict[str, Any]:
    """The named fields of a record, datetimes as :func:`dt_to_str` (in the order named)."""
    out = {name: getattr(record, name) for name in names}
    return {k: dt_to_str(v) if isinstance(v, datetime) else v for k, v in out.items()}


def vote_to_dict(vote: ApprovalVote) -> dict[str, Any]:
    return _fields(vote, ("user_id", "team_id", "enterprise_id", "at", "decision", "reason"))


def vote_from_dict(data: Mapping[str, Any]) -> ApprovalVote:
    decision = data.get("decision", "approve")
    if decision not in ("approve", "reject"):
        raise ValueError(f"vote decision {decision!r} is not 'approve' or 'reject'")
    return ApprovalVote(
        user_id=data["user_id"],
        team_id=data.get("team_id"),
        enterprise_id=data.get("enterprise_id"),
        at=dt_from_str(data["at"]),
        decision=decision,
        reason=data.get("reason", ""),
    )


def remediation_to_dict(rem: Remediation) -> dict[str, Any]:
    """A JSON-safe dict of every field except ``version``."""
    if rem.state not in STATES:
        raise ValueError(f"unknown state {rem.state!r}; valid: {', '.join(STATES)}")
    return {
        "id": rem.id,
        "dedup_key": rem.dedup_key,
        "finding_id": rem.finding_id,
        "finding": rem.finding,
        "playbook": rem.playbook,
        "risk": rem.risk,
        "resource_id": rem.resource_id,
        "subscription_id": rem.subscription_id,
        "state": rem.state,
        "changes": list(rem.changes),
        "fingerprint": rem.fingerprint,
        "approvers": list(rem.approvers),
        "quorum": rem.quorum,
        "votes": [vote_to_dict(v) for v in rem.votes],
        "requester": rem.requester,
        "created_at": dt_to_str(rem.created_at),
        "updated_at": dt_to_str(rem.updated_at),
        "expires_at": dt_to_str(rem.expires_at) if rem.expires_at is not None else None,
        "reminded": rem.reminded,
        "message": dict(rem.message),
        "error": rem.error,
        "undo_of": rem.undo_of,
        "attempt": rem.attempt,
        "announced": rem.announced,
    } | ({"trace": rem.trace_context} if rem.trace_context else {}) | (
        {"warnings": list(rem.warnings)} if rem.warnings else {}) | (
        {"posting": dict(rem.posting)} if rem.posting else {})


def remediation_from_dict(data: Mapping[str, Any], *, version: str) -> Remediation:
    """Rebuild a remediation from :func:`remediation_to_dict` output, with the store's token."""
    state = data["state"]
    if state not in STATES:
        raise ValueError(f"stored remediation {data.get('id')!r} has unknown state {state!r}")
    expires = data.get("expires_at")
    return Remediation(
        id=data["id"],
        dedup_key=data["dedup_key"],
        finding_id=data["finding_id"],
        finding=data.get("finding") or {},
        playbook=data["playbook"],
        risk=data["risk"],
        resource_id=data["resource_id"],
        subscription_id=data.get("subscription_id"),
        state=cast(State, state),
        changes=_freeze(data.get("changes") or ()),
        fingerprint=data.get("fingerprint"),
        approvers=_freeze(data.get("approvers") or ()),
        quorum=int(data.get("quorum", 1)),
        votes=tuple(vote_from_dict(v) for v in data.get("votes") or ()),
        requester=data.get("requester"),
        created_at=dt_from_str(data["created_at"]),
        updated_at=dt_from_str(data["updated_at"]),
        expires_at=dt_from_str(expires) if expires is not None else None,
        reminded=bool(data.get("reminded", False)),
        message=dict(data.get("message") or {}),
        error=data.get("error"),
        undo_of=data.get("undo_of"),
        attempt=int(data.get("attempt", 0)),
        # a remediation stored before announcing existed was posted by its ingest: announced
        announced=bool(data.get("announced", True)),
        trace_context=data.get("trace"),
        # a document stored before warnings were kept has none
        warnings=tuple(str(w) for w in data.get("warnings") or ()),
        posting=dict(data.get("posting") or {}),
        version=version,
    )


def with_version(rem: Remediation, version: str) -> Remediation:
    """``dataclasses.replace(rem, version=version)`` without re-running ``__init__`` (the hot path
    of ``create``: a quarter of its Python time went to ``replace``)."""
    new = object.__new__(Remediation)
    for name in _FIELD_NAMES:
        object.__setattr__(new, name, getattr(rem, name))
    object.__setattr__(new, "version", version)
    return new


def encode_remediation(rem: Remediation) -> str:
    """The stored JSON document of a remediation (without ``version``)."""
    return dumps(remediation_to_dict(rem))


def decode_remediation(text: str | bytes, *, version: str) -> Remediation:
    return remediation_from_dict(loads(text), version=version)


def apply_updates(current: Remediation, *, state: State, updates: Mapping[str, Any], now: datetime) -> Remediation:
    """``current`` with ``state`` and ``updates`` applied; ``updated_at`` is ``now`` unless given.

    Unknown fields and the frozen ones (``id``, ``version``, ``state``, ``dedup_key``) are a
    ``TypeError``; the result is validated by encoding it (naive datetimes, non-JSON values).
    """
    unknown = set(updates) - _FIELDS
    if unknown:
        raise TypeError(f"Remediation has no {noun(len(unknown), 'field')} {', '.join(sorted(unknown))}")
    frozen = set(updates) & FROZEN_FIELDS
    if frozen:
        raise TypeError(f"{noun(len(frozen), 'field')} {', '.join(sorted(frozen))} cannot be updated (state changes go "
                        "through transition's 'to'; id, dedup_key and version are fixed)")
    changes = dict(updates)
    changes.setdefault("updated_at", now)
    for name in ("votes", "approvers", "changes", "warnings"):
        if name in changes:
            changes[name] = tuple(changes[name])
    return dataclasses.replace(current, state=state, **changes)


def moved(current: Remediation, to: State, *, from_states: Iterable[State], updates: Mapping[str, Any],
          now: datetime) -> tuple[tuple[State, ...], Remediation]:
    """A ``transition``'s arguments, checked before the store reads or writes anything: the
    from-states once ``TRANSITIONS`` allows each of them to move to ``to`` (``ForbiddenTransition``
    naming the first that may not), and the new value (see ``apply_updates``)."""
    return check_transition(from_states, to), apply_updates(current, state=to, updates=updates, now=now)


def inbound_to_dict(item: Inbound) -> dict[str, Any]:
    """The stored document of an inbox row's finding and source (the rest are columns/properties)."""
    doc: dict[str, Any] = {"finding": item.finding, "source": item.source}
    if item.generation:
        doc["generation"] = item.generation
    return doc


def inbound_from_parts(doc: Mapping[str, Any], *, finding_id: str, received_at: str, waiting: bool,
                       remediation_id: str | None, planned_at: str | None) -> Inbound:
    return Inbound(finding_id=finding_id, finding=doc.get("finding") or {}, source=str(doc.get("source", "")),
                   received_at=dt_from_str(received_at), waiting=waiting, remediation_id=remediation_id,
                   planned_at=dt_from_str(planned_at) if planned_at else None,
                   generation=str(doc.get("generation") or ""))


def audit_to_dict(event: AuditEvent) -> dict[str, Any]:
    return _fields(event, ("remediation_id", "event", "actor", "at", "detail"))


def audit_from_dict(data: Mapping[str, Any], *, seq: int) -> AuditEvent:
    return AuditEvent(
        remediation_id=data.get("remediation_id"),
        event=data["event"],
        actor=data["actor"],
        at=dt_from_str(data["at"]),
        detail=data.get("detail") or {},
        seq=seq,
    )


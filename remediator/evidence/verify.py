"""``remediator audit verify``: prove the audit trail is complete and unaltered, or say where it is not.

Input is every stored record (``Store.audit_records()``: chain, position, prev, hash, the stored
text), in chain and position order, so the check streams one chain at a time. Per chain:

* a position missing between two records → ``deleted`` (``<chain>#<n>``);
* two records at one position → ``inserted`` (the later one, by the store's sequence);
* a record whose hash is not the hash of its content at its position → ``reordered`` when it is
  the hash of its content at another position (the record was moved), else ``edited``;
* a record whose ``prev`` is not the hash of the record before it → that earlier record was
  ``edited`` (its hash recomputed to hide the edit);
* on a store with a global sequence (SQLite), two records of a chain whose sequence order
  contradicts their positions → ``reordered``.

Then the anchors (chain ``_anchors``, itself checked the same way): each names ``[chain, position,
hash]``; a named record that is gone is ``deleted`` (a whole chain, or its tail), one with another
hash is ``edited``. A record after its chain's last anchored position that is dated before an
anchor's time by more than ``OVERLAP`` was ``inserted`` (an anchor scan would have named it).
Records after the last anchor are **not anchored** yet: a deleted tail there cannot be seen (the
next sweep anchors them); the result says how many. A remediation in the store with no record
at all → ``deleted`` (its whole chain). Records from before chaining existed (Azure Tables) are
counted as pre-chain, and one dated after the first chained record is ``inserted``.

Completeness, not only order: for every remediation in the store (``remediations``: id and stored
state) its chain must start at position 1 with ``prev`` = GENESIS (a gap at the start is ``deleted``,
as above) and with the record that opened it (``OPENING_EVENTS``), and its last record that says
a state (``record_state``) must name the state the store holds. Otherwise → ``missing``, one line
naming the remediation and what is missing (its opening record; the record of its move to the
stored state). The stores write a state and its record in one transaction, so on an honest store a
``missing`` record means one was deleted or written around the store.

What this cannot see: someone who can write the store *and* recomputes every hash after an edit
(each later record of the chain, and every later anchor) leaves a consistent trail. Copies of
the anchors kept outside the store (WORM storage) would close that gap; remediator does not write
them yet.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Literal

from remediator.lifecycle.chain import (
    ANCHOR_CHAIN,
    GENESIS,
    OPENING_EVENTS,
    ChainRecord,
    is_system_chain,
    record_hash,
    record_id,
    record_state,
)
from remediator.words import plural

OVERLAP = timedelta(minutes=5)
MAX_LISTED = 1000  # problems listed in full; beyond, counted
ProblemKind = Literal["edited", "deleted", "inserted", "reordered", "missing"]


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    record: str  # <chain>#<position>
    detail: str
    chain: str = ""
    at: str = ""  # the record's own time when it is known (ISO)

    def line(self) -> str:
        return f"{self.kind:<9} {self.record}: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyResult:
    records: int  # chained records checked (anchors included)
    chains: int
    anchors: int
    anchored: int  # records pinned by an anchor
    unanchored: int  # records after their chain's last anchored position
    pre_chain: int
    last_anchor: str | None  # ISO time of the newest anchor
    problems: tuple[Problem, ...]
    more_problems: int = 0  # beyond MAX_LISTED
    remediations: int = 0  # remediations whose trail was checked for completeness
    incomplete: tuple[str, ...] = ()  # ids of remediations whose trail is incomplete (missing or deleted records)
    period_records: int | None = None  # records dated in the period asked for (None: no period)
    outside_period: int = 0  # problems left out because they are about chains outside the period

    @property
    def ok(self) -> bool:
        return not self.problems and not self.more_problems

    def summary(self) -> str:
        verdict = "OK: the audit trail is complete and unaltered" if self.ok else \
            f"FAILED: {plural(len(self.problems) + self.more_problems, 'problem')}"
        parts = [f"{plural(self.records, 'record', sep=',')} in {plural(self.chains, 'chain', sep=',')}",
                 plural(self.anchors, "anchor", sep=",")]
        if self.remediations:
            parts.append(f"{plural(self.remediations, 'remediation', sep=',')}, {len(self.incomplete):,} with an "
                         "incomplete trail")
        if self.period_records is not None:
            parts.insert(0, f"{plural(self.period_records, 'record', sep=',')} in the period")
        text = f"{verdict} ({', '.join(parts)}; {self.anchored:,} anchored, {self.unanchored:,} not anchored yet"
        if self.pre_chain:
            text += f", {self.pre_chain:,} pre-chain"
        text += ")"
        if self.last_anchor:
            text += f"; last anchor {self.last_anchor}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "chains": self.chains, "anchors": self.anchors,
                "anchored": self.anchored, "unanchored": self.unanchored, "pre_chain": self.pre_chain,
                "last_anchor": self.last_anchor, "period_records": self.period_records,
                "outside_period": self.outside_period, "more_problems": self.more_problems,
                "remediations": self.remediations, "incomplete": list(self.incomplete),
                "problems": [{"kind": p.kind, "record": p.record, "detail": p.detail} for p in self.problems]}


def doc_time(doc: str) -> str:
    """The ``at`` of a stored record's text without decoding all of it ('' when absent)."""
    i = doc.find('"at":"')
    if i < 0:
        try:
            value = json.loads(doc).get("at")
        except (ValueError, AttributeError):
            return ""
        return str(value or "")
    end = doc.find('"', i + 6)
    return doc[i + 6:end] if end > 0 else ""


@dataclass(slots=True)
class _Chain:
    hashes: dict[int, str] = field(default_factory=dict)  # position → the stored hash there
    times: dict[int, str] = field(default_factory=dict)  # position → the record's own time
    max_position: int = 0
    first: str = ""  # the event of the record at position 1 ('' when there is none)
    last_state: str = ""  # the state the last state-bearing record names ('' when none does)
    last_state_at: int = 0  # its position


def verify(  # noqa: PLR0915 - the checks in the order the module docstring lists them
        records: Iterable[ChainRecord], *, remediation_ids: Iterable[str] = (), global_sequence: bool = False,
        start: datetime | None = None, end: datetime | None = None,
        remediations: Iterable[tuple[str, str]] = ()) -> VerifyResult:
    """Check everything (see the module docstring). ``start``/``end`` (UTC, end exclusive) limit the
    problems reported to chains with a record dated in the period, and anchors of the period.
    ``remediations``: ``(id, stored state)`` of every remediation, for completeness; ``remediation_ids``
    (ids only: whole chains, no states) is the older, weaker form."""
    problems: list[Problem] = []
    chains: dict[str, _Chain] = {}
    anchor_docs: list[tuple[str, str]] = []  # (anchor record id, its text), in order
    pre_chain = 0
    legacy_seqs: list[tuple[int, str]] = []
    first_chained_seq: int | None = None
    count = 0
    for chain, group in groupby(records, key=lambda r: r.chain):
        rows = list(group)
        chained = [r for r in rows if r.hash]
        loose = [r for r in rows if not r.hash]
        for r in loose:
            if r.legacy:
                pre_chain += 1
                legacy_seqs.append((r.seq, chain))
            else:
                problems.append(Problem("inserted", f"seq {r.seq}", "a record outside every chain (no chain, "
                                        "position or hash): written around the store", chain=chain,
                                        at=doc_time(r.doc)))
        if not chained:
            continue
        count += len(chained)
        seq_min = min(r.seq for r in chained)
        first_chained_seq = seq_min if first_chained_seq is None else min(first_chained_seq, seq_min)
        state = _check_chain(chain, chained, problems, global_sequence)
        chains[chain] = state
        if chain == ANCHOR_CHAIN:
            anchor_docs = [(r.id, r.doc) for r in chained]
    if first_chained_seq is not None:
        for seq, chain in legacy_seqs:
            if seq > first_chained_seq:
                problems.append(Problem("inserted", f"{chain or '(global)'} seq {seq}", "a pre-chain record "
                                        "dated after chaining began", chain=chain))
    anchored_upto, last_anchor, anchor_times = _check_anchors(anchor_docs, chains, problems)
    anchored = unanchored = 0
    latest_cover = max(anchor_times) if anchor_times else None
    for chain, state in chains.items():
        if chain == ANCHOR_CHAIN:
            continue
        upto = anchored_upto.get(chain, 0)
        anchored += min(upto, state.max_position)
        for position in range(upto + 1, state.max_position + 1):
            if position not in state.hashes:
                continue
            unanchored += 1
            at = state.times.get(position, "")
            if latest_cover is not None and at and _before(at, latest_cover - OVERLAP):
                problems.append(Problem("inserted", record_id(chain, position), f"dated {at}, before the anchor of "
                                        f"{latest_cover.isoformat()} that would have named it, but no anchor does",
                                        chain=chain, at=at))
    legacy_chains = {c for _, c in legacy_seqs}
    rem_ids: set[str] = set()
    for rid, stored in itertools.chain(((r, "") for r in remediation_ids), remediations):
        rem_ids.add(rid)
        if rid not in chains:
            if rid not in legacy_chains:
                problems.append(Problem("deleted", record_id(rid, 1), "the remediation exists but its audit chain "
                                        "is gone (every record deleted, or never written)", chain=rid))
            continue
        _check_complete(rid, stored, chains[rid], problems)

    incomplete = tuple(sorted({p.chain for p in problems if p.kind in ("missing", "deleted") and p.chain in rem_ids}))
    anchors = len(anchor_docs)
    period_records: int | None = None
    outside = 0
    if start is not None or end is not None:
        touched = {c for c, s in chains.items() if any(_in(t, start, end) for t in s.times.values())}
        period_records = sum(sum(1 for t in s.times.values() if _in(t, start, end)) for s in chains.values())
        kept = [p for p in problems if p.chain in touched or (p.at and _in(p.at, start, end))
                or (p.chain == ANCHOR_CHAIN) or p.chain in incomplete]  # an incomplete trail has no date
        outside = len(problems) - len(kept)
        problems = kept
    return VerifyResult(records=count, chains=len(chains), anchors=anchors, anchored=anchored, unanchored=unanchored,
                        pre_chain=pre_chain, last_anchor=last_anchor, problems=tuple(problems[:MAX_LISTED]),
                        more_problems=max(0, len(problems) - MAX_LISTED), period_records=period_records,
                        outside_period=outside, remediations=len(rem_ids), incomplete=incomplete)


def _check_complete(rid: str, state: str, chain: _Chain, problems: list[Problem]) -> None:
    """A remediation's chain opens it and ends in its stored state (``state``; '' when unknown)."""
    if chain.first and chain.first not in OPENING_EVENTS:
        problems.append(Problem("missing", record_id(rid, 1), f"remediation {rid}: its trail starts with "
                                f"{chain.first!r}, not the record that opened it ({', '.join(sorted(OPENING_EVENTS))})",
                                chain=rid))
    if not state or state == chain.last_state:
        return
    if not chain.last_state:
        what = "no record of any state"
    else:
        what = f"its last state record ({record_id(rid, chain.last_state_at)}) says {chain.last_state}"
    problems.append(Problem("missing", record_id(rid, chain.max_position + 1), f"remediation {rid} is {state} but "
                            f"{what}: the record of its move to {state} is missing", chain=rid))


_STATE_AT_END = re.compile(r'"state":"([a-z_]+)"\}\}$')


def _record_facts(doc: str) -> tuple[str, str]:
    """(event, the state it names or '') of a stored record's text; ('', '') when unreadable.

    Without decoding the text where it can (the report over 100,000 records decodes each one once
    already): the stores write compact JSON whose last field is ``detail``, and the life cycle adds
    ``state`` as the detail's last key; any other shape is decoded."""
    i = doc.find('"event":"')
    end = doc.find('"', i + 9) if i >= 0 else -1
    if end > 0 and '"state":' not in doc:
        event = doc[i + 9:end]
        return event, record_state(event, None) or ""
    at_end = _STATE_AT_END.search(doc)
    if end > 0 and at_end is not None and doc.count('"state":') == 1:
        event = doc[i + 9:end]
        return event, record_state(event, {"state": at_end.group(1)}) or ""
    try:
        data = json.loads(doc)
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    event = str(data.get("event", ""))
    return event, record_state(event, data.get("detail")) or ""


def _check_chain(chain: str, rows: Sequence[ChainRecord], problems: list[Problem], global_sequence: bool) -> _Chain:
    state = _Chain()
    prev_hash = GENESIS
    prev_record: ChainRecord | None = None
    expected = 1
    flagged: set[int] = set()
    top = max(r.position for r in rows)
    for r in rows:
        at = doc_time(r.doc)
        if prev_record is not None and r.position == prev_record.position:
            problems.append(Problem("inserted", f"{r.id} (seq {r.seq})", f"a second record at position {r.position}",
                                    chain=chain, at=at))
            continue
        if r.position > expected:
            for missing in range(expected, min(r.position, expected + MAX_LISTED)):
                problems.append(Problem("deleted", record_id(chain, missing), f"missing between "
                                        f"{record_id(chain, missing - 1) if missing > 1 else 'the start'} and {r.id}",
                                        chain=chain))
            prev_hash = ""  # unknown: the link over the gap is not checked again
        state.hashes[r.position] = r.hash
        state.times[r.position] = at
        state.max_position = max(state.max_position, r.position)
        if not is_system_chain(chain):  # a remediation's chain (an id may start with '_' too)
            event, says = _record_facts(r.doc)
            if r.position == 1:
                state.first = event or "(unreadable)"
                if r.prev != GENESIS and record_hash(chain, r.position, r.prev, r.doc) == r.hash:
                    problems.append(Problem("deleted", r.id, "the first record does not start from the genesis "
                                            "hash: records before it are gone", chain=chain, at=at))
            if says:
                state.last_state, state.last_state_at = says, r.position
        if record_hash(chain, r.position, r.prev, r.doc) != r.hash:
            moved = next((k for k in range(1, top + 2) if k != r.position
                          and record_hash(chain, k, r.prev, r.doc) == r.hash), None)
            if moved is not None:
                problems.append(Problem("reordered", r.id, f"this record was written at position {moved}",
                                        chain=chain, at=at))
            else:
                problems.append(Problem("edited", r.id, "its content no longer matches its hash", chain=chain, at=at))
            flagged.add(r.position)
        elif prev_hash and r.prev != prev_hash and prev_record is not None and prev_record.position not in flagged:
            problems.append(Problem("edited", prev_record.id, f"its hash was rewritten: {r.id} links to another one",
                                    chain=chain, at=state.times.get(prev_record.position, "")))
            flagged.add(prev_record.position)
        if global_sequence and prev_record is not None and r.seq < prev_record.seq and r.position not in flagged:
            problems.append(Problem("reordered", r.id, f"stored before {prev_record.id} (seq {r.seq} < "
                                    f"{prev_record.seq})", chain=chain, at=at))
        prev_hash, prev_record = r.hash, r
        expected = r.position + 1
    return state


def _check_anchors(anchor_docs: Sequence[tuple[str, str]], chains: Mapping[str, _Chain],
                   problems: list[Problem]) -> tuple[dict[str, int], str | None, list[datetime]]:
    upto: dict[str, int] = {}
    times: list[datetime] = []
    last: str | None = None
    for anchor_id, doc in anchor_docs:
        try:
            detail = json.loads(doc).get("detail") or {}
            heads = detail.get("heads") or []
            covered = datetime.fromisoformat(str(detail["covered_until"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # its own hash check reports an edit; an unreadable anchor pins nothing
        times.append(covered)
        last = covered.isoformat()
        for head in heads:
            try:
                chain, position, digest = str(head[0]), int(head[1]), str(head[2])
            except (IndexError, TypeError, ValueError):
                continue
            upto[chain] = max(upto.get(chain, 0), position)
            state = chains.get(chain)
            stored = state.hashes.get(position) if state else None
            if stored is None:
                what = "the whole chain is gone" if state is None else "the record is gone"
                problems.append(Problem("deleted", record_id(chain, position), f"{what} (named by {anchor_id})",
                                        chain=chain))
            elif stored != digest:
                problems.append(Problem("edited", record_id(chain, position), f"its hash differs from the one "
                                        f"{anchor_id} recorded", chain=chain))
    return upto, last, times


def _before(at: str, when: datetime) -> bool:
    try:
        return datetime.fromisoformat(at) < when
    except ValueError:
        return False


def _in(at: str, start: datetime | None, end: datetime | None) -> bool:
    try:
        t = datetime.fromisoformat(at)
    except ValueError:
        return False
    return (start is None or t >= start) and (end is None or t < end)


def verify_store(store: Any, *, start: datetime | None = None, end: datetime | None = None) -> VerifyResult:
    """``verify`` over a store's records and remediations."""
    from remediator.store.sqlite import SQLiteStore  # noqa: PLC0415 - the Azure store needs no import here

    return verify(store.audit_records(), remediations=remediation_states(store),
                  global_sequence=isinstance(store, SQLiteStore), start=start, end=end)


def remediation_states(store: Any) -> Iterator[tuple[str, str]]:
    """``(id, stored state)`` of every remediation: the store's ``remediation_states()`` where it has
    one (no documents decoded), else from ``list``."""
    cheap = getattr(store, "remediation_states", None)
    if cheap is not None:
        yield from cheap()
        return
    for rem in store.list(limit=10_000_000):
        yield rem.id, rem.state

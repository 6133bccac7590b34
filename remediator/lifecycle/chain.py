"""The hash chains of the audit trail: which chain a record belongs to, and its hash.

Every audit record belongs to exactly one **chain** and has a **position** in it (1, 2, 3, …):

- a remediation's records form the chain named by its id (they are written by whoever holds the
  remediation at that moment: the planner that opened it, the clicker whose compare-and-set won,
  the worker under the resource lock), so concurrent workers never contend on a global head;
- records about no remediation (pause, plan errors, digests) go to one chain per UTC day,
  ``_system-YYYYMMDD``;
- **anchors** (chain ``_anchors``, event ``anchor``) are written by the sweep: each lists
  ``[chain, position, hash]`` of the chains that grew since the previous anchor (at most
  ``MAX_ANCHOR_HEADS`` per record, so one sweep may write several parts). An anchor pins every
  record up to that position: deleting the tail of a chain, or a whole chain, after it was
  anchored is detected. Records written after the last anchor are reported as not yet anchored.

**Completeness.** A remediation's chain starts with the record that opened it (``OPENING_EVENTS``,
written with the remediation itself) and every record written with a state change says the state
it moved to (detail ``state``): so its last such record names the state the store holds, and a
record lost between a state change and its audit (which the stores rule out by writing both in one
transaction) is visible (``record_state``; records from before that rule are read by their event
name, which was the state's).

A record's hash is SHA-256 over ``<len(chain)>:<chain>\n<position>\n<prev>\n<doc>`` (UTF-8), where
``prev`` is the hash of the record before it in its chain (``GENESIS`` for the first; always 64 hex
digits) and ``doc`` the exact stored JSON text of the record. Editing a record changes its hash;
recomputing the hash breaks the next record's ``prev``; moving a record changes its position; all
of them are found by
``remediator.evidence.verify``. Chain names never collide with remediation ids: those are
``secrets.token_urlsafe(16)``, 22 characters; ``_anchors`` and ``_system-YYYYMMDD`` are shorter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from remediator.lifecycle.model import STATES, AuditEvent, State

GENESIS = "0" * 64
ANCHOR_CHAIN = "_anchors"
ANCHOR_EVENT = "anchor"
SYSTEM_PREFIX = "_system-"
MAX_ANCHOR_HEADS = 200
# The records that open a remediation (the first of its chain).
OPENING_EVENTS = frozenset({"planned", "approval_requested", "exempt", "no_change"})
# Events of records written before records carried their state, that named the state they moved to.
_LEGACY_STATE_EVENTS: dict[str, State] = {**{s: s for s in STATES}, "approval_requested": "pending_approval"}
_STATES = frozenset(STATES)


def record_state(event: str, detail: object) -> State | None:
    """The state a remediation record says it left its remediation in (None: it changed no state)."""
    if isinstance(detail, dict):
        state = detail.get("state")
        if isinstance(state, str) and state in _STATES:
            return state
        if state is not None:
            return None
    return None if event == "planned" else _LEGACY_STATE_EVENTS.get(event)


def system_chain(at: datetime) -> str:
    """The chain of records about no remediation written on ``at``'s UTC day."""
    return f"{SYSTEM_PREFIX}{at:%Y%m%d}"


def is_system_chain(chain: str) -> bool:
    """Whether ``chain`` is the anchors' or a day's system chain, not a remediation's (a remediation id
    may start with ``_`` too: these names are told apart by their exact form)."""
    return chain == ANCHOR_CHAIN or (chain.startswith(SYSTEM_PREFIX) and len(chain) == len(SYSTEM_PREFIX) + 8
                                     and chain[len(SYSTEM_PREFIX):].isdigit())


def chain_for(remediation_id: str | None, at: datetime, given: str = "") -> str:
    """The chain a new record goes to: ``given`` (anchors), the remediation's, or the day's system chain."""
    if given:
        return given
    return remediation_id if remediation_id else system_chain(at)


def record_hash(chain: str, position: int, prev: str, doc: str) -> str:
    """SHA-256 (hex) of the record's place and stored text."""
    head = f"{len(chain)}:{chain}\n{int(position)}\n{prev}\n"
    return hashlib.sha256((head + doc).encode("utf-8", "surrogatepass")).hexdigest()


def record_id(chain: str, position: int) -> str:
    """How reports name a record: ``<chain>#<position>``."""
    return f"{chain}#{position}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainRecord:
    """One audit record as stored, for verification: nothing decoded, nothing recomputed."""

    chain: str
    position: int
    prev: str
    hash: str
    doc: str  # the stored JSON text of the AuditEvent
    seq: int = 0  # the store's order (SQLite: the global row sequence; Azure: the writer's microsecond stamp)
    legacy: bool = False  # written before the chains existed (Azure Tables): no position, prev or hash

    @property
    def id(self) -> str:
        return record_id(self.chain, self.position)


def anchors(heads: Sequence[Sequence[object]], *, at: datetime, **extra: object) -> list[AuditEvent]:
    """The anchor records over ``heads`` (``[chain, position, hash]`` each, in order): at most
    ``MAX_ANCHOR_HEADS`` a record, each numbered ``part`` of ``parts``; ``extra`` joins each detail."""
    listed = [list(h) for h in heads]
    parts = [listed[i:i + MAX_ANCHOR_HEADS] for i in range(0, len(listed), MAX_ANCHOR_HEADS)]
    return [AuditEvent(remediation_id=None, event=ANCHOR_EVENT, actor="system", at=at, chain=ANCHOR_CHAIN,
                       detail={"heads": part, "part": i, "parts": len(parts), "covered_until": at.isoformat(),
                               **extra})
            for i, part in enumerate(parts, 1)]

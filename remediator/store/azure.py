"""The scale-out store: Azure Table Storage (``azure-data-tables``) + Queue Storage (``azure-storage-queue``).

Names: tables ``<prefix>remediations``, ``<prefix>dedup``, ``<prefix>inbox``, ``<prefix>locks``,
``<prefix>audit``, ``<prefix>flags``, ``<prefix>counters``, ``<prefix>quarantine`` and the queues ``<prefix>-jobs``
and ``<prefix>-jobs-urgent`` (the urgent lane: work a person is waiting on, received first; ``Job.urgent``)
(``prefix`` is lower-case letters and digits). They are created on first use.

Keys
----
PartitionKey/RowKey may not contain ``/ \\ # ?`` or control characters, and ARM ids and dedup
keys do. A key that is ``[A-Za-z0-9_-]{1,200}`` is used as it is (remediation ids); any other is
``~`` + its SHA-256 (a literal key never starts with ``~``, so the two cannot collide) and the
original text is kept in a ``Key`` property.

Compare-and-set
---------------
``Remediation.version`` is the entity's ETag. ``transition`` and ``update`` replace the entity
with ``If-Match: <etag>``; 412 (someone wrote since the caller read) → None. ``transition`` also
checks ``current.state in from_states`` locally: with a matching ETag the stored state *is*
``current.state``, as long as the caller passes a value the store returned (it never needs to
edit ``state`` itself, ``transition``'s ``to`` does that).

Dedup
-----
Table Storage has no transaction across partitions, so the dedup slot is its own entity in the
``dedup`` table (PartitionKey = the key) naming the holder, and the protocol is:

1. **Claim**: ``create_entity`` of the slot naming the new remediation. Success → write the
   remediation, then re-read the slot: still ours → created. (If it was stolen meanwhile, see 3,
   the writer withdraws its entity with its ETag and starts over.)
2. **409, the slot exists**: read it and its holder.
   - holder open (same key) → the create is deduplicated: return the holder;
   - holder final and last written *after* the slot (server timestamps): a leftover of a final
     transition that crashed before freeing the slot → steal at once;
   - holder missing (its creator is between steps 1 and 2, or crashed there), or final but
     written before the slot (no move reopens a remediation, so this is only a clock tie) →
     wait: if the slot has not changed for ``claim_grace`` seconds while we watched, its owner is
     gone → steal.
3. **Steal** = replace the slot with ``If-Match`` of the version we judged; losing that race →
   go back to 2.

A transition to a final state writes the remediation (ETag), then deletes the slot if it still
names this remediation (ETag). A crash in between leaves a slot that step 2 steals at once. No
transition leads from a final state back to an open one (``TRANSITIONS``; the store refuses it),
so only ``create`` ever claims a slot. Net effect: at most one open
remediation per key, except that a writer stalled for longer than ``claim_grace`` between its
claim and its entity write can make its remediation visible for the instant before it notices
and withdraws it.

Size limits
-----------
A string property holds at most 64 KiB (32 K UTF-16 code units), a binary one 64 KiB, an entity
1 MiB. The remediation is one JSON document: up to 30,000 UTF-16 units it is the string property
``Doc`` (readable in Storage Explorer); above, it is zlib-compressed and split into binary
properties ``Doc0`` … ``DocN`` of ≤ 64,000 bytes (``DocParts`` = N+1). Up to 14 parts (896,000
compressed bytes, JSON plans compress 5-20 times) fit beside the indexed properties; a larger
remediation is refused with ``ValueError`` naming its size. An inbox row's document (a finding)
is stored the same way. A job's JSON must stay under 48 KiB (a queue message is 64 KiB after
base64); jobs carry ids, not documents.

Announced
---------
The remediation entity has a Boolean ``Announced`` property beside ``State``, so ``unannounced``
is the filter ``State eq 'pending_approval' and Announced eq false`` (sorted by ``Created`` like
``list``; Table Storage has no secondary index, so the service scans the table). An entity
written before the property existed has none; a comparison with a missing property is false, so
it is never listed, and it reads back as announced (the codec's default), as its ingest posted it.

Inbox
-----
One entity per finding id (PartitionKey = ``_safe_key(finding_id)``): ``FindingId``, ``Doc``
(finding and source), ``ReceivedAt``, ``Waiting``, and once planned ``RemediationId`` (if any)
and ``PlannedAt``. Times are fixed-width ISO text, so they compare as strings: ``waiting`` is the
filter ``Waiting eq true and ReceivedAt lt @t`` (sorted here), ``prune_inbox`` deletes what
``Waiting eq false and PlannedAt lt @t`` finds (each with its ETag); both scan the table.
``receive`` is ``create_entity``: created → queued. On 409 it reads the row: waiting → a
duplicate; planned and its remediation (read separately) still open → a duplicate; otherwise it
resets the row to waiting with ``If-Match`` of the version it judged → queued, and a lost race
(412/404) judges again, so of N concurrent receives of one finding exactly one is queued. There
is no transaction across the inbox and the remediations: the remediation can change between the
read and the reset (planning deduplicates against the remediations again in any case).
``mark_planned`` and ``prune_inbox`` write with the ETag of the row they read, so neither undoes a
concurrent reset.

Audit
-----
Hash-chained (``remediator.lifecycle.chain``). A chain record is an entity with RowKey = ``c`` + the
12-digit position and properties ``Chain``, ``Position``, ``Prev``, ``Hash``, ``Stamp`` (the writer's
microseconds, strictly increasing within a process), ``RemediationId``, ``Event`` and the document.
Where it lives:

- **a remediation's chain** is in the ``remediations`` table, in the remediation's own partition
  (PartitionKey = ``_safe_key(id)``, beside the remediation entity at RowKey ``r``), so that a state
  change and its records are **one entity-group transaction** (``submit_transaction``): the replace
  of the remediation with ``If-Match`` of its ETag (or its create) plus the create of the records at
  head + 1 … Either all of it is stored or none: a crash or an outage can lose a write, never leave
  a state without its record. A 412 from the batch is a lost compare-and-set (None, as without
  records); a 409 on a record is another writer at that position: read the head again and retry.
  Every read of remediations filters ``RowKey eq 'r'``, so chain rows never decode as remediations;
- **system chains** (``_system-YYYYMMDD``) and **anchors** (``_anchors``) stay in the ``audit`` table,
  PartitionKey = the chain;
- **the old layout** is still read: records of remediation chains written to the ``audit`` table
  before this layout (same RowKeys) and records from before the chains (RowKey = a 20-digit stamp,
  no ``Hash``; reported as pre-chain by verification). A remediation chain that has records only
  there continues after its head there.

An append creates the entity at head + 1: a 409 means another writer took that position, and the
writer moves up and tries again, so a chain never forks and writers of different chains never
meet. The head comes from a per-process cache, or an exponential probe of point reads (``c…1``,
``c…2``, ``c…4``, … then bisection), never a scan of the partition; a chain this process wrote is
never probed again, so appending n records to one chain is n writes, not n log n reads.
``audit_log(id)`` reads the remediation's partition (and the old layout's) in position order;
``audit_log()`` scans both tables and sorts by ``Stamp`` (the writers' clock order: exact within one
process; across hosts as good as their clocks). ``AuditEvent.seq`` is that stamp. ``anchor`` lists
the chains written since the previous anchor by a server-side filter on the entities' ``Timestamp``
(from that anchor's time minus ``ANCHOR_OVERLAP``, so a record committed while the previous scan ran
is caught by the next), in both tables, leaving out heads the previous anchor already named.

Lost answers
------------
A write can land while its answer is lost (a connection reset or a timeout during an outage, a
5xx). azure-core's retry policy sends a PUT or DELETE again by itself, not a POST (a create, an
entity-group transaction). So every write of a remediation entity carries a mark of its own
(``Write``, a random hex), and a remediation write (``_commit``/``_append``) whose answer was lost
waits (``lost_answer_waits``: 0.5, 1, 2, 4, 8 s), re-reads whether it landed, and only if it did not
sends it again; a conflict (409, 412, 404) is also checked against the mark before it counts as a
lost race, since it may be the service refusing our own write sent twice. Records written without
a remediation write are recognised by their text and the writer's stamp. So a write whose answer
was lost is neither appended twice (no second opening record, no record twice) nor reported as
someone else's (``create`` answers created; ``transition``/``update`` the new version, not None).
The creates of a dedup slot, a lock and an inbox row (``_create_or_read``) are sent again the same
way: a first create that landed answers 409 with the row it wrote, which its writer recognises
(the slot names it, the lock is its owner's, the inbox row carries its ``Write`` mark).
After the last wait the error is raised: the caller's job is delivered again and reads what landed.

Quarantine
----------
A remediation entity, an inbox row or a queue message that cannot be decoded is copied to the
``quarantine`` table (PartitionKey = the source: ``remediation``, ``inbox`` or ``job``; RowKey = a
stamp; ``Key``, ``Error``, ``At`` and the stored text, cut to 30,000 characters), then deleted from
where it was (entities with their ETag; a message by its pop receipt), and a ``quarantined`` system
record is audited. The read that met it goes on with the others.

Leases
------
One entity per key in ``locks`` (``Owner``, ``Expires``, ``Token``): ``acquire_lease`` creates it with
``Token`` 1 or, when it is expired or the owner's own, replaces it with ``Token`` + 1 and the ETag
it read (a lost race reads again); ``renew_lease`` replaces ``Expires`` with the ETag while owner and
token match; ``release_lock`` keeps the entity, expired and without owner, so the token keeps
growing. Expiry is the injected ``clock``'s.

Queue
-----
Messages are base64 text (``TextBase64EncodePolicy``, what the Functions queue trigger expects by
default) of ``{"kind", "payload"}`` JSON, sent with no expiry. They are received as raw text and
decoded here (not by a decode policy inside the SDK, which would raise before the message's id and
pop receipt are known), so a message that is not base64 or not a job can be quarantined and
deleted. ``Job.id`` / ``receipt`` / ``dequeue_count`` are the message id, pop receipt and dequeue
count; ``complete`` with a stale pop receipt is refused by the service (404 / 400) and ignored.
Visibility and delay are whole seconds (rounded up; the service's minimum visibility is 1 s),
kept by the service's clock, not by ``clock``.
``extend`` is ``update_message`` with a new visibility timeout: the service answers a new pop
receipt, which the returned job carries.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import collections
import contextlib
import hashlib
import itertools
import logging
import math
import random
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import requests
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableEntity, TableServiceClient, TableTransactionError, UpdateMode
from azure.storage.queue import QueueClient, TextBase64EncodePolicy
from requests.adapters import HTTPAdapter

from remediator.lifecycle.chain import (
    ANCHOR_CHAIN,
    GENESIS,
    ChainRecord,
    anchors,
    chain_for,
    is_system_chain,
    record_hash,
)
from remediator.lifecycle.model import (
    OPEN_STATES,
    QUARANTINE_EVENT,
    AuditEvent,
    Inbound,
    Job,
    Quarantined,
    QuarantineSource,
    Remediation,
    State,
    check_states,
    error_summary,
)
from remediator.lifecycle.store import Audit, audit_events
from remediator.store import codec
from remediator.words import plural

if TYPE_CHECKING:
    from remediator.store import IdentityConnection

_PREFIX = re.compile(r"[a-z][a-z0-9]{0,39}")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,200}")
_DOC_CHARS = 30_000  # UTF-16 code units in one string property (the limit is 32 K)
_PART_BYTES = 64_000
_MAX_PARTS = 14
_MAX_JOB_BYTES = 48 * 1024
_MAX_SECONDS = 7 * 24 * 3600  # the queue's visibility / delay ceiling
URGENT_SUFFIX = "-urgent"  # the urgent lane's queue: ``<prefix>-jobs-urgent`` (``Job.urgent``)
_ROW = "r"  # RowKey of single-row partitions (and of the remediation beside its chain records)
_IS_REMEDIATION = "RowKey eq 'r'"
_IS_RECORD = "RowKey ge 'c' and RowKey lt 'd'"  # chain records (RowKey c + position)
_RAW_KEPT = 30_000  # characters of a quarantined text kept
_MAX_BATCH = 100  # operations in one entity-group transaction (the service's limit)
log = logging.getLogger(__name__)
_JOB_ERRORS: tuple[type[Exception], ...] = (binascii.Error, *codec.DECODE_ERRORS)
_HEADS_CACHED = 10_000  # chain heads remembered per store object
ANCHOR_OVERLAP = timedelta(minutes=5)  # how far back an anchor's scan reaches past the previous one
LOST_ANSWER_WAITS = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds before each re-read after a write's answer was lost


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _safe_key(text: str) -> str:
    """A PartitionKey/RowKey for any text (see the module docstring)."""
    if _PLAIN_KEY.fullmatch(text):
        return text
    return "~" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _status(exc: HttpResponseError) -> int | None:
    return exc.status_code


class _Stamp:
    """Microseconds since the epoch, strictly increasing within the process (sortable keys)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


_STAMP = _Stamp()


def _session(pool_size: int) -> requests.Session:
    """One HTTP session for all clients, with a pool large enough for many worker threads.

    Retries stay with azure-core's retry policy (as in azure-core's own session setup).
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class AzureStore(contextlib.AbstractContextManager["AzureStore", None]):
    """``Store`` on Table Storage + Queue Storage (see the module docstring for the design).

    ``connection_string`` is a storage account connection string (Azurite's works);
    ``clock`` (aware UTC) is used for lock expiry and ``updated_at``; ``claim_grace`` is how long
    a dedup claim may stay without its remediation before another writer takes the key over;
    ``lost_answer_waits`` the seconds before each re-read of a remediation write whose answer was
    lost (see the module docstring: Lost answers; ``()``: none, the error is raised at once).
    """

    def __init__(self, connection_string: str, *, prefix: str = "remediator",
                 clock: Callable[[], datetime] | None = None, claim_grace: float = 30.0,
                 pool_size: int = 64, create: bool = True, identity: IdentityConnection | None = None,
                 lost_answer_waits: Sequence[float] = LOST_ANSWER_WAITS) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix {prefix!r}: 1-40 lower-case letters and digits, starting with a letter")
        self.prefix = prefix
        self._clock = clock or _utcnow
        self._claim_grace = claim_grace
        self._lost_waits = tuple(lost_answer_waits)
        self._session = _session(pool_size)
        # received as raw text and decoded in ``dequeue`` (see the module docstring: Queue)
        codecs: dict[str, Any] = {"message_encode_policy": TextBase64EncodePolicy()}
        if identity is not None:  # Entra ID: the account may refuse shared keys (infra/main.bicep does)
            from azure.identity import DefaultAzureCredential  # noqa: PLC0415 - only for this kind of connection

            credential = DefaultAzureCredential(managed_identity_client_id=identity.client_id)
            self._service = TableServiceClient(
                endpoint=identity.table_uri, credential=credential,
                transport=RequestsTransport(session=self._session, session_owner=False))
            self._queue, self._urgent = (QueueClient(
                identity.queue_uri, name, credential=credential, **codecs,
                transport=RequestsTransport(session=self._session, session_owner=False))
                for name in (f"{prefix}-jobs", f"{prefix}-jobs{URGENT_SUFFIX}"))
        else:
            self._service = TableServiceClient.from_connection_string(
                connection_string, transport=RequestsTransport(session=self._session, session_owner=False))
            self._queue, self._urgent = (QueueClient.from_connection_string(
                connection_string, name, **codecs,
                transport=RequestsTransport(session=self._session, session_owner=False))
                for name in (f"{prefix}-jobs", f"{prefix}-jobs{URGENT_SUFFIX}"))
        names = ("remediations", "dedup", "inbox", "locks", "audit", "flags", "counters", "quarantine")
        if create:
            self._tables = {n: self._service.create_table_if_not_exists(prefix + n) for n in names}
            for queue in (self._queue, self._urgent):
                with contextlib.suppress(ResourceExistsError):  # 409, or 204 from Azurite
                    queue.create_queue()
        else:
            self._tables = {n: self._service.get_table_client(prefix + n) for n in names}
        self._rem = self._tables["remediations"]
        self._dedup = self._tables["dedup"]
        self._inbox = self._tables["inbox"]
        self._locks = self._tables["locks"]
        self._audit = self._tables["audit"]
        self._flags = self._tables["flags"]
        self._counters = self._tables["counters"]
        self._quarantine_table = self._tables["quarantine"]
        self._heads: collections.OrderedDict[str, tuple[int, str]] = collections.OrderedDict()
        self._heads_lock = threading.Lock()

    def missing_tables(self) -> builtins.list[str]:
        """The names of this store's tables that do not exist (one read each; ``open_store(must_exist=True)``)."""
        missing = []
        for table in self._tables.values():
            try:
                next(iter(table.list_entities(results_per_page=1, select=["PartitionKey"])), None)
            except ResourceNotFoundError:
                missing.append(table.table_name)
        return missing

    def ping(self) -> str:
        """Prove the tables and the jobs queue answer (``remediator doctor``): one read of each."""
        next(iter(self._flags.list_entities(results_per_page=1)), None)
        props = self._queue.get_queue_properties()
        urgent = self._urgent.get_queue_properties()
        return (f"tables and queues {props.name}, {urgent.name} answer ({props.approximate_message_count or 0} and "
                f"{urgent.approximate_message_count or 0} jobs waiting)")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """A no-op: Table and Queue Storage have no transaction spanning tables and queues, so each
        write stays its own atomic operation (see ``Store.batch``)."""
        yield

    def close(self) -> None:
        for table in self._tables.values():
            table.close()
        self._service.close()
        self._queue.close()
        self._urgent.close()
        self._session.close()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AzureStore(prefix={self.prefix!r}, account={self._service.account_name!r})"

    # -- remediation entities --------------------------------------------------------------------

    @staticmethod
    def _entity(rem: Remediation, created: str) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": _safe_key(rem.id), "RowKey": _ROW, "Id": rem.id, "DedupKey": rem.dedup_key,
            "State": rem.state, "Announced": rem.announced, "Created": created, "Playbook": rem.playbook,
            "ResourceId": rem.resource_id[:1000],
            "Write": uuid.uuid4().hex,  # this write's own mark: a lost answer is told by re-reading it
        }
        entity.update(_pack(codec.encode_remediation(rem), f"remediation {rem.id}"))
        return entity

    @staticmethod
    def _decode(entity: TableEntity) -> Remediation:
        return codec.decode_remediation(_unpack(entity), version=_etag(entity))

    def _decoded(self, entity: TableEntity) -> Remediation | None:
        """The remediation an entity holds, or None when it cannot be decoded (then it is quarantined)."""
        try:
            return self._decode(entity)
        except codec.DECODE_ERRORS as exc:
            key = str(entity.get("Id") or entity.get("PartitionKey"))
            self._quarantine("remediation", key, _raw_text(entity), exc)
            self._delete(self._rem, str(entity["PartitionKey"]), str(entity["RowKey"]), _etag(entity))
            return None

    def quarantine(self, *, source: QuarantineSource, key: str, raw: str, error: str) -> None:
        """Keep ``raw`` in the quarantine table and audit it (see ``Store.quarantine``)."""
        self._quarantine(source, key, raw, error)

    def _quarantine(self, source: QuarantineSource, key: str, raw: str, exc: BaseException | str) -> None:
        """Keep what could not be decoded in the quarantine table and audit it (see the module docstring)."""
        error = error_summary(exc) if isinstance(exc, BaseException) else exc[:300]
        now = self._clock()
        log.error("quarantined the %s %r: %s", source, key[:200], error)
        self._quarantine_table.create_entity({
            "PartitionKey": source, "RowKey": f"{_STAMP.next():020d}", "Key": key[:1000], "Error": error,
            "At": codec.dt_to_str(now), "Raw": raw[:_RAW_KEPT]})
        self.audit(AuditEvent(remediation_id=None, event=QUARANTINE_EVENT, actor="system", at=now,
                              detail={"source": source, "key": key[:200], "error": error}))

    def quarantined(self, *, limit: int = 1000) -> builtins.list[Quarantined]:
        """Everything quarantined, oldest first (a scan of the quarantine table, sorted here)."""
        rows = sorted(self._quarantine_table.list_entities(), key=lambda r: str(r["RowKey"]))[:limit]
        return [Quarantined(source=cast(QuarantineSource, str(r["PartitionKey"])), key=str(r.get("Key", "")),
                            error=str(r.get("Error", "")), at=codec.dt_from_str(str(r["At"])),
                            raw=str(r.get("Raw", ""))) for r in rows]

    def quarantine_count(self) -> int:
        return sum(1 for _ in self._quarantine_table.list_entities(select=["RowKey"]))

    def _get_entity(self, table: TableClient, pk: str, rk: str = _ROW) -> TableEntity | None:
        try:
            return table.get_entity(pk, rk)
        except HttpResponseError as exc:
            if _status(exc) == 404:
                return None
            raise

    def _create_or_read(self, table: TableClient, entity: Mapping[str, Any]) -> TableEntity | None:
        """Create ``entity``: None when created, else the row holding its key (read after the 409;
        created again if that row was deleted in between). A create whose answer was lost (a reset,
        a 5xx) is sent again after ``lost_answer_waits``: if the first landed, its 409 answers the
        row it wrote, which the callers recognise as their own (the slot's holder, the lock's owner,
        the inbox row's ``Write`` mark)."""
        lost = iter(self._lost_waits)
        while True:
            try:
                table.create_entity(entity)
                return None
            except HttpResponseError as exc:
                if _status(exc) != 409:
                    wait = next(lost, None) if _answer_lost(exc) else None
                    if wait is None:
                        raise
                    time.sleep(wait)
                    continue
            except (ServiceRequestError, ServiceResponseError, OSError, requests.RequestException):
                wait = next(lost, None)
                if wait is None:
                    raise
                time.sleep(wait)
                continue
            row = self._get_entity(table, entity["PartitionKey"], entity["RowKey"])
            if row is not None:
                return row

    def _replace(self, table: TableClient, entity: Mapping[str, Any], etag: str) -> str | None:
        """Replace with If-Match; the new ETag, or None when the entity changed or vanished."""
        try:
            meta = table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                       match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as exc:
            if _status(exc) in (404, 412):
                return None
            raise
        return cast(str, meta["etag"])

    def _delete(self, table: TableClient, pk: str, rk: str, etag: str) -> bool:
        """Delete with If-Match; nothing happens (False) when the entity changed or is gone."""
        try:
            table.delete_entity(pk, rk, etag=etag, match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as exc:
            if _status(exc) not in (404, 412):
                raise
            return False
        return True

    # -- the dedup slot --------------------------------------------------------------------------

    def _claim(self, key: str, rem_id: str) -> Remediation | None:
        """Hold the slot of ``key`` for ``rem_id``: None when held, else the open remediation holding it."""
        pk = _safe_key(key)
        slot = {"PartitionKey": pk, "RowKey": _ROW, "Key": key, "Holder": rem_id}
        watched: str | None = None  # the slot version we are waiting on, and since when
        since = 0.0
        delay = 0.02
        while True:
            row = self._create_or_read(self._dedup, slot)
            if row is None:
                return None
            etag = _etag(row)
            holder_id = row["Holder"]
            if holder_id == rem_id:
                return None
            entity = self._get_entity(self._rem, _safe_key(holder_id))
            holder = self._decoded(entity) if entity is not None else None
            quarantined = entity is not None and holder is None  # unreadable: moved out, its slot is free
            if holder is None:
                entity = None
            if holder is not None and holder.dedup_key == key and holder.state in OPEN_STATES:
                return holder
            stale_now = quarantined or (holder is not None and (
                holder.dedup_key != key or _written_after(entity, row)))  # final, and written after the slot
            if not stale_now:
                if watched != etag:
                    watched, since = etag, time.monotonic()
                if time.monotonic() - since < self._claim_grace:
                    time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not security
                    delay = min(delay * 2, 0.5)
                    continue
            if self._replace(self._dedup, slot, etag) is not None:
                return None

    def _free(self, key: str, rem_id: str) -> None:
        """Delete the slot of ``key`` if it still names ``rem_id``."""
        self._delete_if(self._dedup, key, "Holder", rem_id)

    def _delete_if(self, table: TableClient, key: str, column: str, value: str) -> None:
        """Delete the row of ``key`` if its ``column`` still holds ``value`` (with the ETag read)."""
        pk = _safe_key(key)
        row = self._get_entity(table, pk)
        if row is not None and row[column] == value:
            self._delete(table, pk, _ROW, _etag(row))

    def _holds(self, key: str, rem_id: str) -> bool:
        row = self._get_entity(self._dedup, _safe_key(key))
        return row is not None and row["Holder"] == rem_id

    # -- remediations ----------------------------------------------------------------------------

    def create(self, remediation: Remediation, *, audit: Audit | None = None) -> tuple[Remediation, bool]:
        """Insert unless an open remediation holds the key (see the module docstring: Dedup); the
        entity and its records (``audit``) in one transaction (see the module docstring: Audit)."""
        events = audit_events(audit, remediation.id)
        entity = self._entity(remediation, f"{_STAMP.next():020d}")
        if remediation.state not in OPEN_STATES:
            try:
                return self._insert(remediation, entity, events), True
            except _Exists as exc:  # the same create again (a plan job delivered twice): the one stored
                if exc.existing is not None and exc.existing.dedup_key == remediation.dedup_key:
                    return exc.existing, False
                raise ValueError(f"a remediation with id {remediation.id!r} already exists") from None
        for _ in range(10):
            holder = self._claim(remediation.dedup_key, remediation.id)
            if holder is not None:
                return holder, False
            try:
                stored = self._insert(remediation, entity, events)
            except _Exists as exc:
                existing = exc.existing
                if existing is not None and existing.dedup_key == remediation.dedup_key:
                    if existing.state not in OPEN_STATES:  # it ended already: the slot we claimed is not its
                        self._free(remediation.dedup_key, remediation.id)
                    return existing, False  # the same create, retried (or a plan job delivered twice)
                self._free(remediation.dedup_key, remediation.id)
                raise ValueError(f"a remediation with id {remediation.id!r} already exists") from None
            if self._holds(remediation.dedup_key, remediation.id):
                return stored, True
            # We stalled past claim_grace and another writer took the key: withdraw and retry (with
            # its records: a remediation that never was has no trail either).
            self._withdraw(remediation.id, stored.version)
        raise RuntimeError(f"could not settle the dedup slot of {remediation.dedup_key!r} after 10 rounds")

    def _insert(self, rem: Remediation, entity: Mapping[str, Any], events: Sequence[AuditEvent] = ()) -> Remediation:
        """Create the entity, with its records in the same transaction."""
        etag = self._commit(rem.id, ("create", entity), events)
        if etag is None:
            found = self._get_entity(self._rem, entity["PartitionKey"])
            existing = self._decoded(found) if found is not None and found.get("Id") == rem.id else None
            if existing is None and rem.state not in OPEN_STATES:
                raise ValueError(f"a remediation with id {rem.id!r} already exists") from None
            raise _Exists(existing) from None
        return codec.with_version(rem, etag)

    def _withdraw(self, rem_id: str, etag: str) -> None:
        """Delete a remediation entity just created (ETag) and the records written with it."""
        pk = _safe_key(rem_id)
        if self._delete(self._rem, pk, _ROW, etag):
            for row in self._rem.query_entities(f"PartitionKey eq @pk and {_IS_RECORD}", parameters={"pk": pk},
                                                select=["PartitionKey", "RowKey"]):
                self._delete(self._rem, pk, str(row["RowKey"]), _etag(row))
            with self._heads_lock:
                self._heads.pop(rem_id, None)

    def create_many(self, remediations: Iterable[Remediation], *,
                    audits: Sequence[Audit | None] | None = None) -> builtins.list[tuple[Remediation, bool]]:
        """``create`` per item, in order (no cross-partition transactions in Table Storage)."""
        items = list(remediations)
        if audits is not None and len(audits) != len(items):
            raise ValueError(f"create_many: {plural(len(audits), 'audit')} for {plural(len(items), 'remediation')}")
        given = list(audits) if audits is not None else [None] * len(items)
        return [self.create(rem, audit=a) for rem, a in zip(items, given, strict=True)]

    def get(self, remediation_id: str) -> Remediation | None:
        """The remediation, or None (unknown, or its entity could not be decoded: then it is quarantined)."""
        entity = self._get_entity(self._rem, _safe_key(remediation_id))
        if entity is None or entity.get("Id") != remediation_id:
            return None
        return self._decoded(entity)

    def _commit(self, rem_id: str, op: tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], Mapping[str, Any]],
                events: Sequence[AuditEvent]) -> str | None:
        """Write the remediation entity (``op``: its create, or its replace with If-Match) and append
        ``events`` to its chain, in one entity-group transaction; the entity's new ETag, or None when
        ``op`` itself failed (the entity exists / changed / is gone). A record position another writer
        took meanwhile is read again and the whole transaction retried."""
        if not events:
            for wait in (*self._lost_waits, None):
                try:
                    meta = self._rem.create_entity(op[1]) if op[0] == "create" else \
                        self._rem.update_entity(op[1], **op[2])  # type: ignore[misc]
                except HttpResponseError as exc:
                    if _status(exc) in (409, 412, 404):  # (or our own write, retried after its answer was lost)
                        return self._own_write(op[1])
                    if not _answer_lost(exc) or wait is None:
                        raise
                except (ServiceRequestError, ServiceResponseError, OSError, requests.RequestException):
                    if wait is None:
                        raise
                else:
                    return cast(str, meta["etag"])
                landed = self._after_lost_answer(wait, lambda: self._own_write(op[1]))
                if landed is not None:
                    return cast(str, landed)
            raise AssertionError("unreachable")  # pragma: no cover
        metas = self._append(rem_id, events, op)
        return None if metas is None else cast(str, metas[0]["etag"])

    def _own_write(self, entity: Mapping[str, Any]) -> str | None:
        """The remediation entity's ETag when it holds the write ``entity`` (its ``Write`` mark): a
        write whose answer was lost landed after all; else None."""
        row = self._get_entity(self._rem, entity["PartitionKey"])
        return _etag(row) if row is not None and row.get("Write") == entity.get("Write") else None

    @staticmethod
    def _after_lost_answer(wait: float, landed: Callable[[], Any]) -> Any:
        """Wait ``wait`` seconds and ask ``landed`` whether the write whose answer was lost is stored;
        its answer, or None (not stored, or the store cannot tell yet: the write is sent again)."""
        time.sleep(wait)
        try:
            return landed()
        except (HttpResponseError, ServiceRequestError, ServiceResponseError, OSError, requests.RequestException):
            return None

    def _append(self, chain: str, events: Sequence[AuditEvent],
                op: tuple[Any, ...] | None = None) -> builtins.list[Mapping[str, Any]] | None:
        """Create ``events`` at the head of the remediation chain ``chain`` (in the remediations table),
        after ``op`` on the remediation entity when given, all in one transaction; the operations'
        metadata, or None when ``op`` failed."""
        if len(events) + (op is not None) > _MAX_BATCH:
            raise ValueError(f"{len(events)} audit records in one write: at most {_MAX_BATCH - 1}")
        pk = _safe_key(chain)
        docs = [codec.dumps(codec.audit_to_dict(e)) for e in events]
        stamps = [_STAMP.next() for _ in events]
        # a remediation being created has no chain yet: no probe (a record there after all is a 409: re-read)
        head = self._cached_head(chain) or ((0, GENESIS) if op is not None and op[0] == "create"
                                            else self._chain_head(chain))
        lost = iter(self._lost_waits)  # a transaction whose answer was lost is re-read, then sent again

        def landed() -> builtins.list[Mapping[str, Any]] | None:
            return self._landed(chain, op, docs[0], stamps[0])

        for _ in range(1000):
            entities = []
            position, prev = head
            for event, doc, stamp in zip(events, docs, stamps, strict=True):
                position += 1
                entity = _record_entity(pk, chain, position, prev, doc, stamp=stamp, event=event)
                entities.append(entity)
                prev = str(entity["Hash"])
            ops: builtins.list[Any] = [op] if op is not None else []
            ops.extend(("create", e) for e in entities)
            try:
                metas = self._rem.submit_transaction(ops)
            except TableTransactionError as exc:
                status, index = _status(exc), getattr(exc, "index", 0)
                if status in (409, 412, 404):
                    mine = landed()
                    if mine is not None:
                        return mine  # an earlier attempt landed although its answer was lost
                    if op is not None and (status in (412, 404) or (
                            status == 409 and index == 0 and op[0] == "create"
                            and self._get_entity(self._rem, pk) is not None)):
                        return None  # the remediation's own write lost
                    if status != 409:
                        raise
                    head = self._chain_head(chain)  # another writer took a position: start from the new head
                    continue
                wait = next(lost, None) if _answer_lost(exc) else None
                if wait is None:
                    raise
            except (ServiceRequestError, ServiceResponseError, OSError, requests.RequestException):
                wait = next(lost, None)
                if wait is None:
                    raise
            else:
                self._remember(chain, (position, prev))
                return metas
            found = self._after_lost_answer(wait, landed)
            if found is not None:
                return cast(builtins.list[Mapping[str, Any]], found)
            head = self._chain_head_or(chain, head)
        raise RuntimeError(f"audit chain {chain}: no free position after 1000 attempts")

    def _landed(self, chain: str, op: tuple[Any, ...] | None, doc: str,
                stamp: int) -> builtins.list[Mapping[str, Any]] | None:
        """The transaction of ``_append`` stored by an earlier attempt whose answer was lost (the
        remediation entity holds ``op``'s ``Write`` mark; without ``op``: its first record, ``doc`` with
        the writer's ``stamp``, is stored): its metadata as the batch answers it (the entity's ETag
        first); None when it is not stored."""
        if op is not None:
            etag = self._own_write(op[1])
            if etag is None:
                return None
        elif not self._own_record(_safe_key(chain), doc, stamp):
            return None
        else:
            etag = ""
        self._forget(chain)  # the landed attempt moved the head: found again by the next append
        return [{"etag": etag}]

    def _own_record(self, pk: str, doc: str, stamp: int) -> bool:
        """Whether a record with this text and writer's stamp is stored in the partition (found by its
        stamp among the records from the cached head on: a write whose answer was lost)."""
        rows = self._rem.query_entities(f"PartitionKey eq @pk and {_IS_RECORD} and Stamp eq @stamp",
                                        parameters={"pk": pk, "stamp": f"{stamp:020d}"})
        return any(_as_text(_unpack(r)) == doc for r in rows)

    def _chain_head_or(self, chain: str, head: tuple[int, str]) -> tuple[int, str]:
        """The chain's head read again, or ``head`` when the store cannot answer yet."""
        try:
            return self._chain_head(chain)
        except (HttpResponseError, ServiceRequestError, ServiceResponseError, OSError, requests.RequestException):
            return head

    def _forget(self, chain: str) -> None:
        with self._heads_lock:
            self._heads.pop(chain, None)

    def _cached_head(self, chain: str) -> tuple[int, str] | None:
        with self._heads_lock:
            return self._heads.get(chain)

    def _remember(self, chain: str, head: tuple[int, str]) -> None:
        with self._heads_lock:
            self._heads[chain] = head
            self._heads.move_to_end(chain)
            while len(self._heads) > _HEADS_CACHED:
                self._heads.popitem(last=False)

    def _chain_head(self, chain: str) -> tuple[int, str]:
        """A remediation chain's head: in its partition of the remediations table, else (a chain of
        the old layout) in the audit table."""
        pk = _safe_key(chain)
        head = self._find_head(pk, self._rem)
        return head if head[0] else self._find_head(pk, self._audit)

    def transition(self, current: Remediation, to: State, *, from_states: Iterable[State],
                   audit: Audit | None = None, **updates: Any) -> Remediation | None:
        """Compare-and-set by ETag (see ``Store.transition`` and the module docstring).

        Reads the entity first: the stored ETag must equal ``current.version`` and the stored
        state must be in ``from_states`` (the same check SQLite makes in its ``WHERE``); the write
        is then conditional on that ETag, so a writer in between makes it return None.
        """
        froms, new = codec.moved(current, to, from_states=from_states, updates=updates, now=self._clock())
        events = audit_events(audit, current.id)
        if not froms or not current.version:
            return None
        entity = self._entity(new, "")  # refuses an oversized value before anything is written
        stored = self._get_entity(self._rem, entity["PartitionKey"])
        if stored is None or _etag(stored) != current.version or stored["State"] not in froms:
            return None
        entity["Created"] = stored.get("Created", "")
        etag = self._commit(current.id, _replace_op(entity, current.version), events)
        if etag is None:
            return None
        if to not in OPEN_STATES and stored["State"] in OPEN_STATES:  # (no move reopens: see TRANSITIONS)
            self._free(current.dedup_key, current.id)
        return codec.with_version(new, etag)

    def update(self, current: Remediation, *, audit: Audit | None = None, **updates: Any) -> Remediation | None:
        """Compare-and-set by ETag of fields other than the state (with ``audit`` in one transaction)."""
        events = audit_events(audit, current.id)
        if not current.version:
            return None
        new = codec.apply_updates(current, state=current.state, updates=updates, now=self._clock())
        entity = self._entity(new, "")
        stored = self._get_entity(self._rem, entity["PartitionKey"])
        if stored is None or _etag(stored) != current.version or stored["State"] != current.state:
            return None
        entity["Created"] = stored.get("Created", "")
        etag = self._commit(current.id, _replace_op(entity, current.version), events)
        return None if etag is None else codec.with_version(new, etag)

    def list(self, *, states: Iterable[State] | None = None, limit: int = 1000) -> builtins.list[Remediation]:
        """Remediations (in the given states) in creation order, at most ``limit``.

        Table Storage has no secondary index: this reads every matching entity and sorts.
        """
        if states is None:
            entities = self._rem.query_entities(_IS_REMEDIATION)
        else:
            wanted = sorted(set(check_states(states, "states")))
            if not wanted:
                return []
            query = " or ".join(f"State eq @s{i}" for i in range(len(wanted)))
            # (the spaces: the SDK's @name substitution would take a closing parenthesis into the name)
            entities = self._rem.query_entities(f"{_IS_REMEDIATION} and ( {query} )",
                                                parameters={f"s{i}": s for i, s in enumerate(wanted)})
        rows = sorted(entities, key=lambda e: (str(e.get("Created", "")), str(e.get("Id", ""))))
        out: builtins.list[Remediation] = []
        for e in rows:  # one that cannot be decoded is quarantined; the others flow on
            if len(out) >= limit:
                break
            rem = self._decoded(e)
            if rem is not None:
                out.append(rem)
        return out

    def remediation_ids(self) -> builtins.list[str]:
        """Every remediation's id (audit verification), read with ``$select``: no documents."""
        return [i for i, _ in self.remediation_states()]

    def remediation_states(self) -> builtins.list[tuple[str, State]]:
        """``(id, state)`` of every remediation in creation order, read with ``$select``: no documents."""
        rows = sorted(self._rem.query_entities(_IS_REMEDIATION, select=["Id", "State", "Created"]),
                      key=lambda e: (str(e.get("Created", "")), str(e.get("Id", ""))))
        return [(str(e["Id"]), cast(State, str(e.get("State") or ""))) for e in rows if e.get("Id")]

    def unannounced(self, *, limit: int = 10_000) -> builtins.list[tuple[str, str]]:
        """``pending_approval`` and ``Announced`` false, in creation order (see the module docstring:
        entities without the property, written before it existed, are not listed). Only the keys
        are read (``$select``), not the documents."""
        entities = self._rem.query_entities(f"{_IS_REMEDIATION} and State eq 'pending_approval' and Announced eq false",
                                            select=["Id", "DedupKey", "Created"])
        rows = sorted(entities, key=lambda e: (str(e.get("Created", "")), str(e.get("Id", ""))))
        return [(str(e["Id"]), str(e["DedupKey"])) for e in rows[:limit] if e.get("Id") and e.get("DedupKey")]

    # -- inbox -----------------------------------------------------------------------------------

    @staticmethod
    def _inbox_entity(item: Inbound) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": _safe_key(item.finding_id), "RowKey": _ROW, "FindingId": item.finding_id,
            "ReceivedAt": codec.dt_to_str(item.received_at), "Waiting": item.waiting,
            "Write": uuid.uuid4().hex,  # this write's own mark (a receive whose answer was lost finds it)
        }
        if item.remediation_id is not None:
            entity["RemediationId"] = item.remediation_id
        if item.planned_at is not None:
            entity["PlannedAt"] = codec.dt_to_str(item.planned_at)
        entity.update(_pack(codec.dumps(codec.inbound_to_dict(item)), f"finding {item.finding_id}"))
        return entity

    @staticmethod
    def _inbound(entity: TableEntity) -> Inbound:
        planned = entity.get("PlannedAt")
        rid = entity.get("RemediationId")
        return codec.inbound_from_parts(
            codec.loads(_unpack(entity)), finding_id=str(entity["FindingId"]), received_at=str(entity["ReceivedAt"]),
            waiting=bool(entity["Waiting"]), remediation_id=None if rid is None else str(rid),
            planned_at=None if planned is None else str(planned))

    def _inbox_row(self, finding_id: str) -> TableEntity | None:
        row = self._get_entity(self._inbox, _safe_key(finding_id))
        return row if row is not None and row.get("FindingId") == finding_id else None

    def receive(self, findings: Sequence[Inbound]) -> builtins.list[bool]:
        """Per finding: create its row, or judge the existing one (see the module docstring: Inbox).
        Later items deduplicate against earlier ones: each is written before the next is judged."""
        entities = [self._inbox_entity(replace(f, waiting=True, remediation_id=None, planned_at=None))
                    for f in findings]  # refuses an oversized finding before anything is written
        return [self._receive(entity) for entity in entities]

    def _receive(self, entity: Mapping[str, Any]) -> bool:
        while True:
            row = self._create_or_read(self._inbox, entity)  # (pruned meanwhile: created again)
            if row is None or row.get("Write") == entity["Write"]:  # created (perhaps by a lost answer)
                return True
            if row["Waiting"]:
                return False
            rid = row.get("RemediationId")
            if rid is not None:
                rem = self.get(str(rid))
                if rem is not None and rem.state in OPEN_STATES:
                    return False
            if self._replace(self._inbox, entity, _etag(row)) is not None:
                return True
            # someone wrote the row since we read it: judge again

    def inbound(self, finding_ids: Iterable[str]) -> builtins.list[Inbound]:
        """Point reads in input order; unknown ids (and repeats) are left out, and so are rows that
        cannot be decoded (quarantined)."""
        out: builtins.list[Inbound] = []
        for fid in dict.fromkeys(finding_ids):
            row = self._inbox_row(fid)
            if row is None:
                continue
            try:
                out.append(self._inbound(row))
            except codec.DECODE_ERRORS as exc:
                self._quarantine("inbox", fid, _raw_text(row), exc)
                self._delete(self._inbox, str(row["PartitionKey"]), str(row["RowKey"]), _etag(row))
        return out

    def waiting(self, *, received_before: datetime, received_after: datetime | None = None,
                limit: int = 1000) -> builtins.list[str]:
        """Rows still waiting, received in the span, oldest first (a filter query, sorted here)."""
        after = codec.dt_to_str(received_after) if received_after is not None else ""
        rows = self._inbox.query_entities("Waiting eq true and ReceivedAt lt @t and ReceivedAt ge @a",
                                          parameters={"t": codec.dt_to_str(received_before), "a": after},
                                          select=["FindingId", "ReceivedAt"])
        ordered = sorted((str(r["ReceivedAt"]), str(r["FindingId"])) for r in rows)
        return [fid for _, fid in ordered[:limit]]

    def mark_planned(self, outcomes: Mapping[str, str | None], *, at: datetime) -> None:
        """Read each row and replace it, planned, with its ETag (a lost race reads it again)."""
        for fid, rid in outcomes.items():
            while (row := self._inbox_row(fid)) is not None:
                planned = replace(self._inbound(row), waiting=False, remediation_id=rid, planned_at=at)
                if self._replace(self._inbox, self._inbox_entity(planned), _etag(row)) is not None:
                    break

    def prune_inbox(self, *, planned_before: datetime) -> int:
        """Query planned rows planned before the time and delete each with its ETag (a row reset to
        waiting meanwhile stays); returns how many were deleted."""
        rows = self._inbox.query_entities("Waiting eq false and PlannedAt lt @t",
                                          parameters={"t": codec.dt_to_str(planned_before)},
                                          select=["PartitionKey", "RowKey"])
        return sum(self._delete(self._inbox, str(r["PartitionKey"]), str(r["RowKey"]), _etag(r)) for r in rows)

    # -- locks -----------------------------------------------------------------------------------

    def acquire_lock(self, key: str, owner: str, ttl_seconds: float) -> bool:
        """Take ``key`` for ``owner`` until now + ``ttl_seconds`` (``clock``); re-entrant, not counted."""
        return self.acquire_lease(key, owner, ttl_seconds) is not None

    def release_lock(self, key: str, owner: str) -> None:
        """Free ``key`` if ``owner`` holds it: the entity stays, expired and with no owner, with its
        ETag (a lost race means someone else holds it now), so the fencing token keeps growing."""
        pk = _safe_key(key)
        row = self._get_entity(self._locks, pk)
        if row is not None and row["Owner"] == owner:
            self._replace(self._locks, {**_lock_props(row), "Owner": "", "Expires": codec.dt_to_str(_EPOCH)},
                          _etag(row))

    def acquire_lease(self, key: str, owner: str, ttl_seconds: float) -> int | None:
        """Create the lock entity with ``Token`` 1, or take it over (own, or expired) with ``Token`` + 1
        by a replace with its ETag (a lost race reads it again)."""
        now = self._clock()
        pk = _safe_key(key)
        entity = {"PartitionKey": pk, "RowKey": _ROW, "Key": key, "Owner": owner,
                  "Expires": codec.dt_to_str(now + timedelta(seconds=ttl_seconds)), "Token": 1}
        for _ in range(20):
            row = self._create_or_read(self._locks, entity)
            if row is None:
                return 1
            if row["Owner"] != owner and codec.dt_from_str(row["Expires"]) > now:
                return None
            token = int(row.get("Token") or 0) + 1
            if self._replace(self._locks, {**entity, "Token": token}, _etag(row)) is not None:
                return token
        return None

    def renew_lease(self, key: str, owner: str, token: int, ttl_seconds: float) -> bool:
        pk = _safe_key(key)
        for _ in range(20):
            row = self._get_entity(self._locks, pk)
            if row is None or row["Owner"] != owner or int(row.get("Token") or 0) != token:
                return False
            expires = codec.dt_to_str(self._clock() + timedelta(seconds=ttl_seconds))
            if self._replace(self._locks, {**_lock_props(row), "Expires": expires}, _etag(row)) is not None:
                return True
        return False

    def check_lease(self, key: str, owner: str, token: int) -> bool:
        row = self._get_entity(self._locks, _safe_key(key))
        return (row is not None and row["Owner"] == owner and int(row.get("Token") or 0) == token
                and codec.dt_from_str(row["Expires"]) > self._clock())

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, event: AuditEvent) -> None:
        """Create the record at the head of its chain + 1 (see the module docstring: Audit): a
        remediation's chain in its partition of the remediations table, others in the audit table."""
        chain = chain_for(event.remediation_id, event.at, event.chain)
        if not _outside_remediations(chain):
            self._append(chain, [event])
            return
        pk = _safe_key(chain)
        doc = codec.dumps(codec.audit_to_dict(event))
        stamp = _STAMP.next()
        head = self._cached_head(chain) or self._find_head(pk, self._audit)
        for _ in range(1000):
            position, prev = head[0] + 1, head[1]
            digest = record_hash(chain, position, prev, doc)
            entity = {"PartitionKey": pk, "RowKey": _position_key(position), "Chain": chain, "Position": position,
                      "Prev": prev, "Hash": digest, "Stamp": f"{stamp:020d}",
                      "RemediationId": event.remediation_id or "",
                      "Event": event.event, **_pack(doc, f"audit record {chain}#{position}")}
            try:
                self._audit.create_entity(entity)
            except HttpResponseError as exc:
                if _status(exc) != 409:
                    raise
                taken = self._get_entity(self._audit, pk, _position_key(position))
                head = (position, str(taken["Hash"])) if taken is not None else self._find_head(pk, self._audit)
                continue
            self._remember(chain, (position, digest))
            return
        raise RuntimeError(f"audit chain {chain}: no free position after 1000 attempts")

    def _find_head(self, pk: str, table: TableClient) -> tuple[int, str]:
        """(position, hash) of the chain's last record, (0, GENESIS) when empty: an exponential probe
        of point reads, then bisection (a hole left by a deleted record can make it answer low; the
        append's 409 then moves it up)."""
        last = (0, GENESIS)
        hi = 1
        while (row := self._get_entity(table, pk, _position_key(hi))) is not None:
            last = (hi, str(row["Hash"]))
            hi *= 2
        lo = last[0]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            row = self._get_entity(table, pk, _position_key(mid))
            if row is None:
                hi = mid
            else:
                lo, last = mid, (mid, str(row["Hash"]))
        return last

    def audit_log(self, remediation_id: str | None = None) -> builtins.list[AuditEvent]:
        """Events in append order (see the module docstring: Audit); anchors left out."""
        if remediation_id is None:
            rows = [r for r in itertools.chain(self._audit.list_entities(), self._rem.query_entities(_IS_RECORD))
                    if r.get("Chain") != ANCHOR_CHAIN]
            rows.sort(key=lambda r: (_audit_stamp(r), str(r["RowKey"])))
        else:
            pk = {"pk": _safe_key(remediation_id)}
            rows = [*self._audit.query_entities("PartitionKey eq @pk", parameters=pk),
                    *self._rem.query_entities(f"PartitionKey eq @pk and {_IS_RECORD}", parameters=pk)]
            rows = [r for r in rows if r.get("RemediationId") == remediation_id]
            rows.sort(key=lambda r: (1, int(r["Position"]), "") if r.get("Hash") else (0, 0, str(r["RowKey"])))
        return [replace(codec.audit_from_dict(codec.loads(_unpack(r)), seq=_audit_stamp(r)),
                        chain=str(r.get("Chain") or ""), position=int(r.get("Position") or 0),
                        hash=str(r.get("Hash") or "")) for r in rows]

    def audit_records(self) -> Iterator[ChainRecord]:
        """Every record, by chain and position (records from before the chains: position 0, no hash)."""
        records = [ChainRecord(chain=str(r.get("Chain") or r.get("RemediationId") or ""),
                               position=int(r.get("Position") or 0) if r.get("Hash") else 0,
                               prev=str(r.get("Prev") or ""), hash=str(r.get("Hash") or ""),
                               doc=_as_text(_unpack(r)), seq=_audit_stamp(r),
                               legacy=not r.get("Hash") and str(r["RowKey"])[:20].isdigit())
                   for r in itertools.chain(self._audit.list_entities(), self._rem.query_entities(_IS_RECORD))]
        records.sort(key=lambda c: (c.chain, c.position, c.seq))
        yield from records

    def anchor(self) -> int:
        """Anchor the chains written since the previous anchor (see the module docstring: Audit)."""
        anchors_pk = _safe_key(ANCHOR_CHAIN)
        last_position, _ = self._find_head(anchors_pk, self._audit)
        since: datetime | None = None
        named: set[tuple[str, int]] = set()
        if last_position:
            last = self._get_entity(self._audit, anchors_pk, _position_key(last_position))
            detail = codec.loads(_unpack(last)).get("detail") or {} if last is not None else {}
            if detail.get("covered_until"):
                since = datetime.fromisoformat(str(detail["covered_until"])) - ANCHOR_OVERLAP
            first = max(1, last_position - int(detail.get("parts") or 1) + 1)
            for position in range(first, last_position + 1):
                row = self._get_entity(self._audit, anchors_pk, _position_key(position))
                if row is not None:
                    before = (codec.loads(_unpack(row)).get("detail") or {}).get("heads") or []
                    named.update((str(h[0]), int(h[1])) for h in before)
        now = self._clock()
        select = ["Chain", "Position", "Hash"]
        rows = itertools.chain(
            self._audit.list_entities(select=select) if since is None else
            self._audit.query_entities("Timestamp ge @t", parameters={"t": since}, select=select),
            self._rem.query_entities(_IS_RECORD, select=select) if since is None else
            self._rem.query_entities(f"{_IS_RECORD} and Timestamp ge @t", parameters={"t": since}, select=select))
        heads: dict[str, tuple[int, str]] = {}
        for r in rows:
            chain, digest = r.get("Chain"), r.get("Hash")
            if not chain or not digest or chain == ANCHOR_CHAIN:
                continue
            position = int(r["Position"])
            if position > heads.get(str(chain), (0, ""))[0]:
                heads[str(chain)] = (position, str(digest))
        listed: builtins.list[builtins.list[object]] = [
            [c, p, h] for c, (p, h) in sorted(heads.items()) if (c, p) not in named]
        if not listed:
            return 0
        events = anchors(listed, at=now)
        for event in events:
            self.audit(event)
        return len(events)

    # -- queue -----------------------------------------------------------------------------------

    def enqueue(self, job: Job, *, delay_seconds: float = 0) -> Job:
        body = codec.dumps({"kind": job.kind, "payload": job.payload})
        if len(body.encode("utf-8")) > _MAX_JOB_BYTES:
            raise ValueError(f"job {job.kind!r}: {len(body.encode('utf-8')):,} bytes of JSON, over the queue's "
                             f"{_MAX_JOB_BYTES:,} (put ids in jobs, not documents)")
        delay = min(_MAX_SECONDS, max(0, math.ceil(delay_seconds)))
        msg = self._lane(job.urgent).send_message(body, visibility_timeout=delay, time_to_live=-1)
        return replace(job, id=msg.id, receipt="", dequeue_count=0)

    def _lane(self, urgent: bool) -> QueueClient:
        return self._urgent if urgent else self._queue

    def dequeue(self, *, visibility_seconds: float = 60) -> Job | None:
        """The next visible job; a message that is not a job is quarantined, deleted, and the next one read."""
        visibility = min(_MAX_SECONDS, max(1, math.ceil(visibility_seconds)))
        while True:
            urgent = True  # the urgent lane first (a receive each: Queue Storage has no priorities)
            msg = self._urgent.receive_message(visibility_timeout=visibility)
            if msg is None:
                urgent = False
                msg = self._queue.receive_message(visibility_timeout=visibility)
            if msg is None:
                return None
            text = msg.content if isinstance(msg.content, str) else repr(msg.content)
            try:
                body = codec.loads(base64.b64decode(text, validate=True).decode("utf-8"))
                if not isinstance(body, dict) or not isinstance(body.get("kind"), str) \
                        or not isinstance(body.get("payload"), dict):
                    raise ValueError("not a job: a JSON object with a string kind and an object payload")
            except _JOB_ERRORS as exc:
                self._quarantine("job", str(msg.id), text, exc)
                with contextlib.suppress(HttpResponseError):  # gone already: nothing to delete
                    self._lane(urgent).delete_message(msg.id, msg.pop_receipt)
                continue
            return Job(kind=body["kind"], payload=body["payload"], id=msg.id, receipt=msg.pop_receipt or "",
                       dequeue_count=msg.dequeue_count or 0, urgent=urgent)

    def complete(self, job: Job) -> None:
        """Delete the job if ``job.receipt`` is its latest delivery; a stale receipt does nothing."""
        if not job.receipt:
            return
        try:
            self._lane(job.urgent).delete_message(job.id, job.receipt)
        except HttpResponseError as exc:
            if _status(exc) not in (400, 404):  # 404 gone, 400 PopReceiptMismatch
                raise

    def extend(self, job: Job, seconds: float) -> Job | None:
        """``update_message`` with a new visibility timeout: the service answers a new pop receipt,
        returned on the job; a stale receipt (404 gone, 400 PopReceiptMismatch) → None."""
        if not job.receipt:
            return None
        visibility = min(_MAX_SECONDS, max(1, math.ceil(seconds)))
        try:
            msg = self._lane(job.urgent).update_message(job.id, job.receipt, visibility_timeout=visibility)
        except HttpResponseError as exc:
            if _status(exc) in (400, 404):
                return None
            raise
        return replace(job, receipt=msg.pop_receipt or job.receipt)

    # -- flags and counters ----------------------------------------------------------------------

    def get_flag(self, name: str) -> str | None:
        row = self._get_entity(self._flags, _safe_key(name))
        return None if row is None else str(row["Value"])

    def set_flag(self, name: str, value: str | None) -> None:
        """Set ``name`` to ``value``; ``None`` removes it."""
        pk = _safe_key(name)
        if value is None:
            try:
                self._flags.delete_entity(pk, _ROW)
            except HttpResponseError as exc:
                if _status(exc) != 404:
                    raise
        else:
            self._flags.upsert_entity({"PartitionKey": pk, "RowKey": _ROW, "Key": name, "Value": value},
                                      mode=UpdateMode.REPLACE)

    def incr_counter(self, name: str, window_start: datetime) -> int:
        """Add one with an ETag retry loop (jittered backoff); returns the new value."""
        pk, rk = _safe_key(name), f"{codec.to_micros(window_start):020d}"
        delay = 0.005
        for _ in itertools.count():
            row = self._get_entity(self._counters, pk, rk)
            if row is None:
                try:
                    self._counters.create_entity({"PartitionKey": pk, "RowKey": rk, "Key": name, "N": 1})
                    return 1
                except HttpResponseError as exc:
                    if _status(exc) != 409:
                        raise
            else:
                n = int(row["N"]) + 1
                if self._replace(self._counters, {"PartitionKey": pk, "RowKey": rk, "Key": name, "N": n},
                                 _etag(row)) is not None:
                    return n
            time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not security
            delay = min(delay * 2, 0.2)
        raise AssertionError("unreachable")  # pragma: no cover


    def prune_counters(self, *, before: datetime) -> int:
        """Query the windows (RowKey: microseconds, zero-padded) before the time across the counters'
        partitions and delete each with its ETag; returns how many were deleted."""
        rows = self._counters.query_entities("RowKey lt @rk",
                                             parameters={"rk": f"{codec.to_micros(before):020d}"},
                                             select=["PartitionKey", "RowKey"])
        return sum(self._delete(self._counters, str(r["PartitionKey"]), str(r["RowKey"]), _etag(r)) for r in rows)


class _Exists(Exception):
    def __init__(self, existing: Remediation | None) -> None:
        super().__init__("exists")
        self.existing = existing


def _outside_remediations(chain: str) -> bool:
    """Whether the chain's records live in the audit table (system chains, anchors) rather than
    beside a remediation (see the module docstring: Audit)."""
    return is_system_chain(chain)


def _record_entity(pk: str, chain: str, position: int, prev: str, doc: str, *, stamp: int,
                   event: AuditEvent) -> dict[str, Any]:
    return {"PartitionKey": pk, "RowKey": _position_key(position), "Chain": chain, "Position": position,
            "Prev": prev, "Hash": record_hash(chain, position, prev, doc), "Stamp": f"{stamp:020d}",
            "RemediationId": event.remediation_id or "", "Event": event.event,
            **_pack(doc, f"audit record {chain}#{position}")}


def _replace_op(entity: Mapping[str, Any], etag: str) -> tuple[str, Mapping[str, Any], Mapping[str, Any]]:
    """A transaction's replace of ``entity`` with If-Match ``etag``."""
    return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag,
                               "match_condition": MatchConditions.IfNotModified})


def _raw_text(entity: TableEntity) -> str:
    """The stored document of an entity as text, whatever state it is in (for the quarantine)."""
    try:
        return _as_text(_unpack(entity))
    except Exception:  # a broken document is why we are here: keep what can be kept
        return repr({k: v for k, v in entity.items() if not str(k).startswith("Doc")})[:_RAW_KEPT]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _lock_props(row: TableEntity) -> dict[str, Any]:
    """The lock entity's own properties, to replace it with some of them changed."""
    return {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "Key": row.get("Key") or "",
            "Owner": row["Owner"], "Expires": row["Expires"], "Token": int(row.get("Token") or 0)}


def _answer_lost(exc: BaseException) -> bool:
    """Whether the service may not have answered (a 5xx, a 408 or a 429: it may have stored the write,
    or not yet): the write's outcome is read back before it is sent again."""
    status = exc.status_code if isinstance(exc, HttpResponseError) else None
    return status is not None and (status >= 500 or status in (408, 429))


def _position_key(position: int) -> str:
    """RowKey of the audit record at ``position`` of its chain (sorts after the legacy 20-digit keys)."""
    return f"c{position:012d}"


def _audit_stamp(entity: TableEntity) -> int:
    stamp = entity.get("Stamp")
    return int(str(stamp)) if stamp is not None else int(str(entity["RowKey"])[:20])


def _as_text(doc: str | bytes) -> str:
    return doc.decode("utf-8") if isinstance(doc, bytes) else doc


def _etag(entity: TableEntity) -> str:
    etag = entity.metadata.get("etag")
    if not etag:
        raise RuntimeError("Table Storage returned an entity without an ETag")
    return etag


def _pack(doc: str, what: str) -> dict[str, Any]:
    """A JSON document as entity properties (see the module docstring: Size limits): the string
    ``Doc``, or zlib-compressed binary ``Doc0`` … ``DocN`` with ``DocParts``; too large → ValueError."""
    if len(doc) <= _DOC_CHARS // 2 or len(doc.encode("utf-16-le")) <= 2 * _DOC_CHARS:
        return {"Doc": doc}
    packed = zlib.compress(doc.encode("utf-8"), 6)
    parts = [packed[i:i + _PART_BYTES] for i in range(0, len(packed), _PART_BYTES)]
    if len(parts) > _MAX_PARTS:
        raise ValueError(f"{what}: {len(doc.encode('utf-8')):,} bytes of JSON compress to "
                         f"{len(packed):,} bytes, over Table Storage's entity limit "
                         f"({_MAX_PARTS * _PART_BYTES:,} bytes for the document)")
    props: dict[str, Any] = {"DocParts": len(parts)}
    for i, part in enumerate(parts):
        props[f"Doc{i}"] = part
    return props


def _unpack(entity: TableEntity) -> str | bytes:
    """The document that ``_pack`` stored in ``entity``."""
    parts = entity.get("DocParts")
    if parts:
        return zlib.decompress(b"".join(_as_bytes(entity[f"Doc{i}"]) for i in range(int(parts))))
    return cast(str, entity["Doc"])


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    inner = getattr(value, "value", value)  # EntityProperty(value, EdmType.BINARY)
    if isinstance(inner, bytes):
        return inner
    raise TypeError(f"expected a binary property, got {type(value).__name__}")


def _written_after(entity: TableEntity | None, slot: TableEntity) -> bool:
    """True when the remediation entity was last written after the slot (server timestamps)."""
    if entity is None:
        return False
    a, b = entity.metadata.get("timestamp"), slot.metadata.get("timestamp")
    return isinstance(a, datetime) and isinstance(b, datetime) and a > b

"""Helpers for the engine tests: real parts wherever they exist.

The store is the real ``SQLiteStore`` on a temporary file, Azure is ``FakeArm`` (a real HTTP server)
read through ``LiveState`` and written through the real SDK clients, privilege is the real
``StandingElevator``, the playbooks are the shipped ones and the findings the shipped samples.

Two small test doubles, both of *ports* whose real implementations are tested on their own:
``RecordingChat`` records ``ChatPort`` calls (the Slack implementation is tested against FakeSlack
in the bot's tests; here only what the engine asks the chat to say matters), and
``StaticDirectory`` answers user-group membership from a mapping (the bot implements it with
``usergroups.users.list``).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from remediator.app.demo import DEMO_EXECUTOR, SAMPLES, SHIPPED_PLAYBOOKS
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState
from remediator.config.settings import Settings
from remediator.findings.model import Record
from remediator.findings.parse import parse_file, parse_value
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.chat import MessageRef, MessageTag, ResultDigest, ResultKind
from remediator.lifecycle.engine import Engine, Planned
from remediator.lifecycle.model import AuditEvent, Remediation
from remediator.playbooks import load_playbooks
from remediator.privilege.elevation import Elevator, StandingElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
TEAM = "T0TEAM00001"
OTHER_TEAM = "T0OTHER0001"
ONCALL = "S0614TZR7"  # the test workspace's security on-call user group
LEAD1, LEAD2 = "U05K8NQ2R7T", "U05M3XH9V4P"  # the test workspace's security leads
PLATFORM = "S0615PLT8Q"  # the test workspace's platform team user group
# The shipped playbooks' approver roles, mapped as a deployment maps them (Settings.approver_roles)
ROLES: dict[str, tuple[str, ...]] = {"security-oncall": (ONCALL,), "security-leads": (LEAD1, LEAD2),
                                     "platform-owners": (PLATFORM,)}
ROLES_ENV = ";".join(f"{role}={','.join(ids)}" for role, ids in ROLES.items())  # REMEDIATOR_APPROVER_ROLES
MEMBERS = tuple(f"U0MEMBER{i:03d}" for i in range(60))  # members of ONCALL
ADMIN = "U0ADMIN0001"
STRANGER = "U0STRANGER1"
PLAYBOOKS = load_playbooks(SHIPPED_PLAYBOOKS)

CONTOSOWEB = f"/subscriptions/{SUB}/resourceGroups/rg-prod-web/providers/Microsoft.Storage/storageAccounts/contosoweb"
CONTAINER = CONTOSOWEB + "/blobServices/default/containers/public-assets"
NSG_RULE = (f"/subscriptions/{SUB}/resourceGroups/rg-prod-web/providers/Microsoft.Network/networkSecurityGroups/"
            "nsg-jump/securityRules/AllowRDPFromInternet")


class FakeClock:
    """A settable aware-UTC clock shared by the engine and the store."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **kwargs: float) -> None:
        with self._lock:
            self.now += timedelta(**kwargs)


@dataclass
class RecordingChat:
    """A ``ChatPort`` that records what the engine asked it to say."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    posted: dict[MessageTag, MessageRef] = field(default_factory=dict)
    digests: dict[str, ResultDigest] = field(default_factory=dict)  # results digests as last shown, by id
    _n: int = 0

    def _ref(self) -> MessageRef:
        self._n += 1
        return MessageRef(channel="C0REMEDIATE", ts=f"1700000000.{self._n:06d}")

    def post_approval(self, remediation: Remediation) -> MessageRef:
        self.calls.append(("post_approval", remediation.id))
        return self._tagged(MessageTag(kind="request", key=remediation.id))

    def post_digest(self, remediations: Sequence[Remediation], *, playbook: str, group: str,
                    digest_id: str = "") -> MessageRef:
        self.calls.append(("post_digest", (playbook, group, tuple(r.id for r in remediations))))
        return self._tagged(MessageTag(kind="digest", key=digest_id))

    def find_posted(self, tag: MessageTag, *, since: datetime, thread: MessageRef | None = None) -> MessageRef | None:
        self.calls.append(("find_posted", (tag.kind, tag.key)))
        return self.posted.get(tag)

    def _tagged(self, tag: MessageTag) -> MessageRef:
        ref = self._ref()
        self.posted[tag] = ref
        return ref

    def update_approval(self, remediation: Remediation) -> None:
        self.calls.append(("update_approval", (remediation.id, remediation.state)))

    def post_result(self, remediation: Remediation, *, kind: ResultKind, text: str,
                    undo_available: bool = False, tag: MessageTag | None = None) -> None:
        self.calls.append(("post_result", (remediation.id, kind, text, undo_available)))
        if tag is not None:
            self._tagged(tag)

    def post_results(self, digest: ResultDigest) -> MessageRef:
        self.calls.append(("post_results", (digest.id, len(digest.entries))))
        self.digests[digest.id] = digest
        return self._tagged(MessageTag(kind="results", key=digest.id))

    def update_results(self, ref: MessageRef, digest: ResultDigest) -> None:
        self.calls.append(("update_results", (digest.id, len(digest.entries))))
        self.digests[digest.id] = digest

    def post_notice(self, remediation: Remediation, *, lines: Sequence[str]) -> MessageRef:
        self.calls.append(("post_notice", (remediation.id, tuple(lines))))
        return self._tagged(MessageTag(kind="notice", key=remediation.id))

    def post_alarm(self, *, key: str, title: str, lines: Sequence[str]) -> MessageRef:
        self.calls.append(("post_alarm", (key, title, tuple(lines))))
        return self._tagged(MessageTag(kind="alarm", key=key))

    def of(self, method: str) -> list[Any]:
        return [arg for name, arg in self.calls if name == method]

    def results(self, remediation_id: str | None = None) -> list[tuple[str, str, bool]]:
        """What was told about results: thread replies, then the entries of results digests (each once,
        as its digest last showed it)."""
        told = [(k, t, u) for (rid, k, t, u) in self.of("post_result") if remediation_id in (None, rid)]
        return told + [(e.kind, e.text, e.undo_available) for d in self.digests.values() for e in d.entries
                       if remediation_id in (None, e.remediation_id)]


class StaticDirectory:
    """User-group membership from a mapping; ``broken`` makes every lookup fail."""

    def __init__(self, groups: Mapping[str, Sequence[str]]) -> None:
        self.groups = {k: frozenset(v) for k, v in groups.items()}
        self.broken = False
        self.lookups = 0

    def members(self, group_id: str) -> frozenset[str]:
        self.lookups += 1
        if self.broken:
            raise RuntimeError("usergroups.users.list: ratelimited")
        return self.groups.get(group_id, frozenset())


def sample(name: str) -> list[Record]:
    """The records of one shipped sample file (``01-storage-open-container-alert``)."""
    return parse_file(SAMPLES / "findings" / f"{name}.json")


def sample_state() -> list[dict[str, Any]]:
    return SavedState.from_path(SAMPLES / "state").documents()


def storage_account(name: str, rg: str = "rg-prod-data", **props: Any) -> dict[str, Any]:
    """A storage account document (a copy of the sample's contosodata with another name)."""
    base = next(d for d in sample_state() if d["id"].endswith("/storageAccounts/contosodata"))
    doc = copy.deepcopy(base)
    doc["id"] = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"
    doc["name"] = name
    doc["properties"].update(props)
    return doc


def network_assessment(account_id: str) -> Record:
    """The shipped "storage firewall" assessment (sample 05) about another account."""
    text = (SAMPLES / "findings" / "05-storage-network-assessment.json").read_text(encoding="utf-8")
    original = json.loads(text)["properties"]["resourceDetails"]["id"]
    records = parse_value(json.loads(text.replace(original, account_id)), source="test")
    assert len(records) == 1
    return records[0]


def public_blob_assessment(account_id: str) -> Record:
    """Defender's "Storage account public access should be disallowed" assessment (51fd8bb1…) about
    ``account_id``: storage-disable-public-blob-access, approval auto."""
    key = "51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6"
    date = "2026-11-01T08:00:00Z"
    doc = {"id": f"{account_id}/providers/Microsoft.Security/assessments/{key}", "name": key,
           "type": "Microsoft.Security/assessments",
           "properties": {"resourceDetails": {"source": "Azure", "id": account_id},
                          "displayName": "Storage account public access should be disallowed",
                          "status": {"code": "Unhealthy", "statusChangeDate": date, "firstEvaluationDate": date},
                          "metadata": {"severity": "Medium",
                                       "displayName": "Storage account public access should be disallowed"}}}
    (record,) = parse_value(doc, source="test")
    return record


@dataclass
class World:
    engine: Engine
    store: SQLiteStore
    arm: FakeArm
    chat: RecordingChat
    clock: FakeClock
    directory: StaticDirectory
    settings: Settings

    def actor(self, user_id: str, *, team: str | None = TEAM, enterprise: str | None = None) -> Actor:
        return Actor(user_id=user_id, team_id=team, enterprise_id=enterprise, name=user_id.lower())

    def rem(self, remediation_id: str) -> Remediation:
        rem = self.engine.get(remediation_id)
        assert rem is not None
        return rem

    def events(self, remediation_id: str | None = None) -> list[str]:
        return [e.event for e in self.engine.audit_trail(remediation_id)]

    def trail(self, remediation_id: str | None = None) -> list[AuditEvent]:
        return self.engine.audit_trail(remediation_id)

    def jobs(self) -> list[tuple[str, dict[str, Any]]]:
        """The queued jobs (kind, payload), read without dequeuing."""
        rows = self.store._connection().execute("SELECT kind, payload FROM jobs ORDER BY seq").fetchall()
        return [(k, json.loads(p)) for k, p in rows]

    def deliver(self, records: Sequence[Record], *, source: str = "defender") -> list[Planned]:
        return deliver(self.engine, self.store, records, source=source)

    def ingest_one(self, records: Sequence[Record]) -> Remediation:
        results = self.deliver(records)
        assert len(results) == 1, results
        assert results[0].remediation is not None, results[0]
        return results[0].remediation


def deliver(engine: Engine, store: SQLiteStore, records: Sequence[Record], *,
            source: str = "defender") -> list[Planned]:
    """A delivery as the worker leaves it: ``engine.ingest`` and then the planning its ``plan`` jobs
    do, run at once through ``engine.plan`` (the function those jobs call). One ``Planned`` per
    record, in order (a record ingest did not queue keeps its ingest outcome, with no remediation).
    The plan jobs, no-ops now, are taken off the queue so that job assertions see what planning
    queued."""
    received = engine.ingest(records, source=source)
    planned = {p.record["id"]: p for p in engine.plan([str(r.record["id"]) for r in received
                                                        if r.outcome == "queued"])}
    drop_done_plan_jobs(store)
    return [planned[r.record["id"]] if r.outcome == "queued" else
            Planned(record=r.record, outcome=r.outcome, remediation=None, reason=r.reason) for r in received]


def drop_done_plan_jobs(store: SQLiteStore) -> None:
    conn = store._connection()
    for seq, payload in conn.execute("SELECT seq, payload FROM jobs WHERE kind = 'plan'").fetchall():
        if not any(row.waiting for row in store.inbound(json.loads(payload)["finding_ids"])):
            conn.execute("DELETE FROM jobs WHERE seq = ?", (seq,))


def make_world(tmp_path: Path, *, docs: Sequence[Mapping[str, Any]] = (), elevator: Elevator | None = None,
               **overrides: Any) -> Iterator[World]:
    """A started world; use as ``yield from make_world(tmp_path)`` in a fixture."""
    clock = FakeClock()
    # group_wait 0: a test's delivery is the whole storm (tests of group_wait set their own)
    settings = Settings(**{"slack_team_id": TEAM, "admins": (ADMIN,), "executor_principal_id": DEMO_EXECUTOR,
                           "slack_channel": "C0REMEDIATE", "group_wait": timedelta(0), "approver_roles": ROLES,
                           **overrides})
    directory = StaticDirectory({ONCALL: MEMBERS})
    chat = RecordingChat()
    with FakeArm() as arm, SQLiteStore(tmp_path / "remediator.db", clock=clock) as store:
        arm.load(sample_state())
        arm.load(docs)
        clients = arm.clients()
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                        clients=clients, elevator=elevator or StandingElevator(), chat=chat, directory=directory,
                        clock=clock)
        yield World(engine=engine, store=store, arm=arm, chat=chat, clock=clock, directory=directory,
                    settings=settings)

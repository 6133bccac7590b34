"""What the engine and the worker both run on: their dependencies, and the few moves they share.

``Runtime`` holds the ports and settings (store, chat, directory, elevator, ARM clients, state
reader, playbooks, clock) and the store operations everyone repeats: audit an event, queue a
typed job (``remediator.lifecycle.jobs``), move a remediation by compare-and-set with retries and
update its fields (each with the audit record that goes with it, written atomically with the state:
``record`` builds one, ``move`` stamps it with the state it moved to), build a planner, and the
telemetry of endings and approvals. It decides
nothing itself: opening a remediation is ``remediator.lifecycle.opening``, applying it
``remediator.lifecycle.applying``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from remediator import telemetry
from remediator.actions import REGISTRY
from remediator.azure.clients import ArmClients
from remediator.azure.state import StateReader
from remediator.config.settings import Settings
from remediator.errors import StoreUnavailable, error_line
from remediator.lifecycle.approval import Directory
from remediator.lifecycle.chat import ChatPort, ResultKind
from remediator.lifecycle.jobs import JobPayload, ReplyJob, encode
from remediator.lifecycle.model import AuditEvent, Remediation, State
from remediator.lifecycle.store import Audit, Store, audit_events
from remediator.planning.planner import Planner
from remediator.playbooks import Exemptions, PlaybookSet
from remediator.privilege.elevation import Elevator

if TYPE_CHECKING:
    from remediator.azure.graph import Graph

PAUSE_FLAG = "paused"
CAS_RETRIES = 8


@dataclass(frozen=True, kw_only=True)
class Runtime:
    store: Store
    settings: Settings
    playbooks: PlaybookSet
    state: StateReader
    clients: ArmClients
    elevator: Elevator
    clock: Callable[[], datetime]
    chat: ChatPort | None = None
    directory: Directory | None = None
    exemptions: Exemptions | None = None
    graph: Graph | None = None  # Resource Graph for bulk state reads when planning (None: one read each)

    def audit(self, remediation_id: str | None, event: str, actor: str, **detail: Any) -> None:
        """Append a record that changes no state (a state change's record goes with it: ``move``)."""
        self.store.audit(self.record(remediation_id, event, actor, **detail))

    def record(self, remediation_id: str | None, event: str, actor: str, **detail: Any) -> AuditEvent:
        """An audit record dated now, to hand to ``move``/``set_fields``/``Store.create``."""
        return AuditEvent(remediation_id=remediation_id, event=event, actor=actor, at=self.clock(), detail=detail)

    def enqueue(self, job: JobPayload, *, delay: float = 0) -> None:
        self.store.enqueue(encode(job), delay_seconds=delay)  # in its lane (``jobs.urgent``, set by encode)

    def reply(self, rem: Remediation, kind: ResultKind, text: str, *, undo_available: bool = False) -> None:
        """Queue a thread reply. ``text`` is plain text (the chat escapes it); it may hold ARM errors."""
        self.enqueue(ReplyJob(remediation_id=rem.id, kind=kind, text=text, undo_available=undo_available))

    def planner(self, state: StateReader | None = None) -> Planner:
        return Planner(playbooks=self.playbooks, state=state or self.state, exemptions=self.exemptions,
                       protected_principals=self.settings.protected_principals, today=self.clock().date(),
                       settings=self.settings.for_actions(), private_link=self.settings.private_link())

    def paused(self) -> bool:
        return self.store.get_flag(PAUSE_FLAG) is not None

    def move(self, rem: Remediation, to: State, *, from_states: Sequence[State], audit: Audit | None = None,
             **updates: Any) -> Remediation | None:
        """Compare-and-set that re-reads on a lost race (a concurrent field update such as a message
        ref), giving up once the state is no longer one of ``from_states``. ``audit`` is written with
        the move (atomically), each record stamped with the state it moved to (detail ``state``)."""
        events = with_state(audit_events(audit, rem.id), to)
        current: Remediation | None = rem
        for _ in range(CAS_RETRIES):
            if current is None or current.state not in from_states:
                return None
            new = self.store.transition(current, to, from_states=from_states, audit=events, **updates)
            if new is not None:
                return new
            current = self.store.get(rem.id)
        return None

    def set_fields(self, rem: Remediation, *, audit: Audit | None = None, **updates: Any) -> Remediation | None:
        """Compare-and-set of fields with re-reads on a lost race; ``audit`` is written with it."""
        current: Remediation | None = rem
        for _ in range(CAS_RETRIES):
            if current is None:
                return None
            new = self.store.update(current, audit=audit, **updates)
            if new is not None:
                return new
            current = self.store.get(rem.id)
        return None

    # -- telemetry (remediator.telemetry: a no-op unless configured) -------------------------
    def ended(self, rem: Remediation) -> None:
        """Count a remediation that reached a final state (and its time to remediate when applied)."""
        tel = telemetry.current()
        if not tel.enabled:
            return
        tel.remediation_ended(rem.state, rem.playbook)
        if rem.state == "applied":
            tel.time_to_remediate((self.clock() - rem.created_at).total_seconds(), rem.playbook)

    def traced_approval(self, rem: Remediation, **attributes: Any) -> None:
        """The approval span of a remediation just approved, and how long it waited for it."""
        tel = telemetry.current()
        if not tel.enabled:
            return
        with tel.span("remediator.approval", parent=rem.trace_context, remediation_id=rem.id,
                      playbook=rem.playbook, resource=rem.resource_id, decision="approved", **attributes):
            tel.approval_wait((self.clock() - rem.created_at).total_seconds(), rem.playbook)


@contextlib.contextmanager
def store_call(what: str) -> Iterator[None]:
    """Run the block's store calls so that whatever they raise becomes ``StoreUnavailable`` (its cause
    kept): a caller that also talks to ARM tells the two apart by where the error came from (on Azure
    both raise azure-core errors). Only store calls belong in the block."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as e:
        raise StoreUnavailable(f"the store could not {what}: {error_line(e)}") from e


def with_state(events: Sequence[AuditEvent], state: State) -> tuple[AuditEvent, ...]:
    """The records of a write that leaves the remediation in ``state``, each saying so (detail
    ``state``), so that ``audit verify`` can check the trail ends in the stored state."""
    return tuple(e if e.detail.get("state") == state else replace(e, detail={**e.detail, "state": state})
                 for e in events)


def undo_available(rem: Remediation, settings: Settings) -> bool:
    """An applied forward remediation whose every action is reversible, with a non-zero window."""
    if rem.undo_of or settings.undo_window.total_seconds() <= 0 or not rem.changes:
        return False
    for c in rem.changes:
        action = REGISTRY.get(str(c["action"]))
        if action is None or not action.reversible:
            return False
    return True

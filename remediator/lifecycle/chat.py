"""The chat port: how the engine talks to people, without knowing it is Slack.

``bot/`` implements it with slack_sdk (Block Kit, ``chat.postMessage``/``chat.update``, thread
replies); the demo implements it on the terminal; tests use the real Slack implementation against
``FakeSlack``. Calls happen on the worker, never on Slack's 3-second acknowledgement path, so an
implementation may wait for rate limits (429 Retry-After).

Failures: a call the chat could not make raises ``ChatError``, which says what failed ("Slack
chat.postMessage answered 500"), whether it is worth trying again later (``transient``: the chat
is down, slow or rate limited) and whether it may have taken effect all the same (``maybe_done``:
a timeout or a 5xx after the request was sent). The worker re-queues a transient failure with
backoff instead of letting the job burn its deliveries. Approval and digest messages, and thread
replies, are tagged (``MessageTag``) so that, after an attempt whose outcome is unknown,
``find_posted`` can tell whether it landed: the worker then keeps the message it finds instead of
posting a second one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from remediator.lifecycle.model import Remediation

ResultKind = Literal["applied", "failed", "stale", "expired", "rejected", "reminder", "rolled_back", "info",
                     "withdrawn"]


class ChatError(Exception):
    """A chat call that failed; ``str()`` says what failed, in one line."""

    def __init__(self, what: str, *, transient: bool, maybe_done: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.transient = transient
        self.maybe_done = maybe_done


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageTag:
    """What a posted message stands for, carried with it (Slack message metadata): ``kind``
    ``request`` (one remediation's approval message, ``key`` its id), ``digest`` (``key`` the
    digest's id, chosen when the digest was announced), ``reply`` (a thread reply, ``key``
    ``reply_key`` of what it says), ``notice`` (the advice of a remediation that changes nothing, ``key``
    its id: ``post_notice``), ``results`` (a digest of results of remediations that have no approval
    message, ``key`` the digest's id: ``post_results``) or ``alarm`` (a message about remediator itself, ``key``
    what it is about: ``post_alarm``)."""

    kind: Literal["request", "digest", "reply", "notice", "results", "alarm"]
    key: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ResultEntry:
    """One result in a results digest: the remediation, its resource, what happened (plain text, escaped
    by the chat) and whether Undo is offered."""

    remediation_id: str
    resource_id: str
    kind: ResultKind
    text: str
    undo_available: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class ResultDigest:
    """One message listing results of one playbook's remediations that have no approval message of their
    own (auto-applied ones, members of an approval digest), updated in place as more arrive
    (``remediator.lifecycle.results``)."""

    id: str  # the message's tag key (``MessageTag(kind="results", key=id)``)
    playbook: str
    opened_at: datetime  # when its first result arrived
    entries: tuple[ResultEntry, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageRef:
    """Where a message lives, to update it in place and reply in its thread."""

    channel: str
    ts: str


class ChatPort(Protocol):
    def post_approval(self, remediation: Remediation) -> MessageRef:
        """Post the approval request (finding, resource, playbook, plan diff, what approval needs, buttons),
        tagged ``MessageTag(kind="request", key=remediation.id)``."""

    def post_digest(self, remediations: Sequence[Remediation], *, playbook: str, group: str,
                    digest_id: str = "") -> MessageRef:
        """One message for many remediations of one playbook in one resource group (a storm),
        tagged ``MessageTag(kind="digest", key=digest_id)``."""

    def find_posted(self, tag: MessageTag, *, since: datetime, thread: MessageRef | None = None) -> MessageRef | None:
        """The message posted with ``tag`` since about ``since`` (a bounded look back), in the thread
        of ``thread`` when given (a reply), or None when there is none. ``ChatError`` when the chat
        cannot tell (down, or its history not readable)."""

    def update_approval(self, remediation: Remediation) -> None:
        """Re-render the approval message in place from the remediation's current state and votes."""

    def post_result(self, remediation: Remediation, *, kind: ResultKind, text: str,
                    undo_available: bool = False, tag: MessageTag | None = None) -> None:
        """A reply in the approval message's thread (applied and verified, failed, stale, expired, …),
        carrying ``tag`` when given (``reply_key``)."""

    def post_results(self, digest: ResultDigest) -> MessageRef:
        """Post a results digest (every entry, in order), tagged ``MessageTag(kind="results", key=digest.id)``."""

    def update_results(self, ref: MessageRef, digest: ResultDigest) -> None:
        """Re-render the results digest at ``ref`` with every entry of ``digest`` (a later one holds more)."""

    def post_notice(self, remediation: Remediation, *, lines: Sequence[str]) -> MessageRef:
        """A message in the channel for an alert that no change answers (``alert.send-advice``): the finding,
        its resource and ``lines`` (what it is, the evidence, the recommended steps; plain text, escaped
        by the chat), no buttons; tagged ``MessageTag(kind="notice", key=remediation.id)``."""


    def post_alarm(self, *, key: str, title: str, lines: Sequence[str]) -> MessageRef:
        """A message in the channel about remediator itself, not about one remediation (a subscription that
        Defender's export went silent on): ``title`` and ``lines`` plain text (escaped by the chat), no
        buttons; tagged ``MessageTag(kind="alarm", key=key)``."""


def reply_key(remediation_id: str, kind: ResultKind, text: str) -> str:
    """The tag key of a thread reply: the same reply (remediation, kind and text) has the same key,
    so a reply whose post may have landed is found by it instead of posted again."""
    return hashlib.sha256(f"{remediation_id}\n{kind}\n{text}".encode()).hexdigest()[:32]


def thread_of(remediation: Remediation) -> MessageRef | None:
    """The approval message a remediation's replies go under (its stored ref), if it has one."""
    msg = remediation.message or {}
    channel, ts = msg.get("channel"), msg.get("ts")
    return MessageRef(channel=str(channel), ts=str(ts)) if channel and ts else None

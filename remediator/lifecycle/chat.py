"""The chat port: how the engine talks to people, without knowing it is Slack.

``bot/`` implements it with slack_sdk (Block Kit, ``chat.postMessage``/``chat.update``, thread
replies); the demo implements it on the terminal; tests use the real Slack implementation against
``FakeSlack``. Calls happen on the worker, never on Slack's 3-second acknowledgement path, so an
implementation may wait for rate limits (429 Retry-After).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from remediator.lifecycle.model import Remediation

ResultKind = Literal["applied", "failed", "stale", "expired", "rejected", "reminder", "rolled_back", "info",
                     "withdrawn"]


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageRef:
    """Where a message lives, to update it in place and reply in its thread."""

    channel: str
    ts: str


class ChatPort(Protocol):
    def post_approval(self, remediation: Remediation) -> MessageRef:
        """Post the approval request (finding, resource, playbook, plan diff, what approval needs, buttons)."""

    def post_digest(self, remediations: Sequence[Remediation], *, playbook: str, group: str) -> MessageRef:
        """One message for many remediations of one playbook in one resource group (a storm)."""

    def update_approval(self, remediation: Remediation) -> None:
        """Re-render the approval message in place from the remediation's current state and votes."""

    def post_result(self, remediation: Remediation, *, kind: ResultKind, text: str,
                    undo_available: bool = False) -> None:
        """A reply in the approval message's thread (applied and verified, failed, stale, expired, …)."""

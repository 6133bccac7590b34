"""The chat port on a terminal, for ``remediator demo``: messages are printed, approvals typed.

``ConsoleChat`` prints what Slack would show (the request with its plan, digests, updates and
thread replies). ``answer_pending`` asks at a prompt for each pending request, or approves them
all (``--approve-all``), clicking as the playbook's approvers would: listed users first, then
members of listed user groups from the ``Directory``, never the requester, as many distinct
people as the quorum needs. ``GroupDirectory`` is a fixed ``Directory`` for the demo.

Text from findings and ARM (titles, resource names, errors) is printed with control characters
replaced, so a crafted alert cannot move the cursor or recolour the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from remediator.lifecycle.approval import Actor, Need
from remediator.lifecycle.chat import MessageRef, MessageTag, ResultKind
from remediator.lifecycle.codec import change_from_json
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.text import Text
from remediator.planning.render import render_change

if TYPE_CHECKING:
    from remediator.lifecycle.engine import Engine

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` on one line with control characters (ANSI escapes included) replaced by ``?``."""
    return _CONTROL.sub("?", " ".join(str(text).splitlines()))


def plain(text: Text) -> str:
    """What the engine says, as a terminal shows it: people as ``@U1``/``@S1``, on one line."""
    return printable(text.plain())


class GroupDirectory:
    """User-group membership from a mapping (the demo's stand-in for ``usergroups.users.list``)."""

    def __init__(self, groups: Mapping[str, Iterable[str]]) -> None:
        self._groups = {k: frozenset(v) for k, v in groups.items()}

    def members(self, group_id: str) -> frozenset[str]:
        return self._groups.get(group_id, frozenset())


class ConsoleChat:
    """A ``ChatPort`` that prints. ``requirement`` gives what approval still needs (the engine's)."""

    def __init__(self, out: TextIO, *, requirement: Callable[[Remediation], Need] | None = None) -> None:
        self.out = out
        self.requirement = requirement
        self._n = 0

    def _ref(self) -> MessageRef:
        self._n += 1
        return MessageRef(channel="console", ts=str(self._n))

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")

    def post_approval(self, remediation: Remediation) -> MessageRef:
        rem = remediation
        f = rem.finding
        what = "Undo" if rem.undo_of else "Approval needed"
        self._line(f"\n[{what}] {rem.id}  playbook {rem.playbook} (risk {rem.risk})")
        self._line(f"  finding:  {printable(f.get('title', ''))} (severity {printable(f.get('severity', '?'))})")
        self._line(f"  resource: {printable(rem.resource_id)}")
        for change in rem.changes:
            for line in render_change(change_from_json(change), indent="  "):
                self._line(printable(line))
        for warning in rem.warnings:  # what the plan could not check: shown before anyone approves
            self._line(f"  not checked: {printable(warning)}")
        if self.requirement is not None:
            self._line(f"  needs:    {plain(self.requirement(rem).text())}")
        return self._ref()

    def post_digest(self, remediations: Sequence[Remediation], *, playbook: str, group: str,
                    digest_id: str = "") -> MessageRef:
        self._line(f"\n[Digest] {len(remediations)} requests of {playbook} in {printable(group)}:")
        for rem in remediations:
            n = len(rem.warnings)
            unchecked = f"  ({n} thing{'s' if n != 1 else ''} not checked)" if n else ""
            self._line(f"  {rem.id}  {printable(rem.resource_id)}{unchecked}")
        return self._ref()

    def find_posted(self, tag: MessageTag, *, since: datetime) -> MessageRef | None:
        """Nothing printed is ever lost or in doubt: a print either happened in this process or not."""
        return None

    def update_approval(self, remediation: Remediation) -> None:
        self._line(f"[Update] {remediation.id}: {remediation.state.replace('_', ' ')}")

    def post_result(self, remediation: Remediation, *, kind: ResultKind, text: str,
                    undo_available: bool = False) -> None:
        undo = "  (Undo available)" if undo_available else ""
        self._line(f"  ↳ [{kind}] {remediation.id}: {printable(text)}{undo}")


def eligible(engine: Engine, rem: Remediation, directory: GroupDirectory | None) -> list[str]:
    """Who could click Approve on ``rem``: listed users, then group members; never the requester."""
    need = engine.requirement(rem)
    users = list(need.users)
    for group in need.groups:
        users.extend(sorted(directory.members(group)) if directory is not None else [])
    if need.narrowed_to:  # the global narrowing list, users only in the demo
        users = [u for u in users if u in need.narrowed_to]
    return [u for u in dict.fromkeys(users) if u != rem.requester]


def answer_pending(engine: Engine, *, out: TextIO, directory: GroupDirectory | None = None,
                   approve_all: bool = False, ask: Callable[[str], str] = input) -> int:
    """Answer every pending request; returns how many were approved."""
    approved = 0
    for rem in engine.pending():
        people = eligible(engine, rem, directory)
        if approve_all:
            answer = "a"
        else:
            answer = ask(f"{rem.id} ({rem.playbook}): [a]pprove, [r]eject or [s]kip? ").strip().lower()[:1]
        if answer == "r" and people:
            decision = engine.reject(rem.id, _actor(engine, people[0]), "rejected at the terminal")
            out.write(f"  {people[0]}: {plain(decision.message)}\n")
            continue
        if answer != "a":
            continue
        for user in people:
            decision = engine.approve(rem.id, _actor(engine, user))
            out.write(f"  {user}: {plain(decision.message)}\n")
            current = engine.get(rem.id)
            if current is None or current.state != "pending_approval":
                approved += current is not None and current.state == "approved"
                break
        else:
            out.write(f"  {rem.id}: not enough eligible approvers ({plain(engine.requirement(rem).text())})\n")
    return approved


def _actor(engine: Engine, user: str) -> Actor:
    s = engine.settings
    return Actor(user_id=user, team_id=s.slack_team_id, enterprise_id=s.slack_enterprise_id, name=user)

"""The chat port on a terminal, for ``remediator demo``: messages are printed, approvals typed.

``ConsoleChat`` prints what Slack would show (the request with its plan, digests, updates and
thread replies), every line naming its request (``briefs.label``: short id, playbook, resource);
an update is printed when what it shows changed (two votes of a quorum of two make one
"approved" line, not two). ``answer_pending`` asks at a prompt for each pending request (asking
again on anything but a, r or s; the end of the input leaves the rest pending), or approves them
all (``--approve-all``), clicking as the playbook's approvers would: listed users first, then
members of listed user groups from the ``Directory``, never the requester, as many distinct
people as the quorum needs. ``GroupDirectory`` is a fixed ``Directory`` for the demo.

Text from findings and ARM (titles, resource names, errors) is printed with control characters
replaced, so a crafted alert cannot move the cursor or recolour the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from remediator.app.briefs import WIDE, WIDTH, change_line, clip, label, printable
from remediator.lifecycle.approval import Actor, Need
from remediator.lifecycle.chat import MessageRef, MessageTag, ResultDigest, ResultEntry, ResultKind
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.naming import names_for
from remediator.lifecycle.text import Text
from remediator.planning.names import NameResolver, naming
from remediator.words import plural

if TYPE_CHECKING:
    from remediator.lifecycle.engine import Engine

__all__ = ["ConsoleChat", "EndOfInput", "GroupDirectory", "answer_pending", "eligible", "plain", "printable"]

ANSWERS = {"a": "approve", "r": "reject", "s": "skip"}
CHANGES_SHOWN = 8  # a request's change lines (a digest's requests) before the rest is folded into one line


WEIGHTY = ("IRREVERSIBLE", "COSTS MONEY")  # how a change's note says it is one-way or costs money


class EndOfInput(Exception):
    """The prompt's input ended (Ctrl-D, a closed pipe): the requests not answered stay pending."""


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
    """A ``ChatPort`` that prints. ``requirement`` gives what approval still needs (the engine's);
    ``names`` (a ``NameResolver``): each message's ids looked up in one batch, printed ``name (id)``."""

    def __init__(self, out: TextIO, *, requirement: Callable[[Remediation], Need] | None = None,
                 names: NameResolver | None = None) -> None:
        self.out = out
        self.requirement = requirement
        self.names = names
        self._n = 0
        self._shown: dict[str, tuple[str, int]] = {}  # what the last update of each request showed
        self._results: dict[str, int] = {}  # results digest id → results printed

    def _ref(self) -> MessageRef:
        self._n += 1
        return MessageRef(channel="console", ts=str(self._n))

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")

    def _naming(self, remediations: Sequence[Remediation],
                texts: Sequence[str] = ()) -> AbstractContextManager[None]:
        return naming(names_for(self.names, remediations, texts=texts))

    def post_approval(self, remediation: Remediation) -> MessageRef:
        with self._naming([remediation]):
            return self._post_approval(remediation)

    def _post_approval(self, remediation: Remediation) -> MessageRef:
        rem = remediation
        f = rem.finding
        what = "Undo" if rem.undo_of else "Approval needed"
        self._line(f"[{what}] {label(rem)} (risk {printable(rem.risk)}; id {rem.id})")
        self._line(clip(f"  finding: {printable(f.get('title', ''))} (severity {printable(f.get('severity', '?'))})"))
        builds = any(c.get("operation") == "create" for c in rem.changes)
        for change in rem.changes[:CHANGES_SHOWN]:
            # a create reads as its note (which subnet, which zones): it may take a trail-wide line
            note = str(change.get("note") or "")
            weighty = next((m for m in WEIGHTY if m in note), None)
            shown = change
            if weighty is not None and change.get("operation") in ("create", "delete", "invoke"):
                # a line that reads as its note: what is one-way or costs money gets a line of its own below
                shown = {**change, "note": note[:note.index(weighty)].rstrip("; ")}
            line = change_line(shown, width=WIDE if change.get("operation") == "create" else WIDTH)
            self._line(line)
            if weighty is not None and weighty not in line:
                # the line left the note out (or cut it): what cannot be undone, or costs money, is still said
                # before approval
                self._line(clip("    " + printable(note[note.index(weighty):]), WIDE))
            elif builds and change.get("operation") == "update":
                # a plan that builds a path before it closes one (a private endpoint, then public access off):
                # under the closing, what it can break and for whom, when it happens and what else must be set
                # up (DNS), one line each, said before anyone approves
                for part in note.split("; ")[1:]:
                    self._line(clip("    " + printable(part), WIDE))
        if len(rem.changes) > CHANGES_SHOWN:  # folded, as Slack folds a long plan ("Show full plan")
            more = len(rem.changes) - CHANGES_SHOWN
            self._line(f"  … {plural(more, 'more change')} (remediator plan prints every one)")
        for warning in rem.warnings:  # what the plan could not check: shown before anyone approves
            self._line(f"  not checked: {printable(warning)}")
        if self.requirement is not None:
            self._line(f"  needs: {plain(self.requirement(rem).text())}")
        self._shown[rem.id] = (rem.state, len(rem.votes))
        return self._ref()

    def post_digest(self, remediations: Sequence[Remediation], *, playbook: str, group: str,
                    digest_id: str = "") -> MessageRef:
        with self._naming(remediations):
            return self._post_digest(remediations, playbook=playbook, group=group)

    def _post_digest(self, remediations: Sequence[Remediation], *, playbook: str, group: str) -> MessageRef:
        self._line(f"\n[Digest] {plural(len(remediations), 'request')} of {playbook} in {printable(group)}:")
        for i, rem in enumerate(remediations):
            self._shown[rem.id] = (rem.state, len(rem.votes))
            if i >= CHANGES_SHOWN:
                continue
            n = len(rem.warnings)
            unchecked = f"  ({plural(n, 'thing')} not checked)" if n else ""
            self._line(f"  {label(rem)}{unchecked}")
        if len(remediations) > CHANGES_SHOWN:
            self._line(f"  … {plural(len(remediations) - CHANGES_SHOWN, 'more request')}")
        return self._ref()

    def find_posted(self, tag: MessageTag, *, since: datetime, thread: MessageRef | None = None) -> MessageRef | None:
        """Nothing printed is ever lost or in doubt: a print either happened in this process or not."""
        return None

    def update_approval(self, remediation: Remediation) -> None:
        shown = (remediation.state, len(remediation.votes))
        if self._shown.get(remediation.id) == shown:
            return  # Slack would edit the message to what it already says: nothing to print
        self._shown[remediation.id] = shown
        if remediation.state == "approved":
            return  # the answer at the terminal said it already ("Approved by …: applying now")
        self._line(f"[Update] {label(remediation)}: {remediation.state.replace('_', ' ')}")

    def post_result(self, remediation: Remediation, *, kind: ResultKind, text: str,
                    undo_available: bool = False, tag: MessageTag | None = None) -> None:
        undo = "  (Undo available)" if undo_available else ""
        with self._naming([remediation], [text]):
            self._line(f"  ↳ [{kind}] {label(remediation)}: {printable(text)}{undo}")

    def post_results(self, digest: ResultDigest) -> MessageRef:
        """A results digest printed as its results arrive: the heading once, then each result once."""
        self._line(f"\n[Results] {digest.playbook} (applied without approval, or approved in a digest):")
        self._print_results(digest)
        return self._ref()

    def update_results(self, ref: MessageRef, digest: ResultDigest) -> None:
        self._print_results(digest)

    def _print_results(self, digest: ResultDigest) -> None:
        done = self._results.get(digest.id, 0)
        for entry in digest.entries[done:]:
            self._line(f"  ↳ [{entry.kind}] {_name(entry)}: {printable(entry.text)}"
                       + ("  (Undo available)" if entry.undo_available else ""))
        self._results[digest.id] = max(done, len(digest.entries))

    def post_notice(self, remediation: Remediation, *, lines: Sequence[str]) -> MessageRef:
        self._line(f"\n[Alert, no change] {label(remediation)} (id {remediation.id})")
        with self._naming([remediation], lines):
            for line in lines:
                self._line(clip(f"  {printable(line)}"))
        return self._ref()

    def post_alarm(self, *, key: str, title: str, lines: Sequence[str]) -> MessageRef:
        self._line(f"\n[ALARM] {printable(title)}")
        for line in lines:
            self._line(clip(f"  {printable(line)}"))
        return self._ref()


def _name(entry: ResultEntry) -> str:
    return printable(entry.resource_id.rstrip("/").rsplit("/", 1)[-1] or entry.remediation_id)


def eligible(engine: Engine, rem: Remediation, directory: GroupDirectory | None) -> list[str]:
    """Who could click Approve on ``rem``: listed users, then group members; never the requester."""
    need = engine.requirement(rem)
    users = list(need.users)
    for group in need.groups:
        users.extend(sorted(directory.members(group)) if directory is not None else [])
    if need.narrowed_to:  # the global narrowing list, users only in the demo
        users = [u for u in users if u in need.narrowed_to]
    return [u for u in dict.fromkeys(users) if u != rem.requester]


def _answer(rem: Remediation, ask: Callable[[str], str], out: TextIO) -> str:
    """``approve``, ``reject`` or ``skip``, asked again until the answer is one of them (a typo or a bare
    Enter never skips a request silently). ``EndOfInput`` (or ``EOFError`` from ``input``) ends it."""
    prompt = f"{label(rem)}: [a]pprove, [r]eject or [s]kip? "
    while True:
        try:
            typed = ask(prompt).strip().lower()
        except EOFError:
            raise EndOfInput from None
        for key, word in ANSWERS.items():
            if typed in (key, word):
                return word
        out.write(f"  {printable(typed) or '(nothing)'}: please answer a (approve), r (reject) or s (skip)\n")


def answer_pending(engine: Engine, *, out: TextIO, directory: GroupDirectory | None = None,
                   approve_all: bool = False, ask: Callable[[str], str] = input) -> int:
    """Answer every pending request; returns how many were approved."""
    approved = 0
    pending = engine.pending()
    for n, rem in enumerate(pending):
        people = eligible(engine, rem, directory)
        try:
            answer = "approve" if approve_all else _answer(rem, ask, out)
        except EndOfInput:
            left = len(pending) - n
            out.write(f"\n  (end of input: {plural(left, 'request')} left pending)\n")
            break
        if answer == "skip":
            out.write(f"  {label(rem)}: skipped, still pending\n")
            continue
        if not people:
            out.write(f"  {label(rem)}: nobody here may {answer} it ({plain(engine.requirement(rem).text())})\n")
            continue
        if answer == "reject":
            decision = engine.reject(rem.id, _actor(engine, people[0]), "answered r at the demo prompt")
            out.write(f"  {label(rem)} · {people[0]}: {plain(decision.message)}\n")
            continue
        for user in people:
            decision = engine.approve(rem.id, _actor(engine, user))
            out.write(f"  {label(rem)} · {user}: {plain(decision.message)}\n")
            current = engine.get(rem.id)
            if current is None or current.state != "pending_approval":
                approved += current is not None and current.state == "approved"
                break
        else:
            out.write(f"  {label(rem)}: not enough eligible approvers ({plain(engine.requirement(rem).text())})\n")
    return approved


def _actor(engine: Engine, user: str) -> Actor:
    s = engine.settings
    return Actor(user_id=user, team_id=s.slack_team_id, enterprise_id=s.slack_enterprise_id, name=user)

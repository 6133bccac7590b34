"""Who may approve what: requirements as named checks, each returning a reason for the clicker.

Atlantis-style: a requirement is a small function ``(Attempt) -> str | None``; ``None`` means it
holds, a string is the one line shown to the person who clicked (ephemeral in Slack). They are
evaluated in order and the first reason wins; system errors are not reasons (they raise).

The checks, in order (``APPROVE_CHECKS``):

``open``           the remediation exists and is waiting for approval (else: already approved by …,
                   rejected by …, expired, out of date, closed)
``not_expired``    ``expires_at`` has not passed (the engine then moves it to ``expired``)
``same_org``       the clicker's ``user.team_id`` / ``enterprise.id`` equal the configured workspace /
                   Enterprise Grid ids (Slack Connect users from another org can click buttons)
``has_approvers``  the request lists approvers: none means nobody can approve (fail closed)
``is_approver``    the clicker is a listed user, or a member of a listed user group (``Directory``),
                   and, when the global ``approvers`` setting narrows it, also in that list
``not_requester``  nobody approves their own request (an undo's requester)
``not_voted``      each person counts once toward the quorum

Reject uses the same authorisation without the last two (``REJECT_CHECKS``): a denial is always safe.

Global settings only add requirements: ``Settings.approvers`` narrows who may approve, and
``Settings.min_quorum`` raises quorums; neither can widen what a playbook allows.

What is said returns as data: a reason or a ``Decision``'s message is a ``Text`` that names people
by id (``remediator.lifecycle.text``), and what a pending request still needs is a ``Need`` (who
may approve, how many, who has). ``bot/`` renders them as Slack mentions, the console as plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from remediator.config.roles import resolve
from remediator.config.settings import Settings
from remediator.lifecycle.model import ApprovalVote, Remediation
from remediator.lifecycle.text import Text, people, say
from remediator.playbooks import Playbook


@dataclass(frozen=True, kw_only=True)
class Actor:
    """The person behind a click, as the signed Slack payload names them."""

    user_id: str
    team_id: str | None = None
    enterprise_id: str | None = None
    name: str = ""

    @property
    def tag(self) -> str:
        """The audit ``actor`` string."""
        return f"slack:{self.user_id}"

    def audit(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "team_id": self.team_id, "enterprise_id": self.enterprise_id,
                "name": self.name}

    def vote(self, at: datetime, *, decision: str = "approve", reason: str = "") -> ApprovalVote:
        return ApprovalVote(user_id=self.user_id, team_id=self.team_id, enterprise_id=self.enterprise_id, at=at,
                            decision="reject" if decision == "reject" else "approve", reason=reason)


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The answer to a click: ``message`` is one line for the clicker."""

    ok: bool
    message: Text
    remediation: Remediation | None = None


class Directory(Protocol):
    """Slack user-group membership (``bot/`` implements it with ``usergroups.users.list``, cached)."""

    def members(self, group_id: str) -> frozenset[str]: ...


class MembershipUnknown(Exception):
    """The directory could not say whether someone is in a group; treated as "no" (fail closed)."""

    def __init__(self, groups: Sequence[str]) -> None:
        self.groups = tuple(groups)
        self.text = say("could not check membership of ", people(self.groups), "; try again in a minute")
        super().__init__(self.text.plain())


# --------------------------------------------------------------------------------------------
# Words (people named by their validated Slack ids, never by user text)


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "an unknown time"


def approvals(rem: Remediation) -> list[ApprovalVote]:
    return [v for v in rem.votes if v.decision == "approve"]


def rejections(rem: Remediation) -> list[ApprovalVote]:
    return [v for v in rem.votes if v.decision == "reject"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Need:
    """What approval of a pending request needs, as data (``need``); ``text()`` says it."""

    approvers: tuple[str, ...]  # users (U…/W…) and user groups (S…) who may approve, as listed
    quorum: int
    narrowed_to: tuple[str, ...] = ()  # the global ``approvers``: approvers must also be one of these
    approved_by: tuple[str, ...] = ()  # who has approved so far

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(a for a in self.approvers if not a.startswith("S"))

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(a for a in self.approvers if a.startswith("S"))

    @property
    def missing(self) -> int:
        """Approvals still missing."""
        return max(self.quorum - len(self.approved_by), 0)

    def text(self) -> Text:
        """``1 of 2 approvals from @S1, @U2 (who must also be in @S3); approved by @U2``."""
        if not self.approvers:
            return say("nobody can approve this: no approvers are configured")
        got = len(self.approved_by)
        count = f"{got} of {_plural(self.quorum, 'approval')}" if got or self.quorum > 1 else \
            _plural(self.quorum, "approval")
        return say(count, " from ", people(self.approvers),
                   say(" (who must also be in ", people(self.narrowed_to), ")") if self.narrowed_to else "",
                   say("; approved by ", people(self.approved_by)) if got else "")


def need(rem: Remediation, settings: Settings) -> Need:
    """What approval of ``rem`` needs (meaningful while it is pending)."""
    return Need(approvers=tuple(rem.approvers), quorum=rem.quorum, narrowed_to=tuple(settings.approvers),
                approved_by=tuple(v.user_id for v in approvals(rem)))


def requirement_text(rem: Remediation, settings: Settings) -> Text:
    """What approval still needs (``Need.text``), or for a request no longer pending, its state."""
    return need(rem, settings).text() if rem.state == "pending_approval" else state_text(rem)


def state_text(rem: Remediation) -> Text:
    """A closed or moving request, in words (also the refusal for a click on it).

    Like every text meant for the clicker, it names only people (by validated id): never a reject
    reason, an ARM error or anything else a user or a resource could have written.
    """
    match rem.state:
        case "approved" | "applying" | "applied":
            return say("Already approved by ", people([v.user_id for v in approvals(rem)]) or "auto-remediation")
        case "rejected":
            return say("Already rejected by ", people([v.user_id for v in rejections(rem)]) or "an approver")
        case "expired":
            return say(f"This request expired at {when(rem.expires_at)}")
        case "stale":
            return say("This plan is out of date: the resource changed, and a new request replaces it")
        case "failed":
            return say("This remediation failed; the reason is in the message's thread")
        case "rolled_back":
            return say("This remediation was applied and later rolled back")
        case "no_change":
            return say("Nothing to do: the resource is already compliant")
        case "exempt":
            return say("This resource is exempt from this playbook")
        case _:
            return say(f"This request is not waiting for approval (it is {rem.state.replace('_', ' ')})")


# --------------------------------------------------------------------------------------------
# Membership


def is_member(user_id: str, allowed: Sequence[str], directory: Directory | None) -> bool:
    """True when ``user_id`` is listed or is in a listed user group. Raises ``MembershipUnknown``
    when a group had to be consulted and the directory failed (no directory: groups match nobody)."""
    if user_id in allowed:
        return True
    groups = [a for a in allowed if a.startswith("S")]
    if not groups or directory is None:
        return False
    failed: list[str] = []
    for group in groups:
        try:
            if user_id in directory.members(group):
                return True
        except Exception:  # any directory failure: fail closed, and say so
            failed.append(group)
    if failed:
        raise MembershipUnknown(failed)
    return False


def member_reason(user_id: str, allowed: Sequence[str], directory: Directory | None, refusal: Text) -> Text | None:
    """None when allowed; ``refusal`` when not; the directory's problem when it cannot tell."""
    try:
        return None if is_member(user_id, allowed, directory) else refusal
    except MembershipUnknown as e:
        return say("Cannot check that you may do this: ", e.text)


# --------------------------------------------------------------------------------------------
# The checks


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One click to evaluate."""

    remediation: Remediation | None
    actor: Actor
    now: datetime
    settings: Settings
    directory: Directory | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    check: str
    reason: Text


Check = Callable[[Attempt], Text | None]


@dataclass(frozen=True, slots=True)
class Requirement:
    name: str
    check: Check = field(repr=False)


def _open(a: Attempt) -> Text | None:
    rem = a.remediation
    if rem is None:
        return say("This request no longer exists")
    return None if rem.state == "pending_approval" else state_text(rem)


def _not_expired(a: Attempt) -> Text | None:
    rem = a.remediation
    if rem is not None and rem.expires_at is not None and a.now >= rem.expires_at:
        return say(f"This request expired at {when(rem.expires_at)}")
    return None


def _same_org(a: Attempt) -> Text | None:
    reason = org_reason(a.actor, a.settings)
    return None if reason is None else say(reason)


def org_reason(actor: Actor, settings: Settings) -> str | None:
    """Why ``actor`` (of another workspace or Enterprise Grid organisation) may do nothing, or None."""
    if settings.slack_team_id and actor.team_id != settings.slack_team_id:
        return "Only members of this workspace can do this"
    if settings.slack_enterprise_id and actor.enterprise_id != settings.slack_enterprise_id:
        return "Only members of this organisation can do this"
    return None


def _has_approvers(a: Attempt) -> Text | None:
    rem = a.remediation
    if rem is not None and not rem.approvers:
        return say("Nobody can approve this: no approvers are configured for it")
    return None


def _is_approver(a: Attempt) -> Text | None:
    rem = a.remediation
    if rem is None:
        return None
    uid = a.actor.user_id
    reason = member_reason(uid, rem.approvers, a.directory, say("Only ", _listed(rem.approvers), " can approve this"))
    if reason is None and a.settings.approvers:
        reason = member_reason(uid, a.settings.approvers, a.directory,
                               say("Approvers must also be ", _listed(a.settings.approvers)))
    return reason


def _listed(ids: Sequence[str]) -> Text:
    """``@U1 or members of @S2``."""
    users = [i for i in ids if not i.startswith("S")]
    groups = [i for i in ids if i.startswith("S")]
    parts: list[Text] = []
    if users:
        parts.append(people(users))
    if groups:
        parts.append(say("members of ", people(groups)))
    return say(*(say(" or ", p) if i else p for i, p in enumerate(parts)))


def _not_requester(a: Attempt) -> Text | None:
    rem = a.remediation
    if rem is not None and rem.requester is not None and rem.requester == a.actor.user_id:
        return say("You cannot approve your own request")
    return None


def _not_voted(a: Attempt) -> Text | None:
    rem = a.remediation
    if rem is not None and any(v.user_id == a.actor.user_id for v in approvals(rem)):
        missing = rem.quorum - len(approvals(rem))
        voted = {v.user_id for v in approvals(rem)}
        others = [x for x in rem.approvers if x not in voted]  # not the people who already approved
        waiting = f"You already approved this; waiting for {_plural(missing, 'more approval')}"
        return say(waiting, " from ", people(others)) if others else say(waiting)
    return None


OPEN = Requirement("open", _open)
NOT_EXPIRED = Requirement("not_expired", _not_expired)
SAME_ORG = Requirement("same_org", _same_org)
HAS_APPROVERS = Requirement("has_approvers", _has_approvers)
IS_APPROVER = Requirement("is_approver", _is_approver)
NOT_REQUESTER = Requirement("not_requester", _not_requester)
NOT_VOTED = Requirement("not_voted", _not_voted)

APPROVE_CHECKS: tuple[Requirement, ...] = (OPEN, NOT_EXPIRED, SAME_ORG, HAS_APPROVERS, IS_APPROVER, NOT_REQUESTER,
                                           NOT_VOTED)
REJECT_CHECKS: tuple[Requirement, ...] = (OPEN, NOT_EXPIRED, SAME_ORG, HAS_APPROVERS, IS_APPROVER)


def first_refusal(checks: Sequence[Requirement], attempt: Attempt) -> Refusal | None:
    for req in checks:
        reason = req.check(attempt)
        if reason is not None:
            return Refusal(req.name, reason)
    return None


def admin_reason(actor: Actor, settings: Settings, directory: Directory | None, *,
                 doing: str = "pause or resume remediation") -> Text | None:
    """Why ``actor`` may not do an admin's ``doing``, or None."""
    reason = org_reason(actor, settings)
    if reason is not None:
        return say(reason)
    if not settings.admins:
        return say("Nobody can do this: no admins are configured")
    return member_reason(actor.user_id, settings.admins, directory,
                         say("Only ", _listed(settings.admins), f" can {doing}"))


def undo_requester_reason(actor: Actor, remediation: Remediation, settings: Settings,
                          directory: Directory | None) -> Text | None:
    """Why ``actor`` may not ask to undo ``remediation``, or None.

    Undo can be asked for by the remediation's approvers as approval resolves them (its users and
    user groups, narrowed by the global ``approvers`` allowlist) and by the admins; anyone else
    could otherwise reopen what was fixed (the undo still needs approval, but the request itself
    is a privilege). Nobody configured means nobody may ask.
    """
    if settings.admins and member_reason(actor.user_id, settings.admins, directory, say("no")) is None:
        return None
    approvers = remediation.approvers
    who = [_listed(ids) for ids in (approvers, settings.admins) if ids]
    refusal = say("Only ", *(say(" or ", w) if i else w for i, w in enumerate(who)), " can ask to undo this") if who \
        else say("Nobody can ask to undo this: no approvers or admins")
    if not approvers:
        return refusal
    reason = member_reason(actor.user_id, approvers, directory, refusal)
    if reason is None and settings.approvers:
        reason = member_reason(actor.user_id, settings.approvers, directory,
                               say(refusal, "; approvers must also be ", _listed(settings.approvers)))
    return reason


def terms(playbook: Playbook | None, settings: Settings, *, fallback: bool = False) -> tuple[tuple[str, ...], int]:
    """(approvers, quorum) for a new request under ``playbook``: its approver roles resolved to
    Slack ids by ``settings.approver_roles`` (an unmapped role adds nobody: fail closed).

    ``fallback``: an ``approval: auto`` playbook that needs a human (paused, budget spent): the
    admins approve, one of them unless ``min_quorum`` says more.
    """
    if playbook is None or fallback or playbook.approval.mode == "auto":
        return settings.admins, max(1, settings.min_quorum)
    approvers = resolve(playbook.approval.approvers, settings.approver_roles)  # roles → the deployment's ids
    quorum = max(playbook.approval.quorum, 1, settings.min_quorum)
    return staffed(approvers, quorum, settings.admins), quorum


def staffed(approvers: tuple[str, ...], quorum: int, admins: Sequence[str]) -> tuple[str, ...]:
    """``approvers``, with the admins added when fewer people than ``quorum`` could approve: a
    quorum raised above what the playbook lists (``min_quorum``, or two people for a one-way or
    cost-bearing change) would otherwise leave a request nobody can approve. A user group (``S…``)
    counts as enough people; individual users count one each. Without admins nothing is added, and
    the request says how many approvals it needs from whom (it stays unapprovable: fail closed)."""
    if any(a.startswith("S") for a in approvers) or len(approvers) >= quorum:
        return approvers
    return approvers + tuple(a for a in admins if a not in approvers)

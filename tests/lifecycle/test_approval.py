"""Approval requirements as named checks: each returns the reason the clicker sees, or None."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from remediator.config.settings import Settings
from remediator.lifecycle.approval import (
    APPROVE_CHECKS,
    REJECT_CHECKS,
    Actor,
    Attempt,
    MembershipUnknown,
    Need,
    admin_reason,
    first_refusal,
    is_member,
    need,
    requirement_text,
    state_text,
    terms,
)
from remediator.lifecycle.model import ApprovalVote, Remediation, State
from remediator.lifecycle.text import Mention, Text, people, say
from tests.support.engine import PLAYBOOKS, ROLES, StaticDirectory

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TEAM = "T0TEAM00001"
GROUP = "S0614TZR7"
SETTINGS = Settings(slack_team_id=TEAM, admins=("U0ADMIN0001",), approver_roles=ROLES)
DIRECTORY = StaticDirectory({GROUP: ["U0MEMBER001", "U0MEMBER002"]})


def _rem(**kw: object) -> Remediation:
    base = Remediation(
        id="r1", dedup_key="p|/x", finding_id="f1", finding={}, playbook="nsg-close-management-ports", risk="high",
        resource_id="/x", subscription_id=None, state="pending_approval", changes=(), fingerprint="sha256:1",
        approvers=(GROUP, "U05K8NQ2R7T"), quorum=2, created_at=NOW, updated_at=NOW,
        expires_at=NOW + timedelta(hours=4),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _vote(user: str, decision: str = "approve", reason: str = "") -> ApprovalVote:
    return ApprovalVote(user_id=user, team_id=TEAM, enterprise_id=None, at=NOW,
                        decision="reject" if decision == "reject" else "approve", reason=reason)


def _check(rem: Remediation | None, user: str, *, team: str | None = TEAM, now: datetime = NOW,
           settings: Settings = SETTINGS, checks: tuple = APPROVE_CHECKS) -> tuple[str, str] | None:  # type: ignore[type-arg]
    attempt = Attempt(remediation=rem, actor=Actor(user_id=user, team_id=team), now=now, settings=settings,
                      directory=DIRECTORY)
    refusal = first_refusal(checks, attempt)
    return None if refusal is None else (refusal.check, refusal.reason.plain())


def test_reasons_name_people_by_id_and_write_no_markup() -> None:
    rem = _rem()
    attempt = Attempt(remediation=rem, actor=Actor(user_id="U0STRANGER1", team_id=TEAM), now=NOW,
                      settings=SETTINGS, directory=DIRECTORY)
    refusal = first_refusal(APPROVE_CHECKS, attempt)
    assert refusal is not None
    assert refusal.reason == say("Only ", Mention("U05K8NQ2R7T"), " or members of ", Mention(GROUP),
                                 " can approve this")
    assert refusal.reason.mentions() == (Mention("U05K8NQ2R7T"), Mention(GROUP))
    assert Mention(GROUP).group
    assert not Mention("W05K8NQ2R7T").group
    assert people(["U05K8NQ2R7T", GROUP]) == Text((Mention("U05K8NQ2R7T"), ", ", Mention(GROUP)))
    assert not any("<" in part for part in refusal.reason.parts if isinstance(part, str))


def test_checks_in_order() -> None:
    assert _check(None, "U0MEMBER001") == ("open", "This request no longer exists")
    assert _check(_rem(state="approved", votes=(_vote("U0MEMBER001"),)), "U0MEMBER002") == \
        ("open", "Already approved by @U0MEMBER001")
    assert _check(_rem(), "U0MEMBER001", now=NOW + timedelta(hours=4)) == \
        ("not_expired", "This request expired at 2026-11-25 16:00 UTC")
    assert _check(_rem(), "U0MEMBER001", team="T0OTHER0001") == \
        ("same_org", "Only members of this workspace can do this")
    assert _check(_rem(approvers=()), "U0MEMBER001") == \
        ("has_approvers", "Nobody can approve this: no approvers are configured for it")
    assert _check(_rem(), "U0STRANGER1") == \
        ("is_approver", "Only @U05K8NQ2R7T or members of @S0614TZR7 can approve this")
    assert _check(_rem(requester="U0MEMBER001"), "U0MEMBER001") == \
        ("not_requester", "You cannot approve your own request")
    assert _check(_rem(votes=(_vote("U0MEMBER001"),)), "U0MEMBER001") == \
        ("not_voted", "You already approved this; waiting for 1 more approval from @S0614TZR7, "
                      "@U05K8NQ2R7T")
    assert _check(_rem(), "U0MEMBER001") is None
    assert _check(_rem(), "U05K8NQ2R7T") is None
    assert _check(_rem(votes=(_vote("U05K8NQ2R7T"),)), "U05K8NQ2R7T") == \
        ("not_voted", "You already approved this; waiting for 1 more approval from @S0614TZR7")


def test_reject_needs_authorisation_but_not_separation_of_duties() -> None:
    assert _check(_rem(requester="U0MEMBER001"), "U0MEMBER001", checks=REJECT_CHECKS) is None
    assert _check(_rem(votes=(_vote("U0MEMBER001"),)), "U0MEMBER001", checks=REJECT_CHECKS) is None
    assert _check(_rem(), "U0STRANGER1", checks=REJECT_CHECKS) is not None


def test_no_team_configured_accepts_any_team() -> None:
    assert _check(_rem(), "U0MEMBER001", team="T0OTHER0001", settings=Settings()) is None


def test_membership() -> None:
    assert is_member("U1", ["U1"], None)
    assert not is_member("U0MEMBER001", [GROUP], None)  # no directory: groups match nobody
    assert is_member("U0MEMBER001", [GROUP], DIRECTORY)
    broken = StaticDirectory({})
    broken.broken = True
    with pytest.raises(MembershipUnknown):
        is_member("U0MEMBER001", [GROUP], broken)
    assert is_member("U1", ["U1", GROUP], broken)  # listed users never need the directory


@pytest.mark.parametrize(
    ("state", "extra", "text"),
    [
        ("approved", {"votes": (_vote("U1"), _vote("U2"))}, "Already approved by @U1, @U2"),
        ("applied", {}, "Already approved by auto-remediation"),
        ("rejected", {"votes": (_vote("U1", "reject", "<!channel> no"),)}, "Already rejected by @U1"),
        ("expired", {}, "This request expired at 2026-11-25 16:00 UTC"),
        ("stale", {}, "This plan is out of date: the resource changed, and a new request replaces it"),
        ("failed", {"error": "<!channel> boom"}, "This remediation failed; the reason is in the message's thread"),
        ("rolled_back", {}, "This remediation was applied and later rolled back"),
        ("no_change", {}, "Nothing to do: the resource is already compliant"),
        ("exempt", {}, "This resource is exempt from this playbook"),
        ("planned", {}, "This request is not waiting for approval (it is planned)"),
    ],
)
def test_state_texts_carry_no_user_text(state: State, extra: dict[str, object], text: str) -> None:
    assert state_text(_rem(state=state, **extra)).plain() == text


def test_requirement_is_data_and_its_words() -> None:
    one = _rem(approvers=(GROUP,), quorum=1)
    assert need(one, SETTINGS) == Need(approvers=(GROUP,), quorum=1)
    assert (need(one, SETTINGS).groups, need(one, SETTINGS).users, need(one, SETTINGS).missing) == ((GROUP,), (), 1)
    assert requirement_text(one, SETTINGS).plain() == "1 approval from @S0614TZR7"
    two = _rem()
    assert requirement_text(two, SETTINGS).plain() == "0 of 2 approvals from @S0614TZR7, @U05K8NQ2R7T"
    voted = _rem(votes=(_vote("U05K8NQ2R7T"), _vote("U0MEMBER001", "reject")))
    assert need(voted, SETTINGS) == Need(approvers=(GROUP, "U05K8NQ2R7T"), quorum=2, approved_by=("U05K8NQ2R7T",))
    assert need(voted, SETTINGS).missing == 1
    assert requirement_text(voted, SETTINGS).plain() == \
        "1 of 2 approvals from @S0614TZR7, @U05K8NQ2R7T; approved by @U05K8NQ2R7T"
    narrowed = Settings(approvers=("S0SECURITY1",))
    assert need(one, narrowed).narrowed_to == ("S0SECURITY1",)
    assert requirement_text(one, narrowed).plain() == "1 approval from @S0614TZR7 (who must also be in @S0SECURITY1)"
    assert requirement_text(_rem(approvers=()), SETTINGS).plain() == \
        "nobody can approve this: no approvers are configured"
    assert requirement_text(_rem(state="expired"), SETTINGS).plain() == "This request expired at 2026-11-25 16:00 UTC"
    assert requirement_text(voted, SETTINGS).mentions() == (Mention(GROUP), Mention("U05K8NQ2R7T"),
                                                            Mention("U05K8NQ2R7T"))


def test_terms_are_additive() -> None:
    nsg = PLAYBOOKS.get("nsg-close-management-ports")
    rbac = PLAYBOOKS.get("rbac-revoke-excess-permissions")
    auto = PLAYBOOKS.get("storage-disable-public-blob-access")
    assert terms(nsg, SETTINGS) == (("S0614TZR7",), 1)
    assert terms(rbac, SETTINGS) == (("S0614TZR7", "U05K8NQ2R7T", "U05M3XH9V4P"), 2)
    assert terms(rbac, Settings(min_quorum=3, approver_roles=ROLES)) == (("S0614TZR7", "U05K8NQ2R7T", "U05M3XH9V4P"),
                                                                         3)
    assert terms(rbac, Settings(min_quorum=1, approver_roles=ROLES)) == (("S0614TZR7", "U05K8NQ2R7T", "U05M3XH9V4P"),
                                                                         2)  # never lowers
    assert terms(auto, SETTINGS) == (("U0ADMIN0001",), 1)  # an auto playbook that needs a human: the admins
    assert terms(None, Settings()) == ((), 1)  # no admins: nobody


def test_terms_resolve_roles_and_an_unmapped_role_adds_nobody() -> None:
    rbac = PLAYBOOKS.get("rbac-revoke-excess-permissions")
    assert rbac is not None
    assert rbac.approval.approvers == ("security-oncall", "security-leads")  # roles, no workspace ids
    roles = {"security-oncall": ("S0OTHERSEC1",), "security-leads": ("U0LEAD0001",)}
    assert terms(rbac, Settings(approver_roles=roles)) == (("S0OTHERSEC1", "U0LEAD0001"), 2)
    # one role mapped: only its people; none mapped: nobody can approve (fail closed)
    assert terms(rbac, Settings(approver_roles={"security-leads": ("U0LEAD0001",)})) == (("U0LEAD0001",), 2)
    assert terms(rbac, Settings()) == ((), 2)


def test_admin_reason() -> None:
    assert admin_reason(Actor(user_id="U0ADMIN0001", team_id=TEAM), SETTINGS, None) is None
    assert admin_reason(Actor(user_id="U0ADMIN0001", team_id="T0OTHER0001"), SETTINGS, None) == \
        say("Only members of this workspace can do this")
    assert admin_reason(Actor(user_id="U1"), Settings(), None) == say("Nobody can do this: no admins are configured")
    group_admins = Settings(admins=(GROUP,))
    assert admin_reason(Actor(user_id="U0MEMBER002"), group_admins, DIRECTORY) is None
    assert admin_reason(Actor(user_id="U0STRANGER1"), group_admins, DIRECTORY) == \
        say("Only members of ", Mention(GROUP), " can pause or resume remediation")
    assert admin_reason(Actor(user_id="U0STRANGER1"), group_admins, DIRECTORY, doing="run the preflight") == \
        say("Only members of ", Mention(GROUP), " can run the preflight")


def test_actor_vote_and_audit() -> None:
    actor = Actor(user_id="U1", team_id=TEAM, enterprise_id="E1", name="alice")
    assert actor.tag == "slack:U1"
    assert actor.audit() == {"user_id": "U1", "team_id": TEAM, "enterprise_id": "E1", "name": "alice"}
    vote = actor.vote(NOW, decision="reject", reason="not now")
    assert (vote.decision, vote.reason, vote.team_id, vote.enterprise_id) == ("reject", "not now", TEAM, "E1")

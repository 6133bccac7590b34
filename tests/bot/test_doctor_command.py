"""``/remediate doctor``: the preflight in Slack, for admins only, on the running deployment's own
store, identities and Slack client (the whole stack of ``tests.bot.world``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.actions.custom_roles import CUSTOM_ROLES, definition_document
from remediator.app.demo import DEMO_BROKER, DEMO_EXECUTOR
from tests.bot.world import SlackWorld, make_slack_world
from tests.support.builders import defender_plans
from tests.support.engine import ADMIN, STRANGER, sample_state

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
LOGS = "/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-logs/providers/" \
       "Microsoft.OperationalInsights/workspaces/law-central"


def _text(resp: Any) -> str:
    return str(json.loads(resp.body)["text"]) if resp.body else ""


def test_only_admins_may_run_it(world: SlackWorld) -> None:
    before = len(world.arm.requests)
    text = _text(world.command("doctor", STRANGER))
    assert text == f"Only <@{ADMIN}> can run the preflight"
    assert len(world.arm.requests) == before  # refused before any check ran
    assert [e.event for e in world.engine.audit_trail()][-1] == "doctor_refused"


@pytest.fixture
def logged_world(tmp_path: Path) -> Iterator[SlackWorld]:
    """The world of a deployment that sends resource logs to a workspace (as the template's default)."""
    yield from make_slack_world(tmp_path, diagnostics_workspace_id=LOGS)


def test_admin_sees_what_to_fix_then_all_pass(logged_world: SlackWorld) -> None:
    world = logged_world
    text = _text(world.command("doctor", ADMIN))
    assert text.startswith("*Preflight*\n```\n")
    lines = text.split("```")[1].strip().splitlines()
    assert lines[0].startswith("ok    playbooks: ")
    assert any(line.startswith("ok    slack token: bot U0FAKEBOT") for line in lines)
    assert any(line.startswith("FAIL  roles (executor, /subscriptions/") and "assign it Reader" in line
               for line in lines), lines
    assert any(line.startswith("FAIL  roles (broker, /subscriptions/") for line in lines), lines
    subs = {ids.parse(str(d["id"])).subscription_id for d in sample_state()} - {None}
    for sub in subs:
        world.arm.assign_role(DEMO_EXECUTOR, READER, f"/subscriptions/{sub}")
        world.arm.assign_role(DEMO_BROKER, RBAC_ADMIN, f"/subscriptions/{sub}")
        world.arm.load(defender_plans(str(sub)))
        # the deployment's custom roles (infra/custom-roles.bicep), assignable at the subscription
        world.arm.load(definition_document(r, [f"/subscriptions/{sub}"]) for r in CUSTOM_ROLES.values())
    world.arm.assign_role(DEMO_BROKER, RBAC_ADMIN, LOGS)  # may grant at the log destination (a linked scope)
    text = _text(world.command("doctor", ADMIN))
    lines = text.split("```")[1].strip().splitlines()
    assert all(line.startswith("ok") for line in lines[:-1]), lines
    assert lines[-1] == "all checks passed"
    assert world.writes() == []
    assert "doctor" in [e.event for e in world.engine.audit_trail()]


def test_help_lists_it(world: SlackWorld) -> None:
    assert "`/remediate doctor` preflight" in _text(world.command("help", ADMIN))


def test_a_long_preflight_keeps_every_problem_and_the_verdict_within_slacks_limit() -> None:
    """A big estate's preflight runs past a reply's 3,000 characters: cut at the end it lost the verdict and the
    problems after the cut. Every FAIL line (its head and what to do) and the verdict stay; passed checks fill
    what room is left and the rest are counted."""
    from bot.app import DOCTOR_BUDGET, _fit_checks

    oks = [f"ok    subscription {i:04d}: Defender plans Standard, export enabled" for i in range(80)]
    reads = ", ".join(f"Microsoft.X/t{i}/read" for i in range(300))
    fail = f"FAIL  roles (executor, /subscriptions/s1): may not {reads}: assign it Reader at the subscription"
    text = "\n".join([*oks[:40], fail, *oks[40:], "1 problem: fix it, then run doctor again"])
    fitted = _fit_checks(text)
    lines = fitted.splitlines()
    assert len(fitted) <= DOCTOR_BUDGET
    assert lines[-1] == "1 problem: fix it, then run doctor again"
    (problem,) = [line for line in lines if line.startswith("FAIL")]
    assert problem.startswith("FAIL  roles (executor, /subscriptions/s1): may not Microsoft.X/t0/read")
    assert problem.endswith(": assign it Reader at the subscription")
    shown = sum(line.startswith("ok    subscription") for line in lines)
    assert 0 < shown < 80
    assert f"ok    … and {80 - shown} more passed checks (remediator doctor prints every one)" in lines
    assert _fit_checks("ok    a\nall checks passed") == "ok    a\nall checks passed"  # short: unchanged

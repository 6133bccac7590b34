"""The terminal chat port and the prompt that answers pending requests (for ``remediator demo``)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest

from remediator.app.console import ConsoleChat, GroupDirectory, answer_pending, eligible, plain, printable
from remediator.app.demo import DEMO_EXECUTOR, sample_records, with_demo_private_link
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.text import Mention, people, say
from remediator.privilege.elevation import StandingElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.engine import PLAYBOOKS, ROLES, FakeClock, deliver, sample_state

GROUPS = {"S0614TZR7": ["U0ALICE0001", "U0BOB000001"], "S0615PLT8Q": ["U0CAROL0001"]}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Engine, io.StringIO, FakeArm]]:
    out = io.StringIO()
    directory = GroupDirectory(GROUPS)
    settings = with_demo_private_link(Settings(approver_roles=ROLES, admins=("U0ADMIN0001",),
                                               executor_principal_id=DEMO_EXECUTOR, elevation="standing",
                                               group_wait=timedelta(0)))
    clock = FakeClock()
    with FakeArm() as arm, SQLiteStore(tmp_path / "demo.db", clock=clock) as store:
        arm.load(sample_state())
        clients = arm.clients()
        chat = ConsoleChat(out)
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                        clients=clients, elevator=StandingElevator(), chat=chat, directory=directory, clock=clock)
        chat.requirement = engine.requirement
        yield engine, out, arm


def test_printable_and_plain() -> None:
    assert printable("a\x1b[31mred\x07\nnext") == "a?[31mred? next"
    assert plain(say("1 of 2 approvals from ", people(["S0614TZR7", "U05K8NQ2R7T"]))) == \
        "1 of 2 approvals from @S0614TZR7, @U05K8NQ2R7T"
    assert plain(say("a\x1b[31m", Mention("U1"), "\nnext")) == "a?[31m@U1 next"


def test_the_whole_loop_with_approve_all(demo: tuple[Engine, io.StringIO, FakeArm]) -> None:
    engine, out, arm = demo
    results = deliver(engine, cast(SQLiteStore, engine.store), sample_records(), source="demo")
    # + the AI estate (its private-link fix last)
    assert [r.outcome for r in results] == ["changes"] * 5 + ["exempt", "ignored"] + ["changes"] * 7
    engine.work()
    text = out.getvalue()
    assert "[Approval needed]" in text
    assert "needs: 0 of 2 approvals from @S0614TZR7, @U05K8NQ2R7T, @U05M3XH9V4P" in text
    assert "<!channel>" not in text  # the sample alert's description is not printed raw (nor at all)
    assert answer_pending(engine, out=out, directory=GroupDirectory(GROUPS), approve_all=True) == 11
    engine.work()
    states = sorted(r.state for r in engine.store.list())
    assert states == ["applied"] * 12 + ["exempt"]
    assert out.getvalue().count("Applied and verified") == 12
    assert len(arm.writes) == 19  # the private-link fix writes 3: endpoint, DNS zone group, public access


def test_prompt_answers(demo: tuple[Engine, io.StringIO, FakeArm]) -> None:
    engine, out, _arm = demo
    engine.ingest(sample_records(), source="demo")
    engine.work()  # the plan job, then the announce and post jobs
    answers = iter(["r", "s", "a", "x"])
    approved = answer_pending(engine, out=out, directory=GroupDirectory(GROUPS), ask=lambda _: next(answers, "s"))
    assert approved == 1
    states = sorted(r.state for r in engine.store.list())
    assert states.count("rejected") == 1
    assert states.count("pending_approval") == 9  # 11 asked: one rejected, one approved


def test_eligible_never_includes_the_requester(demo: tuple[Engine, io.StringIO, FakeArm]) -> None:
    engine, _out, _ = demo
    (result,) = [r for r in deliver(engine, cast(SQLiteStore, engine.store), sample_records(), source="demo")
                 if r.remediation is not None and r.remediation.playbook == "rbac-revoke-excess-permissions"]
    assert result.remediation is not None
    rem = result.remediation
    directory = GroupDirectory(GROUPS)
    assert eligible(engine, rem, directory) == ["U05K8NQ2R7T", "U05M3XH9V4P", "U0ALICE0001", "U0BOB000001"]
    assert "U0ALICE0001" not in eligible(engine, replace(rem, requester="U0ALICE0001"), directory)


def test_the_console_request_shows_what_the_plan_could_not_check(demo: tuple[Engine, io.StringIO, FakeArm]) -> None:
    engine, out, arm = demo
    nic_id = ("/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-prod-web/providers/"
              "Microsoft.Network/networkInterfaces/vm-jump-01-nic")
    nic = arm.get(nic_id)
    assert nic is not None
    gone = nic_id.replace("networkInterfaces/vm-jump-01-nic", "virtualNetworks/vnet-gone/subnets/snet-\x1b[31mred")
    nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] = gone
    arm.add(nic)
    records = [r for r in sample_records() if getattr(r, "resource_type", "").endswith("virtualMachines")]
    assert records
    deliver(engine, cast(SQLiteStore, engine.store), records, source="demo")
    engine.work()
    (rem,) = [r for r in engine.pending() if r.warnings]
    text = out.getvalue()
    request = text[text.index(f"id {rem.id})"):]
    line = next(x for x in request.splitlines() if x.startswith("  not checked: "))
    assert line == "  not checked: " + printable(rem.warnings[0])
    assert "subnets/snet-?[31mred not in the resource state" in line
    assert "\x1b" not in text
    assert request.index("  not checked: ") < request.index("  needs: ")


def test_a_long_plan_is_folded_after_a_few_changes() -> None:
    """Fifty changes are eight lines and one that says how many more (and where to see them all)."""
    from datetime import UTC, datetime

    from remediator.app.console import CHANGES_SHOWN
    from remediator.lifecycle.model import Remediation

    now = datetime(2026, 12, 1, tzinfo=UTC)
    nsg = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg"
    changes = [{"action": "network.restrict-inbound", "resource_id": f"{nsg}/securityRules/r{i}", "operation": "delete",
                "before": {"name": f"r{i}"}, "after": None, "note": f"nsg/r{i}: delete (Allow Tcp 22 from *)"}
               for i in range(50)]
    rem = Remediation(id="AbCdEfGh0123456789abcd", dedup_key="k", finding_id="f", finding={"title": "t"},
                      playbook="nsg-close-management-ports", risk="medium", resource_id=nsg, subscription_id=None,
                      state="pending_approval", changes=changes, fingerprint=None, created_at=now, updated_at=now)
    out = io.StringIO()
    ConsoleChat(out).post_approval(rem)
    lines = out.getvalue().splitlines()
    assert [line for line in lines if line.startswith("  - ")] == \
        [f"  - nsg/r{i}: delete (Allow Tcp 22 from *)" for i in range(CHANGES_SHOWN)]
    assert "  … 42 more changes (remediator plan prints every one)" in lines
    assert lines[0] == ("[Approval needed] AbCdEfGh nsg-close-management-ports nsg "
                        "(risk medium; id AbCdEfGh0123456789abcd)")


def test_a_digest_names_its_first_requests_and_counts_the_rest() -> None:
    from datetime import UTC, datetime

    from remediator.lifecycle.model import Remediation

    now = datetime(2026, 12, 1, tzinfo=UTC)
    acct = "/subscriptions/s1/resourceGroups/rg-web/providers/Microsoft.Storage/storageAccounts/"
    rems = [Remediation(id=f"R{i:07d}xxxxxxxxxxxxxx", dedup_key=str(i), finding_id=str(i), finding={},
                        playbook="storage-restrict-network-access", risk="medium", resource_id=f"{acct}sa{i}",
                        subscription_id=None, state="pending_approval", changes=(), fingerprint=None,
                        created_at=now, updated_at=now) for i in range(12)]
    out = io.StringIO()
    chat = ConsoleChat(out)
    chat.post_digest(rems, playbook="storage-restrict-network-access", group="rg-web")
    lines = out.getvalue().strip().splitlines()
    assert lines[0] == "[Digest] 12 requests of storage-restrict-network-access in rg-web:"
    assert lines[1:9] == [f"  R{i:07d} storage-restrict-network-access sa{i}" for i in range(8)]
    assert lines[9:] == ["  … 4 more requests"]
    chat.update_approval(rems[11])  # known from the digest: nothing new to print
    assert out.getvalue().strip().splitlines()[-1] == "  … 4 more requests"

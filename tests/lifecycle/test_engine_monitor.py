"""The engine on the monitoring fixes: the deployment settings reach the plans (Runtime.planner).

A missing diagnostic setting is fixed on its own (low risk, approval auto) to the configured workspace;
a Defender plan switched off waits for two approvers, then is written under a grant at the
subscription; without ``diagnostics_workspace_id`` nothing is written and the reason names it.
"""

from __future__ import annotations

from pathlib import Path

from remediator.findings.parse import parse_value
from tests.support.builders import policy_event
from tests.support.contract import ACCOUNT, LOGS, SUB, account, free_storage_plan
from tests.support.engine import LEAD1, LEAD2, make_world

AI_POLICY = "1b4d1c4e-934c-4703-944c-27c82c06bebb"  # Diagnostic logs in Azure AI services resources should be enabled
STORAGE_PLAN_POLICY = "640d2586-54d2-465f-877f-9ffc1d2109f4"  # Microsoft Defender for Storage should be enabled
SETTING = f"{ACCOUNT}/providers/Microsoft.Insights/diagnosticSettings/remediator-audit"
PRICING = f"/subscriptions/{SUB}/providers/Microsoft.Security/pricings/StorageAccounts"


def test_a_missing_diagnostic_setting_is_fixed_on_its_own(tmp_path: Path) -> None:
    for world in make_world(tmp_path, docs=account(), diagnostics_workspace_id=LOGS):
        rem = world.ingest_one(parse_value([policy_event(ACCOUNT, AI_POLICY)], source="test"))
        assert (rem.state, rem.playbook) == ("approved", "diagnostics-enable-audit-logs")
        world.engine.work()
        assert world.rem(rem.id).state == "applied"
        written = world.arm.get(SETTING)
        assert written is not None
        assert written["properties"]["workspaceId"] == LOGS
        elevated = [(e.detail["role"], e.detail["scope"]) for e in world.trail(rem.id) if e.event == "elevated"]
        # the setting's write at the account, and the workspace ARM checks as a linked scope of it
        assert elevated == [("Monitoring Contributor", ACCOUNT), ("Monitoring Contributor", LOGS)]


def test_without_the_workspace_setting_nothing_is_written(tmp_path: Path) -> None:
    for world in make_world(tmp_path, docs=account()):
        (planned,) = world.deliver(parse_value([policy_event(ACCOUNT, AI_POLICY)], source="test"))
        world.engine.work()
        assert world.arm.writes == []
        reason = planned.reason or (planned.remediation.reason if planned.remediation else "")
        assert "diagnostics_workspace_id" in reason, planned


def test_a_defender_plan_waits_for_two_approvers_and_is_granted_at_the_subscription(tmp_path: Path) -> None:
    for world in make_world(tmp_path, docs=free_storage_plan()):
        rem = world.ingest_one(parse_value([policy_event(f"/subscriptions/{SUB}", STORAGE_PLAN_POLICY)],
                                           source="test"))
        assert (rem.playbook, rem.quorum) == ("defender-enable-storage", 2)
        world.engine.work()
        assert world.engine.approve(rem.id, world.actor(LEAD1)).ok
        assert world.rem(rem.id).state == "pending_approval"
        assert world.engine.approve(rem.id, world.actor(LEAD2)).ok
        world.engine.work()
        assert world.rem(rem.id).state == "applied"
        assert world.arm.get(PRICING)["properties"]["pricingTier"] == "Standard"  # type: ignore[index]
        elevated = next(e for e in world.trail(rem.id) if e.event == "elevated")
        assert (elevated.detail["role"], elevated.detail["scope"]) == ("Security Admin", f"/subscriptions/{SUB}")

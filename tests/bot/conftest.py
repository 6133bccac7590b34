"""Fixtures for the Slack side: a started FakeSlack, settings pointing at it, remediations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from remediator.config.settings import Settings
from remediator.lifecycle.model import ApprovalVote, Remediation
from remediator.testing.fake_slack import FakeSlack
from tests.bot.world import server, world  # noqa: F401 - the shared fixtures, for every test here
from tests.support.engine import ROLES

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
NSG = f"/subscriptions/{SUB}/resourceGroups/rg-prod-web/providers/Microsoft.Network/networkSecurityGroups/nsg-jump"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-prod-web/providers/Microsoft.Compute/virtualMachines/vm-jump-01"
TEAM = "T0FAKE"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def rule(name: str, port: str, source: str = "*") -> dict[str, Any]:
    return {"name": name, "properties": {"access": "Allow", "direction": "Inbound", "priority": 100,
                                         "protocol": "Tcp", "sourceAddressPrefix": source,
                                         "destinationPortRange": port}}


def nsg(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"id": NSG, "name": "nsg-jump", "type": "Microsoft.Network/networkSecurityGroups",
            "properties": {"securityRules": list(rules)}}


def make_remediation(**overrides: Any) -> Remediation:
    before = nsg(rule("allow-ssh", "22"), rule("allow-https", "443"))
    after = nsg(rule("allow-https", "443"))
    base = Remediation(
        id="r-0123456789abcdef",
        dedup_key=f"nsg-close-management-ports|{NSG.lower()}",
        finding_id="f-1",
        finding={"id": "f-1", "kind": "recommendation", "type": "bc303248-3d14-44c2-96a0-55f5c326b5fe",
                 "title": "Management ports should be closed on your virtual machines", "severity": "Medium",
                 "resource_id": VM, "subscription_id": SUB,
                 "description": "Management ports are open to all sources"},
        playbook="nsg-close-management-ports",
        risk="medium",
        resource_id=VM,
        subscription_id=SUB,
        state="pending_approval",
        changes=[{"action": "network.restrict-inbound", "resource_id": NSG, "operation": "update",
                  "before": before, "after": after, "note": "close 22 to the Internet"}],
        fingerprint="sha256:" + "ab" * 32,
        approvers=("S0SECONCALL",),
        quorum=1,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(hours=2),
        message={"channel": "C0APPROVALS", "ts": "1700000000.000001"},
        version="1",
    )
    return replace(base, **overrides)


def vote(user: str, decision: str = "approve", reason: str = "") -> ApprovalVote:
    return ApprovalVote(user_id=user, team_id=TEAM, enterprise_id=None, at=NOW,
                        decision=decision, reason=reason)  # type: ignore[arg-type]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(team_id=TEAM, groups={"S0SECONCALL": ["U0ALICE", "U0BOB"]}) as fake:
        yield fake


def bot_settings(slack: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": slack.token, "slack_signing_secret": slack.signing_secret, "slack_app_token": "xapp-fake",
        "slack_channel": "C0APPROVALS", "slack_api_url": slack.base_url, "slack_team_id": TEAM,
        "admins": ("U0ADMIN",), "approver_roles": ROLES, **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings(slack: FakeSlack) -> Settings:
    return bot_settings(slack)

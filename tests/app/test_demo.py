"""``remediator demo`` end to end: the shipped samples, the AI estate among them, are planned, asked,
approved (quorum 2 where the playbook says so), applied under PIM grants on the simulated ARM and
audited."""

from __future__ import annotations

import io
import re

import pytest

from remediator.app.demo import run_demo

AI_ESTATE = {
    "cognitive.restrict-network-access": "contoso-openai",
    "keyvault.enable-purge-protection": "contoso-model-keys",
    "disks.revoke-export-access": "llm-weights-disk",
    "disks.restrict-network-access": "llm-weights-disk",
    "acr.disable-anonymous-pull": "contosomodels",
    "policy.limit-exemption": "exempt-openai-network",
}


@pytest.fixture(scope="module")
def demo_output() -> str:
    out = io.StringIO()
    assert run_demo(out=out, approve_all=True) == 0
    return out.getvalue()


def test_the_dry_run_shows_the_ai_estate_and_says_what_is_irreversible(demo_output: str) -> None:
    dry_run = demo_output.split("=== 2.", maxsplit=1)[0]
    for action, name in AI_ESTATE.items():
        assert re.search(rf"{re.escape(name)}\S*\s+\[{re.escape(action)}\]", dry_run), action
    assert "IRREVERSIBLE: purge protection cannot be turned off" in dry_run
    assert "(no expiry): expiresOn none -> 2027-03-01T08:25:00Z" in dry_run


def test_every_ai_estate_fix_is_applied_under_its_own_grant_and_verified(demo_output: str) -> None:
    audit = demo_output.split("=== 5. Audit trail")[1]
    for action, name in AI_ESTATE.items():
        applied = [line for line in audit.splitlines() if "change_applied" in line and f"action={action} " in line]
        assert len(applied) == 1, action
        assert name in applied[0]
    grants = [line for line in audit.splitlines() if " elevated " in line]
    assert any("role=Key Vault Contributor" in g and g.split("scope=")[1].split()[0].endswith("/contoso-model-keys")
               for g in grants)
    assert any("role=Resource Policy Contributor" in g for g in grants)


def test_high_risk_fixes_waited_for_a_second_approver(demo_output: str) -> None:
    approvals = demo_output.split("=== 3.")[1].split("=== 4.", maxsplit=1)[0]
    assert approvals.count("1 of 2 approvals") >= 3  # purge protection, disk export, exemption


def test_two_fixes_of_one_account_both_apply_without_a_stale_reask(demo_output: str) -> None:
    """The OpenAI account's firewall and its key access are fixed by two playbooks approved together:
    the first write moves the document, but not what the second one writes or overwrites, so the
    second approval still holds (the fingerprint binds to the write, not to the whole document)."""
    audit = demo_output.split("=== 5. Audit trail")[1]
    for action in ("cognitive.restrict-network-access", "cognitive.disable-local-auth"):
        assert any("change_applied" in line and f"action={action} " in line for line in audit.splitlines())
    assert " stale " not in audit

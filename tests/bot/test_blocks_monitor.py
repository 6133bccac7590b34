"""The approval message of a Defender plan: what it costs is on the message itself, not past a fold."""

from __future__ import annotations

from bot import blocks
from remediator.actions import REGISTRY
from remediator.actions.defender import PRICING_PAGE
from remediator.azure.state import SavedState
from tests.bot.conftest import make_remediation
from tests.support.builders import plan_changes
from tests.support.contract import SUB, free_storage_plan


def test_the_cost_and_the_pricing_page_are_in_the_approval_message() -> None:
    (change,) = plan_changes(REGISTRY["defender.enable-plan"], SavedState(free_storage_plan()), f"/subscriptions/{SUB}",
                             plan="StorageAccounts", sub_plan="DefenderForStorageV2",
                             extensions=[{"name": "OnUploadMalwareScanning"}, {"name": "SensitiveDataDiscovery"}])
    plan, _folded = blocks.plan_section(make_remediation(changes=[change.to_json() | {"note": change.note}]))
    text = plan["text"]["text"]
    assert "# COST: Defender plan StorageAccounts is billed for what it covers" in text
    assert PRICING_PAGE in text

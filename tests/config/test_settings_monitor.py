"""The settings the monitoring fixes read: where resource logs go, validated like every other setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediator.config.settings import load_settings
from remediator.errors import ConfigError

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
WORKSPACE = f"/subscriptions/{SUB}/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/law"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-logs/providers/Microsoft.Storage/storageAccounts/stlogs"


def test_the_destinations_are_read_normalised_and_reach_the_plans() -> None:
    settings = load_settings({"REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID": WORKSPACE + "/",
                              "REMEDIATOR_DIAGNOSTICS_STORAGE_ACCOUNT_ID": ACCOUNT.replace("/rg-logs/", "//rg-logs/"),
                              "SLACK_BOT_TOKEN": "xoxb-secret"})
    assert (settings.diagnostics_workspace_id, settings.diagnostics_storage_account_id) == (WORKSPACE, ACCOUNT)
    for_actions = settings.for_actions()
    assert for_actions["diagnostics_workspace_id"] == WORKSPACE
    assert "slack_bot_token" not in for_actions  # plans never see a secret
    assert "xoxb-secret" not in repr(for_actions)


@pytest.mark.parametrize("value", [
    "law-central",                                                             # a name, not an id
    ACCOUNT,                                                                   # another type
    WORKSPACE.replace(SUB, "my-subscription"),                                 # not a subscription id
    f"/subscriptions/{SUB}/providers/Microsoft.OperationalInsights/workspaces/law",   # no resource group
])
def test_anything_but_a_workspace_id_is_one_line_naming_the_file_line_and_key(tmp_path: Path, value: str) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(f"store_url: sqlite:///x.db\ndiagnostics_workspace_id: '{value}'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings({}, file=config)
    (problem,) = err.value.problems
    assert problem.startswith(f"{config}:2: diagnostics_workspace_id: expected the id of a Log Analytics workspace "
                              "(/subscriptions/<subscription id>/resourceGroups/<group>/providers/"
                              "Microsoft.OperationalInsights/workspaces/<name>)")

"""``remediator plan --config FILE``: the deployment settings a plan reads, offline.

A diagnostic-settings fix needs ``diagnostics_workspace_id``: from the settings file (or the
environment) the plan creates the setting; without it the result is one refusal naming the setting;
a wrong value in the file is one line naming the file, the line and the key.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remediator.app.cli import main
from tests.conftest import ROOT
from tests.support.builders import policy_event
from tests.support.contract import ACCOUNT, LOGS, account

AI_POLICY = "1b4d1c4e-934c-4703-944c-27c82c06bebb"


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    for var in [v for v in os.environ if v.startswith("REMEDIATOR_")]:
        monkeypatch.delenv(var, raising=False)
    finding = tmp_path / "policy-event.json"
    finding.write_text(json.dumps([policy_event(ACCOUNT, AI_POLICY)]), encoding="utf-8")
    state = tmp_path / "state"
    state.mkdir()
    (state / "account.json").write_text(json.dumps(account()), encoding="utf-8")
    return finding, state


def _plan(*argv: str) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    code = main(["plan", *argv, "--output", "json"], out=out, stdin=io.StringIO(""))
    return code, json.loads(out.getvalue())


def test_plan_reads_the_workspace_from_the_settings_file(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    finding, state = inputs
    config = tmp_path / "settings.yaml"
    config.write_text(f"diagnostics_workspace_id: {LOGS}\n", encoding="utf-8")
    code, doc = _plan(str(finding), "--resources", str(state), "--config", str(config))
    assert code == 2
    (result,) = doc["results"]  # type: ignore[misc]
    assert (result["outcome"], result["playbook"]) == ("changes", "diagnostics-enable-audit-logs")
    (change,) = result["changes"]
    assert change["operation"] == "create"
    assert change["after"]["properties"]["workspaceId"] == LOGS


def test_plan_reads_the_workspace_from_the_environment(inputs: tuple[Path, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    finding, state = inputs
    monkeypatch.setenv("REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID", LOGS)
    code, doc = _plan(str(finding), "--resources", str(state))
    assert code == 2
    assert doc["results"][0]["changes"][0]["after"]["properties"]["workspaceId"] == LOGS  # type: ignore[index]


def test_without_the_setting_the_plan_refuses_naming_it(inputs: tuple[Path, Path]) -> None:
    finding, state = inputs
    code, doc = _plan(str(finding), "--resources", str(state))
    assert code == 1
    (result,) = doc["results"]  # type: ignore[misc]
    assert result["outcome"] == "error"
    assert "set diagnostics_workspace_id" in result["reason"]


def test_a_wrong_workspace_id_in_the_file_is_one_line(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    finding, state = inputs
    config = tmp_path / "settings.yaml"
    config.write_text("slack_channel: C0123456789\ndiagnostics_workspace_id: law-central\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "remediator", "plan", str(finding), "--resources", str(state),
                           "--config", str(config)], capture_output=True, cwd=ROOT, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")})
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert f"{config}:2: diagnostics_workspace_id: expected the id of a Log Analytics workspace" in err
    assert proc.stdout == b""

"""Every error is one line: without Azure credentials ``scan``, ``plan`` and ``doctor`` say in one
line what was tried and how to log in (not azure.identity's dozen lines); ``--verbose`` shows them."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remediator.app.cli import main
from tests.conftest import ROOT

SAMPLE = str(ROOT / "remediator" / "samples" / "findings" / "02-management-ports-assessment.json")
NO_AZURE = ("AZURE_", "IDENTITY_", "MSI_", "REMEDIATOR_", "SLACK_")


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(NO_AZURE):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("PATH", str(tmp_path))  # no az, no azd, no pwsh: as on a fresh machine
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(work)
    return work


def test_scan_without_credentials_is_one_line_naming_what_was_tried(
        no_credentials: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan"], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: Resource Graph subscriptions: no Azure credential (DefaultAzureCredential): tried ")
    assert "AzureCli" in err
    assert "log in with `az login`" in err
    assert "--verbose shows why each failed" in err
    assert "Attempted credentials" not in err
    assert os.listdir(no_credentials) == []  # and no store was created


def test_plan_against_live_state_without_credentials_prints_no_identity_warnings(
        no_credentials: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["plan", SAMPLE], out=out) == 1
    assert capsys.readouterr().err == ""
    [error] = [line for line in out.getvalue().splitlines() if "error:" in line]
    assert "no Azure credential (DefaultAzureCredential): tried " in error
    assert "log in with `az login`" in error


@pytest.mark.slow(reason="runs the CLI in a fresh interpreter (logging is configured per process)")
def test_verbose_shows_each_attempt_and_the_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(NO_AZURE)}
    env |= {"PATH": str(tmp_path), "HOME": str(tmp_path),
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    for argv in (["--verbose", "scan"], ["scan", "--verbose"]):
        proc = subprocess.run([sys.executable, "-m", "remediator", *argv], capture_output=True, cwd=tmp_path,
                              env=env, timeout=60, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1
        assert "Attempted credentials:" in err
        assert "Traceback (most recent call last)" in err
        assert err.splitlines()[-1].startswith("error: Resource Graph subscriptions: no Azure credential")

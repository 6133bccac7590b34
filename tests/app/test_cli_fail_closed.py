"""The evidence commands fail closed on what a user mistypes: a store that does not exist is
refused (never created and then reported as a clean, complete trail), and a report filter that
matches no playbook is an error with the closest names, not "No findings"."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from remediator.app.cli import main
from remediator.app.cli.output import EXIT_USAGE
from remediator.errors import UsageError
from remediator.store import SQLiteStore, open_store
from tests.conftest import ROOT
from tests.support.azurite import azurite_connection_string  # noqa: F401 - registers the session fixture

PLAYBOOKS = str(ROOT / "playbooks")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue(), capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["audit", "verify"],
    ["audit"],
    ["audit", "--output", "json"],
    ["report", "--period", "2026-Q3", "--playbooks", PLAYBOOKS],
])
@pytest.mark.parametrize("form", ["plain", "sqlite-url"])
def test_a_mistyped_store_is_refused_and_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     argv: list[str], form: str) -> None:
    typo = tmp_path / "remediatr.db"
    url = str(typo) if form == "plain" else f"sqlite:///{typo}"
    code, out, err = run([*argv, "--store", url], capsys)
    assert code == EXIT_USAGE
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: store {url}: no such file {typo}")
    assert not typo.exists()
    assert not any(tmp_path.iterdir())  # no -wal, no -shm either


def test_the_configured_store_is_refused_too(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REMEDIATOR_CONFIG", raising=False)
    monkeypatch.delenv("REMEDIATOR_STORE_URL", raising=False)
    code, _, err = run(["audit", "verify"], capsys)
    assert code == EXIT_USAGE
    assert "store sqlite:///remediator.db: no such file" in err
    assert not (tmp_path / "remediator.db").exists()


def test_an_existing_store_still_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SQLiteStore(tmp_path / "r.db").close()
    code, out, _ = run(["audit", "verify", "--store", str(tmp_path / "r.db")], capsys)
    assert code == 0
    assert out.startswith("OK: the audit trail is complete and unaltered")


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--control", "MCSB XX-1", "--control 'MCSB XX-1': no playbook serves this control; did you mean 'MCSB "),
    ("--control", "MSCB", "--control 'MSCB': no playbook serves this control; did you mean 'MCSB'?"),
    ("--playbook", "storage-disable-public-blob-acess",
     "--playbook 'storage-disable-public-blob-acess' matches no playbook; did you mean "
     "'storage-disable-public-blob-access'"),
    ("--playbook", "zzz*", "--playbook 'zzz*' matches no playbook (known: acr-disable-admin-user, "),
])
def test_a_filter_that_matches_nothing_is_an_error_with_did_you_mean(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, expected: str) -> None:
    SQLiteStore(tmp_path / "r.db").close()
    code, out, err = run(["report", "--period", "2026-Q3", "--store", str(tmp_path / "r.db"),
                          "--playbooks", PLAYBOOKS, flag, value], capsys)
    assert code == EXIT_USAGE
    assert out == ""
    assert err.count("\n") == 1, err
    assert expected in err, err


def test_filters_that_match_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SQLiteStore(tmp_path / "r.db").close()
    code, out, _ = run(["report", "--period", "2026-Q3", "--store", str(tmp_path / "r.db"), "--format", "md",
                        "--playbooks", PLAYBOOKS, "--control", "MCSB", "--control", "MCSB NS-2",
                        "--playbook", "storage-*"], capsys)
    assert code == 0
    assert "No findings" in out or "findings" in out.lower()


def test_an_azure_store_whose_tables_do_not_exist_is_refused_not_created(
        azurite_connection_string: str) -> None:  # noqa: F811
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(azurite_connection_string)
    before = {t.name for t in service.list_tables()}
    with pytest.raises(UsageError, match=r"^store azure://typo1: does not exist \(no table typo1remediations"):
        open_store("azure://typo1", connection_string=azurite_connection_string, must_exist=True)
    assert {t.name for t in service.list_tables()} == before
    open_store("azure://real1", connection_string=azurite_connection_string).close()  # created by the deployment
    open_store("azure://real1", connection_string=azurite_connection_string, must_exist=True).close()


def test_a_failed_scan_creates_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "export.json"
    bad.write_text('{"not": "a finding"', encoding="utf-8")
    code, _, err = run(["scan", "--from-file", str(bad)], capsys)
    assert code == 1
    assert err.count("\n") == 1, err
    assert os.listdir(tmp_path) == ["export.json"]


def test_a_scan_that_finds_nothing_creates_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REMEDIATOR_STORE_URL", raising=False)
    monkeypatch.delenv("REMEDIATOR_CONFIG", raising=False)
    empty = tmp_path / "export.json"
    empty.write_text("[]", encoding="utf-8")
    code, out, _ = run(["scan", "--from-file", str(empty)], capsys)
    assert code == 0
    assert out == "Nothing to ingest: the scan found no findings (store sqlite:///remediator.db not created).\n"
    assert os.listdir(tmp_path) == ["export.json"]

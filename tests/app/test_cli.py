"""The ``remediator`` command as playbook authors use it: plan, validate, schema, demo."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remediator.app.cli import main, validate
from remediator.store import SQLiteStore
from tests.conftest import ROOT

SAMPLES = ROOT / "remediator" / "samples"
FINDINGS = sorted(str(p) for p in (SAMPLES / "findings").glob("*.json"))
STATE = str(SAMPLES / "state")
GOLDEN = ROOT / "tests" / "golden"


def run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out, stdin=io.StringIO(stdin))
    return code, out.getvalue()


def test_plan_json_contract_on_samples() -> None:
    code, out = run(["plan", *FINDINGS, "--resources", STATE, "--output", "json"])
    assert code == 2
    doc = json.loads(out)
    assert set(doc) == {"results", "duplicates_folded"}
    assert doc["duplicates_folded"] == 0
    by_type = {r["finding"]["type"]: r for r in doc["results"]}
    for r in doc["results"]:
        assert set(r) - {"names"} == {"finding", "playbook", "outcome", "reason", "changes", "warnings"}
        assert set(r["finding"]) == {"id", "kind", "type", "resource_id"}
        assert r["outcome"] in {"changes", "no_changes", "no_match", "ignored", "exempt", "error"}
        assert "\n" not in r["reason"]
        for c in r["changes"]:
            assert set(c) == {"action", "resource_id", "operation", "before", "after"}
    storage = by_type["Storage.Blob_OpenACL"]
    assert storage["outcome"] == "changes"
    assert storage["playbook"] == "storage-disable-public-blob-access"
    account = next(c for c in storage["changes"] if c["resource_id"].endswith("/contosoweb"))
    assert account["operation"] == "update"
    assert account["before"]["properties"]["allowBlobPublicAccess"] is True
    assert account["after"]["properties"]["allowBlobPublicAccess"] is False
    container = next(c for c in storage["changes"] if c["resource_id"].endswith("/containers/public-assets"))
    assert container["after"]["properties"]["publicAccess"] == "None"
    assert by_type["SIMULATED_KV_ListGetAnomaly"]["outcome"] == "ignored"
    exempt = [r for r in doc["results"] if r["outcome"] == "exempt"]
    assert len(exempt) == 1
    assert "CHG-2291" in exempt[0]["reason"]
    acr = by_type["dc921057-6b28-4fbe-9b83-f7bec05db6c2"]
    assert acr["outcome"] == "changes"
    assert acr["changes"][0]["after"]["properties"]["adminUserEnabled"] is False


def test_plan_text_matches_golden() -> None:
    code, out = run(["plan", *FINDINGS, "--resources", STATE])
    assert code == 2
    out = out.replace(str(ROOT), "<root>")
    golden = GOLDEN / "plan_samples.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")
    assert out.rstrip().splitlines()[-2].startswith("Plan: ")


def test_plan_exit_zero_when_nothing_would_change() -> None:
    simulated = str(SAMPLES / "findings" / "07-simulated-alert.json")
    code, out = run(["plan", simulated, "--resources", STATE, "--output", "json"])
    assert code == 0
    assert json.loads(out)["results"][0]["outcome"] == "ignored"


def test_plan_reads_stdin() -> None:
    payload = (SAMPLES / "findings" / "04-acr-admin-user-policy-event.json").read_text()
    code, out = run(["plan", "-", "--resources", STATE, "--output", "json"], stdin=payload)
    assert code == 2
    assert json.loads(out)["results"][0]["playbook"] == "acr-disable-admin-user"


def _cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "remediator", *args], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=60, check=False)


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b'{"AlertType": "Storage.Blob_OpenACL", ', "not JSON"),
        (b"\x00\xff\xfe garbage", "bad.json"),
        (b'{"hello": "world"}', "bad.json"),
    ],
)
def test_plan_bad_payload_is_one_line_no_traceback(tmp_path: Path, content: bytes, expect: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    proc = _cli("plan", str(bad), "--resources", STATE)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert expect in err
    assert proc.stdout == b""


def test_plan_invalid_playbooks_dir_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "name: x\ndescription: d\nmatch:\n  alerts: [A]\nrisk: low\napproval: auto\nsteps:\n"
        "  - action: storage.disable-public-blob-acess\n", encoding="utf-8")
    proc = _cli("plan", FINDINGS[0], "--resources", STATE, "--playbooks", str(tmp_path))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert "x.yaml:8:" in err
    assert "did you mean 'storage.disable-public-blob-access'" in err


def test_plan_missing_resources_path_is_an_error(tmp_path: Path) -> None:
    proc = _cli("plan", FINDINGS[0], "--resources", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert "nope" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


def test_python_dash_m_and_validate_shipped_playbooks() -> None:
    proc = _cli("validate", "playbooks")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"valid" in proc.stdout


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\ndescriptoin: d\n", encoding="utf-8")
    code, _ = run(["validate", str(tmp_path)])
    assert code == 1


def test_validate_runs_without_the_cyclic_collector_and_turns_it_back_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def playbooks_dir(given: object = None) -> Path:
        seen.append(gc.isenabled())
        return tmp_path

    monkeypatch.setattr(validate, "playbooks_dir", playbooks_dir)
    (tmp_path / "a.yaml").write_text("name: a\ndescriptoin: d\n", encoding="utf-8")
    assert gc.isenabled()
    assert run(["validate"])[0] == 1  # a failed validate too
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()  # a caller that turned it off keeps it off
    try:
        run(["validate"])
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert seen == [False, False]


def test_validate_as_the_process_command_freezes_what_it_imported_for_a_quick_exit() -> None:
    """Run as the console script runs it (``main()``, no argv), validate leaves the collector on but
    its objects frozen, so the interpreter's exit does not collect them all again; in-process calls
    with an argv (the tests, an embedding program) freeze nothing."""
    code = (
        "import gc, io, sys; from remediator.app.cli import main; "
        "sys.argv = ['remediator', 'validate', sys.argv[1]]; before = gc.get_freeze_count(); "
        "code = main(out=io.StringIO()); print(code, before, gc.get_freeze_count() > 10_000, gc.isenabled())"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "playbooks")], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert proc.stdout.split() == ["0", "0", "True", "True"]
    before = gc.get_freeze_count()
    assert run(["validate", str(ROOT / "playbooks")])[0] == 0
    assert gc.get_freeze_count() == before


def test_schema_is_json_with_every_action() -> None:
    code, out = run(["schema"])
    assert code == 0
    text = json.dumps(json.loads(out))
    for name in ("storage.disable-public-blob-access", "storage.restrict-network-access", "network.restrict-inbound",
                 "rbac.revoke-role-assignments", "acr.disable-admin-user", "acr.rotate-credentials"):
        assert name in text


def test_demo_whole_loop_with_approve_all_then_audit(tmp_path: Path) -> None:
    store = tmp_path / "demo.db"
    code, out = run(["demo", "--approve-all", "--store", str(store)])
    assert code == 0, out
    assert "Plan: " in out  # the dry run comes first
    # nine of them the AI estate's (private-link the seventh, then the jailbreak's content filter and the restored
    # continuous export)
    assert out.count("Applied and verified") == 14
    assert "active grants left: 0" in out
    assert "14 applied, 1 exempt" in out
    assert "<!channel>" not in out  # the crafted alert text never reaches the terminal raw
    code, trail = run(["audit", "--store", str(store), "--output", "json"])
    assert code == 0
    events = json.loads(trail)["events"]
    kinds = [e["event"] for e in events]
    # 22 writes, one grant each but the private endpoint's 3 and its zone group's 2
    assert kinds.count("elevated") == kinds.count("released") == 25
    assert all(e["detail"]["strategy"] == "pim-assign" for e in events if e["event"] == "elevated")
    one = next(e["remediation_id"] for e in events if e["event"] == "approval_requested")
    code, text = run(["audit", one, "--store", str(store)])
    assert code == 0
    assert all(one in line for line in text.strip().splitlines())
    assert run(["audit", one[:8], "--store", str(store)]) == (0, text)  # the first characters, as git takes them


def test_audit_takes_a_unique_prefix_and_names_the_candidates_otherwise(tmp_path: Path) -> None:
    from remediator.lifecycle.model import AuditEvent
    from tests.store.test_contract import T0, make

    store = SQLiteStore(tmp_path / "x.db")
    for rid in ("abcd1234xyz", "abcd9999xyz", "zzzz0000xyz"):
        store.create(make(id=rid), audit=AuditEvent(remediation_id=rid, event="planned", actor="worker", at=T0,
                                                     detail={"state": "pending_approval"}))
    store.close()
    code, text = run(["audit", "zzzz", "--store", str(tmp_path / "x.db")])
    assert code == 0
    assert "zzzz0000xyz" in text
    proc = _cli("audit", "abcd", "--store", str(tmp_path / "x.db"))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.count("\n") == 1
    assert "'abcd' is the start of 2 remediation ids (abcd1234xyz, abcd9999xyz)" in err
    proc = _cli("audit", "abc", "--store", str(tmp_path / "x.db"))  # too short to be taken as a prefix
    assert "no remediation 'abc'" in proc.stderr.decode()


def test_demo_answers_at_the_prompt() -> None:
    code, out = run(["demo"], stdin="a\nr\n")
    assert code == 0, out
    assert "rejected" in out
    assert "(end of input: 11 requests left pending)" in out  # end of input leaves the rest pending
    assert "11 pending approval" in out


def test_audit_of_an_unknown_remediation_is_one_line(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "x.db").close()
    proc = _cli("audit", "nope", "--store", str(tmp_path / "x.db"))
    assert proc.returncode == 1
    assert proc.stderr.decode().count("\n") == 1
    assert "no remediation 'nope'" in proc.stderr.decode()


def test_serve_without_slack_settings_is_a_config_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REMEDIATOR_"))}
    proc = subprocess.run([sys.executable, "-m", "remediator", "serve", "--port", "0", "--no-ingest"],
                          capture_output=True, cwd=tmp_path, env=env, timeout=60, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.decode().splitlines()
    assert [line.split(" (")[0] for line in lines] == [  # every missing setting at once, one line each
        "error: serve: set SLACK_BOT_TOKEN", "error: serve: set SLACK_SIGNING_SECRET",
        "error: serve: set REMEDIATOR_SLACK_CHANNEL"]


@pytest.mark.parametrize("token", [None, "short", "   "])
def test_serve_without_an_ingest_token_refuses_to_start(tmp_path: Path, token: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REMEDIATOR_"))}
    env |= {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret", "REMEDIATOR_SLACK_CHANNEL": "C0123456789",
            "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    if token is not None:
        env["REMEDIATOR_INGEST_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-m", "remediator", "serve", "--port", "0"], capture_output=True,
                          cwd=tmp_path, env=env, timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert proc.stdout == b""  # never listening
    assert err.count("\n") == 1
    assert err.startswith("error: serve: ")
    assert "REMEDIATOR_INGEST_TOKEN" in err
    if token is None:
        assert "--no-ingest" in err
    assert not (tmp_path / "r.db").exists()  # refused before anything was opened


def test_validate_checks_exemptions_and_warns_on_expired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = tmp_path / "exemptions.yaml"
    ex.write_text(
        "exemptions:\n"
        "  - resource: /subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a\n"
        "    playbook: storage-disable-public-blob-acess\n"
        "    owner: alice@example.com\n"
        "    reason: test\n"
        "    expires: 2020-01-01\n", encoding="utf-8")
    code, out = run(["validate", str(ROOT / "playbooks"), "--exemptions", str(ex)])
    err = capsys.readouterr().err
    assert code == 0
    assert "valid" in out
    assert "exemptions.yaml:2" in err
    assert "storage-disable-public-blob-access" in err
    assert "expired on 2020-01-01" in err


def test_plan_with_exemptions_file_exempts(tmp_path: Path) -> None:
    ex = tmp_path / "exemptions.yaml"
    ex.write_text(
        "exemptions:\n"
        "  - resource: /subscriptions/*/resourceGroups/rg-prod-data/providers/Microsoft.ContainerRegistry/*\n"
        "    playbook: '*'\n"
        "    owner: platform@example.com\n"
        "    reason: registry migration CHG-7\n"
        "    expires: 2999-01-01\n", encoding="utf-8")
    acr = str(SAMPLES / "findings" / "04-acr-admin-user-policy-event.json")
    code, out = run(["plan", acr, "--resources", STATE, "--exemptions", str(ex), "--output", "json"])
    assert code == 0
    result = json.loads(out)["results"][0]
    assert result["outcome"] == "exempt"
    assert "CHG-7" in result["reason"]
    assert "platform@example.com" in result["reason"]

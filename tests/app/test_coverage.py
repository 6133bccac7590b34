"""`remediator coverage` as a platform team runs it: live on a tenant, on the demo estate, on saved exports."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from remediator.app.cli import build_parser, main
from remediator.app.cli import coverage as coverage_cli
from remediator.testing import FakeArm
from tests.conftest import ROOT

EXPORT = ROOT / "tests" / "fixtures" / "policy" / "export"
ASSIGNMENTS = str(EXPORT / "az-policy-assignment-list.json")
SUMMARY = str(EXPORT / "az-policy-state-summarize.json")
DEFINITIONS = str(EXPORT / "definitions")
MODIFY_PLAYBOOKS = str(ROOT / "examples" / "playbooks-modify")
SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
STORAGE = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["coverage", *argv], out=out, stdin=io.StringIO())
    return code, out.getvalue()


def by_definition(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["definition_id"].rsplit("/", 1)[-1].lower(): r for r in doc["definitions"]}


def test_a_saved_export_prints_who_fixes_what_and_why_not() -> None:
    code, out = run("--assignments", ASSIGNMENTS, "--summary", SUMMARY)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "resources  definition [assignment]  playbook or why not"
    assert "    12  Configure storage accounts to disable public network access  [storage-pna-modify]  fix: " \
           "storage-disable-public-network-access (storage.disable-public-network-access)" in lines
    assert any("AI Search services to disable public network access  [data-plane-baseline]  fix: "
               "search-disable-public-network-access" in line for line in lines)  # an initiative's member
    assert any("storageskus  [TestCostManagement]  not fixable: not in remediator's catalog" in line for line in lines)
    assert any("tls-and-tags  [tls-and-tags]  not fixable: not in remediator's catalog" in line for line in lines)
    assert re.fullmatch(r"7 assigned definitions: [4-6] fixable by a playbook, covering \d+ of 33 non-compliant "
                        r"resources", lines[-1])  # as many as the shipped playbooks claim (more as they grow)


def test_json_and_an_opted_in_modify_playbook_with_the_custom_definition() -> None:
    code, out = run("--assignments", ASSIGNMENTS, "--summary", SUMMARY, "--definitions", DEFINITIONS,
                    "--playbooks", MODIFY_PLAYBOOKS, "--output", "json")
    assert code == 0
    doc = json.loads(out)
    rows = by_definition(doc)
    assert set(doc) == {"definitions", "totals", "playbooks", "modify_role_ids"}
    assert doc["modify_role_ids"] == ["17d1049b-9a84-46fb-8f53-869881c3d3ab"]  # the custom definition's role
    custom = rows["tls-and-tags"]
    assert (custom["fixable"], custom["playbook"], custom["non_compliant_resources"]) == \
        (True, "modify-policies-with-approval", 7)
    assert custom["display_name"] == "Storage: TLS 1.2 and the owner tag"  # read from the saved definition
    assert rows["a06d0189-92e8-4dba-b0c4-08d7669fce7d"]["playbook"] == "modify-policies-with-approval"  # priority
    search = rows["9cee519f-d9c1-4fd9-9f79-24ec3449ed30"]
    assert search["initiative_id"].endswith("/policySetDefinitions/data-plane-baseline")
    assert search["playbook"] == "search-disable-public-network-access"  # shipped; the example opts in Storage, KV
    assert (doc["totals"]["definitions"], doc["totals"]["non_compliant_resources"]) == (7, 33)
    assert doc["totals"]["fixable"] == sum(r["fixable"] for r in doc["definitions"]) >= 5
    assert doc["playbooks"]["modify-policies-with-approval"] == 2


def test_live_reads_assignments_and_the_summary_and_writes_nothing() -> None:
    with FakeArm() as arm:
        arm.load(json.loads(Path(ASSIGNMENTS).read_text(encoding="utf-8"))[:3])  # az's shape is accepted too
        custom = json.loads((EXPORT / "definitions" / "tls-and-tags.json").read_text(encoding="utf-8"))
        arm.add(custom)
        mg_def = "/providers/Microsoft.Authorization/policyDefinitions/a06d0189-92e8-4dba-b0c4-08d7669fce7d"
        for i in range(3):
            arm.add_policy_state(resource_id=f"{STORAGE}/st{i}", definition_id=mg_def,
                                 assignment_id=f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                                               "policyAssignments/storage-pna-modify")
        arm.add_policy_state(resource_id=f"{STORAGE}/st0", definition_id=custom["id"],
                             assignment_id=f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                                           "policyAssignments/tls-and-tags")
        args = build_parser().parse_args(["coverage", "--subscription", SUB, "--playbooks", MODIFY_PLAYBOOKS,
                                          "--output", "json"])
        out = io.StringIO()
        assert coverage_cli.run(args, out, io.StringIO(), clients=arm.clients()) == 0
        assert arm.writes == []  # summarize is a query (a POST that reads)
        paths = {(r.method, r.path.rsplit("/providers/", 1)[-1]) for r in arm.requests}
        assert ("POST", "Microsoft.PolicyInsights/policyStates/latest/summarize") in paths
        assert ("GET", "Microsoft.Authorization/policyAssignments") in paths
    rows = by_definition(json.loads(out.getvalue()))
    assert rows["a06d0189-92e8-4dba-b0c4-08d7669fce7d"]["non_compliant_resources"] == 3
    assert rows["tls-and-tags"]["playbook"] == "modify-policies-with-approval"  # the custom definition read live
    assert rows["tls-and-tags"]["roles"] == ["17d1049b-9a84-46fb-8f53-869881c3d3ab"]
    assert rows["4fa4b6c0-31ca-4c0d-b10d-24b96f62a751"]["non_compliant_resources"] is None  # assigned, no states


def test_the_demo_estate() -> None:
    code, out = run("--demo", "--output", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["totals"]["definitions"] == 5
    assert {r["playbook"] for r in doc["definitions"]} >= {"acr-disable-admin-user", "keyvault-enable-purge-protection"}
    assert all(r["non_compliant_resources"] == 1 for r in doc["definitions"])
    initiative = [r for r in doc["definitions"] if r["initiative_id"]]
    assert len(initiative) == 4  # ai-hardening reports four definitions: an initiative


@pytest.mark.parametrize(("argv", "message"), [
    (["--output", "markdown"], "coverage: --output markdown is the catalog page; add --catalog"),
    (["--catalog", "--assignments", ASSIGNMENTS], "coverage: --catalog compares the catalog with the playbooks"),
    (["--assignments", str(EXPORT / "definitions" / "tls-and-tags.json")], "tls-and-tags.json[0]: not a policy "
     "assignment (no id …/providers/Microsoft.Authorization/policyAssignments/<name>; expected az policy "
     "assignment list output)"),
    (["--summary", ASSIGNMENTS], "az-policy-assignment-list.json[0]: not a policy states summary"),
    (["--assignments", ASSIGNMENTS, "--definitions", ASSIGNMENTS], "is not a policy definition"),
])
def test_bad_input_is_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    code = main(["coverage", *argv], out=out, stdin=io.StringIO())
    err = capsys.readouterr().err
    assert code != 0
    assert out.getvalue() == ""
    (line,) = err.strip().splitlines()
    assert message in line
    assert "Traceback" not in err


def test_the_summary_alone_as_az_may_print_it(tmp_path: Path) -> None:
    """``az policy state summarize`` prints the summary object (``value[0]``) or the whole body: both read."""
    body = json.loads(Path(SUMMARY).read_text(encoding="utf-8"))
    (tmp_path / "summary.json").write_text(json.dumps(body["value"][0]), encoding="utf-8")
    _, whole = run("--assignments", ASSIGNMENTS, "--summary", SUMMARY, "--output", "json")
    _, alone = run("--assignments", ASSIGNMENTS, "--summary", str(tmp_path / "summary.json"), "--output", "json")
    assert json.loads(alone) == json.loads(whole)

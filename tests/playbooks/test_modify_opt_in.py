"""A playbook opts in to Modify fixes: match.policy_categories (the catalog's built-in Modify definitions of a
category) or match.policies by id; the plan names the definition; `plan --definitions` reads saved ones."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from remediator.app.cli import main
from remediator.app.paths import SHIPPED_PLAYBOOKS
from remediator.errors import PlaybookError
from remediator.playbooks import load_playbooks
from remediator.playbooks.catalog import catalog, modify_categories
from tests.conftest import ROOT
from tests.support.builders import arm_fixture, policy_event

EXAMPLE = ROOT / "examples" / "playbooks-modify"
DEFINITIONS = ROOT / "tests" / "fixtures" / "policy" / "definitions"
SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata"

PLAYBOOK = """\
name: modify-storage
description: Our storage Modify policies, approved first.
match:
  policy_categories: [{category}]
  resource_types: [Microsoft.Storage/storageAccounts]
risk: medium
approval: {{mode: slack, approvers: [platform-owners]}}
steps:
  - action: policy.apply-modify
"""


def test_categories_expand_to_the_catalogs_modify_definitions(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PLAYBOOK.format(category="storage"), encoding="utf-8")
    (playbook,) = load_playbooks(tmp_path)
    storage = {e.id for e in catalog() if e.category == "Storage" and e.can_modify}
    assert set(playbook.match.policies) == storage == set(modify_categories()["storage"])
    assert "a06d0189-92e8-4dba-b0c4-08d7669fce7d" in storage
    assert "4fa4b6c0-31ca-4c0d-b10d-24b96f62a751" not in storage  # Audit/Deny: not a Modify definition


def test_an_unknown_category_names_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PLAYBOOK.format(category="Storge"), encoding="utf-8")
    with pytest.raises(PlaybookError) as err:
        load_playbooks(tmp_path)
    text = str(err.value)
    assert "p.yaml:4: match.policy_categories[0]: 'Storge' is not a category with built-in Modify definitions; " \
           "did you mean 'Storage'? known: App Service, " in text


def test_overlapping_a_shipped_playbook_needs_a_priority(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PLAYBOOK.format(category="Storage"), encoding="utf-8")
    with pytest.raises(PlaybookError, match=r"is also claimed by storage-"):
        load_playbooks(tmp_path, base=SHIPPED_PLAYBOOKS)  # both list a06d0189
    assert load_playbooks(EXAMPLE, base=SHIPPED_PLAYBOOKS).get("modify-policies-with-approval") is not None


def _saved(tmp_path: Path) -> tuple[Path, Path, Path]:
    account = arm_fixture("storage__2023-05-01__StorageAccountUpdate.json")
    account.update(id=ACCOUNT, name="stdata", type="Microsoft.Storage/storageAccounts")
    account["properties"]["publicNetworkAccess"] = "Enabled"
    event = policy_event(ACCOUNT, "a06d0189-92e8-4dba-b0c4-08d7669fce7d")
    assignment = {"id": event["data"]["policyAssignmentId"], "name": "acr", "type":
                  "Microsoft.Authorization/policyAssignments",
                  "properties": {"policyDefinitionId": event["data"]["policyDefinitionId"], "parameters": {}}}
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "account.json").write_text(json.dumps([account, assignment]), encoding="utf-8")
    (tmp_path / "event.json").write_text(json.dumps(event), encoding="utf-8")
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "def.json").write_bytes((DEFINITIONS / "Storage__StoragePublicNetworkAccess_Modify.json")
                                                 .read_bytes())
    return tmp_path / "event.json", tmp_path / "state", tmp_path / "defs"


def plan(*argv: str) -> tuple[int, Any]:
    out = io.StringIO()
    code = main(["plan", *argv], out=out, stdin=io.StringIO())
    return code, out.getvalue()


def test_plan_with_saved_definitions_names_the_definition_and_its_role(tmp_path: Path) -> None:
    event, state, defs = _saved(tmp_path)
    code, out = plan(str(event), "--resources", str(state), "--definitions", str(defs), "--playbooks", str(EXAMPLE))
    assert code == 2
    assert "playbook: modify-policies-with-approval (risk medium)" in out
    assert ("Azure Policy Modify Configure storage accounts to disable public network access "
            "(/providers/Microsoft.Authorization/policyDefinitions/a06d0189-92e8-4dba-b0c4-08d7669fce7d) "
            "(assigned with effect Modify): "
            "publicNetworkAccess: Enabled -> Disabled; granted Storage Account Contributor") in out
    code, out = plan(str(event), "--resources", str(state), "--definitions", str(defs), "--playbooks", str(EXAMPLE),
                     "--output", "json")
    (result,) = json.loads(out)["results"]
    assert (result["outcome"], result["warnings"]) == ("changes", [])
    assert result["changes"][0]["after"]["properties"]["publicNetworkAccess"] == "Disabled"
    code, out = plan(str(event), "--resources", str(state), "--playbooks", str(EXAMPLE), "--output", "json")
    (result,) = json.loads(out)["results"]  # without the definition: the step says where to get it
    assert result["outcome"] == "error"
    assert "--definitions folder" in result["reason"]


def test_a_definitions_file_that_is_not_one_is_a_one_line_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    event, state, _ = _saved(tmp_path)
    code, out = plan(str(event), "--resources", str(state), "--definitions", str(state / "account.json"))
    err = capsys.readouterr().err
    assert (code, out) == (1, "")
    (line,) = err.strip().splitlines()
    assert "account.json[0]: /subscriptions/" in line
    assert "is not a policy definition" in line


def test_a_built_in_that_is_not_modify_is_refused_when_the_playbook_loads(tmp_path: Path) -> None:
    text = PLAYBOOK.format(category="Storage").replace(
        "  resource_types:", "  policies: [4fa4b6c0-31ca-4c0d-b10d-24b96f62a751]\n  resource_types:")
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(PlaybookError) as err:
        load_playbooks(tmp_path)
    assert "p.yaml:5: match.policies[0]: 4fa4b6c0-31ca-4c0d-b10d-24b96f62a751 (Storage account public access should " \
           "be disallowed) is not a Modify definition (its effect can be Audit, Deny, Disabled); policy.apply-modify " \
           "plans a Modify definition's operations only" in str(err.value)

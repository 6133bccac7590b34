"""A deployment's own playbooks through the real CLI: overlays of the shipped set (add, override by
name, disable), priorities deciding a collision, resource-group tag conditions read from saved
state, the plan of a resource missing from ``--resources``, strict parameter types, ``validate``
of files and of the approver roles a deployment maps (``--config``)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from remediator.app.cli import main
from remediator.app.paths import SAMPLES, SHIPPED_PLAYBOOKS
from remediator.azure.state import SavedState
from tests.conftest import ROOT

ALERT = str(SAMPLES / "findings" / "01-storage-open-container-alert.json")
SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-prod-web"
ACCOUNT = f"{RG}/providers/Microsoft.Storage/storageAccounts/contosoweb"

PROD_ONLY = """\
name: prod-storage-blobs
description: In production, anonymous blob access is closed only after security on-call approves.
priority: 100
match:
  alerts: [Storage.Blob_OpenACL]
  resource_types: [Microsoft.Storage/storageAccounts]
  where:
    {where}
risk: medium
approval: {{mode: slack, approvers: [security-oncall]}}
steps:
  - action: storage.disable-public-blob-access
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(argv, out=out, stdin=io.StringIO(""))
    return code, out.getvalue(), capsys.readouterr().err


def overlay(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "my-playbooks"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def resources(tmp_path: Path, *, group_tags: dict[str, str] | None, account: bool = True) -> Path:
    """The shipped sample state, with the resource group document (and its tags) or without."""
    docs = [d for d in SavedState.from_path(SAMPLES / "state").documents() if account or d["id"] != ACCOUNT]
    if group_tags is not None:
        docs.append({"id": RG, "name": "rg-prod-web", "type": "Microsoft.Resources/resourceGroups",
                     "location": "westeurope", "tags": group_tags, "properties": {"provisioningState": "Succeeded"}})
    path = tmp_path / "state.json"
    path.write_text(json.dumps(docs))
    return path


def plan(tmp_path: Path, folder: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run(["plan", ALERT, "--playbooks", str(folder), "--resources", str(state), "--output", "json"],
                         capsys)
    assert code in (0, 1, 2), err
    result: dict[str, Any] = json.loads(out)["results"][0]
    return result


def test_a_prod_only_playbook_with_a_priority_overrides_the_shipped_one_on_resource_group_tags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = overlay(tmp_path, {"prod.yaml": PROD_ONLY.format(where="resource_group.tags.env: {equals: prod}")})
    code, out, err = run(["validate", str(folder)], capsys)
    assert code == 0, err  # the priority decides: no "collides with the shipped one"
    assert "adds prod-storage-blobs" in out
    assert plan(tmp_path, folder, resources(tmp_path, group_tags={"env": "prod"}), capsys)["playbook"] == \
        "prod-storage-blobs"
    assert plan(tmp_path, folder, resources(tmp_path, group_tags={"env": "dev"}), capsys)["playbook"] == \
        "storage-disable-public-blob-access"


def test_without_a_priority_the_collision_with_a_shipped_playbook_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = overlay(tmp_path, {"prod.yaml": PROD_ONLY.format(where="tags.environment: {equals: prod}")
                                .replace("priority: 100\n", "")})
    code, _, err = run(["validate", str(folder)], capsys)
    assert code == 1
    assert re.search(r"my-playbooks/prod.yaml:\d+: match.alerts\[0\]: 'Storage.Blob_OpenACL' is also claimed by "
                     r"storage-disable-public-blob-access .*give one of them a priority", err), err


def test_the_plan_of_a_resource_missing_from_resources_names_the_authors_playbook_and_how_to_add_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = overlay(tmp_path, {"prod.yaml": PROD_ONLY.format(where="tags.environment: {equals: prod}")})
    state = resources(tmp_path, group_tags=None, account=False)
    result = plan(tmp_path, folder, state, capsys)
    assert result["outcome"] == "error"
    assert result["playbook"] == "prod-storage-blobs"  # not the shipped one it outranks
    assert "cannot tell which playbook applies: prod-storage-blobs" in result["reason"]
    assert f"az resource show --ids {ACCOUNT}" in result["reason"]
    assert "--resources" in result["reason"]
    # with the account saved, its tags decide (environment: prod in the sample)
    assert plan(tmp_path, folder, resources(tmp_path, group_tags=None), capsys)["playbook"] == "prod-storage-blobs"


def test_a_missing_resource_group_document_is_named_when_its_tags_decide(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = overlay(tmp_path, {"prod.yaml": PROD_ONLY.format(where="resource_group.tags.env: {equals: prod}")})
    result = plan(tmp_path, folder, resources(tmp_path, group_tags=None), capsys)
    assert (result["outcome"], result["playbook"]) == ("error", "prod-storage-blobs")
    assert f"tags of {RG}, which the state does not hold" in result["reason"]
    assert f"az group show --name rg-prod-web --subscription {SUB} > group.json" in result["reason"]


def test_an_overlay_overrides_a_shipped_playbook_by_name_and_disables_another(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = (SHIPPED_PLAYBOOKS / "storage-disable-public-blob-access.yaml").read_text()
    folder = overlay(tmp_path, {
        # the same name, claiming only the .Sensitive alerts: the sample's Storage.Blob_OpenACL is no longer claimed
        "blobs.yaml": shipped.replace("    - Storage.Blob_OpenACL                   #", "    #"),
        "off.yaml": "name: storage-disable-shared-key-access\nenabled: false\n",
    })
    code, out, err = run(["validate", str(folder)], capsys)
    assert code == 0, err
    assert "overrides storage-disable-public-blob-access" in out
    assert "disables storage-disable-shared-key-access" in out
    assert "  disabled: storage-disable-shared-key-access" in out
    result = plan(tmp_path, folder, resources(tmp_path, group_tags=None), capsys)
    assert result["outcome"] == "no_match"  # the override replaced the shipped playbook
    code, _, err = run(["validate", str(overlay(tmp_path, {"off.yaml": "name: storage-disable-sharedkey-access\n"
                                                                        "enabled: false\n"}))], capsys)
    assert code == 1
    assert "disables nothing: no shipped playbook is named 'storage-disable-sharedkey-access'; did you mean " \
           "'storage-disable-shared-key-access'?" in err


def test_a_disabled_playbook_claims_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = overlay(tmp_path, {"off.yaml": "name: storage-disable-public-blob-access\nenabled: false\n"})
    result = plan(tmp_path, folder, resources(tmp_path, group_tags=None), capsys)
    assert result["outcome"] == "no_match"


def test_validate_takes_files_and_boolean_params_are_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = SHIPPED_PLAYBOOKS / "nsg-close-management-ports.yaml"
    code, out, err = run(["validate", str(one)], capsys)
    assert code == 0, err
    assert f"{len(list(SHIPPED_PLAYBOOKS.glob('*.yaml')))} playbooks valid" in out
    text = PROD_ONLY.format(where="tags.environment: {equals: prod}").replace(
        "  - action: storage.disable-public-blob-access\n",
        "  - action: storage.disable-public-blob-access\n    params: {named_containers: PLACEHOLDER}\n")
    for value, got in (('"yes"', "a string ('yes')"), ("off", "a string ('off')"), ("1", "a number (1)")):
        path = tmp_path / "strict.yaml"
        path.write_text(text.replace("PLACEHOLDER", value))
        code, _, err = run(["validate", str(path)], capsys)
        assert code == 1
        assert f"strict.yaml:13: steps[0].params.named_containers: expected true or false, got {got}" in err, err


def test_validate_with_config_names_every_unmapped_role(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMEDIATOR_APPROVER_ROLES", raising=False)
    config = tmp_path / "settings.yaml"
    config.write_text("approver_roles:\n  security-oncall: [S0614TZR7]\n  security-leads: [U05K8NQ2R7T]\n")
    code, _, err = run(["validate", str(SHIPPED_PLAYBOOKS), "--config", str(config)], capsys)
    assert code == 1
    unmapped = [line for line in err.splitlines() if "is not mapped" in line]
    assert unmapped
    assert all("'platform-owners'" in line for line in unmapped)
    assert any("vnet-restrict-peerings.yaml:33: approval.approvers: vnet-restrict-peerings:" in line
               for line in unmapped)
    # quorum 2 of security-oncall + security-leads: a group is many people, so no quorum problem
    config.write_text(config.read_text() + "  platform-owners: [S0615PLT8Q]\n")
    code, _, err = run(["validate", str(SHIPPED_PLAYBOOKS), "--config", str(config)], capsys)
    assert code == 0, err
    # mapped to one person only, a quorum of 2 cannot be met
    config.write_text("approver_roles:\n  security-oncall: [U0ALICE0001]\n  security-leads: [U0ALICE0001]\n"
                      "  platform-owners: [U0BOB00001]\n")
    code, _, err = run(["validate", str(SHIPPED_PLAYBOOKS), "--config", str(config)], capsys)
    assert code == 1
    assert "acr-rotate-credentials: quorum 2 is more than the 1 people its roles" in err


def test_the_example_overlay_validates(capsys: pytest.CaptureFixture[str]) -> None:
    folder = ROOT / "examples" / "playbooks-overlay"
    code, out, err = run(["validate", str(folder)], capsys)
    assert code == 0, err
    assert "adds prod-storage-public-blob-access; disables storage-disable-shared-key-access" in out

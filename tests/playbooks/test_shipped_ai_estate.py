"""The shipped Key Vault, disk and registry playbooks: each one claims its Defender assessment
(ARM and continuous-export shapes) and its Azure Policy events (EventGridSchema and CloudEvents),
and ``remediator plan`` turns each payload into the playbook's changes on saved real documents."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from remediator.app.cli import main
from remediator.playbooks import load_playbooks
from tests.support.builders import arm_fixture, parse_one, payloads

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "playbooks"
SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.KeyVault/vaults/kv-models"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.Compute/disks/weights-01"
ACR = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.ContainerRegistry/registries/acrmodels"

CASES = [
    ("keyvault-restrict-network-access", VAULT, "52f7826a-ace7-3107-dd0d-4875853c1576",
     "55615ac9-af46-4a59-874e-391cc3dfb490"),
    ("keyvault-enable-purge-protection", VAULT, "4ed62ae4-5072-f9e7-8d94-51c76c48159a",
     "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53"),
    ("disk-stop-public-export", DISK, "f635fb12-4c7f-e9a8-5ed1-c005728ea849", "8405fdab-1faf-48aa-b702-999c9c172094"),
    ("disk-enable-customer-managed-key", DISK, None, "702dd420-7fcc-42c5-afe8-4026edd20fe0"),
    ("acr-restrict-network-access", ACR, "9b828565-a0ed-61c2-6bf3-1afc99a9b2ca",
     "d0793b48-0edc-4296-a390-4c75d1bdfd71"),
    ("acr-disable-anonymous-pull", ACR, None, "9f2dea28-e834-476c-99c5-3507b4728395"),
]


def _state() -> list[dict[str, Any]]:
    vault = arm_fixture("keyvault__2024-11-01__getVault.json")
    vault["id"], vault["name"] = VAULT, "kv-models"
    vault["properties"]["networkAcls"] = {"defaultAction": "Allow", "bypass": "AzureServices",
                                          "ipRules": [{"value": "203.0.113.0/24"}], "virtualNetworkRules": []}
    disk = arm_fixture("compute__2024-03-02__Disk_Get.json")
    disk["id"], disk["name"] = DISK, "weights-01"
    del disk["managedBy"]
    disk["properties"]["diskState"] = "ActiveSAS"
    registry = arm_fixture("containerregistry__2025-11-01__RegistryGet.json")
    registry["id"], registry["name"] = ACR, "acrmodels"
    registry["sku"] = {"name": "Premium", "tier": "Premium"}
    registry["properties"]["anonymousPullEnabled"] = True
    registry["properties"]["networkRuleSet"]["ipRules"] = [{"action": "Allow", "value": "198.51.100.0/24"}]
    return [vault, disk, registry]


@pytest.mark.parametrize(("playbook", "resource_id", "assessment", "policy"), CASES)
def test_each_payload_shape_is_claimed(playbook: str, resource_id: str, assessment: str | None, policy: str) -> None:
    pbs = load_playbooks(SHIPPED)
    shapes = payloads(resource_id, assessment=assessment, policy=policy)
    assert len(shapes) == (4 if assessment else 2)
    for shape, payload in shapes:
        finding = parse_one(payload)
        assert finding.resource_id.lower() == resource_id.lower(), shape
        claimed = pbs.match(finding)
        assert claimed is not None, shape
        assert claimed.name == playbook, shape


def test_playbooks_of_irreversible_changes_ask_two_approvers() -> None:
    by_name = {pb.name: pb for pb in load_playbooks(SHIPPED)}
    for name in ("keyvault-enable-purge-protection", "disk-stop-public-export"):
        assert by_name[name].risk == "high"
        assert by_name[name].approval.quorum >= 2


@pytest.mark.parametrize(("case", "expect"), [
    (CASES[0], ["keyvault.restrict-network-access"]),
    (CASES[1], ["keyvault.enable-purge-protection"]),
    (CASES[2], ["disks.revoke-export-access", "disks.restrict-network-access"]),
    (CASES[4], ["acr.restrict-network-access"]),
    (CASES[5], ["acr.disable-anonymous-pull"]),
])
def test_plan_cli_on_each_shape(tmp_path: Path, case: tuple[str, str, str | None, str], expect: list[str]) -> None:
    playbook, resource_id, assessment, policy = case
    state = tmp_path / "state.json"
    state.write_text(json.dumps(_state()), encoding="utf-8")
    for shape, payload in payloads(resource_id, assessment=assessment, policy=policy):
        finding = tmp_path / f"{shape}.json"
        finding.write_text(json.dumps(payload), encoding="utf-8")
        out = io.StringIO()
        code = main(["plan", str(finding), "--resources", str(state), "--playbooks", str(SHIPPED),
                     "--output", "json"], out=out, stdin=io.StringIO(""))
        [result] = json.loads(out.getvalue())["results"]
        assert (code, result["playbook"], result["outcome"]) == (2, playbook, "changes"), (shape, result)
        assert [c["action"] for c in result["changes"]] == expect, shape


def test_cmk_plan_refuses_an_attached_disk_and_writes_nothing(tmp_path: Path) -> None:
    docs = _state()
    docs[1]["properties"]["diskState"] = "Attached"
    docs[1]["managedBy"] = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.Compute/virtualMachines/vm1"
    state = tmp_path / "state.json"
    state.write_text(json.dumps(docs), encoding="utf-8")
    _, payload = payloads(DISK, policy=CASES[3][3])[0]
    finding = tmp_path / "f.json"
    finding.write_text(json.dumps(payload), encoding="utf-8")
    out = io.StringIO()
    code = main(["plan", str(finding), "--resources", str(state), "--playbooks", str(SHIPPED), "--output", "json"],
                out=out, stdin=io.StringIO(""))
    [result] = json.loads(out.getvalue())["results"]
    assert (code, result["outcome"]) == (1, "error")
    assert "attached to running VM vm1" in result["reason"]

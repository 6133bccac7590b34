"""The shipped playbooks, the public API, and load speed."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import remediator.playbooks as playbooks_api
from remediator.actions import REGISTRY
from remediator.findings.model import Severity
from remediator.playbooks import load_playbook_file, load_playbooks, validate_playbooks
from tests.playbooks.test_match import SUB, finding

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "playbooks"


def test_public_api_is_pinned() -> None:
    assert sorted(playbooks_api.__all__) == sorted([
        "EXEMPT_TAG", "Approval", "Exemption", "Exemptions", "MatchSpec", "Playbook", "PlaybookSet", "Step",
        "TagCondition", "exemption_from_tags", "json_schema", "load_exemptions", "load_playbook_file",
        "load_playbooks", "parse_duration", "validate_exemptions", "validate_playbooks",
    ])  # fmt: skip


def test_shipped_folder_validates_clean() -> None:
    assert validate_playbooks(SHIPPED) == []


def test_shipped_playbooks_claim_their_findings() -> None:
    pbs = load_playbooks(SHIPPED)
    acr = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r"
    vm = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
    sub = f"/subscriptions/{SUB}"
    storage, rbac = "storage-disable-public-blob-access", "rbac-revoke-excess-permissions"
    cases = [
        (finding(), "storage-disable-public-blob-access"),
        (finding("alert", "Storage.Blob_OpenACL", severity=Severity.LOW), storage),
        (finding("policy", "4fa4b6c0-31ca-4c0d-b10d-24b96f62a751", severity=Severity.UNKNOWN),
         "storage-disable-public-blob-access"),
        (finding(type_="45d313c3-3fca-5040-035f-d61928366d31"), "storage-restrict-network-access"),
        (finding(type_="bc303248-3d14-44c2-96a0-55f5c326b5fe", resource_id=vm), "nsg-close-management-ports"),
        (finding("alert", "SSH_Incoming_BF_ManyToOne", vm), "nsg-close-management-ports"),
        (finding(type_="050ac097-3dda-4d24-ab6d-82568e7a50cf", resource_id=sub), rbac),
        (finding(type_="effc9a76-a5a6-40ac-b20d-59dc45bddf99", resource_id=sub),
         "rbac-revoke-service-principal-admin-roles"),
        (finding(type_="8b0bd683-bcfe-4ab1-96b9-f15a60eaa89d", resource_id=sub),
         "rbac-revoke-unused-identity-permissions"),
        (finding("policy", "dc921057-6b28-4fbe-9b83-f7bec05db6c2", acr, severity=Severity.UNKNOWN),
         "acr-disable-admin-user"),
        (finding("alert", "ARM_AnomalousServiceOperation.CredentialAccess", acr), "acr-rotate-credentials"),
    ]  # fmt: skip
    for f, name in cases:
        pb = pbs.match(f)
        assert pb is not None, (f.kind, f.type)
        assert pb.name == name, (f.kind, f.type)
    assert pbs.match(finding("alert", "ARM_AnomalousServiceOperation.CredentialAccess", vm)) is None


def test_shipped_risk_and_approval_rules() -> None:
    for pb in load_playbooks(SHIPPED):
        assert pb.description
        assert pb.steps
        if pb.approval.mode == "auto":
            assert pb.risk == "low", pb.name
        else:
            assert pb.approval.approvers, pb.name
        if pb.risk == "high":
            assert pb.approval.quorum >= 2, pb.name
        text = Path(pb.file).read_text(encoding="utf-8")
        assert text.startswith("#"), f"{pb.file}: start with a comment naming what it fixes"


def test_import_stays_lean() -> None:
    code = (
        "import sys, remediator.playbooks as p; p.load_playbooks(sys.argv[1]); "
        "heavy = [m for m in ('jsonschema', 'azure.mgmt.storage', 'azure.identity', 'slack_bolt') "
        "if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(SHIPPED)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_action_docstring_example_is_a_valid_playbook(tmp_path: Path) -> None:
    """Each action documents itself with a playbook; that playbook must load as written."""
    for name, action in sorted(REGISTRY.items()):
        block = re.search(r"```yaml\n(.*?)```", inspect.cleandoc(type(action).__doc__ or ""), re.S)
        assert block is not None, f"{name}: no ```yaml playbook example in the class docstring"
        path = tmp_path / f"{name}.yaml"
        path.write_text(block.group(1), encoding="utf-8")
        playbook = load_playbook_file(path)
        assert name in [s.action for s in playbook.steps]


def test_shipped_playbooks_carry_no_workspace_ids() -> None:
    """Approvers are roles the deployment maps (approver_roles): no Slack id of anyone's workspace."""
    from remediator.config.roles import SHIPPED_ROLES

    pbs = load_playbooks(SHIPPED)
    for pb in pbs:
        assert pb.approval.users == pb.approval.groups == (), pb.file
        assert set(pb.approval.roles) <= set(SHIPPED_ROLES), pb.file
    used = {r for pb in pbs for r in pb.approval.roles}
    assert used == set(SHIPPED_ROLES)
    slack_id = re.compile(r"\b[UWS]0[A-Z0-9]{7,19}\b")
    for path in SHIPPED.glob("*.yaml"):
        assert not slack_id.search(path.read_text()), path

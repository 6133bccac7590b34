"""disks.* and snapshots.* on the real DiskRP examples (Disk_Get, Snapshot_Get at 2024-03-02):
ending an export SAS (POST endGetAccess, a long-running operation), network access, and
customer-managed keys with their refusals; applied under PIM grants against FakeArm."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from bot.blocks import plan_lines
from remediator.actions.base import REGISTRY
from remediator.actions.change import Change, fingerprint
from remediator.actions.properties import merge_patch
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.planning.render import render_change
from remediator.testing import FakeArm
from tests.support.builders import apply_error, arm_fixture, plan_changes
from tests.support.pim import EXEC, covers, pim_apply

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
DISK = f"/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/disks/myManagedDisk"
SNAPSHOT = f"/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/snapshots/mySnapshot"
VM = f"/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/vm-train"
DES = f"/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.Compute/diskEncryptionSets/des-models"
ACCESS = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Compute/diskAccesses/da-private"

revoke = REGISTRY["disks.revoke-export-access"]
revoke_snap = REGISTRY["snapshots.revoke-export-access"]
restrict = REGISTRY["disks.restrict-network-access"]
restrict_snap = REGISTRY["snapshots.restrict-network-access"]
cmk = REGISTRY["disks.enable-customer-managed-key"]

# Documented actions of the roles (MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/
# compute.md, storage.md), the parts that concern Microsoft.Compute.
ROLE_ACTIONS = {
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": ("Microsoft.Compute/virtualMachines/*", "Microsoft.Compute/disks/write",
                                             "Microsoft.Compute/disks/read", "Microsoft.Compute/disks/delete"),
    "7efff54f-a5b4-42b5-a1c5-5411624893ce": ("Microsoft.Compute/snapshots/delete", "Microsoft.Compute/snapshots/write",
                                             "Microsoft.Compute/snapshots/read",
                                             "Microsoft.Compute/snapshots/beginGetAccess/action",
                                             "Microsoft.Compute/snapshots/endGetAccess/action",
                                             "Microsoft.Compute/disks/beginGetAccess/action"),
    "4f8fab4f-1852-4a58-a46a-8eaf358af14a": ("Microsoft.Compute/*/read", "Microsoft.Compute/disks/*"),
}
LINKED = {"Microsoft.Compute/diskEncryptionSets/read"}  # on the set, granted separately


def _disk(state: str | None = "Unattached", *, owner: str | None = None) -> dict[str, Any]:
    doc = arm_fixture("compute__2024-03-02__Disk_Get.json")
    doc["id"] = DISK
    if owner is None:
        doc.pop("managedBy", None)
    else:
        doc["managedBy"] = owner
    if state is not None:
        doc["properties"]["diskState"] = state
    return doc


def _snapshot(state: str = "ActiveSAS") -> dict[str, Any]:
    doc = arm_fixture("compute__2024-03-02__Snapshot_Get.json")
    doc["id"] = SNAPSHOT
    doc["properties"]["diskState"] = state
    return doc


def _vm(power: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": VM, "name": "vm-train", "type": "Microsoft.Compute/virtualMachines",
                           "location": "westus", "properties": {"provisioningState": "Succeeded"}}
    if power is not None:
        doc["properties"]["instanceView"] = {"statuses": [
            {"code": "ProvisioningState/succeeded", "level": "Info"},
            {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"}]}
    return doc


def _plan(action: Any, state: StateReader, target: str = DISK, **params: Any) -> list[Change]:
    return plan_changes(action, state, target, **params)


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.load([_disk("ActiveSAS"), _snapshot()])
        yield fake


def test_roles_cover_the_operations_and_nothing_broader() -> None:
    assert revoke.role.id == "4f8fab4f-1852-4a58-a46a-8eaf358af14a"
    assert restrict.role.id == cmk.role.id == "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
    assert revoke_snap.role.id == restrict_snap.role.id == "7efff54f-a5b4-42b5-a1c5-5411624893ce"
    for action in (revoke, revoke_snap, restrict, restrict_snap, cmk):
        for op in action.permissions:
            assert op in LINKED or covers(ROLE_ACTIONS[action.role.id], op), (action.name, op)
    # the narrower roles really lack what the actions need (why they were not chosen)
    vm_contributor = ROLE_ACTIONS["9980e02c-c2be-4d73-94e8-173b1dc7cf3c"]
    assert not covers(vm_contributor, "Microsoft.Compute/disks/endGetAccess/action")
    assert not covers(ROLE_ACTIONS["7efff54f-a5b4-42b5-a1c5-5411624893ce"], "Microsoft.Compute/disks/write")
    assert not revoke.reversible
    assert restrict.reversible
    assert cmk.reversible


# -- revoke export access ---------------------------------------------------------------------------------

def test_revoke_plans_an_invoke_only_for_an_active_export(arm: FakeArm) -> None:
    saved = _plan(revoke, SavedState([_disk("ActiveSAS")]))
    live = _plan(revoke, LiveState(arm.clients()))
    assert arm.writes == []
    assert fingerprint(saved) == fingerprint(live)
    [change] = saved
    assert (change.operation, change.resource_id) == ("invoke", f"{DISK}/endGetAccess")
    assert "IRREVERSIBLE: the export SAS URL is revoked" in change.note
    for state in ("Unattached", "Attached", "Reserved", None):
        assert _plan(revoke, SavedState([_disk(state)])) == []
    assert _plan(revoke, SavedState([_disk("ActiveSASFrozen")]))


def test_the_revoke_plan_shows_what_is_sent_not_a_made_up_value() -> None:
    """endGetAccess is a POST with no body: the plan says so (and the note says in words that the export
    ends), never a pseudo-value such as ``diskState: "ActiveSAS" -> "not ActiveSAS"``."""
    [change] = _plan(revoke, SavedState([_disk("ActiveSAS")]))
    assert change.after == {}  # the request body
    lines = render_change(change)
    assert lines[2:] == ["      POST with no request body"]
    assert "end the active export of disk" in lines[1]
    assert not any("not ActiveSAS" in line for line in lines)
    slack = plan_lines([{**change.to_json(), "note": change.note}])  # the Slack message's plan
    assert slack[2:] == ["    POST with no request body"]


def test_revoke_apply_polls_the_operation_and_verify_sees_the_state(arm: FakeArm) -> None:
    arm.enforce_grants(EXEC, role_id=revoke.role.id)
    live = LiveState(arm.clients())
    [change] = _plan(revoke, live)
    with pytest.raises(ActionError, match="403 AuthorizationFailed"):
        revoke.apply(arm.clients(principal_id=EXEC), change)
    assert revoke.verify(live, change) == "diskState is still ActiveSAS"
    arm.reset_log()
    result = pim_apply(arm, revoke, change)
    [post] = arm.resource_writes
    assert (post.method, post.path, post.query["api-version"], post.status) == (
        "POST", f"{DISK}/endGetAccess", "2024-03-02", 202)
    polls = [r for r in arm.requests if r.path.startswith("/_operations/")]
    assert [p.status for p in polls] == [202, 204]  # followed Location to the end
    assert result.detail == "disk myManagedDisk: export SAS revoked"
    assert revoke.verify(live, change) is None
    assert arm.get(DISK)["properties"]["diskState"] == "Unattached"  # type: ignore[index]
    with pytest.raises(ActionError, match="cannot be undone: the export SAS URL is revoked"):
        revoke.undo(change)


def test_end_of_export_state_follows_the_owner() -> None:
    with FakeArm() as arm:
        arm.load([_disk("ActiveSAS", owner=VM) | {"id": DISK}, _snapshot("ActiveSASFrozen")])
        [change] = _plan(revoke, LiveState(arm.clients()))
        revoke.apply(arm.clients(), change)
        assert arm.get(DISK)["properties"]["diskState"] == "Reserved"  # type: ignore[index]
        [change] = _plan(revoke_snap, LiveState(arm.clients()), SNAPSHOT)
        revoke_snap.apply(arm.clients(), change)
        assert arm.get(SNAPSHOT)["properties"]["diskState"] == "Frozen"  # type: ignore[index]


def test_snapshot_revoke_refuses_a_disk() -> None:
    with pytest.raises(ActionError, match=r"expected Microsoft\.Compute/snapshots"):
        _plan(revoke_snap, SavedState([_disk("ActiveSAS")]))


def test_revoke_failure_is_one_line(arm: FakeArm) -> None:
    [change] = _plan(revoke, LiveState(arm.clients()))
    assert "POST endGetAccess failed: 409 Conflict" in apply_error(arm, revoke, change, ("POST", "/endGetAccess", 409))


# -- restrict network access ---------------------------------------------------------------------------------

def test_restrict_plan_and_apply_through_the_patch_lro(arm: FakeArm) -> None:
    arm.enforce_grants(EXEC, role_id=restrict.role.id)
    live = LiveState(arm.clients())
    [change] = _plan(restrict, live)
    assert merge_patch(change.before, change.after) == {
        "properties": {"networkAccessPolicy": "DenyAll", "publicNetworkAccess": "Disabled"}}
    assert "networkAccessPolicy: (not set) -> DenyAll" in change.note
    assert "diskState is ActiveSAS: an export URL is already out" in change.note
    arm.reset_log()
    pim_apply(arm, restrict, change)
    [patch] = arm.resource_writes
    assert (patch.method, patch.status, patch.query["api-version"]) == ("PATCH", 202, "2024-03-02")
    assert [r.method for r in arm.requests if not r.is_pim and r.path == DISK][-1] == "GET"  # polled Location
    assert restrict.verify(live, change) is None
    back = restrict.undo(change)
    assert merge_patch(back.before, back.after) == {
        "properties": {"networkAccessPolicy": "AllowAll", "publicNetworkAccess": "Enabled"}}
    pim_apply(arm, restrict, back)
    assert restrict.verify(live, back) is None


def test_restrict_allow_private_sets_the_disk_access() -> None:
    [change] = _plan(restrict, SavedState([_disk()]), network_access_policy="AllowPrivate", disk_access_id=ACCESS)
    assert merge_patch(change.before, change.after) == {"properties": {
        "networkAccessPolicy": "AllowPrivate", "diskAccessId": ACCESS, "publicNetworkAccess": "Disabled"}}
    doc = _disk()
    doc["properties"].update(networkAccessPolicy="AllowPrivate", diskAccessId=ACCESS.lower(),
                             publicNetworkAccess="Disabled")
    assert _plan(restrict, SavedState([doc]), network_access_policy="AllowPrivate", disk_access_id=ACCESS) == []


@pytest.mark.parametrize(("params", "message"), [
    ({"network_access_policy": "AllowPrivate"}, "needs disk_access_id"),
    ({"disk_access_id": ACCESS}, "only used with network_access_policy AllowPrivate"),
    ({"network_access_policy": "AllowPrivate", "disk_access_id": DES}, "not a disk access id"),
    ({"network_access_policy": "AllowAll"}, "network_access_policy"),
])
def test_restrict_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        restrict.parse_params(params)


# -- customer-managed key ------------------------------------------------------------------------------------

def test_cmk_on_an_unattached_disk() -> None:
    with FakeArm() as arm:
        arm.add(_disk("Unattached"))
        arm.enforce_grants(EXEC, role_id=cmk.role.id)
        live = LiveState(arm.clients())
        [change] = _plan(cmk, live, disk_encryption_set_id=DES)
        assert merge_patch(change.before, change.after) == {"properties": {"encryption": {
            "type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": DES}}}
        assert "encryption.type: EncryptionAtRestWithPlatformKey -> EncryptionAtRestWithCustomerKey" in change.note
        assert "warning" not in change.note
        pim_apply(arm, cmk, change)
        assert cmk.verify(live, change) is None
        assert _plan(cmk, live, disk_encryption_set_id=DES.upper()) == []
        back = cmk.undo(change)
        assert back.after["properties"]["encryption"] == {"type": "EncryptionAtRestWithPlatformKey"}  # type: ignore[index]
        assert "diskEncryptionSetId removed" in back.note
        pim_apply(arm, cmk, back)
        assert cmk.verify(live, back) is None
        assert arm.get(DISK)["properties"]["encryption"] == {"type": "EncryptionAtRestWithPlatformKey"}  # type: ignore[index]


@pytest.mark.parametrize(("state", "vm_power", "message"), [
    ("Attached", None, "attached to running VM vm-train"),
    ("Reserved", "running", "VM vm-train is running, not deallocated"),
    ("Reserved", "stopped", "VM vm-train is stopped, not deallocated"),
    (None, None, "neither its diskState nor the VM's power state"),
    ("ActiveSAS", None, "active export"),
    ("ReadyToUpload", None, "being uploaded"),
])
def test_cmk_refusals_write_nothing(state: str | None, vm_power: str | None, message: str) -> None:
    docs = [_disk(state, owner=VM), _vm(vm_power)]
    with FakeArm() as arm:
        arm.load(docs)
        with pytest.raises(ActionError, match=f"refused: .*{message}"):
            _plan(cmk, LiveState(arm.clients()), disk_encryption_set_id=DES)
        with pytest.raises(ActionError, match=message):
            _plan(cmk, SavedState(docs), disk_encryption_set_id=DES)
        assert arm.writes == []


def test_cmk_deallocated_vm_checked_or_warned() -> None:
    [change] = _plan(cmk, SavedState([_disk("Reserved", owner=VM), _vm("deallocated")]), disk_encryption_set_id=DES)
    assert "warning" not in change.note
    [change] = _plan(cmk, SavedState([_disk("Reserved", owner=VM)]), disk_encryption_set_id=DES)
    assert "warning: VM vm-train power state not checked" in change.note
    assert "diskState Reserved was used" in change.note
    [change] = _plan(cmk, SavedState([_disk(None, owner=VM), _vm("deallocated")]), disk_encryption_set_id=DES,
                     encryption_type="EncryptionAtRestWithPlatformAndCustomerKeys")
    assert change.after["properties"]["encryption"]["type"] == "EncryptionAtRestWithPlatformAndCustomerKeys"  # type: ignore[index]


def test_cmk_params() -> None:
    with pytest.raises(ValidationError, match="not a disk encryption set id"):
        cmk.parse_params({"disk_encryption_set_id": ACCESS})
    with pytest.raises(ValidationError, match="disk_encryption_set_id"):
        cmk.parse_params({})

"""storage.disable-public-network-access and storage.disable-shared-key-access on the real storage
REST example documents, through the real generic SDK client against FakeArm, under a PIM grant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remediator.actions.base import REGISTRY
from remediator.actions.change import Change
from remediator.actions.properties import merge_patch
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.playbooks import load_playbooks
from tests.support.builders import (
    arm_fixture,
    example_connection,
    four_shapes,
    plan_changes,
)

ROOT = Path(__file__).resolve().parents[2]
SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/res9407/providers/Microsoft.Storage/storageAccounts/sto8596"
public = REGISTRY["storage.disable-public-network-access"]
shared_key = REGISTRY["storage.disable-shared-key-access"]


def _account(*, pe: str | None = None, **props: Any) -> dict[str, Any]:
    """StorageAccountUpdate.json's account (firewall rules, no publicNetworkAccess, no allowSharedKeyAccess)."""
    doc = arm_fixture("storage__2023-05-01__StorageAccountUpdate.json")
    doc["id"], doc["name"] = ACCOUNT, "sto8596"
    doc["properties"].pop("publicNetworkAccess", None)
    doc["properties"].pop("allowSharedKeyAccess", None)
    if pe is not None:
        doc["properties"]["privateEndpointConnections"] = [example_connection(pe)]
    doc["properties"].update(props)
    return doc


def _plan(action: Any, state: StateReader, rid: str = ACCOUNT, **params: Any) -> list[Change]:
    return plan_changes(action, state, rid, **params)


def test_least_privilege_declarations() -> None:
    for action in (public, shared_key):
        assert action.role.id == "17d1049b-9a84-46fb-8f53-869881c3d3ab"
        assert action.permissions == ("Microsoft.Storage/storageAccounts/read",
                                      "Microsoft.Storage/storageAccounts/write")


def test_public_network_access_plan_says_who_is_cut_off() -> None:
    [change] = _plan(public, SavedState([_account(pe="Approved")]))
    assert merge_patch(change.before, change.after) == {"properties": {"publicNetworkAccess": "Disabled"}}
    assert "cuts off every client except 1 approved private endpoint (petest01)" in change.note
    [bare] = _plan(public, SavedState([_account()]))
    # the account's IP and VNet rules stop counting once public access is off
    assert "cuts off every client: no approved private endpoint" in bare.note
    with pytest.raises(ActionError, match="refused: cuts off every client"):
        _plan(public, SavedState([_account(pe="Rejected")]), refuse_if_everyone_cut_off=True)
    assert _plan(public, SavedState([_account(publicNetworkAccess="Disabled")]),
                 refuse_if_everyone_cut_off=True) == []


def test_a_container_finding_acts_on_its_account() -> None:
    container = f"{ACCOUNT}/blobServices/default/containers/weights"
    [change] = _plan(shared_key, SavedState([_account()]), container)
    assert change.resource_id == ACCOUNT


def test_shared_key_plan_note_and_absent_default() -> None:
    [change] = _plan(shared_key, SavedState([_account()]))
    assert "allowSharedKeyAccess: (not set) -> false" in change.note
    assert "SAS signed with an account key" in change.note
    assert _plan(shared_key, SavedState([_account(allowSharedKeyAccess=False)])) == []
    assert _plan(shared_key, SavedState([_account(allowSharedKeyAccess=True)]))


@pytest.mark.parametrize(("playbook", "key", "policy"), [
    ("storage-disable-shared-key-access", "3b363842-30f5-4056-980d-3a40fa5de8b3",
     "8c6a50c6-9ffd-4ae7-986f-5fa6111f9a54"),
    ("storage-disable-public-network-access", None, "b2982f36-99f2-4db5-8eff-283140c09693"),
    ("storage-disable-public-network-access", None, "a06d0189-92e8-4dba-b0c4-08d7669fce7d"),
])
def test_shipped_playbooks_match(playbook: str, key: str | None, policy: str) -> None:
    pbs = load_playbooks(ROOT / "playbooks")
    findings = four_shapes(ACCOUNT, assessment=key, policy=policy,
                           display="Storage accounts should prevent shared key access")
    assert len(findings) == (4 if key else 2)
    for f in findings:
        pb = pbs.match(f)
        assert pb is not None
        assert pb.name == playbook

"""storage.disable-public-blob-access and storage.restrict-network-access against FakeArm.

Seeded state is the real ARM examples (StorageAccountUpdate, BlobContainersPatch response bodies);
findings go through ``remediator.findings.parse.parse_value``; writes go through the real SDK clients.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions.base import REGISTRY
from remediator.actions.change import Change, fingerprint
from remediator.actions.storage import DisablePublicBlobAccess, RestrictNetworkAccess
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.findings.model import Finding
from remediator.testing import FakeArm
from tests.support.builders import alert_payload, apply_error, arm_fixture, make_finding, parse_one, plan_changes

SUB = "{subscription-id}"  # as in the REST spec examples
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/res3376/providers/Microsoft.Storage/storageAccounts/sto328"
CONTAINER = ACCOUNT + "/blobServices/default/containers/container6185"
SUBNET = ("/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-net/providers/"
          "Microsoft.Network/virtualNetworks/hub/subnets/apps")

disable = REGISTRY["storage.disable-public-blob-access"]
restrict = REGISTRY["storage.restrict-network-access"]


def _documents(*, allow_public: bool = True) -> list[dict[str, Any]]:
    """The StorageAccountUpdate example's account, moved to the BlobContainersPatch example's account
    id (sto328 in res3376) so the two real documents belong together, and that container."""
    account = arm_fixture("storage__2023-05-01__StorageAccountUpdate.json")
    account["id"], account["name"] = ACCOUNT, "sto328"
    account["properties"]["allowBlobPublicAccess"] = allow_public
    container = arm_fixture("storage__2023-05-01__BlobContainersPatch.json")  # publicAccess: Container
    return [account, container]


def _alert(container: str | None = "container6185") -> Finding:
    return parse_one(alert_payload(ACCOUNT, container=container))


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.load(_documents())
        yield fake


def _plan(action: Any, state: StateReader, finding: Finding, **params: Any) -> list[Change]:
    return plan_changes(action, state, finding, **params)


def _json(changes: list[Change]) -> str:
    return json.dumps([c.to_json() for c in changes], sort_keys=True)


# -- playbook examples -------------------------------------------------------------------------------

def test_declarations() -> None:
    assert disable.role.id == restrict.role.id == "17d1049b-9a84-46fb-8f53-869881c3d3ab"
    assert "Microsoft.Storage/storageAccounts/write" in disable.permissions
    assert "Microsoft.Storage/storageAccounts/blobServices/containers/write" in disable.permissions
    assert disable.reversible
    assert restrict.reversible


# -- disable-public-blob-access ---------------------------------------------------------------------

def test_plan_is_the_same_saved_and_live_and_writes_nothing(arm: FakeArm) -> None:
    saved = _plan(disable, SavedState(_documents()), _alert())
    live = _plan(disable, LiveState(arm.clients()), _alert())
    assert arm.writes == []
    assert arm.requests  # it did read through ARM
    assert _json(saved) == _json(live)
    assert fingerprint(saved) == fingerprint(live)
    account, container = saved
    assert (account.resource_id, account.operation) == (ACCOUNT, "update")
    assert account.before == _documents()[0]  # the full document
    assert account.after is not None
    assert account.after["properties"]["allowBlobPublicAccess"] is False
    # nothing but the one property differs
    assert {**account.after["properties"], "allowBlobPublicAccess": True} == account.before["properties"]
    assert container.resource_id == CONTAINER
    assert container.after is not None
    assert container.after["properties"]["publicAccess"] == "None"
    assert container.after["properties"]["metadata"] == {"metadata": "true"}


def test_apply_sends_exactly_the_arm_patches_and_verify_passes(arm: FakeArm) -> None:
    clients = arm.clients()
    live = LiveState(clients)
    changes = _plan(disable, live, _alert())
    assert [disable.verify(live, c) for c in changes] == [
        "allowBlobPublicAccess is true, expected false", "publicAccess is Container, expected None"]
    arm.reset_log()
    results = [disable.apply(clients, c) for c in changes]
    account_patch, container_patch = arm.writes
    assert (account_patch.method, account_patch.path, account_patch.body) == (
        "PATCH", ACCOUNT, {"properties": {"allowBlobPublicAccess": False}})
    assert account_patch.query["api-version"]
    assert (container_patch.method, container_patch.path, container_patch.body) == (
        "PATCH", CONTAINER, {"properties": {"publicAccess": "None"}})
    assert results[0].detail == "storage account sto328: allowBlobPublicAccess false"
    assert results[0].response is not None
    assert [disable.verify(live, c) for c in changes] == [None, None]
    # and now the plan is empty: already compliant
    assert _plan(disable, live, _alert()) == []


def test_undo_round_trips(arm: FakeArm) -> None:
    clients = arm.clients()
    live = LiveState(clients)
    changes = _plan(disable, live, _alert())
    for c in changes:
        disable.apply(clients, c)
    arm.reset_log()
    undos = [disable.undo(c) for c in changes]
    for u in undos:
        disable.apply(clients, u)
        assert disable.verify(live, u) is None
    assert [w.body for w in arm.writes] == [{"properties": {"allowBlobPublicAccess": True}},
                                            {"properties": {"publicAccess": "Container"}}]
    assert arm.get(ACCOUNT) is not None
    assert arm.get(ACCOUNT)["properties"]["allowBlobPublicAccess"] is True  # type: ignore[index]
    assert arm.get(CONTAINER)["properties"]["publicAccess"] == "Container"  # type: ignore[index]


def test_undo_of_an_account_that_never_set_the_property_restores_true() -> None:
    docs = _documents()
    del docs[0]["properties"]["allowBlobPublicAccess"]
    (change,) = _plan(disable, SavedState(docs), _alert(None))
    undo = disable.undo(change)
    assert undo.after is not None
    assert undo.after["properties"]["allowBlobPublicAccess"] is True
    assert undo.before == change.after


def test_already_compliant_gives_no_changes() -> None:
    docs = _documents(allow_public=False)
    docs[1]["properties"]["publicAccess"] = "None"
    assert _plan(disable, SavedState(docs), _alert()) == []


def test_finding_on_a_container_acts_on_its_account_and_that_container() -> None:
    finding = make_finding(CONTAINER)
    changes = _plan(disable, SavedState(_documents()), finding)
    assert [c.resource_id for c in changes] == [ACCOUNT, CONTAINER]


def test_named_containers_can_be_left_alone_and_bad_names_are_ignored() -> None:
    state = SavedState(_documents())
    assert [c.resource_id for c in _plan(disable, state, _alert(), named_containers=False)] == [ACCOUNT]
    sneaky = _alert("../../../../providers/Microsoft.Authorization/roleAssignments/x")
    assert [c.resource_id for c in _plan(disable, state, sneaky)] == [ACCOUNT]
    assert [c.resource_id for c in _plan(disable, state, _alert("not-there"))] == [ACCOUNT]


def test_missing_account_is_an_action_error() -> None:
    with pytest.raises(ActionError, match="storage account not found"):
        _plan(disable, SavedState([]), _alert())
    with pytest.raises(ValidationError):
        disable.parse_params({"named_containers": True, "extra": 1})


@pytest.mark.parametrize(("status", "code"), [(403, "AuthorizationFailed"), (409, "Conflict")])
def test_write_errors_are_one_line_action_errors(arm: FakeArm, status: int, code: str) -> None:
    clients = arm.clients()
    account, container = _plan(disable, LiveState(clients), _alert())
    arm.fail_next("PATCH", "/storageAccounts/sto328", status)
    with pytest.raises(ActionError) as err:
        disable.apply(clients, account)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"storage.disable-public-blob-access: PATCH of storage account sto328 failed: "
                           f"{status} {code}: ")
    assert text.endswith(f"({ACCOUNT})")
    arm.fail_next("PATCH", "/containers/", status)
    with pytest.raises(ActionError, match=f"PATCH of container sto328/container6185 failed: {status} {code}"):
        disable.apply(clients, container)


# -- restrict-network-access ------------------------------------------------------------------------

def test_restrict_plan_keeps_rules_adds_allowed_and_writes_nothing(arm: FakeArm) -> None:
    params = {"allowed_ip_ranges": ["203.0.113.0/24", "198.51.100.7"], "allowed_subnet_ids": [SUBNET]}
    saved = _plan(restrict, SavedState(_documents()), make_finding(ACCOUNT), **params)
    live = _plan(restrict, LiveState(arm.clients()), make_finding(ACCOUNT), **params)
    assert arm.writes == []
    assert _json(saved) == _json(live)
    (change,) = saved
    assert change.after is not None
    acls = change.after["properties"]["networkAcls"]
    assert acls["defaultAction"] == "Deny"
    assert acls["bypass"] == "AzureServices"  # kept
    assert acls["resourceAccessRules"] == _documents()[0]["properties"]["networkAcls"]["resourceAccessRules"]
    assert acls["ipRules"] == [{"value": "203.0.113.0/24", "action": "Allow"},
                               {"value": "198.51.100.7", "action": "Allow"}]
    assert acls["virtualNetworkRules"] == [{"id": SUBNET, "action": "Allow"}]


def test_restrict_apply_verify_undo(arm: FakeArm) -> None:
    clients = arm.clients()
    live = LiveState(clients)
    (change,) = _plan(restrict, live, make_finding(ACCOUNT), allowed_ip_ranges=["203.0.113.0/24"], bypass=[])
    assert restrict.verify(live, change) == (
        "networkAcls differ from the plan in defaultAction, bypass, ipRules")
    arm.reset_log()
    restrict.apply(clients, change)
    (patch,) = arm.writes
    assert patch.method == "PATCH"
    assert patch.path == ACCOUNT
    synapse = ("/subscriptions/a7e99807-abbf-4642-bdec-2c809a96a8bc/resourceGroups/res9407/providers/"
               "Microsoft.Synapse/workspaces/testworkspace")
    assert patch.body == {"properties": {"networkAcls": {
        "resourceAccessRules": [{"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "resourceId": synapse}],
        "bypass": "None", "defaultAction": "Deny",
        "ipRules": [{"value": "203.0.113.0/24", "action": "Allow"}],
        "virtualNetworkRules": []}}}
    assert restrict.verify(live, change) is None
    assert _plan(restrict, live, make_finding(ACCOUNT), allowed_ip_ranges=["203.0.113.0/24"], bypass=[]) == []

    undo = restrict.undo(change)
    restrict.apply(clients, undo)
    assert restrict.verify(live, undo) is None
    now = arm.get(ACCOUNT)
    assert now is not None
    assert now["properties"]["networkAcls"] == _documents()[0]["properties"]["networkAcls"]


def test_restrict_already_denied_is_no_change_and_vnet_rule_state_is_not_sent(arm: FakeArm) -> None:
    docs = _documents()
    docs[0]["properties"]["networkAcls"].update(
        defaultAction="Deny", virtualNetworkRules=[{"id": SUBNET, "action": "Allow", "state": "Succeeded"}])
    assert _plan(restrict, SavedState(docs), make_finding(ACCOUNT), allowed_subnet_ids=[SUBNET.upper()]) == []
    (change,) = _plan(restrict, SavedState(docs), make_finding(ACCOUNT), allowed_ip_ranges=["8.8.8.8"])
    arm.add(docs[0])
    restrict.apply(arm.clients(), change)
    body = arm.writes[-1].body
    assert body["properties"]["networkAcls"]["virtualNetworkRules"] == [{"id": SUBNET, "action": "Allow"}]


def test_restrict_account_without_network_acls_gets_arm_defaults() -> None:
    docs = _documents()
    del docs[0]["properties"]["networkAcls"]
    (change,) = _plan(restrict, SavedState(docs), make_finding(ACCOUNT))
    assert change.after is not None
    assert change.after["properties"]["networkAcls"] == {
        "bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [], "defaultAction": "Deny"}
    undo = restrict.undo(change)
    assert undo.after is not None
    assert undo.after["properties"]["networkAcls"]["defaultAction"] == "Allow"


def test_restrict_params_are_validated() -> None:  # IP ranges and subnet ids: test_firewall.py
    with pytest.raises(ValidationError, match="bypass"):
        restrict.parse_params({"bypass": ["Everything"]})
    with pytest.raises(ValidationError, match="Extra inputs"):
        restrict.parse_params({"defaultAction": "Deny"})


def test_restrict_write_error_is_one_line(arm: FakeArm) -> None:
    (change,) = _plan(restrict, LiveState(arm.clients()), make_finding(ACCOUNT))
    assert "403 AuthorizationFailed" in apply_error(arm, restrict, change, ("PATCH", "sto328", 403))


def test_classes_are_registered() -> None:
    assert isinstance(disable, DisablePublicBlobAccess)
    assert isinstance(restrict, RestrictNetworkAccess)

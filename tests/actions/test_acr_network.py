"""acr.restrict-network-access and acr.disable-anonymous-pull on the real RegistryGet example
(2025-11-01), read live through azure-mgmt-containerregistry and written through the generic
client at the same API version, under a PIM grant."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions.base import REGISTRY
from remediator.actions.change import Change, fingerprint
from remediator.actions.properties import merge_patch
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.testing import FakeArm
from tests.support.builders import arm_fixture, plan_changes
from tests.support.pim import EXEC, covers, pim_apply

REGISTRY_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/"
               "Microsoft.ContainerRegistry/registries/myRegistry")
restrict = REGISTRY["acr.restrict-network-access"]
anonymous = REGISTRY["acr.disable-anonymous-pull"]
# Container Registry Contributor and Data Access Configuration Administrator (MicrosoftDocs/azure-docs
# articles/role-based-access-control/built-in-roles/containers.md), registry management actions.
ROLE_ACTIONS = ("Microsoft.ContainerRegistry/registries/read", "Microsoft.ContainerRegistry/registries/write",
                "Microsoft.ContainerRegistry/registries/delete",
                "Microsoft.ContainerRegistry/registries/operationStatuses/read",
                "Microsoft.ContainerRegistry/registries/listCredentials/action",
                "Microsoft.ContainerRegistry/registries/regenerateCredential/action")


def _registry(sku: str = "Premium", **props: Any) -> dict[str, Any]:
    doc = arm_fixture("containerregistry__2025-11-01__RegistryGet.json")  # Standard, rules Allow, public
    doc["sku"] = {"name": sku, "tier": sku}
    doc["properties"].update(props)
    return doc


def _plan(action: Any, state: StateReader, **params: Any) -> list[Change]:
    return plan_changes(action, state, REGISTRY_ID, **params)


@pytest.fixture
def arm(arm: FakeArm) -> FakeArm:  # the empty one of conftest.py, seeded
    arm.add(_registry(anonymousPullEnabled=True))
    arm.enforce_grants(EXEC, role_id=restrict.role.id)
    return arm


def test_declarations() -> None:
    for action in (restrict, anonymous):
        assert action.role.id == "3bc748fc-213d-45c1-8d91-9da5725539b9"  # the existing ACR role
        assert all(covers(ROLE_ACTIONS, op) for op in action.permissions)
        assert action.reversible
    # the two existing ACR actions are still there
    assert {"acr.disable-admin-user", "acr.rotate-credentials"} <= set(REGISTRY)


@pytest.mark.parametrize("sku", ["Basic", "Standard"])
def test_network_rules_are_premium_only(sku: str) -> None:
    with pytest.raises(ActionError, match=f"refused: .*need the Premium SKU; this container registry is {sku}"):
        _plan(restrict, SavedState([_registry(sku)]))
    with pytest.raises(ActionError, match=f"this container registry is {sku}"):
        _plan(restrict, SavedState([_registry(sku)]), mode="private-endpoint")


def test_firewall_plan_same_saved_and_live(arm: FakeArm) -> None:
    saved = _plan(restrict, SavedState([_registry(anonymousPullEnabled=True)]), allowed_ip_ranges=["203.0.113.7"])
    live = _plan(restrict, LiveState(arm.clients()), allowed_ip_ranges=["203.0.113.7"])
    assert arm.writes == []
    assert fingerprint(saved) == fingerprint(live)
    [change] = saved
    assert merge_patch(change.before, change.after) == {"properties": {"networkRuleSet": {
        "defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "203.0.113.7"}]}}}
    assert "cuts off every client except 1 IP rule (203.0.113.7)" in change.note


def test_apply_verify_undo_under_pim(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    [change] = _plan(restrict, live, allowed_ip_ranges=["203.0.113.0/24"], bypass="None")
    with pytest.raises(ActionError, match="403 AuthorizationFailed"):
        restrict.apply(arm.clients(principal_id=EXEC), change)
    arm.reset_log()
    pim_apply(arm, restrict, change)
    [patch] = arm.resource_writes
    assert (patch.method, patch.query["api-version"]) == ("PATCH", "2025-11-01")
    assert patch.body == {"properties": {
        "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "203.0.113.0/24"}]},
        "networkRuleBypassOptions": "None"}}
    assert restrict.verify(live, change) is None
    back = restrict.undo(change)
    pim_apply(arm, restrict, back)
    assert restrict.verify(live, back) is None
    now = arm.get(REGISTRY_ID)
    assert now is not None
    assert now["properties"]["networkRuleSet"] == {"defaultAction": "Allow", "ipRules": []}
    assert now["properties"]["networkRuleBypassOptions"] == "AzureServices"


def test_private_endpoint_mode_and_refusals() -> None:
    pec = {"id": f"{REGISTRY_ID}/privateEndpointConnections/pe-acr", "properties": {
        "privateEndpoint": {"id": "/subscriptions/x/resourceGroups/n/providers/Microsoft.Network/"
                                  "privateEndpoints/pe-acr"},
        "privateLinkServiceConnectionState": {"status": "Approved", "description": "", "actionsRequired": "None"}}}
    with pytest.raises(ActionError, match="no approved private endpoint connection"):
        _plan(restrict, SavedState([_registry()]), mode="private-endpoint")
    [change] = _plan(restrict, SavedState([_registry(privateEndpointConnections=[pec])]), mode="auto")
    assert merge_patch(change.before, change.after) == {"properties": {"publicNetworkAccess": "Disabled"}}
    with pytest.raises(ActionError, match="cuts off every client"):
        _plan(restrict, SavedState([_registry()]), refuse_if_everyone_cut_off=True)


def test_anonymous_pull_plan() -> None:
    [change] = _plan(anonymous, SavedState([_registry(anonymousPullEnabled=True)]))
    assert merge_patch(change.before, change.after) == {"properties": {"anonymousPullEnabled": False}}
    assert "can break: pulls without docker login" in change.note
    # a registry that never turned it on (any SKU, Basic included): nothing to do
    assert _plan(anonymous, SavedState([_registry("Basic")])) == []


def test_params() -> None:  # IP ranges: tests/actions/test_firewall.py
    with pytest.raises(ValidationError, match="bypass"):
        restrict.parse_params({"bypass": "Logging"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        anonymous.parse_params({"force": True})

"""keyvault.restrict-network-access and keyvault.enable-purge-protection on the real Key Vault
examples (getVault, createVaultWithNetworkAcls at 2024-11-01), applied under a PIM grant through
azure-mgmt-resource's generic client against FakeArm."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions.base import REGISTRY, PlanContext
from remediator.actions.change import Change, fingerprint
from remediator.actions.properties import merge_patch
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.testing import FakeArm
from tests.support.builders import arm_fixture, example_connection, make_finding, plan_changes
from tests.support.pim import EXEC, covers, pim_apply

VAULT = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sample-resource-group/providers/"
         "Microsoft.KeyVault/vaults/sample-vault")
SUBNET = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-net/providers/"
          "Microsoft.Network/virtualNetworks/hub/subnets/apps")
restrict = REGISTRY["keyvault.restrict-network-access"]
purge = REGISTRY["keyvault.enable-purge-protection"]

# Key Vault Contributor's actions (MicrosoftDocs/azure-docs articles/role-based-access-control/
# built-in-roles/security.md): management plane only, no data actions.
KEY_VAULT_CONTRIBUTOR_ACTIONS = (
    "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.KeyVault/*",
    "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
)


def _vault() -> dict[str, Any]:
    return arm_fixture("keyvault__2024-11-01__getVault.json")  # no networkAcls, public access Enabled


def _vault_with_rules(default: str = "Allow") -> dict[str, Any]:
    doc = arm_fixture("keyvault__2024-11-01__createVaultWithNetworkAcls.json")
    doc["properties"]["networkAcls"]["defaultAction"] = default
    return doc


def _with_private_endpoint(doc: dict[str, Any], status: str = "Approved") -> dict[str, Any]:
    doc["properties"]["privateEndpointConnections"] = [
        example_connection(status, "keyvault__2023-07-01__getPrivateEndpointConnection.json")]
    return doc


def _plan(action: Any, state: StateReader, **params: Any) -> list[Change]:
    return plan_changes(action, state, VAULT, **params)


@pytest.fixture
def arm(arm: FakeArm) -> FakeArm:  # the empty one of conftest.py, seeded
    arm.add(_vault())
    arm.enforce_grants(EXEC, role_id=restrict.role.id)
    return arm


def test_declarations_and_least_privilege() -> None:
    for action in (restrict, purge):
        assert action.role.id == "f25e0fa2-a7c8-4377-a976-54943a77a395"
        assert action.role.name == "Key Vault Contributor"
        assert all(covers(KEY_VAULT_CONTRIBUTOR_ACTIONS, op) for op in action.permissions)
        assert action.api_version == "2024-11-01"  # type: ignore[attr-defined]
    assert restrict.reversible
    assert not purge.reversible


# -- restrict-network-access ----------------------------------------------------------------------------

def test_firewall_plan_keeps_rules_adds_the_playbooks_and_is_the_same_live(arm: FakeArm) -> None:
    docs = [_vault_with_rules()]
    arm.add(docs[0])
    params = {"allowed_ip_ranges": ["203.0.113.0/24", "198.51.100.7"], "allowed_subnet_ids": [SUBNET]}
    saved = _plan(restrict, SavedState(docs), **params)
    live = _plan(restrict, LiveState(arm.clients()), **params)
    assert arm.writes == []
    assert fingerprint(saved) == fingerprint(live)
    [change] = saved
    acls = change.after["properties"]["networkAcls"]  # type: ignore[index]
    assert acls["defaultAction"] == "Deny"
    assert acls["bypass"] == "AzureServices"
    assert acls["ipRules"] == [{"value": "124.56.78.91/32"}, {"value": "'10.91.4.0/24'"},
                               {"value": "203.0.113.0/24"}, {"value": "198.51.100.7/32"}]
    assert acls["virtualNetworkRules"] == [
        {"id": "/subscriptions/subid/resourcegroups/rg1/providers/microsoft.network/virtualnetworks/test-vnet/"
               "subnets/subnet1"}, {"id": SUBNET}]
    assert "defaultAction: Allow -> Deny" in change.note
    assert "cuts off every client except" in change.note
    assert "4 IP rules" in change.note
    # nothing but networkAcls changes
    assert set(merge_patch(change.before, change.after)["properties"]) == {"networkAcls"}


def test_existing_rules_are_not_added_twice() -> None:
    docs = [_vault_with_rules()]
    [change] = _plan(restrict, SavedState(docs), allowed_ip_ranges=["124.56.78.91"])
    assert len(change.after["properties"]["networkAcls"]["ipRules"]) == 2  # type: ignore[index]
    docs = [_vault_with_rules("Deny")]
    assert _plan(restrict, SavedState(docs), allowed_ip_ranges=["124.56.78.91"]) == []


def test_no_rules_and_no_endpoint_cuts_off_everyone_and_can_refuse() -> None:
    [change] = _plan(restrict, SavedState([_vault()]))
    assert "cuts off every client: no approved private endpoint and no IP or virtual network rule" in change.note
    with pytest.raises(ActionError, match="refused: cuts off every client"):
        _plan(restrict, SavedState([_vault()]), refuse_if_everyone_cut_off=True)
    assert _plan(restrict, SavedState([_vault()]), refuse_if_everyone_cut_off=True, allowed_ip_ranges=["8.8.8.8"])


def test_private_endpoint_mode() -> None:
    with pytest.raises(ActionError, match="no approved private endpoint connection"):
        _plan(restrict, SavedState([_with_private_endpoint(_vault(), "Pending")]), mode="private-endpoint")
    doc = _with_private_endpoint(_vault())
    [change] = _plan(restrict, SavedState([doc]), mode="auto")
    assert merge_patch(change.before, change.after) == {"properties": {"publicNetworkAccess": "Disabled"}}
    assert "cuts off every client except 1 approved private endpoint (sample-pe)" in change.note
    # auto without an approved endpoint: the firewall
    [change] = _plan(restrict, SavedState([_with_private_endpoint(_vault(), "Rejected")]), mode="auto")
    assert change.after["properties"]["networkAcls"]["defaultAction"] == "Deny"  # type: ignore[index]
    assert "sample-pe Rejected" in change.note


def test_apply_under_pim_sends_the_whole_rule_set_then_verify_and_undo(arm: FakeArm) -> None:
    arm.add(_vault_with_rules())
    live = LiveState(arm.clients())
    [change] = _plan(restrict, live, bypass="None", allowed_ip_ranges=["203.0.113.0/24"])
    with pytest.raises(ActionError, match="403 AuthorizationFailed"):
        restrict.apply(arm.clients(principal_id=EXEC), change)  # no grant: refused
    assert restrict.verify(live, change) is not None
    arm.reset_log()
    pim_apply(arm, restrict, change)
    [patch] = arm.resource_writes
    assert (patch.method, patch.path, patch.query["api-version"]) == ("PATCH", VAULT, "2024-11-01")
    assert patch.body == {"properties": {"networkAcls": {  # whole: rules and virtual networks travel too
        "defaultAction": "Deny", "bypass": "None",
        "ipRules": [{"value": "124.56.78.91/32"}, {"value": "'10.91.4.0/24'"}, {"value": "203.0.113.0/24"}],
        "virtualNetworkRules": [{"id": "/subscriptions/subid/resourcegroups/rg1/providers/microsoft.network/"
                                       "virtualnetworks/test-vnet/subnets/subnet1"}]}}}
    assert restrict.verify(live, change) is None
    assert arm.pim_grants(EXEC) == []  # released
    back = restrict.undo(change)
    pim_apply(arm, restrict, back)
    assert restrict.verify(live, back) is None
    assert arm.get(VAULT)["properties"]["networkAcls"] == _vault_with_rules()["properties"]["networkAcls"]  # type: ignore[index]


def test_undo_of_a_vault_without_acls_restores_allow(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    [change] = _plan(restrict, live, allowed_ip_ranges=["203.0.113.0/24"])
    pim_apply(arm, restrict, change)
    back = restrict.undo(change)
    assert back.after["properties"]["networkAcls"]["defaultAction"] == "Allow"  # type: ignore[index]
    pim_apply(arm, restrict, back)
    acls = arm.get(VAULT)["properties"]["networkAcls"]  # type: ignore[index]
    assert (acls["defaultAction"], acls["ipRules"]) == ("Allow", [])


# IP ranges and subnet ids: tests/actions/test_firewall.py, the same answers on every firewall action
@pytest.mark.parametrize(("params", "message"), [
    ({"bypass": "Logging"}, "bypass"),
    ({"mode": "off"}, "mode"),
])
def test_params_are_validated(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        restrict.parse_params(params)


# -- enable-purge-protection ------------------------------------------------------------------------------

def test_purge_plan_says_irreversible_and_retention() -> None:
    [change] = _plan(purge, SavedState([_vault()]))
    assert merge_patch(change.before, change.after) == {"properties": {"enablePurgeProtection": True}}
    assert "enablePurgeProtection: (not set) -> true" in change.note
    assert "IRREVERSIBLE: purge protection cannot be turned off" in change.note
    assert "soft-delete retention: 90 days" in change.note
    doc = _vault()
    doc["properties"].update(enableSoftDelete=False, softDeleteRetentionInDays=7)
    [change] = _plan(purge, SavedState([doc]))
    assert merge_patch(change.before, change.after) == {
        "properties": {"enableSoftDelete": True, "enablePurgeProtection": True}}
    assert "soft-delete retention: 7 days" in change.note
    doc["properties"].update(enableSoftDelete=True, enablePurgeProtection=True)
    assert _plan(purge, SavedState([doc])) == []


def test_wrong_type_is_refused() -> None:
    other = VAULT.replace("Microsoft.KeyVault/vaults", "Microsoft.KeyVault/managedHSMs")
    with pytest.raises(ActionError, match=r"expected Microsoft\.KeyVault/vaults"):
        purge.plan(PlanContext(finding=make_finding(other), state=SavedState([])), purge.parse_params({}))

"""cognitive.restrict-network-access and cognitive.disable-local-auth on the real Cognitive Services
REST example documents, through the real generic SDK client against FakeArm (PATCH answered 202 +
azure-AsyncOperation, as Accounts_Update is a long-running operation), under a PIM grant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions.base import REGISTRY
from remediator.actions.change import Change
from remediator.actions.properties import merge_patch
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.findings.model import Finding
from remediator.playbooks import load_playbooks
from remediator.testing import FakeArm
from tests.support.builders import (
    arm_fixture,
    example_connection,
    four_shapes,
    make_finding,
    plan_changes,
)
from tests.support.pim import pim_apply

ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-0000-0000-000000000000"
ACCOUNT = (f"/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/"
           "Microsoft.CognitiveServices/accounts/myAccount")
SUBNET = f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub/subnets/ai"
network = REGISTRY["cognitive.restrict-network-access"]
local_auth = REGISTRY["cognitive.disable-local-auth"]


def _account(*, kind: str = "OpenAI", pe: str | None = None, **props: Any) -> dict[str, Any]:
    """The GetAccount example (no publicNetworkAccess, networkAcls or disableLocalAuth: ARM's defaults),
    as an OpenAI account; ``pe`` embeds the real private endpoint connection with that status."""
    doc = arm_fixture("cognitiveservices__2024-10-01__GetAccount.json")
    doc["id"], doc["kind"] = ACCOUNT, kind
    if pe is not None:
        doc["properties"]["privateEndpointConnections"] = [example_connection(pe)]
    doc["properties"].update(props)
    return doc


def _plan(action: Any, state: StateReader, finding: Finding | None = None, **params: Any) -> list[Change]:
    return plan_changes(action, state, finding or ACCOUNT, **params)


def test_least_privilege_declarations() -> None:
    for action in (network, local_auth):
        assert action.role.id == "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68"
        assert action.permissions == ("Microsoft.CognitiveServices/accounts/read",
                                      "Microsoft.CognitiveServices/accounts/write")
        assert action.reversible


def test_private_endpoint_means_public_access_disabled() -> None:
    [change] = _plan(network, SavedState([_account(pe="Approved")]))
    assert merge_patch(change.before, change.after) == {"properties": {"publicNetworkAccess": "Disabled"}}
    assert "publicNetworkAccess: (not set) -> Disabled" in change.note
    assert "cuts off every client except 1 approved private endpoint (petest01)" in change.note


def test_no_private_endpoint_closes_the_firewall_keeping_rules() -> None:
    acls = {"defaultAction": "Allow", "ipRules": [{"value": "198.51.100.7"}], "virtualNetworkRules": []}
    [change] = _plan(network, SavedState([_account(pe="Pending", networkAcls=acls)]),
                     allowed_ip_ranges=["203.0.113.0/24", "198.51.100.7"], allowed_subnet_ids=[SUBNET])
    assert change.after is not None
    assert change.after["properties"]["networkAcls"] == {
        "defaultAction": "Deny", "ipRules": [{"value": "198.51.100.7"}, {"value": "203.0.113.0/24"}],
        "virtualNetworkRules": [{"id": SUBNET}]}
    assert "publicNetworkAccess" not in change.after["properties"]
    assert "cuts off every client except 2 IP rules (198.51.100.7, 203.0.113.0/24), 1 virtual network " \
           "rule (ai) (1 connection not approved: petest01 Pending)" in change.note


def test_everyone_cut_off_is_said_and_can_be_refused() -> None:
    [change] = _plan(network, SavedState([_account()]))
    assert "cuts off every client: no approved private endpoint and no IP or virtual network rule" in change.note
    with pytest.raises(ActionError, match=r"refused: cuts off every client.*refuse_if_everyone_cut_off"):
        _plan(network, SavedState([_account()]), refuse_if_everyone_cut_off=True)
    # with a rule to keep, the same param lets it through
    assert _plan(network, SavedState([_account()]), refuse_if_everyone_cut_off=True,
                 allowed_ip_ranges=["203.0.113.0/24"])


def test_already_closed_accounts_plan_nothing() -> None:
    assert _plan(network, SavedState([_account(publicNetworkAccess="Disabled")])) == []
    closed = {"defaultAction": "Deny", "ipRules": [], "virtualNetworkRules": []}
    assert _plan(network, SavedState([_account(networkAcls=closed)]), refuse_if_everyone_cut_off=True) == []
    assert _plan(local_auth, SavedState([_account(disableLocalAuth=True)])) == []


# IP ranges and subnet ids: tests/actions/test_firewall.py, the same answers on every firewall action
@pytest.mark.parametrize(("params", "message"), [
    ({"bypass": ["AzureServices"]}, "Extra inputs are not permitted"),
    ({"mode": "closed"}, "mode"),
])
def test_bad_params_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        network.parse_params(params)


def test_wrong_type_and_missing_account() -> None:
    vault = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
    with pytest.raises(ActionError, match=r"expected Microsoft\.CognitiveServices/accounts"):
        _plan(local_auth, SavedState([]), make_finding(vault))
    with pytest.raises(ActionError, match="AI services account not found"):
        _plan(local_auth, SavedState([]))


@pytest.mark.parametrize("pe", [None, "Approved"])
def test_restrict_apply_under_grant_verify_undo(pe: str | None) -> None:
    with FakeArm() as arm:
        arm.add(_account(pe=pe))
        live = LiveState(arm.clients())
        [change] = _plan(network, live, allowed_ip_ranges=["203.0.113.0/24"])
        assert network.verify(live, change) is not None
        pim_apply(arm, network, change, refused_first=True)
        patch = next(w for w in arm.resource_writes if w.method == "PATCH" and w.status == 202)
        assert patch.query.get("api-version") == "2024-10-01"
        assert any(r.path.startswith("/_operations/") for r in arm.requests)  # the SDK polled the LRO
        if pe:
            assert patch.body == {"properties": {"publicNetworkAccess": "Disabled"}}
        else:  # the rule set is sent whole
            assert patch.body == {"properties": {"networkAcls": {
                "defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}], "virtualNetworkRules": []}}}
        assert network.verify(live, change) is None
        assert _plan(network, live) == []
        back = network.undo(change)
        pim_apply(arm, network, back, refused_first=True)  # undo is a write too: a new grant
        assert network.verify(live, back) is None
        doc = arm.get(ACCOUNT)
        assert doc is not None
        if pe:
            assert doc["properties"]["publicNetworkAccess"] == "Enabled"
        else:
            assert doc["properties"]["networkAcls"]["defaultAction"] == "Allow"
            assert doc["properties"]["networkAcls"]["ipRules"] == []


def test_local_auth_note_and_undo_to_the_absent_default() -> None:
    [change] = _plan(local_auth, SavedState([_account(kind="AIServices")]))
    assert "disableLocalAuth: (not set) -> true" in change.note
    assert "can break: clients calling with an API key" in change.note
    back = local_auth.undo(change)
    assert merge_patch(back.before, back.after) == {"properties": {"disableLocalAuth": False}}


@pytest.mark.parametrize(("playbook", "key", "policy", "display"), [
    ("cognitive-restrict-network-access", "f738efb8-005f-680d-3d43-b3db762d6243",
     "037eea7a-bd0a-46c5-9a66-03aea78705d3", "Azure AI Services resources should restrict network access"),
    ("cognitive-disable-local-auth", "13b10b36-aa99-4db6-b00c-dcf87c4761e6",
     "71ef260a-8f18-47b7-abcb-62d0673d94dc",
     "Azure AI Services resources should have key access disabled (disable local authentication)"),
])
def test_shipped_playbooks_match_all_four_shapes(playbook: str, key: str, policy: str, display: str) -> None:
    pbs = load_playbooks(ROOT / "playbooks")
    findings = four_shapes(ACCOUNT, assessment=key, policy=policy, display=display)
    assert [f.kind for f in findings] == ["recommendation", "recommendation", "policy", "policy"]
    for f in findings:
        pb = pbs.match(f)
        assert pb is not None, (f.kind, f.type)
        assert pb.name == playbook
        assert f.resource_id.lower() == ACCOUNT.lower()

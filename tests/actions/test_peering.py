"""network.restrict-peerings: plans on the real peering documents (VirtualNetworkPeeringGet, embedded in
their virtual network as ARM returns it), refusals, warnings when the peer network is missing, and
apply / verify / undo through azure-mgmt-network against FakeArm under a PIM grant."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions.base import REGISTRY, PlanContext
from remediator.actions.change import Change
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.findings.model import Finding
from remediator.findings.parse import parse_value
from remediator.playbooks import load_playbooks
from remediator.testing import FakeArm
from tests.support.builders import arm_fixture, make_finding
from tests.support.pim import EXEC, pim_apply

ROOT = Path(__file__).resolve().parents[2]
RG = "/subscriptions/subid/resourceGroups/peerTest/providers/Microsoft.Network/virtualNetworks"
VNET1, VNET2, VNET3 = f"{RG}/vnet1", f"{RG}/vnet2", f"{RG}/vnet3"
PEER = f"{VNET1}/virtualNetworkPeerings/peer"  # the example's peering: vnet1 -> vnet2
ROGUE = f"{VNET1}/virtualNetworkPeerings/to-partner"
PARTNER = "/subscriptions/9d3f1c2e-0b4a-4e8f-a1d2-6c7b8e9f0a13/resourceGroups/rg-x/providers/Microsoft.Network/" \
          "virtualNetworks/partner"
ALLOW_VNET2 = {"allowed_remote_networks": [f"{RG}/vnet?"]}

ACTION = REGISTRY["network.restrict-peerings"]
# Network Contributor's actions, MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/
# networking.md: Microsoft.Authorization/*/read, Microsoft.Insights/alertRules/*, Microsoft.Network/*,
# Microsoft.ResourceHealth/availabilityStatuses/read, Microsoft.Resources/deployments/*,
# Microsoft.Resources/subscriptions/resourceGroups/read, Microsoft.Support/*
NETWORK_CONTRIBUTOR_ACTIONS = (
    "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Network/*",
    "Microsoft.ResourceHealth/availabilityStatuses/read", "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*")


def peering(pid: str = PEER, remote: str = VNET2, **flags: bool) -> dict[str, Any]:
    """The VirtualNetworkPeeringGet example's body, as ``pid`` to ``remote``, with ``flags`` set."""
    doc = arm_fixture("network__2024-05-01__VirtualNetworkPeeringGet.json")
    doc["id"], doc["name"] = pid, pid.rsplit("/", 1)[-1]
    doc["type"] = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"
    doc["properties"]["remoteVirtualNetwork"]["id"] = remote
    doc["properties"].update(flags)
    return doc


def vnet(vid: str, *peerings: dict[str, Any]) -> dict[str, Any]:
    return {"id": vid, "name": vid.rsplit("/", 1)[-1], "type": "Microsoft.Network/virtualNetworks",
            "location": "westeurope",
            "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [],
                           "virtualNetworkPeerings": list(peerings)}}


def finding(resource_id: str = PEER) -> Finding:
    return make_finding(resource_id, kind="operation",
                        type="microsoft.network/virtualnetworks/virtualnetworkpeerings/write")


def plan(state: StateReader, resource_id: str = PEER, **params: Any) -> tuple[list[Change], list[str]]:
    ctx = PlanContext(finding=finding(resource_id), state=state)
    return ACTION.plan(ctx, ACTION.parse_params(params)), ctx.warnings


# --- declarations, playbooks ---------------------------------------------------------------------

def test_shipped_playbook() -> None:
    shipped = load_playbooks(ROOT / "playbooks").get("vnet-restrict-peerings")
    assert shipped is not None
    assert (shipped.risk, shipped.approval.quorum) == ("high", 2)


def test_least_privilege_role_covers_every_operation() -> None:
    assert (ACTION.role.name, ACTION.role.id) == ("Network Contributor", "4d97b98b-1d4f-4787-a291-c67834d212e7")
    for op in ACTION.permissions:
        assert any(fnmatch.fnmatchcase(op.lower(), a.lower()) for a in NETWORK_CONTRIBUTOR_ACTIONS), op
    assert all(op.startswith("Microsoft.Network/virtualNetworks/") for op in ACTION.permissions)


def test_parameter_refusals() -> None:
    for bad in ({"allowed_remote_networks": ["*"]}, {"allowed_remote_networks": ["/subscriptions/*"]},
                {"allowed_remote_networks": [f"{RG}/vnet2/subnets/default"]},
                {"allowed_subscriptions": ["subid"]}, {"disable_everything": True}):
        with pytest.raises(ValidationError):
            ACTION.parse_params(bad)
    p = ACTION.parse_params({"allowed_subscriptions": ["9D3F1C2E-0B4A-4E8F-A1D2-6C7B8E9F0A13"]})
    assert p.allows(PARTNER)
    assert not p.allows(VNET2)
    with pytest.raises(ValidationError, match="brackets"):  # a character class in fnmatch: not ours
        ACTION.parse_params({"allowed_remote_networks": [VNET2[:-1] + "[0-9]"]})


def test_remote_network_globs_match_like_the_playbooks_globs() -> None:
    """``*`` spans ``/``, ``?`` is one character, the rest literal and case-insensitive."""
    p = ACTION.parse_params({"allowed_remote_networks": ["/subscriptions/subid/*/virtualnetworks/VNET2",
                                                         VNET3[:-1] + "?"]})
    assert p.allows(VNET2.upper())
    assert p.allows(VNET3)
    assert not p.allows(VNET3 + "x")
    assert not p.allows(PARTNER)


# --- plan ---------------------------------------------------------------------------------------------

def test_peering_to_a_network_outside_the_list_is_deleted_and_the_plan_says_it_cuts_them_apart() -> None:
    state = SavedState([vnet(VNET1, peering())])
    (change,), warnings = plan(state, allowed_remote_networks=[VNET3])
    assert (change.operation, change.resource_id, change.after) == ("delete", PEER, None)
    assert change.before == peering()
    assert "cuts vnet1 and vnet2 apart" in change.note
    assert "Disconnected" in change.note
    assert warnings == []


def test_allowed_peering_loses_forwarded_traffic_and_gateway_transit_only() -> None:
    state = SavedState([vnet(VNET1, peering(allowGatewayTransit=True)),
                        vnet(VNET2, peering(f"{VNET2}/virtualNetworkPeerings/back", VNET1))])
    (change,), warnings = plan(state, **ALLOW_VNET2)
    assert change.operation == "update"
    before, after = change.before["properties"], change.after["properties"]  # type: ignore[index]
    assert (after["allowForwardedTraffic"], after["allowGatewayTransit"]) == (False, False)
    assert {k: v for k, v in after.items() if k not in ("allowForwardedTraffic", "allowGatewayTransit")} == \
        {k: v for k, v in before.items() if k not in ("allowForwardedTraffic", "allowGatewayTransit")}
    assert after["useRemoteGateways"] is False
    assert "the peer does not use this network's gateway" in change.note
    assert warnings == []


def test_gateway_transit_used_by_the_remote_network_is_named_as_what_breaks() -> None:
    back = peering(f"{VNET2}/virtualNetworkPeerings/back", VNET1, useRemoteGateways=True)
    state = SavedState([vnet(VNET1, peering(allowGatewayTransit=True)), vnet(VNET2, back)])
    (change,), _ = plan(state, **ALLOW_VNET2)
    assert "can break: vnet2 uses this network's gateway (its peering back" in change.note


def test_missing_peer_network_plans_anyway_and_warns_how_to_add_it() -> None:
    state = SavedState([vnet(VNET1, peering(allowGatewayTransit=True))])
    (change,), warnings = plan(state, **ALLOW_VNET2)
    assert change.operation == "update"
    assert warnings == [f"peer network {VNET2} not in the resource state: whether it uses this network's gateway "
                        "(its peering back with useRemoteGateways) was not checked; add it with `az network vnet "
                        f"show --ids {VNET2} > peer-vnet.json` to the --resources folder"]


def test_use_remote_gateways_only_when_asked() -> None:
    state = SavedState([vnet(VNET1, peering(useRemoteGateways=True, allowForwardedTraffic=False))])
    assert plan(state, **ALLOW_VNET2)[0] == []  # already compliant with the defaults
    (change,), _ = plan(state, **ALLOW_VNET2, disable_remote_gateways=True)
    assert change.after["properties"]["useRemoteGateways"] is False  # type: ignore[index]
    assert "loses the routes it learns through vnet2's gateway" in change.note


def test_finding_on_the_virtual_network_plans_each_peering() -> None:
    state = SavedState([vnet(VNET1, peering(), peering(ROGUE, PARTNER))])
    changes, _ = plan(state, VNET1, **ALLOW_VNET2)
    assert [(c.resource_id, c.operation) for c in changes] == [(PEER, "update"), (ROGUE, "delete")]


def test_refusals_name_the_resource() -> None:
    with pytest.raises(ActionError, match=r"peering not found in the resource state .*az network vnet show"):
        plan(SavedState([vnet(VNET1)]))
    with pytest.raises(ActionError, match="virtual network not found"):
        plan(SavedState([]), VNET1)
    with pytest.raises(ActionError, match="expected a virtual network or a peering"):
        plan(SavedState([]), "/subscriptions/subid/resourceGroups/peerTest")
    no_remote = peering()
    del no_remote["properties"]["remoteVirtualNetwork"]
    with pytest.raises(ActionError, match="names no remote virtual network"):
        plan(SavedState([vnet(VNET1, no_remote)]))


def test_vnet_document_without_peerings_warns() -> None:
    doc = vnet(VNET1)
    del doc["properties"]["virtualNetworkPeerings"]
    changes, warnings = plan(SavedState([doc]), VNET1)
    assert changes == []
    assert "lists no virtualNetworkPeerings" in warnings[0]


# --- apply under a PIM grant, verify, undo --------------------------------------------------------

@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.load([vnet(VNET1, peering(), peering(ROGUE, PARTNER)), vnet(VNET2)])
        fake.enforce_grants(EXEC, role_id=ACTION.role.id)
        yield fake


def test_delete_verify_and_undo_recreates_from_before(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    (change,) = plan(live, ROGUE, **ALLOW_VNET2)[0]
    assert arm.writes == []  # planning live is read-only
    pim_apply(arm, ACTION, change)
    (write,) = arm.resource_writes
    assert (write.method, write.path, write.principal) == ("DELETE", ROGUE, EXEC)
    assert arm.get(ROGUE) is None
    assert ACTION.verify(live, change) is None
    assert [p["name"] for p in arm.get(VNET1)["properties"]["virtualNetworkPeerings"]] == ["peer"]  # type: ignore[index]

    undo = ACTION.undo(change)
    assert (undo.operation, undo.after) == ("create", change.before)
    arm.reset_log()
    pim_apply(arm, ACTION, undo)
    (put,) = arm.resource_writes
    assert put.method == "PUT"
    assert put.principal == EXEC
    assert set(put.body["properties"]) <= {"allowVirtualNetworkAccess", "allowForwardedTraffic",
                                                "allowGatewayTransit", "useRemoteGateways", "remoteVirtualNetwork",
                                                "doNotVerifyRemoteGateways", "peerCompleteVnets",
                                                "enableOnlyIPv6Peering", "localSubnetNames", "remoteSubnetNames"}
    assert "peeringState" not in put.body["properties"]
    assert ACTION.verify(live, undo) is None
    assert arm.get(ROGUE)["properties"]["remoteVirtualNetwork"]["id"] == PARTNER  # type: ignore[index]


def test_update_verify_and_undo_restores_the_flags(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    (change,) = plan(live, PEER, **ALLOW_VNET2)[0]
    result = pim_apply(arm, ACTION, change)
    assert "allowForwardedTraffic false" in result.detail
    assert arm.get(PEER)["properties"]["allowForwardedTraffic"] is False  # type: ignore[index]
    assert ACTION.verify(live, change) is None
    assert plan(live, PEER, **ALLOW_VNET2)[0] == []  # compliant now

    undo = ACTION.undo(change)
    pim_apply(arm, ACTION, undo)
    assert arm.get(PEER)["properties"]["allowForwardedTraffic"] is True  # type: ignore[index]
    assert ACTION.verify(live, undo) is None
    assert "allowForwardedTraffic is True, planned False" in (ACTION.verify(live, change) or "")


# --- findings: Event Grid, CloudEvents, Activity Log -> the shipped playbook ---------------------

def write_event(resource: str, operation: str) -> dict[str, Any]:
    """The docs' ResourceWriteSuccess sample, moved to ``resource`` and ``operation``."""
    from tests.findings.test_operations import resource_write_event

    return resource_write_event(resource, operation)


def test_event_grid_peering_write_is_claimed_by_the_shipped_playbook() -> None:
    playbooks = load_playbooks(ROOT / "playbooks")
    (record,) = parse_value(write_event(ROGUE, "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write"),
                            source="eg")
    assert isinstance(record, Finding)
    match = playbooks.match(record)
    assert match is not None
    assert match.name == "vnet-restrict-peerings"
    state = SavedState([vnet(VNET1, peering(ROGUE, PARTNER))])
    ctx = PlanContext(finding=record, state=state)
    (change,) = ACTION.plan(ctx, match.steps[0].params)
    assert change.operation == "delete"
    assert change.resource_id == ROGUE


def test_peering_documents_are_not_mutated_by_planning() -> None:
    doc = vnet(VNET1, peering(allowGatewayTransit=True))
    kept = copy.deepcopy(doc)
    plan(SavedState([doc]), **ALLOW_VNET2)
    assert doc == kept

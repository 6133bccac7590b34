"""ml.disable-public-network-access (workspaces, hubs, projects) and the online endpoint refusal, on
the real Machine Learning REST example documents; the workspace PATCH through the real generic SDK
client against FakeArm (202 + Location, as Workspaces_Update is a long-running operation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remediator.actions.base import REGISTRY
from remediator.actions.change import Change
from remediator.actions.properties import merge_patch
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.playbooks import load_playbooks
from remediator.testing import FakeArm
from tests.support.builders import arm_fixture, four_shapes, plan_changes
from tests.support.pim import pim_apply

ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-1111-2222-3333-444444444444"
WS = (f"/subscriptions/{SUB}/resourceGroups/workspace-1234/providers/"
      "Microsoft.MachineLearningServices/workspaces/testworkspace")
HUB = WS.replace("testworkspace", "hub1")
ENDPOINT = f"{WS}/onlineEndpoints/scoring"
workspace = REGISTRY["ml.disable-public-network-access"]
endpoint = REGISTRY["ml.disable-endpoint-public-network-access"]


def _ws(*, kind: str | None = None, pe: bool = True, **props: Any) -> dict[str, Any]:
    """Workspace/get.json, opened to the public network (the example is already Disabled)."""
    doc = arm_fixture("machinelearningservices__2024-10-01__Workspace_get.json")
    doc["properties"]["publicNetworkAccess"] = "Enabled"
    if not pe:
        doc["properties"]["privateEndpointConnections"] = []
    if kind:
        doc["kind"] = kind
    doc["properties"].update(props)
    return doc


def _endpoint(access: str | None) -> dict[str, Any]:
    doc = arm_fixture("machinelearningservices__2024-10-01__OnlineEndpoint_get.json")
    doc.update(id=ENDPOINT, name="scoring", type="Microsoft.MachineLearningServices/workspaces/onlineEndpoints")
    if access is not None:
        doc["properties"]["publicNetworkAccess"] = access
    return doc


def _plan(action: Any, state: StateReader, rid: str = WS, **params: Any) -> list[Change]:
    return plan_changes(action, state, rid, **params)


def test_least_privilege_declarations() -> None:
    assert workspace.role.id == endpoint.role.id == "b78c5d69-af96-48a3-bf8d-a8b4d589de94"
    assert "Microsoft.MachineLearningServices/workspaces/write" in workspace.permissions
    assert "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write" in endpoint.permissions


@pytest.mark.parametrize(("kind", "extra"), [
    (None, "workspace kind Default"),
    ("Hub", "its projects are reached through this hub's network settings"),
    ("Project", "project of hub hub1: close the hub as well"),
])
def test_workspace_hub_project_plan(kind: str | None, extra: str) -> None:
    props = {"hubResourceId": HUB} if kind == "Project" else {}
    [change] = _plan(workspace, SavedState([_ws(kind=kind, **props)]))
    assert merge_patch(change.before, change.after) == {"properties": {"publicNetworkAccess": "Disabled"}}
    assert "publicNetworkAccess: Enabled -> Disabled" in change.note
    assert extra in change.note
    assert "cuts off every client except 1 approved private endpoint (petest01)" in change.note


def test_no_private_endpoint_is_said_and_can_be_refused() -> None:
    [change] = _plan(workspace, SavedState([_ws(pe=False)]))
    assert "cuts off every client: no approved private endpoint" in change.note
    with pytest.raises(ActionError, match="refused: cuts off every client"):
        _plan(workspace, SavedState([_ws(pe=False)]), refuse_if_everyone_cut_off=True)
    disabled = arm_fixture("machinelearningservices__2024-10-01__Workspace_get.json")
    assert _plan(workspace, SavedState([disabled]), refuse_if_everyone_cut_off=True) == []


def test_workspace_apply_under_grant_verify_undo() -> None:
    with FakeArm() as arm:
        arm.add(_ws(kind="Hub"))
        live = LiveState(arm.clients())
        [change] = _plan(workspace, live)
        pim_apply(arm, workspace, change, refused_first=True)
        patch = next(w for w in arm.resource_writes if w.method == "PATCH" and w.status == 202)
        assert patch.body == {"properties": {"publicNetworkAccess": "Disabled"}}
        assert patch.query.get("api-version") == "2024-10-01"
        assert workspace.verify(live, change) is None
        back = workspace.undo(change)
        pim_apply(arm, workspace, back, refused_first=True)
        assert workspace.verify(live, back) is None
        doc = arm.get(WS)
        assert doc is not None
        assert doc["properties"]["publicNetworkAccess"] == "Enabled"


def test_online_endpoint_is_refused_with_the_reason_and_nothing_is_written() -> None:
    with FakeArm() as arm:
        arm.add(_endpoint(None))
        with pytest.raises(ActionError, match=r"OnlineEndpoints_Update, PATCH.*accepts only tags and identity"):
            _plan(endpoint, LiveState(arm.clients()), ENDPOINT)
        assert arm.writes == []
    assert _plan(endpoint, SavedState([_endpoint("Disabled")]), ENDPOINT) == []
    with pytest.raises(ActionError, match="refused"):
        _plan(endpoint, SavedState([_endpoint("Enabled")]), ENDPOINT)


@pytest.mark.parametrize("policy", ["438c38d2-3772-465a-a9cc-7a6666a275ce", "a10ee784-7409-4941-b091-663697637c0f"])
def test_shipped_playbook_matches_policy_events(policy: str) -> None:
    pbs = load_playbooks(ROOT / "playbooks")
    findings = four_shapes(WS, policy=policy, display="")
    assert len(findings) == 2  # Defender publishes no assessment key for this one: Policy only
    for f in findings:
        pb = pbs.match(f)
        assert pb is not None
        assert pb.name == "ml-disable-public-network-access"

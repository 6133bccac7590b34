"""The declarative PropertyAction base: plan, apply (a PATCH of exactly the changed paths at the
pinned api-version, through azure-mgmt-resource's generic client against FakeArm), verify, undo and
the irreversible refusal, with a test-only declaration on a made-up type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from remediator.actions.base import BuiltinRole, PlanContext
from remediator.actions.properties import (
    NoParams,
    PropertyAction,
    Setting,
    get_path,
    merge_patch,
    with_paths,
    without_paths,
)
from remediator.azure.reader import GENERIC_API_VERSIONS, LiveState
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from remediator.testing import FakeArm
from tests.support.builders import make_finding

SUB = "00000000-0000-0000-0000-000000000000"
RID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Contoso.Test/widgets/w1"
ROLE = BuiltinRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7")


class _Lock(PropertyAction[NoParams]):
    name = "test.lock-widget"
    Params = NoParams
    resource_types = ("Contoso.Test/widgets",)
    permissions = ("Contoso.Test/widgets/write",)
    role = ROLE
    api_version = "2099-01-01"
    settings = (Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),
                Setting("properties.auth.disableLocal", True, absent=False))
    breaks = "key clients stop"


class _Forever(_Lock):
    name = "test.forever"
    api_version = "2099-01-01"
    irreversible = "it cannot be turned off"

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        return "the widget is Basic" if get_path(doc, "sku.name") == "Basic" else None


def _doc(**props: Any) -> dict[str, Any]:
    return {"id": RID, "name": "w1", "type": "Contoso.Test/widgets", "location": "westeurope",
            "sku": {"name": "Premium"}, "properties": {"provisioningState": "Succeeded", **props}}


def _ctx(doc: dict[str, Any]) -> PlanContext:
    return PlanContext(finding=make_finding(RID), state=SavedState([doc]))


def test_merge_patch_and_paths() -> None:
    before = {"a": {"b": 1, "c": [1]}, "d": 1}
    after = with_paths(before, {"a.b": 2, "a.e.f": True})
    assert merge_patch(before, after) == {"a": {"b": 2, "e": {"f": True}}}
    assert merge_patch({"x": 1}, {}) == {"x": None}
    assert get_path(after, "a.e.f") is True
    assert get_path(after, "a.zz", "dflt") == "dflt"


def test_without_paths() -> None:
    doc = {"a": {"b": 1, "c": 2}, "d": 3}
    assert without_paths(doc, ["a.b", "x.y", "d"]) == {"a": {"c": 2}}
    assert doc == {"a": {"b": 1, "c": 2}, "d": 3}


def test_plan_sets_only_what_differs_and_says_what_it_breaks() -> None:
    action = _Lock()
    [change] = action.plan(_ctx(_doc(auth={"disableLocal": True})), NoParams())
    assert change.operation == "update"
    assert merge_patch(change.before, change.after) == {"properties": {"publicNetworkAccess": "Disabled"}}
    assert "publicNetworkAccess: (not set) -> Disabled" in change.note
    assert "can break: key clients stop" in change.note
    assert action.plan(_ctx(_doc(publicNetworkAccess="Disabled", auth={"disableLocal": True})), NoParams()) == []
    assert GENERIC_API_VERSIONS["contoso.test/widgets"] == "2099-01-01"


def test_refusal_and_irreversible() -> None:
    action = _Forever()
    assert action.reversible is False
    assert _Lock().reversible is True
    doc = _doc()
    doc["sku"] = {"name": "Basic"}
    with pytest.raises(ActionError, match="refused: the widget is Basic"):
        action.plan(_ctx(doc), NoParams())
    [change] = action.plan(_ctx(_doc()), NoParams())
    assert "IRREVERSIBLE: it cannot be turned off" in change.note
    with pytest.raises(ActionError, match="cannot be undone: it cannot be turned off"):
        action.undo(change)


def test_wrong_type_and_missing_resource() -> None:
    other = RID.replace("widgets", "gadgets")
    with pytest.raises(ActionError, match=r"expected Contoso\.Test/widgets"):
        _Lock().plan(PlanContext(finding=make_finding(other), state=SavedState([])), NoParams())
    with pytest.raises(ActionError, match="resource not found"):
        _Lock().plan(PlanContext(finding=make_finding(RID), state=SavedState([])), NoParams())


def test_apply_verify_undo_through_the_generic_client() -> None:
    action = _Lock()
    with FakeArm() as arm:
        arm.add(_doc(publicNetworkAccess="Enabled"))
        clients = arm.clients()
        state = LiveState(clients)
        [change] = action.plan(PlanContext(finding=make_finding(RID), state=state), NoParams())
        assert action.verify(state, change) is not None
        action.apply(clients, change)
        [write] = arm.writes
        assert write.method == "PATCH"
        assert write.query.get("api-version") == "2099-01-01"
        assert write.body == {"properties": {"publicNetworkAccess": "Disabled", "auth": {"disableLocal": True}}}
        assert action.verify(state, change) is None
        back = action.undo(change)
        assert merge_patch(back.before, back.after) == {
            "properties": {"publicNetworkAccess": "Enabled", "auth": {"disableLocal": False}}}
        action.apply(clients, back)
        assert action.verify(state, back) is None
        assert arm.get(RID)["properties"]["publicNetworkAccess"] == "Enabled"  # type: ignore[index]

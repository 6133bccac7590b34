"""The reconcile timer, indexed and invoked the way the worker does: a request fixed elsewhere is withdrawn.

Through the real parts: the Event Grid function ingests Azure Policy's event, the queue function
posts the approval request to FakeSlack through slack_sdk, the ``reconcile`` timer scans FakeArm's
Resource Graph through azure-mgmt-resourcegraph, and the update reaches FakeSlack as ``chat.update``.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from remediator.findings.parse import parse_value
from tests.function_app.conftest import CHANNEL, FunctionWorld, user_function
from tests.function_app.test_handlers import ACR_POLICY_EVENT, REGISTRY
from tests.support.engine import SUB


def _event(event: dict[str, Any]) -> func.EventGridEvent:
    return func.EventGridEvent(id=event["id"], data=event["data"], topic=event["topic"], subject=event["subject"],
                               event_type=event["eventType"], event_time=datetime(2026, 11, 27, 9, 41, 12, tzinfo=UTC),
                               data_version=event["dataVersion"])


def _policy_state(state: str) -> dict[str, Any]:
    """The policy event's non-compliance as a Resource Graph ``policyresources`` document."""
    data = ACR_POLICY_EVENT["data"]
    return {"id": f"{REGISTRY}/providers/Microsoft.PolicyInsights/policyStates/{'ab' * 16}",
            "name": "ab" * 16, "type": "Microsoft.PolicyInsights/policyStates",
            "properties": {"complianceState": state, "policyDefinitionId": data["policyDefinitionId"],
                           "policyAssignmentId": data["policyAssignmentId"], "resourceId": REGISTRY,
                           "timestamp": "2026-11-28T03:00:01Z", "stateWeight": 300}}


@pytest.fixture
def pending(world: FunctionWorld, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REMEDIATOR_SCAN_SUBSCRIPTIONS", SUB)
    user_function("policy_events")(_event(ACR_POLICY_EVENT))
    world.drain()
    (rem,) = world.store.list()
    assert rem.state == "pending_approval"
    assert rem.message["channel"] == CHANNEL
    return rem.id


def _updates(world: FunctionWorld, ts: str) -> list[dict[str, Any]]:
    return [c.body for c in world.slack.calls_to("chat.update") if c.body.get("ts") == ts]


def test_reconcile_timer_withdraws_a_request_fixed_elsewhere(world: FunctionWorld, pending: str) -> None:
    world.arm.reset_log()
    user_function("reconcile")(TimerRequest(past_due=False))  # the scan finds no open policy state any more

    rem = world.rem(pending)
    assert rem.state == "withdrawn"
    assert "no longer reports this finding" in (rem.error or "")
    assert world.arm.resource_writes == []
    assert world.arm.pim_grants(active_only=False) == []
    assert world.arm.graph_requests  # it asked Resource Graph, through the real SDK
    world.drain()
    (update,) = _updates(world, rem.message["ts"])
    blocks = json.loads(update["blocks"]) if isinstance(update["blocks"], str) else update["blocks"]
    assert not [b for b in blocks if b["type"] == "actions"]  # the buttons are gone
    assert "Resolved outside remediator" in json.dumps(blocks)
    replies = world.slack.replies(CHANNEL, rem.message["ts"])
    assert any("Resolved outside remediator" in str(r.get("text")) for r in replies)
    assert world.time.slept, "the reply waited for its turn in the channel (on the pacer's virtual clock)"
    trail = [e for e in world.store.audit_log(pending) if e.event == "withdrawn"]
    assert trail
    assert trail[0].actor == "reconcile"
    assert "no longer reports" in trail[0].detail["reason"]


def test_reconcile_keeps_a_request_the_scan_still_reports_and_dedups_it(world: FunctionWorld, pending: str) -> None:
    world.arm.add(_policy_state("NonCompliant"))
    event_id = next(r for r in world.store.list()).finding_id
    graph_id = parse_value(_graph_row(world), source="row")[0].id
    assert graph_id == event_id  # one finding, whichever route brought it

    user_function("reconcile")(TimerRequest(past_due=False))
    world.drain()

    assert world.rem(pending).state == "pending_approval"
    # the scan's finding joined nothing new: a duplicate on ingest (the sample estate's policy exemption is a
    # backlog finding of its own, of kind operation)
    assert [r.id for r in world.store.list() if r.finding.get("kind") != "operation"] == [pending]
    assert _updates(world, world.rem(pending).message["ts"]) == []


def test_pushed_compliant_state_withdraws_at_once(world: FunctionWorld, pending: str) -> None:
    compliant = copy.deepcopy(ACR_POLICY_EVENT)
    compliant["id"] = "c0ffee00-0000-4000-8000-000000000001"
    compliant["data"]["complianceState"] = "Compliant"
    user_function("policy_events")(_event(compliant))
    world.drain()

    rem = world.rem(pending)
    assert rem.state == "withdrawn"
    assert "Compliant" in (rem.error or "")
    assert world.arm.resource_writes == []
    assert _updates(world, rem.message["ts"])


def test_incomplete_scope_withdraws_nothing_elsewhere(world: FunctionWorld, pending: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_SCAN_SUBSCRIPTIONS", "00000000-0000-4000-8000-000000000000")
    from function_app.runtime import runtime

    runtime.configure(runtime._o)  # settings are cached per process: re-read them
    user_function("reconcile")(TimerRequest(past_due=False))
    assert world.rem(pending).state == "pending_approval"  # another subscription was scanned


def _graph_row(world: FunctionWorld) -> dict[str, Any]:
    clients = world.arm.clients()
    from azure.mgmt.resourcegraph.models import QueryRequest

    page = clients.resourcegraph().resources(QueryRequest(query="policyresources | where properties.complianceState "
                                                                "=~ 'NonCompliant'", subscriptions=[SUB]))
    (row,) = page.data
    assert isinstance(row, dict)
    return row

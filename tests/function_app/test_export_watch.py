"""Continuous export watched through the Functions app, the way the worker invokes it: what the Event Hub function
ingests marks its subscription as heard from; a day later with open findings and nothing heard, the ``reconcile``
timer queues one message, and the queue function posts it to FakeSlack through slack_sdk, once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from remediator.lifecycle.export_watch import SEEN
from tests.app.test_scan import NETWORK_KEY, account, assessment
from tests.function_app.conftest import FunctionWorld, event_hub_batch, export, user_function
from tests.function_app.test_handlers import PORTS_ASSESSMENT
from tests.support.engine import SUB

# the sample estate's continuous export sends here (remediator/samples/state/security.json)
HUB = (f"/subscriptions/{SUB}/resourceGroups/rg-security/providers/Microsoft.EventHub/namespaces/evhns-remediator/"
       "eventhubs/defender-export")


def alarms(world: FunctionWorld) -> list[dict[str, Any]]:
    out = []
    for message in world.slack.messages():
        meta = message.get("metadata")
        meta = json.loads(meta) if isinstance(meta, str) else meta
        if (meta or {}).get("event_type") == "remediator_alarm":
            out.append(message)
    return out


@pytest.mark.slow(reason="two Resource Graph scans of the sample estate and the queue function's jobs, through the "
                         "whole Functions runtime and slack_sdk")
def test_a_silent_subscription_is_one_message_in_slack(world: FunctionWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_SCAN_SUBSCRIPTIONS", SUB)
    monkeypatch.setenv("REMEDIATOR_EXPORT_EVENT_HUB_ID", HUB)
    start = world.clock()
    export(event_hub_batch([PORTS_ASSESSMENT]))
    assert world.store.get_flag(SEEN + SUB) == start.isoformat()  # heard from, through the Event Hub function
    acct = account("quiet")
    world.arm.load([acct, assessment(acct["id"], NETWORK_KEY)])  # open in the scan
    world.drain()

    world.clock.advance(hours=25)
    user_function("reconcile")(TimerRequest(past_due=False))
    world.drain()
    (alarm,) = alarms(world)
    assert f"Defender has sent nothing from subscription {SUB} for 25 hours" in json.dumps(alarm["blocks"])
    assert "Its continuous export looks right" in json.dumps(alarm["blocks"])  # so the break is further on
    assert [e.event for e in world.store.audit_log() if e.event in ("export_silent", "alarm_posted")] == [
        "export_silent", "alarm_posted"]

    world.clock.advance(hours=24)
    user_function("reconcile")(TimerRequest(past_due=False))  # the next day, still silent: not said again
    world.drain()
    assert len(alarms(world)) == 1

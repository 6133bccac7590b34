"""Defender's continuous export is watched: the daily reconcile raises a finding when a subscription's export to
remediator's hub is missing, disabled or sends elsewhere; defender-restore-export puts it back once approved
(create or repair, verified, undone); and a subscription with open findings that sent nothing for a day is one loud
message in the channel. Real azure-mgmt-resourcegraph and generic ARM clients against FakeArm, SQLite and Azurite."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.actions.continuous_export import (
    API_VERSION,
    AUTOMATION_NAME,
    EXPORT_POLICY,
    automations_of,
    export_status,
)
from remediator.azure.lro import write
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.findings.parse import parse_value
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.export_watch import EXPORT_ROUTE, TOLD
from remediator.lifecycle.model import Remediation
from remediator.privilege.elevation import StandingElevator
from remediator.store.azure import AzureStore
from remediator.testing import FakeArm
from tests.app.test_scan import NETWORK_KEY, account, assessment
from tests.support.azurite import azurite_connection_string  # noqa: F401 - registers the session fixture
from tests.support.builders import arm_fixture
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    SUB,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    World,
    make_world,
)

HUB = f"/subscriptions/{SUB}/resourceGroups/rg-remediator/providers/Microsoft.EventHub/namespaces/ns-rem/eventhubs/" \
      "defender-export"
SIEM = f"/subscriptions/{SUB}/resourceGroups/rg-siem/providers/Microsoft.EventHub/namespaces/ns-siem/eventhubs/siem"
GROUP = {"id": f"/subscriptions/{SUB}/resourceGroups/rg-security", "name": "rg-security",
         "type": "Microsoft.Resources/resourceGroups", "location": "westeurope", "properties": {}}
OURS = f"/subscriptions/{SUB}/resourceGroups/rg-security/providers/Microsoft.Security/automations/{AUTOMATION_NAME}"
SAMPLE_EXPORT = f"/subscriptions/{SUB}/resourceGroups/rg-security/providers/Microsoft.Security/automations/" \
                "ExportToEventHub"
EXPORT_SETTINGS: dict[str, Any] = {"scan_subscriptions": (SUB,), "export_event_hub_id": HUB,
                                   "export_resource_group": "rg-security"}


def automation(name: str, hub: str, *, enabled: bool = True, sources: tuple[str, ...] = (
        "Alerts", "Assessments", "SubAssessments")) -> dict[str, Any]:
    """The spec's GetAutomationResourceGroup example moved into SUB and made a continuous export to ``hub``."""
    doc = arm_fixture("security__2023-12-01-preview__GetAutomationResourceGroup.json")
    doc["id"] = f"/subscriptions/{SUB}/resourceGroups/rg-security/providers/Microsoft.Security/automations/{name}"
    doc["name"] = name
    doc["properties"].update(
        isEnabled=enabled, scopes=[{"description": "the subscription", "scopePath": f"/subscriptions/{SUB}"}],
        sources=[{"eventSource": s} for s in sources],
        actions=[{"actionType": "EventHub", "eventHubResourceId": hub, "isTrustedServiceEnabled": True}])
    return doc


def open_finding() -> list[dict[str, Any]]:
    """A storage account with an unhealthy assessment: the scan shows an open finding in SUB."""
    acct = account("exported")
    return [acct, assessment(acct["id"], NETWORK_KEY)]


def without_the_samples_export(world: World) -> World:
    """The sample estate exports to the demo's hub (remediator/samples/state/security.json): deleted, as someone
    would in the portal."""
    write(world.arm.clients(principal_id="2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f7a"), "DELETE", SAMPLE_EXPORT, API_VERSION)
    return world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    for w in make_world(tmp_path, docs=[GROUP, *open_finding()], **EXPORT_SETTINGS):
        yield without_the_samples_export(w)


def actor(user: str) -> Actor:
    return Actor(user_id=user, team_id=TEAM, enterprise_id=None, name=user.lower())


def export_request(world: World) -> Remediation:
    (rem,) = [r for r in world.engine.pending() if r.playbook == "defender-restore-export"]
    return rem


def approve_and_apply(world: World, rem: Remediation) -> Remediation:
    for member in MEMBERS[:rem.quorum]:
        assert world.engine.approve(rem.id, actor(member)).ok
    world.engine.work()
    return world.rem(rem.id)


def test_a_deleted_export_is_a_finding_that_an_approved_plan_recreates_and_undo_deletes(world: World) -> None:
    report = world.engine.scan_and_reconcile()
    assert report["exports"] == {SUB: "missing"}
    world.engine.work()
    rem = export_request(world)
    assert rem.finding["type"] == EXPORT_POLICY
    assert rem.finding["resource_id"] == f"/subscriptions/{SUB}"
    assert rem.risk == "medium"
    assert rem.quorum == 1
    (change,) = rem.changes
    assert change["operation"] == "create"
    assert change["resource_id"] == OURS
    assert "Alerts, Assessments, SubAssessments to defender-export as a trusted service" in change["note"]
    assert change["after"]["properties"]["actions"] == [
        {"actionType": "EventHub", "eventHubResourceId": HUB, "isTrustedServiceEnabled": True}]

    # the next reconcile: the same finding id, no second request while this one is open
    world.clock.advance(hours=12)
    again = world.engine.scan_and_reconcile()
    assert again["ingested"].get("duplicate", 0) >= 1
    assert again["withdrawn"] == 0
    world.engine.work()
    assert export_request(world).id == rem.id

    done = approve_and_apply(world, rem)
    assert done.state == "applied", done.error
    created = world.arm.get(OURS)
    assert created is not None
    assert created["location"] == "westeurope"
    assert created["etag"]
    status = export_status(SUB, automations_of(LiveState(world.arm.clients()), SUB), hub=HUB)
    assert status.ok, status.line()
    assert world.engine.scan_and_reconcile()["exports"] == {SUB: "ok"}

    assert world.engine.request_undo(rem.id, actor(MEMBERS[5])).ok
    world.engine.work()
    undo = next(r for r in world.engine.pending() if r.undo_of == rem.id)
    assert [c["operation"] for c in undo.changes] == ["delete"]
    assert approve_and_apply(world, undo).state == "applied"
    assert world.arm.get(OURS) is None
    assert world.rem(rem.id).state == "rolled_back"


def test_a_disabled_export_is_switched_back_on_with_its_missing_source_and_undo_restores_it(tmp_path: Path) -> None:
    disabled = automation("ExportToRemediator", HUB, enabled=False, sources=("Alerts", "Assessments"))
    for world in map(without_the_samples_export, make_world(tmp_path, docs=[GROUP, disabled, *open_finding()],
                                                            **EXPORT_SETTINGS)):
        assert world.engine.scan_and_reconcile()["exports"] == {SUB: "disabled"}
        world.engine.work()
        rem = export_request(world)
        (change,) = rem.changes
        assert change["operation"] == "update"
        assert change["resource_id"] == disabled["id"]
        assert change["note"].startswith("isEnabled: false -> true; sources: + SubAssessments")
        assert approve_and_apply(world, rem).state == "applied"
        now = world.arm.get(disabled["id"])
        assert now is not None
        assert now["properties"]["isEnabled"] is True
        assert [s["eventSource"] for s in now["properties"]["sources"]] == ["Alerts", "Assessments", "SubAssessments"]
        assert world.engine.request_undo(rem.id, actor(MEMBERS[5])).ok
        world.engine.work()
        undo = next(r for r in world.engine.pending() if r.undo_of == rem.id)
        assert approve_and_apply(world, undo).state == "applied"
        back = world.arm.get(disabled["id"])
        assert back is not None
        assert back["properties"]["isEnabled"] is False
        assert len(back["properties"]["sources"]) == 2


def test_an_export_to_another_hub_is_left_alone_and_ours_is_created_beside_it(tmp_path: Path) -> None:
    siem = automation("ExportToSiem", SIEM)
    for world in map(without_the_samples_export, make_world(tmp_path, docs=[GROUP, siem, *open_finding()],
                                                            **EXPORT_SETTINGS)):
        assert world.engine.scan_and_reconcile()["exports"] == {SUB: "elsewhere"}
        world.engine.work()
        rem = export_request(world)
        assert rem.finding["title"].endswith("sends elsewhere")
        (change,) = rem.changes
        assert change["operation"] == "create"
        assert change["resource_id"] == OURS
        assert "its exports send to ns-siem/siem (left as they are" in change["note"]
        assert approve_and_apply(world, rem).state == "applied"
        assert world.arm.get(siem["id"]) == siem | {"etag": world.arm.get(siem["id"])["etag"]}  # type: ignore[index]


def test_an_export_that_cannot_be_read_raises_nothing_and_withdraws_nothing(world: World) -> None:
    world.engine.scan_and_reconcile()
    world.engine.work()
    rem = export_request(world)
    world.arm.fail_next("GET", "/providers/microsoft.security/automations", status=403, times=10)
    report = world.engine.scan_and_reconcile()
    assert report["exports"] == {SUB: "unreadable"}
    assert world.rem(rem.id).state == "pending_approval"  # an outage is not a repair


def test_a_repaired_export_withdraws_the_pending_request(world: World) -> None:
    world.engine.scan_and_reconcile()
    world.engine.work()
    rem = export_request(world)
    world.arm.load([automation("fixed-by-hand", HUB)])
    assert world.engine.scan_and_reconcile()["withdrawn"] == 1
    assert world.rem(rem.id).state == "withdrawn"


# -- silence ------------------------------------------------------------------------------------------------


def exported_alert() -> Any:
    """What the export route brings of SUB: an unhealthy assessment."""
    acct = account("heard")
    return parse_value(assessment(acct["id"], NETWORK_KEY), source="export")


def silence_story(engine: Engine, clock: FakeClock, chat: RecordingChat, store: Any) -> None:
    engine.ingest(exported_alert(), source=EXPORT_ROUTE)  # heard from at the start
    start = clock()
    clock.advance(hours=23)
    assert engine.scan_and_reconcile()["silent"] == []  # not a day yet
    clock.advance(hours=2)
    assert engine.scan_and_reconcile()["silent"] == [SUB]
    engine.work()
    (alarm,) = chat.of("post_alarm")
    key, title, lines = alarm
    assert key == f"export-silent:{SUB}:{start.isoformat()}"
    assert title == f"Defender has sent nothing from subscription {SUB} for 25 hours"
    assert f"since {start.strftime('%Y-%m-%d %H:%M UTC')}, while the backlog scan shows " in lines[0]
    assert re.search(r"shows \d+ open findings? there: remediator is blind to new ones", lines[0])
    assert lines[1].startswith("Its continuous export: no continuous export to an Event Hub")
    assert lines[2].startswith("Check: the subscription's continuous export")
    (silent,) = [e for e in engine.audit_trail() if e.event == "export_silent"]
    assert silent.detail["subscription"] == SUB
    assert silent.detail["since"] == start.isoformat()
    assert [e.event for e in engine.audit_trail() if e.event == "alarm_posted"] == ["alarm_posted"]
    assert store.get_flag(TOLD + SUB) == start.isoformat()

    clock.advance(days=1)  # still silent: not told again
    assert engine.scan_and_reconcile()["silent"] == []
    engine.work()
    assert len(chat.of("post_alarm")) == 1

    engine.ingest(exported_alert(), source=EXPORT_ROUTE)  # heard from again …
    clock.advance(hours=30)  # … and silent anew: told again
    assert engine.scan_and_reconcile()["silent"] == [SUB]
    engine.work()
    assert len(chat.of("post_alarm")) == 2


def test_a_silent_subscription_with_open_findings_is_told_once_per_silence(world: World) -> None:
    silence_story(world.engine, world.clock, world.chat, world.store)


def test_a_subscription_never_heard_from_counts_from_when_remediator_began_watching(world: World) -> None:
    began = world.clock()
    assert world.engine.scan_and_reconcile()["silent"] == []
    world.clock.advance(hours=25)
    assert world.engine.scan_and_reconcile()["silent"] == [SUB]
    world.engine.work()
    (alarm,) = world.chat.of("post_alarm")
    assert f"since remediator began watching it ({began.strftime('%Y-%m-%d %H:%M UTC')})" in alarm[2][0]


def test_a_subscription_without_open_findings_is_not_told_of(tmp_path: Path) -> None:
    quiet = "0b7e6d2c-1a3f-4e5d-8c9b-2f1e0d3c4b5a"  # nothing open there; its own export finding does not count
    for world in make_world(tmp_path, docs=[GROUP], **{**EXPORT_SETTINGS, "scan_subscriptions": (quiet,)}):
        assert world.engine.scan_and_reconcile()["exports"] == {quiet: "missing"}
        world.clock.advance(days=3)
        assert world.engine.scan_and_reconcile()["silent"] == []


def test_without_an_export_hub_nothing_is_watched(tmp_path: Path) -> None:
    """A deployment that names no hub may take its findings another way (a Logic App): no check, no message."""
    settings = {**EXPORT_SETTINGS, "export_event_hub_id": None}
    for world in make_world(tmp_path, docs=[GROUP, *open_finding()], **settings):
        assert world.engine.scan_and_reconcile()["exports"] == {}
        world.clock.advance(days=3)
        assert world.engine.scan_and_reconcile()["silent"] == []
        assert not [r for r in world.engine.pending() if r.playbook == "defender-restore-export"]


@pytest.mark.slow(reason="six reconciles on Azurite: each scan's ingest, flags and audit chain are Table round trips")
def test_the_silence_is_told_once_on_table_storage_too(azurite_connection_string: str) -> None:  # noqa: F811
    clock = FakeClock()
    settings = Settings(approver_roles=ROLES, slack_team_id=TEAM, admins=(ADMIN,), slack_channel="C0REMEDIATE",
                        group_wait=timedelta(0), **EXPORT_SETTINGS)
    chat = RecordingChat()
    with FakeArm() as arm, AzureStore(azurite_connection_string, prefix="x" + uuid.uuid4().hex[:12],
                                      clock=clock) as store:
        arm.load([GROUP, *open_finding()])
        clients = arm.clients()
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                        clients=clients, elevator=StandingElevator(), chat=chat,
                        directory=StaticDirectory({ONCALL: MEMBERS}), clock=clock)
        silence_story(engine, clock, chat, store)


def test_a_chat_outage_delays_the_silence_message_never_drops_or_doubles_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator.lifecycle.chat import ChatError, MessageRef

    real = world.chat.post_alarm
    failures = [ChatError("Slack chat.postMessage answered 503", transient=True),
                ChatError("Slack chat.postMessage did not answer in time", transient=True, maybe_done=True)]

    def flaky(*, key: str, title: str, lines: Any) -> MessageRef:
        if failures:
            failure = failures.pop(0)
            if failure.maybe_done:
                real(key=key, title=title, lines=lines)  # it landed, but the answer was lost
            raise failure
        return real(key=key, title=title, lines=lines)

    monkeypatch.setattr(world.chat, "post_alarm", flaky)
    world.engine.scan_and_reconcile()
    world.clock.advance(hours=25)
    assert world.engine.scan_and_reconcile()["silent"] == [SUB]
    for _ in range(4):
        world.engine.work()
        world.clock.advance(minutes=10)
    assert len(world.chat.of("post_alarm")) == 1  # posted once: the retry after the timeout found it
    (posted,) = [e for e in world.engine.audit_trail() if e.event == "alarm_posted"]
    assert posted.detail["found"] is True


def test_the_event_hub_function_is_the_route_whose_deliveries_count() -> None:
    from function_app.ingest import SOURCE_EXPORT

    assert SOURCE_EXPORT == EXPORT_ROUTE

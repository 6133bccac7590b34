"""A security engineer's story in Slack, end to end, and every way it must refuse.

Real parts only (tests/bot/world.py): a Defender payload POSTed to ``remediator serve``'s ingest
endpoint (``bot.http.LocalServer`` on port 0), the real Engine on SQLiteStore with the shipped
playbooks and StandingElevator, FakeArm seeded from the sample state, the worker's SlackChat and
the App's SlackDirectory talking to FakeSlack over HTTP, and Slack's requests signed with the
app's signing secret and POSTed to the server's Slack endpoint. The worker runs when the test
says so (``engine.work()``), which is how each test shows that nothing happened in between.

Every negative scenario ends by running the worker and asserting that FakeArm saw no write.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.request import Request, urlopen

import pytest

from bot import blocks
from bot.chat import ChannelPacer
from bot.http import LocalServer
from remediator import ids
from remediator.app.demo import DEMO_EXECUTOR
from remediator.app.paths import SAMPLES
from remediator.azure.state import SavedState
from remediator.findings.parse import parse_value
from remediator.lifecycle.model import Remediation
from remediator.testing.fake_slack import FakeSlack, SignedRequest
from tests.bot.world import INGEST_TOKEN, SlackWorld, make_slack_world, text_objects
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ONCALL,
    OTHER_TEAM,
    STRANGER,
    network_assessment,
    sample,
    storage_account,
)

ALICE, BOB = MEMBERS[0], MEMBERS[1]
ASSESSMENT = (SAMPLES / "findings" / "02-management-ports-assessment.json").read_bytes()
NSG = "/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-prod-web/providers/Microsoft.Network/"
WEB_AND_SSH = NSG + "networkSecurityGroups/nsg-jump/securityRules/AllowWebAndSSH"
ACK_LIMIT = 3.0  # Slack's: answer within 3 seconds


def post(server: LocalServer, request: SignedRequest) -> tuple[int, str, float]:
    """POST a signed Slack request to the server's Slack endpoint over HTTP: (status, body, seconds)."""
    started = time.perf_counter()
    status, body = FakeSlack.send(server.url + "/slack/events", request)
    return status, body, time.perf_counter() - started


def ingest_defender_payload(world: SlackWorld, server: LocalServer, payload: bytes = ASSESSMENT) -> Remediation:
    """The Defender export arrives over HTTP (stored, a plan job queued); the worker plans it, opens
    the remediation and posts the approval message."""
    req = Request(server.url + "/api/findings", data=payload, method="POST",
                  headers={"Content-Type": "application/json", "Authorization": f"Bearer {INGEST_TOKEN}"})
    with urlopen(req, timeout=10) as resp:
        assert resp.status == 202
        assert json.loads(resp.read())["results"] == {"queued": 1}
    assert world.engine.pending() == []  # nothing is planned on the ingest path
    world.engine.work()
    (rem,) = world.engine.pending()
    assert rem.message.get("ts"), "the worker posted the approval message"
    world.slack.reset()
    return rem


def assert_nothing_applied(world: SlackWorld, writes_before: int = 0) -> None:
    world.engine.work()
    assert len(world.arm.resource_writes) == writes_before, world.writes()


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


# --- the story -----------------------------------------------------------------------------------


def test_security_engineer_approves_in_slack_and_the_fix_is_applied_and_verified(
        world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)

    # the approval message: finding, resource, playbook, the plan as a diff, what approval needs
    msg = world.message(rem.id)
    flat = text_of(msg)
    assert msg["blocks"][0]["text"]["text"] == "Management ports should be closed on your virtual machines"
    assert "<https://portal.azure.com/#@/resource/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/" \
           "rg-prod-web/providers/Microsoft.Compute/virtualMachines/vm-jump-01|vm-jump-01>" in flat
    assert "`nsg-close-management-ports`" in flat
    plan = next(b for b in msg["blocks"] if b["block_id"].startswith("plan."))["text"]["text"]
    assert "- delete securityRules AllowRDPFromInternet  [network.restrict-inbound]" in plan
    assert '~ properties.destinationPortRanges: ["443", "22"] -&gt; []' in plan
    assert "- delete securityRules AllowWinRMAny" in plan
    assert f"Needs 1 approval from <!subteam^{ONCALL}>" in flat
    actions = next(b for b in msg["blocks"] if b["type"] == "actions")["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [
        (blocks.ACTION_APPROVE, rem.id), (blocks.ACTION_REJECT, rem.id), (blocks.ACTION_SHOW_PLAN, rem.id)]
    assert "vm-jump" not in rem.id  # the value is an opaque id; everything else is server-side
    assert world.arm.writes == []

    # a signed Approve click, answered within the acknowledgement, the message updated in place
    status, body, seconds = post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE))
    assert (status, body) == (200, "")
    assert seconds < ACK_LIMIT
    (update,) = world.slack.calls_to("chat.update")
    assert (update.body["channel"], update.body["ts"]) == (rem.message["channel"], rem.message["ts"])
    assert f"Approved by <@{ALICE}>; queued to apply" in text_of(world.message(rem.id))
    assert blocks.ACTION_APPROVE not in text_of(world.message(rem.id))
    assert world.arm.writes == []  # the click never applies; the worker does

    # the worker applies (ARM writes), verifies, updates the message and replies in the thread with Undo
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert sorted(w.method for w in world.arm.resource_writes) == ["DELETE", "DELETE", "PUT"]
    rule = world.arm.get(WEB_AND_SSH)
    assert rule is not None
    assert rule["properties"]["destinationPortRange"] == "443"
    assert f"Applied and verified (approved by <@{ALICE}>)" in text_of(world.message(rem.id))
    (reply,) = world.thread(rem.id)
    assert reply["blocks"][0]["text"]["text"] == ":white_check_mark: Applied and verified: 3 changes."
    undo = reply["blocks"][1]["elements"][0]
    assert (undo["action_id"], undo["value"]) == (blocks.ACTION_UNDO, rem.id)
    assert [e.event for e in world.engine.audit_trail(rem.id)].count("applied") == 1

    # every write ran under a PIM grant of Network Contributor on exactly the rule it changed,
    # asked for by the broker before the write and removed after it
    grants = world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)
    changed = sorted(ids.key(c["resource_id"]) for c in rem.changes)
    assert sorted(ids.key(g.scope) for g in grants) == changed
    assert {g.role_definition_id.rsplit("/", 1)[-1] for g in grants} == {"4d97b98b-1d4f-4787-a291-c67834d212e7"}
    assert world.arm.pim_grants(DEMO_EXECUTOR) == []  # all released
    pim_first = [i for i, r in enumerate(world.arm.requests) if r.is_pim]
    first_write = next(i for i, r in enumerate(world.arm.requests) if r.is_write and not r.is_pim)
    assert pim_first[0] < first_write


def test_undo_is_itself_approved_and_the_requester_cannot_approve_it(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE))
    world.engine.work()
    writes = len(world.arm.resource_writes)
    assert writes == 3

    status, _, _ = post(server, world.click_request(blocks.ACTION_UNDO, rem.id, ALICE))
    assert status == 200
    (said,) = world.ephemerals(ALICE)
    assert said.startswith(f"Undo requested; it needs 1 approval from <!subteam^{ONCALL}>")
    world.engine.work()
    undo = next(r for r in world.engine.pending() if r.undo_of == rem.id)
    assert f"requested by <@{ALICE}>" in text_of(world.message(undo.id))

    # self-approval: the requester of the undo clicks Approve on it
    status, _, _ = post(server, world.click_request(blocks.ACTION_APPROVE, undo.id, ALICE))
    assert status == 200
    assert world.ephemerals(ALICE)[-1] == "You cannot approve your own request"
    assert world.rem(undo.id).state == "pending_approval"
    assert_nothing_applied(world, writes)

    # someone else approves it: the change is reversed
    post(server, world.click_request(blocks.ACTION_APPROVE, undo.id, BOB))
    world.engine.work()
    assert world.rem(undo.id).state == "applied"
    assert world.rem(rem.id).state == "rolled_back"
    assert len(world.arm.resource_writes) > writes
    rule = world.arm.get(WEB_AND_SSH)
    assert rule is not None
    assert rule["properties"]["destinationPortRanges"] == ["443", "22"]


# --- negative scenarios: each ends with no ARM write -------------------------------------------


def test_bad_signature_is_401(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    forged = world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE, secret="guessed-secret")
    tampered = world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE)
    tampered = SignedRequest(tampered.body.replace(ALICE, BOB), tampered.headers)
    unsigned = SignedRequest(tampered.body, {"content-type": "application/x-www-form-urlencoded"})
    for request in (forged, tampered, unsigned):
        status, body, _ = post(server, request)
        assert (status, json.loads(body)) == (401, {"error": "invalid request"})
    assert world.rem(rem.id).state == "pending_approval"
    assert world.slack.calls == []  # not even an ephemeral: the request never reached a listener
    assert_nothing_applied(world)


def test_a_timestamp_older_than_five_minutes_is_401(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    now = int(time.time())
    stale = world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE, timestamp=now - 301)
    future = world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE, timestamp=now + 301)
    for request in (stale, future):
        status, _, _ = post(server, request)
        assert status == 401
    assert world.rem(rem.id).state == "pending_approval"
    assert_nothing_applied(world)


def test_only_the_playbooks_approvers_and_the_admins_can_ask_for_an_undo(world: SlackWorld,
                                                                         server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)  # nsg-close-management-ports: approvers <!subteam^ONCALL>
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE))
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    world.slack.reset()
    jobs_before = world.store._connection().execute("SELECT count(*) FROM jobs").fetchone()[0]

    status, _, seconds = post(server, world.click_request(blocks.ACTION_UNDO, rem.id, STRANGER))
    assert status == 200
    assert seconds < ACK_LIMIT
    (refusal,) = world.slack.calls_to("chat.postEphemeral")
    assert refusal.body["user"] == STRANGER
    assert refusal.body["text"] == f"Only members of <!subteam^{ONCALL}> or <@{ADMIN}> can ask to undo this"
    assert [r for r in world.store.list() if r.undo_of] == []  # nothing created …
    assert world.store._connection().execute("SELECT count(*) FROM jobs").fetchone()[0] == jobs_before  # … or queued
    (refused,) = [e for e in world.engine.audit_trail(rem.id) if e.event == "undo_refused"]
    assert refused.actor == f"slack:{STRANGER}"

    status, _, _ = post(server, world.click_request(blocks.ACTION_UNDO, rem.id, ADMIN))  # an admin may ask
    assert status == 200
    assert world.ephemerals(ADMIN)[-1].startswith(f"Undo requested; it needs 1 approval from <!subteam^{ONCALL}>")
    (undo,) = [r for r in world.store.list() if r.undo_of == rem.id]
    assert undo.requester == ADMIN
    assert_nothing_applied(world, writes_before=3)


def test_the_global_approvers_allowlist_narrows_who_can_ask_for_an_undo(tmp_path: Path) -> None:
    for world in make_slack_world(tmp_path, approvers=(BOB,)):
        (rem,) = world.ingest(sample("02-management-ports-assessment"))
        world.engine.work()
        world.click(blocks.ACTION_APPROVE, rem.id, BOB)
        world.engine.work()
        assert world.rem(rem.id).state == "applied"
        world.click(blocks.ACTION_UNDO, rem.id, ALICE)  # in the playbook's group, not in the global allowlist
        assert world.ephemerals(ALICE) == [f"Only members of <!subteam^{ONCALL}> or <@{ADMIN}> can ask to undo "
                                           f"this; approvers must also be <@{BOB}>"]
        world.click(blocks.ACTION_UNDO, rem.id, BOB)
        assert world.ephemerals(BOB)[-1].startswith("Undo requested")


def test_an_unauthorised_user_gets_an_ephemeral_refusal(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    status, _, _ = post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, STRANGER))
    assert status == 200
    (refusal,) = world.slack.calls_to("chat.postEphemeral")
    assert refusal.body["user"] == STRANGER
    assert refusal.body["channel"] == rem.message["channel"]
    assert refusal.body["text"] == f"Only members of <!subteam^{ONCALL}> can approve this"
    assert world.slack.calls_to("chat.update") == []
    assert world.rem(rem.id).state == "pending_approval"
    assert_nothing_applied(world)


def test_a_user_of_another_slack_organisation_is_refused(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    # a member id that is in the approver group, clicking from another workspace (Slack Connect)
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE, team_id=OTHER_TEAM))
    assert world.ephemerals(ALICE) == ["Only members of this workspace can do this"]
    assert world.rem(rem.id).state == "pending_approval"
    assert_nothing_applied(world)


def test_enterprise_id_must_match_when_configured(tmp_path: Path) -> None:
    for world in make_slack_world(tmp_path, slack_enterprise_id="E0CONTOSO01"):
        (rem,) = world.ingest(sample("02-management-ports-assessment"))
        world.engine.work()
        world.click(blocks.ACTION_APPROVE, rem.id, ALICE, enterprise_id="E0FABRIKAM1")
        world.click(blocks.ACTION_APPROVE, rem.id, BOB)  # no enterprise in the payload at all
        assert world.ephemerals() == ["Only members of this organisation can do this"] * 2
        assert world.rem(rem.id).state == "pending_approval"
        assert_nothing_applied(world)
        world.click(blocks.ACTION_APPROVE, rem.id, ALICE, enterprise_id="E0CONTOSO01")
        assert world.rem(rem.id).state == "approved"


def test_a_replayed_click_does_not_apply_twice(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    click = world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE)
    first, _, _ = post(server, click)
    world.engine.work()
    assert len(world.arm.resource_writes) == 3
    replay, body, _ = post(server, click)  # the same signed bytes, inside the 5-minute window
    assert (first, replay) == (200, 401)
    assert json.loads(body) == {"error": "invalid request"}
    assert world.ephemerals(ALICE) == []  # refused before any listener ran
    assert_nothing_applied(world, writes_before=3)
    assert [e.event for e in world.engine.audit_trail(rem.id)].count("applied") == 1
    (refused,) = [e for e in world.engine.audit_trail() if e.event == "slack_replay_refused"]
    assert refused.actor == f"slack:{ALICE}"
    assert (refused.detail["kind"], refused.detail["value"]) == ("block_actions", rem.id)


def test_fifty_concurrent_approve_clicks_apply_exactly_once(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    clickers = MEMBERS[:50]
    requests = [world.click_request(blocks.ACTION_APPROVE, rem.id, user) for user in clickers]
    results: list[tuple[int, str, float]] = []
    lock = threading.Lock()
    gate = threading.Barrier(len(requests))

    def click(request: SignedRequest) -> None:
        gate.wait()
        got = post(server, request)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=click, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _, _ in results] == [200] * 50
    assert max(seconds for _, _, seconds in results) < ACK_LIMIT
    stored = world.rem(rem.id)
    assert stored.state == "approved"
    assert len(stored.votes) == 1
    winner = stored.votes[0].user_id
    refusals = world.ephemerals()
    assert len(refusals) == 49
    assert set(refusals) == {f"Already approved by <@{winner}>"}
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert len(world.arm.resource_writes) == 3  # one apply: three writes, once
    assert [e.event for e in world.engine.audit_trail(rem.id)].count("applied") == 1
    assert_nothing_applied(world, writes_before=3)


def drift_after_approval(world: SlackWorld, server: LocalServer) -> Remediation:
    """Approved, then someone changes the rule in the portal before the worker gets to it."""
    rem = ingest_defender_payload(world, server)
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE))
    edit_the_rule_in_the_portal(world)
    world.engine.work()
    return rem


def edit_the_rule_in_the_portal(world: SlackWorld) -> None:
    rule = world.arm.get(WEB_AND_SSH)
    assert rule is not None
    changed = copy.deepcopy(rule)
    changed["properties"]["destinationPortRanges"] = ["443", "22", "8443"]
    world.arm.add(changed)


def test_drift_after_approval_is_stale_and_nothing_is_applied(world: SlackWorld, server: LocalServer) -> None:
    rem = drift_after_approval(world, server)
    assert world.rem(rem.id).state == "stale"
    assert world.arm.writes == []  # nothing applied
    assert "Stale: the resource changed after this plan was made" in text_of(world.message(rem.id))
    assert blocks.ACTION_APPROVE not in text_of(world.message(rem.id))
    (reply,) = world.thread(rem.id)
    assert reply["blocks"][0]["text"]["text"].startswith(
        ":warning: Stale: the resource changed after approval (the plan changed from sha256:")
    # a late click on the stale request is refused
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, BOB))
    assert world.ephemerals(BOB)[-1].startswith("This plan is out of date")
    assert_nothing_applied(world)


def test_drift_after_approval_asks_again_with_a_new_message(world: SlackWorld, server: LocalServer) -> None:
    rem = drift_after_approval(world, server)
    (reply,) = world.thread(rem.id)
    assert "The new plan was posted for approval" in reply["blocks"][0]["text"]["text"]
    (fresh,) = world.engine.pending()
    assert fresh.id != rem.id
    assert fresh.fingerprint != rem.fingerprint
    new_msg = world.message(fresh.id)
    assert blocks.ACTION_APPROVE in text_of(new_msg)
    plan = next(b for b in new_msg["blocks"] if b["block_id"].startswith("plan."))["text"]["text"]
    assert '~ properties.destinationPortRanges: ["443", "22", "8443"] -&gt; ["443", "8443"]' in plan
    assert_nothing_applied(world)


NIC = NSG + "networkInterfaces/vm-jump-01-nic"
GONE_VNET = NSG.replace("/providers/Microsoft.Network/", "/providers/Microsoft.Network/virtualNetworks/vnet-gone")
GONE_SUBNET = GONE_VNET + "/subnets/snet-<!channel>"


def nic_on_a_missing_subnet(world: SlackWorld) -> str:
    """The VM's NIC now sits in a subnet whose virtual network remediator cannot read (here: one
    that is gone, with a hostile name); the plan covers the NIC's NSG and warns about the subnet."""
    nic = world.arm.get(NIC)
    assert nic is not None
    moved = copy.deepcopy(nic)
    moved["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] = GONE_SUBNET
    world.arm.add(moved)
    return (f"subnet {GONE_SUBNET} not in the resource state: the NSG of the network interface's subnet was not "
            f"checked; add its virtual network with `az network vnet show --ids {GONE_VNET.rstrip('/')} > "
            "vnet.json` to the --resources folder, or set include_subnet_nsgs: false")


def test_what_the_plan_could_not_check_is_shown_to_the_approver_and_audited(
        world: SlackWorld, server: LocalServer) -> None:
    warning = nic_on_a_missing_subnet(world)
    rem = ingest_defender_payload(world, server)
    assert rem.warnings == (warning,)
    # everything it could check is still planned: the NIC's own NSG (the subnet's NSG is not seen)
    guarded = {c["resource_id"].split("/securityRules/")[0] for c in rem.changes}
    assert guarded == {NSG + "networkSecurityGroups/nsg-jump"}

    msg = world.message(rem.id)
    unchecked = next(b for b in msg["blocks"] if b["block_id"].startswith("unchecked."))["text"]
    assert unchecked["verbatim"] is True
    assert "*Not checked*" in unchecked["text"]
    assert "• " + blocks.esc(warning) in unchecked["text"]
    for obj in text_objects(msg["blocks"]):
        assert "<!channel>" not in obj["text"]
    assert "snet-&lt;!channel&gt;" in unchecked["text"]
    (requested,) = [e for e in world.engine.audit_trail(rem.id) if e.event == "approval_requested"]
    assert requested.detail["warnings"] == [warning]

    # approved as shown: what it could check is applied; the warning stays on the record
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE))
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert world.rem(rem.id).warnings == (warning,)
    assert len(world.arm.resource_writes) == len(rem.changes)


def test_a_re_ask_after_drift_shows_what_the_new_plan_could_not_check(
        world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    assert rem.warnings == ()
    assert "unchecked." not in text_of(world.message(rem.id))
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE))
    warning = nic_on_a_missing_subnet(world)  # drift: the NIC moved before the worker applied
    edit_the_rule_in_the_portal(world)
    world.engine.work()
    assert world.rem(rem.id).state == "stale"
    (fresh,) = world.engine.pending()
    assert fresh.warnings == (warning,)
    assert "• " + blocks.esc(warning) in text_of(world.message(fresh.id))
    (requested,) = [e for e in world.engine.audit_trail(fresh.id) if e.event == "approval_requested"]
    assert requested.detail["warnings"] == [warning]
    assert requested.detail["replaces"] == rem.id
    assert_nothing_applied(world)


def test_expiry_updates_the_message_and_a_later_click_is_refused(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    assert rem.expires_at is not None
    world.clock.advance(hours=2, seconds=1)  # the playbook's expires_after: 2h
    assert world.engine.sweep() >= 1
    world.engine.work()
    assert world.rem(rem.id).state == "expired"
    flat = text_of(world.message(rem.id))
    assert "Expired without the approvals it needed" in flat
    assert blocks.ACTION_APPROVE not in flat
    assert any("Expired at" in r["blocks"][0]["text"]["text"] for r in world.thread(rem.id))
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE))
    assert world.ephemerals(ALICE)[-1].startswith("This request expired at")
    assert world.rem(rem.id).state == "expired"
    assert_nothing_applied(world)


def test_pause_stops_applying_and_auto_remediation_until_resume(world: SlackWorld, server: LocalServer) -> None:
    def command(text: str, user: str) -> str:
        status, body, seconds = post(server, world.slack.slash_command(
            command="/remediate", text=text, user_id=user, team_id=world.settings.slack_team_id))
        assert status == 200
        assert seconds < ACK_LIMIT
        return str(json.loads(body)["text"])

    assert command("pause", STRANGER) == f"Only <@{ADMIN}> can pause or resume remediation"
    assert not world.engine.paused()
    assert command("pause", ADMIN).startswith("Paused: nothing will be applied")
    assert world.engine.paused()

    rem = ingest_defender_payload(world, server)
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, ALICE))
    auto = world.ingest(sample("01-storage-open-container-alert"))  # low risk, approval: auto
    assert [r.state for r in auto] == ["pending_approval"]  # asked, not applied, while paused
    world.engine.work()
    assert world.rem(rem.id).state == "approved"
    assert world.arm.writes == []  # neither the approved one nor the auto one was applied

    assert command("resume", STRANGER) == f"Only <@{ADMIN}> can pause or resume remediation"
    assert world.engine.paused()
    assert command("resume", ADMIN).startswith("Resumed")
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert len(world.arm.resource_writes) == 3
    assert world.rem(auto[0].id).state == "pending_approval"  # it still needs its (admin) approval


def test_a_replayed_pause_or_resume_does_not_toggle_again(world: SlackWorld, server: LocalServer) -> None:
    def command(text: str) -> SignedRequest:
        return world.slack.slash_command(command="/remediate", text=text, user_id=ADMIN,
                                         team_id=world.settings.slack_team_id)

    pause, resume = command("pause"), command("resume")
    assert post(server, pause)[0] == 200
    assert post(server, resume)[0] == 200
    assert not world.engine.paused()
    status, body, _ = post(server, pause)  # captured and sent again inside the 5-minute window
    assert (status, json.loads(body)) == (401, {"error": "invalid request"})
    assert not world.engine.paused()
    assert post(server, command("pause"))[0] == 200  # a new request from Slack still works
    assert world.engine.paused()
    assert post(server, resume)[0] == 401
    assert world.engine.paused()
    events = [e for e in world.engine.audit_trail() if e.event in {"paused", "resumed", "slack_replay_refused"}]
    assert [e.event for e in events] == ["paused", "resumed", "slack_replay_refused", "paused",
                                         "slack_replay_refused"]
    assert [(e.detail["command"], e.detail["text"]) for e in events if e.event == "slack_replay_refused"] == [
        ("/remediate", "pause"), ("/remediate", "resume")]


def test_reject_with_a_reason_in_the_modal(world: SlackWorld, server: LocalServer) -> None:
    rem = ingest_defender_payload(world, server)
    click = world.click_request(blocks.ACTION_REJECT, rem.id, ALICE)
    trigger = json.loads(parse_qs(click.body)["payload"][0])["trigger_id"]
    status, _, seconds = post(server, click)
    assert status == 200
    assert seconds < ACK_LIMIT
    (opened,) = world.slack.calls_to("views.open")
    assert opened.ok
    assert opened.body["trigger_id"] == trigger  # used inside the ack, while it is valid
    assert opened.body["view"]["callback_id"] == blocks.CALLBACK_REJECT

    reason = "Jump host is being decommissioned on Friday"
    status, body, _ = post(server, world.slack.view_submission(
        callback_id=blocks.CALLBACK_REJECT, values={blocks.REJECT_BLOCK: {blocks.REJECT_INPUT: reason}},
        user_id=ALICE, team_id=world.settings.slack_team_id,
        private_metadata=opened.body["view"]["private_metadata"]))
    assert (status, body) == (200, "")
    assert world.rem(rem.id).state == "rejected"
    world.engine.work()
    flat = text_of(world.message(rem.id))
    assert f"Rejected by <@{ALICE}>; nothing was changed. Reason: {reason}" in flat
    assert blocks.ACTION_APPROVE not in flat
    assert any(reason in r["blocks"][0]["text"]["text"] for r in world.thread(rem.id))
    post(server, world.click_request(blocks.ACTION_APPROVE, rem.id, BOB))
    assert world.ephemerals(BOB)[-1].startswith(f"Already rejected by <@{ALICE}>")
    assert_nothing_applied(world)


def test_hostile_finding_text_renders_as_text(world: SlackWorld, server: LocalServer) -> None:
    doc = json.loads(ASSESSMENT)
    doc["properties"]["displayName"] = "Ports open <!channel> <!here>"
    doc["properties"]["metadata"]["displayName"] = doc["properties"]["displayName"]
    doc["properties"]["status"]["description"] = "Open to all <!channel> see <http://x|y> & <@U0VICTIM>"
    rem = ingest_defender_payload(world, server, json.dumps(doc).encode())
    assert "<!channel>" in json.dumps(rem.finding)  # stored as received
    msg = world.message(rem.id)
    for obj in text_objects(msg["blocks"]):
        if obj["type"] == "mrkdwn":
            assert "<!channel>" not in obj["text"]
            assert "<http://x|y>" not in obj["text"]
            assert "<@U0VICTIM>" not in obj["text"]
            assert obj["verbatim"] is True
    flat = text_of(msg)
    assert "Open to all <!channel> see <http://x|y> & <@U0VICTIM>" in flat  # as plain_text: shown, not parsed
    about = next(b for b in msg["blocks"] if b["block_id"].startswith("about."))
    assert about["text"]["type"] == "plain_text"
    assert msg["blocks"][0]["text"] == {"type": "plain_text", "text": "Ports open <!channel> <!here>", "emoji": False}
    assert "&lt;!channel&gt;" in msg["text"]  # the notification text is mrkdwn: escaped
    assert_nothing_applied(world)


# --- storms ------------------------------------------------------------------------------------


@pytest.mark.slow(reason="ten thousand findings ingested, planned and announced: the storm is the claim")
def test_a_storm_of_ten_thousand_findings_is_a_few_paced_digests(tmp_path: Path) -> None:
    base = storage_account("stormbase")
    docs = []
    for i in range(10_000):
        doc = copy.deepcopy(base)
        doc["name"] = f"storm{i:05d}"
        doc["id"] = base["id"].replace("rg-prod-data", f"rg-storm-{i % 4}").replace("stormbase", doc["name"])
        docs.append(doc)
    template = json.loads((SAMPLES / "findings" / "05-storage-network-assessment.json").read_text())
    original = template["properties"]["resourceDetails"]["id"]
    records = parse_value([json.loads(json.dumps(template).replace(original, d["id"])) for d in docs], source="storm")

    for world in make_slack_world(tmp_path, state=SavedState(docs)):
        results = world.engine.ingest(records)
        assert len(results) == 10_000
        world.engine.work()
        posts = world.slack.calls_to("chat.postMessage")
        assert len(posts) == 20  # 4 resource groups of 2,500 → digests of 500, not 10,000 messages
        assert all("Approve all 500" in json.dumps(p.body["blocks"]) for p in posts)
        times = [t for _, t in world.chat.pacer.sent]
        assert min(b - a for a, b in itertools.pairwise(times)) >= 1.0  # ≤ 1 message/s/channel
        assert world.slack.calls_to("chat.update") == []

        # Approve all on one digest: answered within the acknowledgement
        member = world.engine.pending()[0]
        request = world.click_request(blocks.ACTION_DIGEST_APPROVE, "x", ALICE, rid=member.id)
        started = time.perf_counter()
        resp = world.send(request)
        seconds = time.perf_counter() - started
        assert resp.status == 200
        assert seconds < ACK_LIMIT
        ts = member.message["ts"]
        approved = world.store.list(states=("approved",), limit=1000)
        assert len(approved) == 500
        assert {r.message["ts"] for r in approved} == {ts}
        (update,) = world.slack.calls_to("chat.update")
        assert update.body["ts"] == ts
        assert "Approved 500 of 500 requests" in json.dumps(update.body["blocks"])
        assert blocks.ACTION_DIGEST_APPROVE not in json.dumps(update.body["blocks"])
        assert world.arm.writes == []


@pytest.mark.slow(reason="the real pacer: one message a second per channel, waited for on the wall clock")
def test_posting_is_paced_in_real_time(world: SlackWorld) -> None:
    world.chat.pacer = ChannelPacer()  # the real clock and sleep
    for i in range(3):
        doc = storage_account(f"paced{i}")
        world.arm.add(doc)
        world.engine.ingest([network_assessment(doc["id"])])
    started = time.monotonic()
    world.engine.work()
    took = time.monotonic() - started
    arrived = [c.at for c in world.slack.calls_to("chat.postMessage")]
    assert len(arrived) == 3
    assert arrived == sorted(arrived)
    # Each post took its turn a full second after the previous one, on the real monotonic clock, and the
    # worker really waited for it. (Measured where the message leaves, not where FakeSlack receives it:
    # on a busy machine one request's trip can be slower than the next one's by more than a few ms.)
    sent = [t for _, t in world.chat.pacer.sent]
    assert len(sent) == 3
    assert min(b - a for a, b in itertools.pairwise(sent)) >= 1.0
    assert took >= 2.0

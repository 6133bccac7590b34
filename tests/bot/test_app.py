"""The bolt App's listeners, driven by signed requests through ``bot.http.dispatch`` and ``app.dispatch``.

Real engine, store, FakeArm and FakeSlack (tests/bot/world.py). The end-to-end stories and the
negative scenarios are in tests/scenarios/test_slack_approval.py; here: the pieces of the App.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from bot import blocks
from bot.app import FAILED, actor_of, build_app
from bot.http import to_bolt_request
from remediator.config.settings import Settings
from remediator.lifecycle.model import Remediation
from tests.bot.world import SlackWorld
from tests.support.engine import ADMIN, MEMBERS, OTHER_TEAM, STRANGER, sample

ALICE = MEMBERS[0]


@pytest.fixture
def pending(world: SlackWorld) -> Remediation:
    (rem,) = world.ingest(sample("02-management-ports-assessment"))
    world.engine.work()
    world.slack.reset()
    return world.rem(rem.id)


def _answer(resp: Any) -> dict[str, Any]:
    return json.loads(resp.body) if resp.body else {}


def test_building_the_app_calls_no_slack_api(tmp_path: Path, world: SlackWorld) -> None:
    before = len(world.slack.calls)
    build_app(world.engine, world.settings)
    assert len(world.slack.calls) == before  # authorize= is static: no auth.test at start or per request


def test_actor_comes_from_the_signed_payload_not_the_installation(fixtures: Path) -> None:
    other = json.loads((fixtures / "slack" / "view_submission_slack_connect_other_org.json").read_text())
    actor = actor_of(other)
    assert (actor.user_id, actor.team_id, actor.enterprise_id) == ("W111", "T-other-side", "E-other-side")
    grid = json.loads((fixtures / "slack" / "block_actions_enterprise_minimal.json").read_text())
    actor = actor_of(grid)
    assert (actor.user_id, actor.team_id, actor.enterprise_id, actor.name) == ("W111", "T111", "E111", "primary-owner")
    plain = json.loads((fixtures / "slack" / "block_actions_from_message_button.json").read_text())
    actor = actor_of(plain)
    assert (actor.user_id, actor.team_id, actor.enterprise_id) == ("U111", "T0G9PQBBK", None)
    body = (fixtures / "slack" / "slash_command_form_body_bolt_tests.txt").read_text().splitlines()[-1]
    command = {k: v[0] for k, v in parse_qs(body).items()}
    actor = actor_of(command)
    assert (actor.user_id, actor.team_id, actor.enterprise_id) == ("W111", "T111", "E111")


def test_approve_updates_the_message_in_place(world: SlackWorld, pending: Remediation) -> None:
    resp = world.click(blocks.ACTION_APPROVE, pending.id, ALICE)
    assert resp.status == 200
    assert world.rem(pending.id).state == "approved"
    (update,) = world.slack.calls_to("chat.update")
    assert (update.body["channel"], update.body["ts"]) == (pending.message["channel"], pending.message["ts"])
    assert blocks.ACTION_APPROVE not in json.dumps(update.body["blocks"])
    assert f"Approved by <@{ALICE}>; queued to apply" in json.dumps(update.body["blocks"])
    assert world.ephemerals() == []
    assert world.writes() == []  # the listener never applies


def test_refusal_is_an_ephemeral_with_the_engine_reason(world: SlackWorld, pending: Remediation) -> None:
    resp = world.click(blocks.ACTION_APPROVE, pending.id, STRANGER)
    assert resp.status == 200
    (text,) = world.ephemerals(STRANGER)
    assert text == "Only members of <!subteam^S0614TZR7> can approve this"
    call = world.slack.calls_to("chat.postEphemeral")[0]
    assert call.body["channel"] == pending.message["channel"]
    assert world.slack.calls_to("chat.update") == []
    assert world.rem(pending.id).state == "pending_approval"


def test_a_slack_directory_outage_refuses_and_says_why(world: SlackWorld, pending: Remediation) -> None:
    world.directory.invalidate()
    world.slack.fail("usergroups.users.list", "ratelimited")
    resp = world.click(blocks.ACTION_APPROVE, pending.id, ALICE)  # a real member of the approver group
    assert resp.status == 200
    (text,) = world.ephemerals(ALICE)
    assert text.startswith("Cannot check that you may do this: could not check membership of <!subteam^S0614TZR7>")
    assert world.rem(pending.id).state == "pending_approval"  # fail closed: nothing recorded


def test_ephemeral_falls_back_to_response_url(world: SlackWorld, pending: Remediation) -> None:
    world.slack.fail("chat.postEphemeral", "channel_not_found")
    world.click(blocks.ACTION_APPROVE, pending.id, STRANGER)
    (hook,) = world.slack.calls_to("response_url")
    assert hook.body["response_type"] == "ephemeral"
    assert hook.body["replace_original"] is False
    assert hook.body["text"].startswith("Only members of")


def test_an_engine_error_is_a_polite_refusal(world: SlackWorld, pending: Remediation,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(world.engine, "approve", boom)
    resp = world.click(blocks.ACTION_APPROVE, pending.id, ALICE)
    assert resp.status == 200
    assert world.ephemerals(ALICE) == [FAILED]


def test_reject_opens_the_modal_in_the_ack(world: SlackWorld, pending: Remediation) -> None:
    request = world.click_request(blocks.ACTION_REJECT, pending.id, ALICE)
    trigger = json.loads(parse_qs(request.body)["payload"][0])["trigger_id"]
    assert world.send(request).status == 200
    (opened,) = world.slack.calls_to("views.open")
    assert opened.body["trigger_id"] == trigger
    assert opened.ok  # within the trigger's 3 seconds, used once
    view = opened.body["view"]
    assert view["callback_id"] == blocks.CALLBACK_REJECT
    assert json.loads(view["private_metadata"])["id"] == pending.id
    assert world.rem(pending.id).state == "pending_approval"  # nothing decided until the reason is given

    resp = world.submit_reject(pending.id, ALICE, "maintenance window <!channel>")
    assert resp.status == 200
    assert resp.body == ""  # an empty ack closes the modal
    rem = world.rem(pending.id)
    assert rem.state == "rejected"
    assert rem.votes[-1].reason == "maintenance window <!channel>"
    (update,) = world.slack.calls_to("chat.update")
    assert "Reason: maintenance window &lt;!channel&gt;" in json.dumps(update.body["blocks"])


def test_reject_submission_refused_shows_the_reason_in_the_modal(world: SlackWorld, pending: Remediation) -> None:
    resp = world.submit_reject(pending.id, STRANGER, "no")
    assert resp.status == 200
    answer = _answer(resp)
    assert answer["response_action"] == "errors"
    assert answer["errors"][blocks.REJECT_BLOCK].startswith("Only members of")
    assert world.rem(pending.id).state == "pending_approval"
    foreign = world.submit_reject(pending.id, ALICE, "no", team_id=OTHER_TEAM)
    assert _answer(foreign)["errors"][blocks.REJECT_BLOCK] == "Only members of this workspace can do this"


def test_reject_on_a_decided_remediation_is_an_ephemeral_not_a_modal(world: SlackWorld, pending: Remediation) -> None:
    world.click(blocks.ACTION_APPROVE, pending.id, ALICE)
    world.click(blocks.ACTION_REJECT, pending.id, MEMBERS[1])
    assert world.slack.calls_to("views.open") == []
    assert world.ephemerals(MEMBERS[1]) == ["This remediation is approved; there is nothing to reject."]


def test_show_full_plan_opens_a_modal(world: SlackWorld, pending: Remediation) -> None:
    world.click(blocks.ACTION_SHOW_PLAN, pending.id, ALICE)
    (opened,) = world.slack.calls_to("views.open")
    assert opened.ok
    text = json.dumps(opened.body["view"])
    for line in blocks.plan_lines(pending.changes):
        assert json.dumps(blocks.esc(line))[1:-1] in text


def test_undo_of_a_pending_remediation_is_refused(world: SlackWorld, pending: Remediation) -> None:
    world.click(blocks.ACTION_UNDO, pending.id, ALICE)
    assert world.ephemerals(ALICE) == ["Only an applied remediation can be undone; this one is pending approval"]


def test_slash_command_help_list_status(world: SlackWorld, pending: Remediation) -> None:
    def ask(text: str, user: str = ALICE) -> str:
        resp = world.command(text, user)
        assert resp.status == 200
        answer = _answer(resp)
        assert answer.get("response_type") == "ephemeral"
        return str(answer["text"])

    assert "`/remediate list`" in ask("help")
    assert "`/remediate status ID`" in ask("")
    listing = ask("list")
    assert listing.startswith("*1 waiting for approval*")
    assert f"`{pending.id}`" in listing
    assert "|vm-jump-01>" in listing
    status = ask(f"status {pending.id}")
    assert ":hourglass: Waiting for approval" in status
    assert "Needs 1 approval from <!subteam^S0614TZR7>" in status
    assert "```" in status
    assert ask("status nope") == "No remediation `nope`."
    assert ask("status") == ("*Status*: 1 waiting for approval; remediation is running\nOne remediation: "
                             "`/remediate status ID` (the id is at the bottom of each approval message).")
    assert ask("frobnicate <!channel>").startswith("Unknown subcommand `frobnicate`")
    world.click(blocks.ACTION_APPROVE, pending.id, ALICE)
    assert ask("list") == "Nothing is waiting for approval."


def test_slash_command_pause_and_resume_need_an_admin(world: SlackWorld) -> None:
    refused = _answer(world.command("pause", STRANGER))["text"]
    assert refused == f"Only <@{ADMIN}> can pause or resume remediation"
    assert not world.engine.paused()
    assert _answer(world.command("pause", ADMIN))["text"].startswith("Paused:")
    assert world.engine.paused()
    assert "(remediation is *paused*)" in _answer(world.command("list", ADMIN))["text"]
    assert _answer(world.command("resume", ADMIN))["text"].startswith("Resumed:")
    assert not world.engine.paused()


def test_a_user_of_another_org_cannot_even_list(world: SlackWorld, pending: Remediation) -> None:
    answer = _answer(world.command("list", ALICE, team_id=OTHER_TEAM))
    assert answer["text"] == "Only members of this workspace can do this"
    assert pending.id not in json.dumps(answer)


def test_lazy_markers_from_outside_are_stripped_by_the_adapter(world: SlackWorld, pending: Remediation) -> None:
    request = world.click_request(blocks.ACTION_APPROVE, pending.id, ALICE).with_headers(
        x_slack_bolt_lazy_only="1", x_slack_bolt_lazy_function_name="approve")
    bolt_request = to_bolt_request(request.body, request.headers)
    assert not bolt_request.lazy_only
    assert bolt_request.lazy_function_name is None
    assert world.send(request).status == 200
    assert world.rem(pending.id).state == "approved"


def test_lazy_markers_reaching_the_app_directly_are_refused(world: SlackWorld, pending: Remediation) -> None:
    request = world.click_request(blocks.ACTION_APPROVE, pending.id, ALICE)
    bolt_request = to_bolt_request(request.body, request.headers)
    bolt_request.lazy_only = True  # as if a caller built the request without bot.http's stripping
    resp = world.app.dispatch(bolt_request)
    assert resp.status == 400
    assert world.rem(pending.id).state == "pending_approval"


def test_no_signing_secret_refuses_everything(world: SlackWorld, pending: Remediation) -> None:
    from dataclasses import replace

    settings: Settings = replace(world.settings, slack_signing_secret="")
    app = build_app(world.engine, settings)
    request = world.click_request(blocks.ACTION_APPROVE, pending.id, ALICE)
    resp = app.dispatch(to_bolt_request(request.body, request.headers))
    assert resp.status >= 400
    assert world.rem(pending.id).state == "pending_approval"

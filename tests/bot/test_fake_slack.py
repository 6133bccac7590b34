"""FakeSlack: the real WebClient against it, signing (Slack's documented vector), injected failures."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from remediator.testing.fake_slack import FakeSlack


def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.base_url, timeout=5, retry_handlers=[])


def test_signature_matches_slacks_documented_example(fixtures: Path) -> None:
    lines = (fixtures / "slack" / "slash_command_form_body_slack_docs_signed.txt").read_text().splitlines()
    body = next(line for line in lines if not line.startswith("#"))
    fake = FakeSlack(signing_secret="8f742231b10e8888abcd99yyyzzz85a5")
    headers = fake.sign(body, timestamp=1531420618)
    assert headers["x-slack-signature"] == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert headers["x-slack-request-timestamp"] == "1531420618"


def test_post_update_reply_and_inspection(slack: FakeSlack) -> None:
    web = client(slack)
    posted = web.chat_postMessage(channel="C1", text="hello", blocks=[{"type": "section", "text": {
        "type": "mrkdwn", "text": "hi"}}])
    ts = posted["ts"]
    assert posted["channel"] == "C1"
    web.chat_update(channel="C1", ts=ts, text="bye", blocks=[])
    reply = web.chat_postMessage(channel="C1", thread_ts=ts, text="in thread")
    assert float(reply["ts"]) > float(ts)
    updated = slack.message("C1", ts)
    assert updated is not None
    assert updated["text"] == "bye"
    assert [m["text"] for m in slack.replies("C1", ts)] == ["in thread"]
    assert [m["text"] for m in slack.messages("C1")] == ["bye"]
    calls = slack.calls
    assert [c.method for c in calls] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    assert calls[0].headers["authorization"] == f"Bearer {slack.token}"
    assert calls[0].body["blocks"][0]["text"]["text"] == "hi"
    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_rejects_a_wrong_token_and_answers_usergroups(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxb-wrong", base_url=slack.base_url, retry_handlers=[]).auth_test()
    assert err.value.response["error"] == "invalid_auth"
    web = client(slack)
    assert web.auth_test()["team_id"] == slack.team_id
    assert web.usergroups_users_list(usergroup="S0SECONCALL")["users"] == ["U0ALICE", "U0BOB"]
    slack.set_group("S0SECONCALL", ["U0CAROL"])
    assert web.usergroups_users_list(usergroup="S0SECONCALL")["users"] == ["U0CAROL"]
    with pytest.raises(SlackApiError):
        web.usergroups_users_list(usergroup="S0NOPE")
    assert slack.calls_to("usergroups.users.list")[0].body["usergroup"] == "S0SECONCALL"


def test_rate_limit_answers_429_with_retry_after(slack: FakeSlack) -> None:
    slack.rate_limit("chat.postMessage", times=2, retry_after=7)
    web = client(slack)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            web.chat_postMessage(channel="C1", text="x")
        assert err.value.response.status_code == 429
        assert err.value.response.headers["Retry-After"] == "7"
    assert web.chat_postMessage(channel="C1", text="x")["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 429, 200]


def test_fail_injects_an_error(slack: FakeSlack) -> None:
    slack.fail("chat.update", "msg_too_long")
    web = client(slack)
    ts = web.chat_postMessage(channel="C1", text="x")["ts"]
    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel="C1", ts=ts, text="y")
    assert err.value.response["error"] == "msg_too_long"
    assert web.chat_update(channel="C1", ts=ts, text="y")["ok"]


def test_block_kit_limits_are_enforced_like_slack(slack: FakeSlack) -> None:
    web = client(slack)
    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C1", text="x", blocks=too_many)
    assert err.value.response["error"] == "invalid_blocks"
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError):
        web.chat_postMessage(channel="C1", text="x", blocks=long_section)
    long_value = [{"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": "v" * 2001,
                                                    "text": {"type": "plain_text", "text": "b"}}]}]
    with pytest.raises(SlackApiError):
        web.chat_postMessage(channel="C1", text="x", blocks=long_value)


def test_views_open_needs_a_fresh_unused_trigger() -> None:
    now = [1_700_000_000.0]
    with FakeSlack(clock=lambda: now[0]) as slack:
        web = client(slack)
        view = {"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []}
        with pytest.raises(SlackApiError) as err:
            web.views_open(trigger_id="made.up", view=view)
        assert err.value.response["error"] == "invalid_trigger_id"
        trigger = slack.new_trigger_id()
        assert web.views_open(trigger_id=trigger, view=view)["view"]["id"].startswith("V")
        with pytest.raises(SlackApiError) as err:
            web.views_open(trigger_id=trigger, view=view)
        assert err.value.response["error"] == "trigger_exchanged"
        late = slack.new_trigger_id()
        now[0] += 3.5
        with pytest.raises(SlackApiError) as err:
            web.views_open(trigger_id=late, view=view)
        assert err.value.response["error"] == "trigger_expired"


def test_signed_request_builders_produce_verifiable_slack_bodies(slack: FakeSlack) -> None:
    verifier = SignatureVerifier(slack.signing_secret)
    click = slack.block_actions(action_id="remediator.approve", value="r-1", user_id="U0ALICE",
                                channel="C1", message_ts="1.000001", enterprise_id="E0ORG")
    assert verifier.is_valid_request(click.body, click.headers)
    payload = json.loads(parse_qs(click.body)["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U0ALICE", "username": "u0alice", "name": "u0alice", "team_id": slack.team_id}
    assert payload["enterprise"] == {"id": "E0ORG", "name": "Fake Org"}
    assert payload["actions"][0]["value"] == "r-1"
    assert payload["container"] == {"type": "message", "message_ts": "1.000001", "channel_id": "C1",
                                    "is_ephemeral": False}
    assert payload["response_url"] == slack.response_url

    sub = slack.view_submission(callback_id="cb", values={"b": {"a": "why"}}, user_id="U0BOB",
                                private_metadata='{"id":"r-1"}')
    assert verifier.is_valid_request(sub.body, sub.headers)
    view = json.loads(parse_qs(sub.body)["payload"][0])["view"]
    assert view["state"]["values"] == {"b": {"a": {"type": "plain_text_input", "value": "why"}}}

    cmd = slack.slash_command(command="/remediate", text="list", user_id="U0ALICE")
    assert verifier.is_valid_request(cmd.body, cmd.headers)
    assert parse_qs(cmd.body)["text"] == ["list"]

    old = slack.block_actions(action_id="a", value="v", user_id="U1", timestamp=1)
    assert not verifier.is_valid_request(old.body, old.headers)
    forged = click.with_headers(x_slack_signature="v0=" + "0" * 64)
    assert not verifier.is_valid_request(forged.body, forged.headers)


def test_response_url_is_recorded(slack: FakeSlack) -> None:
    from slack_sdk.webhook import WebhookClient

    resp = WebhookClient(slack.response_url).send(text="only you", response_type="ephemeral")
    assert resp.status_code == 200
    (call,) = slack.calls_to("response_url")
    assert call.body["text"] == "only you"


def test_auth_test_answers_as_slack_does_for_a_bot_token() -> None:
    """api.slack.com/methods/auth.test: no scope needed; ``enterprise_id`` only for a Grid workspace."""
    with FakeSlack(team_id="T0HOME00001", scopes=()) as slack:
        answer = WebClient(token=slack.token, base_url=slack.base_url).auth_test()
    assert answer.data == {"ok": True, "url": "https://t0home00001.slack.com/", "team": "Fake", "user": "remediator",
                           "team_id": "T0HOME00001", "user_id": slack.bot_user_id, "bot_id": slack.bot_id,
                           "is_enterprise_install": False}
    assert answer.headers["x-oauth-scopes"] == ""
    with FakeSlack(team_id="T0HOME00001", enterprise_id="E0ORG000001") as grid:
        assert WebClient(token=grid.token, base_url=grid.base_url).auth_test()["enterprise_id"] == "E0ORG000001"


def test_each_method_needs_its_scope() -> None:
    with FakeSlack(scopes=("commands",)) as slack:
        web = WebClient(token=slack.token, base_url=slack.base_url, retry_handlers=[])
        for call in (lambda: web.chat_postMessage(channel="C1", text="hi"),
                     lambda: web.conversations_info(channel="C1"),
                     lambda: web.usergroups_users_list(usergroup="S1")):
            with pytest.raises(SlackApiError) as err:
                call()
            assert err.value.response["error"] == "missing_scope"
            assert err.value.response["provided"] == "commands"
        assert [c.body.get("channel") for c in slack.calls_to("chat.postMessage")] == ["C1"]
        assert slack.messages() == []  # refused calls change nothing


def test_metadata_is_kept_and_history_returns_it_only_when_asked(slack: FakeSlack) -> None:
    web = client(slack)
    meta = {"event_type": "remediator_request", "event_payload": {"remediation_id": "r1"}}
    first = web.chat_postMessage(channel="C1", text="one", metadata=meta)
    web.chat_postMessage(channel="C1", text="reply", thread_ts=first["ts"])
    second = web.chat_postMessage(channel="C1", text="two")
    web.chat_postMessage(channel="C2", text="elsewhere")
    stored = slack.message("C1", first["ts"])
    assert stored is not None
    assert stored["metadata"] == meta
    plain = web.conversations_history(channel="C1")
    assert [m["text"] for m in plain["messages"]] == ["two", "one"]  # newest first, no thread replies
    assert all("metadata" not in m for m in plain["messages"])
    web.chat_update(channel="C1", ts=first["ts"], text="one, updated")  # keeps its metadata
    full = web.conversations_history(channel="C1", include_all_metadata=True)
    assert full["messages"][1]["metadata"] == meta
    newer = web.conversations_history(channel="C1", oldest=first["ts"])
    assert [m["ts"] for m in newer["messages"]] == [second["ts"]]  # oldest is exclusive
    both = web.conversations_history(channel="C1", oldest=first["ts"], inclusive=True)
    assert len(both["messages"]) == 2
    page = web.conversations_history(channel="C1", limit=1)
    assert page["has_more"] is True
    rest = web.conversations_history(channel="C1", limit=1, cursor=page["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["one, updated"]
    assert rest["has_more"] is False
    for bad, error in (("{not json", "invalid_metadata_format"), ({"event_type": "x"}, "invalid_metadata_schema")):
        with pytest.raises(SlackApiError) as err:
            web.chat_postMessage(channel="C1", text="x", metadata=bad)  # type: ignore[arg-type]
        assert err.value.response["error"] == error


def test_replies_return_the_thread_parent_first_with_metadata_only_when_asked(slack: FakeSlack) -> None:
    web = client(slack)
    meta = {"event_type": "remediator_reply", "event_payload": {"reply_id": "k1"}}
    parent = web.chat_postMessage(channel="C1", text="parent")
    web.chat_postMessage(channel="C1", text="first", thread_ts=parent["ts"], metadata=meta)
    other = web.chat_postMessage(channel="C1", text="another thread")
    web.chat_postMessage(channel="C1", text="elsewhere", thread_ts=other["ts"])
    second = web.chat_postMessage(channel="C1", text="second", thread_ts=parent["ts"])
    plain = web.conversations_replies(channel="C1", ts=parent["ts"])
    assert [m["text"] for m in plain["messages"]] == ["parent", "first", "second"]
    assert all("metadata" not in m for m in plain["messages"])
    full = web.conversations_replies(channel="C1", ts=parent["ts"], include_all_metadata=True)
    assert full["messages"][1]["metadata"] == meta
    page = web.conversations_replies(channel="C1", ts=parent["ts"], limit=2)
    assert page["has_more"] is True
    rest = web.conversations_replies(channel="C1", ts=parent["ts"], limit=2,
                                     cursor=page["response_metadata"]["next_cursor"])
    assert [m["ts"] for m in rest["messages"]] == [second["ts"]]
    with pytest.raises(SlackApiError) as err:
        web.conversations_replies(channel="C1", ts="1.000001")
    assert err.value.response["error"] == "thread_not_found"


def test_history_needs_its_scope_and_membership() -> None:
    with FakeSlack(scopes=("chat:write",), channels={"C1": True, "G1": True, "C2": False}) as slack:
        web = client(slack)
        for channel, needed in (("C1", "channels:history"), ("G1", "groups:history")):
            with pytest.raises(SlackApiError) as err:
                web.conversations_history(channel=channel)
            assert err.value.response["error"] == "missing_scope"
            assert err.value.response["needed"] == needed
    with FakeSlack(channels={"C1": True, "C2": False}) as slack:
        with pytest.raises(SlackApiError) as err:
            client(slack).conversations_history(channel="C2")
        assert err.value.response["error"] == "not_in_channel"


def test_outages_and_slow_answers(slack: FakeSlack) -> None:
    web = client(slack)
    slack.down(500)
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C1", text="lost")
    assert err.value.response.status_code == 500
    assert slack.messages("C1") == []  # nothing happened
    slack.up()
    slack.http_error("chat.postMessage", 503, times=1)
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C1", text="lost too")
    assert err.value.response.status_code == 503
    slack.slow("chat.postMessage", 0.5)
    impatient = WebClient(token=slack.token, base_url=slack.base_url, timeout=0.1, retry_handlers=[])  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        impatient.chat_postMessage(channel="C1", text="landed anyway")
    assert [m["text"] for m in slack.messages("C1")] == ["landed anyway"]  # the post landed; the answer came late
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 503, 200]

"""SlackChat against FakeSlack: posts, in-place updates, thread replies, pacing and 429 handling."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot import chat as bot_chat
from bot.chat import ChannelPacer, RetryAfterHandler, SlackChat, ack_client, message_ref, worker_client
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Need
from remediator.lifecycle.chat import ChatError, MessageRef, MessageTag
from remediator.testing.fake_slack import FakeSlack
from tests.bot.conftest import make_remediation
from tests.support.clock import VirtualTime


def make_chat(slack: FakeSlack, settings: Settings, fake: VirtualTime | None = None) -> SlackChat:
    fake = fake or VirtualTime()
    client = worker_client(settings, sleep=fake.sleep, jitter=0)
    return SlackChat(client, settings, lambda r: Need(approvers=("S0SECONCALL",), quorum=1),
                     pacer=ChannelPacer(clock=fake.monotonic, sleep=fake.sleep))


def test_post_approval_update_and_reply(slack: FakeSlack, settings: Settings) -> None:
    chat = make_chat(slack, settings)
    rem = make_remediation(message={})
    ref = chat.post_approval(rem)
    assert ref.channel == "C0APPROVALS"
    (post,) = slack.calls_to("chat.postMessage")
    assert post.body["channel"] == "C0APPROVALS"
    assert post.body["unfurl_links"] is False
    assert post.body["parse"] == "none"
    assert post.body["blocks"] == blocks.approval_message(rem, "1 approval from <!subteam^S0SECONCALL>").blocks
    assert "link_names" not in post.body

    stored = replace(rem, message={"channel": ref.channel, "ts": ref.ts}, state="applied", version="2")
    chat.update_approval(stored)
    (update,) = slack.calls_to("chat.update")
    assert (update.body["channel"], update.body["ts"]) == (ref.channel, ref.ts)
    current = slack.message(ref.channel, ref.ts)
    assert current is not None
    assert blocks.ACTION_APPROVE not in str(current["blocks"])
    assert "Applied and verified" in str(current["blocks"])

    chat.post_result(stored, kind="applied", text="Applied and verified: 1 change", undo_available=True)
    (reply,) = slack.replies(ref.channel, ref.ts)
    assert reply["blocks"][1]["elements"][0]["action_id"] == blocks.ACTION_UNDO
    assert reply["blocks"][1]["elements"][0]["value"] == rem.id


def test_update_without_a_message_does_nothing_and_a_result_without_one_goes_to_the_channel(
        slack: FakeSlack, settings: Settings) -> None:
    chat = make_chat(slack, settings)
    rem = make_remediation(message={})
    assert message_ref(rem) is None
    chat.update_approval(rem)
    assert slack.calls_to("chat.update") == []
    chat.post_result(rem, kind="failed", text="boom")
    (post,) = slack.calls_to("chat.postMessage")
    assert "thread_ts" not in post.body


def test_digest_post(slack: FakeSlack, settings: Settings) -> None:
    chat = make_chat(slack, settings)
    rems = [make_remediation(id=f"r-{i}") for i in range(30)]
    ref = chat.post_digest(rems, playbook="nsg-close-management-ports", group="rg-prod-web")
    msg = slack.message(ref.channel, ref.ts)
    assert msg is not None
    assert "Approve all 30" in str(msg["blocks"])
    chat.update_digest(ref, rems, playbook="nsg-close-management-ports", group="rg-prod-web", status="done")
    assert "Approve all" not in str(slack.message(ref.channel, ref.ts))


def test_posts_are_paced_to_one_per_second_per_channel(slack: FakeSlack, settings: Settings) -> None:
    fake = VirtualTime()
    chat = make_chat(slack, settings, fake)
    for i in range(5):
        chat.post_approval(make_remediation(id=f"r-{i}", message={}))
    other = SlackChat(chat.client, settings, chat.requirement, pacer=chat.pacer, channel="C0OTHER")
    other.post_approval(make_remediation(id="r-other", message={}))
    times = [t for ch, t in chat.pacer.sent if ch == "C0APPROVALS"]
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [1.0] * 4
    assert [t for ch, t in chat.pacer.sent if ch == "C0OTHER"] == [times[-1]]  # another channel does not wait
    assert len(slack.calls_to("chat.postMessage")) == 6


def test_pacer_serialises_threads_on_one_channel() -> None:
    fake = VirtualTime()
    pacer = ChannelPacer(0.5, clock=fake.monotonic, sleep=fake.sleep)

    def post() -> None:
        with pacer.slot("C1"):
            pass

    threads = [threading.Thread(target=post) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = sorted(t for _, t in pacer.sent)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.5


def test_worker_client_waits_out_a_429_retry_after(slack: FakeSlack, settings: Settings) -> None:
    fake = VirtualTime()
    chat = make_chat(slack, settings, fake)
    slack.rate_limit("chat.postMessage", times=2, retry_after=30)
    ref = chat.post_approval(make_remediation(message={}))
    assert ref.ts
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 429, 200]
    handler = next(h for h in chat.client.retry_handlers if isinstance(h, RetryAfterHandler))
    assert handler.waits == [30.0, 30.0]
    assert fake.slept == [30.0, 30.0]  # waited in the worker thread, by the injected sleep


def test_worker_client_gives_up_after_its_retries(slack: FakeSlack, settings: Settings) -> None:
    fake = VirtualTime()
    client = worker_client(settings, sleep=fake.sleep, jitter=0, max_rate_limit_retries=2)
    chat = SlackChat(client, settings, lambda r: "", pacer=ChannelPacer(clock=fake.monotonic, sleep=fake.sleep))
    slack.rate_limit("chat.postMessage", times=5, retry_after=1)
    with pytest.raises(ChatError, match=r"^Slack chat.postMessage answered 429 \(rate limited past the retries\)$") \
            as err:
        chat.post_approval(make_remediation(message={}))
    assert err.value.transient
    assert not err.value.maybe_done
    assert len(slack.calls_to("chat.postMessage")) == 3


def test_ack_client_never_waits_on_a_429(slack: FakeSlack, settings: Settings) -> None:
    client = ack_client(settings)
    assert client.retry_handlers == []
    assert client.timeout <= 3
    slack.rate_limit("chat.update", times=1, retry_after=30)
    started = time.monotonic()
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts="1.0", text="x")
    assert err.value.response.status_code == 429
    assert time.monotonic() - started < 1.5
    assert len(slack.calls_to("chat.update")) == 1


def test_requirement_failure_only_drops_the_line(slack: FakeSlack, settings: Settings) -> None:
    def broken(_: object) -> str:
        raise RuntimeError("directory down")

    fake = VirtualTime()
    chat = SlackChat(worker_client(settings, sleep=fake.sleep), settings, broken,
                     pacer=ChannelPacer(clock=fake.monotonic, sleep=fake.sleep))
    ref = chat.post_approval(make_remediation(message={}))
    msg = slack.message(ref.channel, ref.ts)
    assert msg is not None
    assert not any(b.get("block_id", "").startswith("needs.") and "Needs" in str(b) for b in msg["blocks"])


def test_no_channel_is_a_configuration_error(settings: Settings) -> None:
    with pytest.raises(ValueError, match="slack_channel"):
        SlackChat(ack_client(settings), replace(settings, slack_channel=""))


def _chat(slack: FakeSlack, settings: Settings, **client: Any) -> SlackChat:
    fake = VirtualTime()
    return SlackChat(worker_client(settings, sleep=fake.sleep, jitter=0, **client), settings, lambda r: "",
                     pacer=ChannelPacer(clock=fake.monotonic, sleep=fake.sleep))


@pytest.mark.parametrize("case", [
    (lambda s: s.http_error("chat.postMessage", 500), "Slack chat.postMessage answered 500", True, True),
    (lambda s: s.http_error("chat.postMessage", 503), "Slack chat.postMessage answered 503", True, True),
    (lambda s: s.fail("chat.postMessage", "fatal_error"), "Slack chat.postMessage answered fatal_error", True, True),
    (lambda s: s.fail("chat.postMessage", "service_unavailable"),
     "Slack chat.postMessage answered service_unavailable", True, False),
    (lambda s: s.fail("chat.postMessage", "channel_not_found"),
     "Slack chat.postMessage answered channel_not_found", False, False),
    (lambda s: s.fail("chat.postMessage", "invalid_blocks"), "Slack chat.postMessage answered invalid_blocks", False,
     False),
])
def test_slack_failures_say_what_failed_and_whether_to_retry(
        slack: FakeSlack, settings: Settings, case: tuple[Callable[[FakeSlack], None], str, bool, bool]) -> None:
    inject, what, transient, maybe_done = case
    inject(slack)
    with pytest.raises(ChatError) as err:
        _chat(slack, settings).post_approval(make_remediation(message={}))
    assert (str(err.value), err.value.transient, err.value.maybe_done) == (what, transient, maybe_done)


def test_replies_are_tagged_and_found_in_their_thread(slack: FakeSlack, settings: Settings) -> None:
    chat = _chat(slack, settings)
    since = datetime.now(UTC)
    ref = chat.post_approval(make_remediation(id="r-thread", message={}))
    rem = make_remediation(id="r-thread", message={"channel": ref.channel, "ts": ref.ts})
    tag = MessageTag(kind="reply", key="k-applied")
    chat.post_result(rem, kind="applied", text="Applied and verified: 1 change.", tag=tag)
    (reply,) = slack.replies(ref.channel, ref.ts)
    assert reply["metadata"] == {"event_type": "remediator_reply", "event_payload": {"reply_id": "k-applied"}}
    found = chat.find_posted(tag, since=since, thread=ref)
    assert found == MessageRef(channel=ref.channel, ts=reply["ts"])
    assert chat.find_posted(MessageTag(kind="reply", key="k-other"), since=since, thread=ref) is None
    assert chat.find_posted(tag, since=since) is None  # not a top-level message
    assert slack.calls_to("conversations.replies")[0].body["ts"] == ref.ts


def test_a_timeout_may_have_posted(slack: FakeSlack, settings: Settings) -> None:
    slack.slow("chat.postMessage", 1.3)
    with pytest.raises(ChatError) as err:
        _chat(slack, settings, timeout=1).post_approval(make_remediation(message={}))
    assert (str(err.value), err.value.transient, err.value.maybe_done) == (
        "Slack chat.postMessage did not answer in time", True, True)
    assert len(slack.messages()) == 1  # it did


def test_approval_messages_are_tagged_and_found_within_a_bounded_look_back(
        slack: FakeSlack, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    chat = _chat(slack, settings)
    since = datetime.now(UTC)
    ref = chat.post_approval(make_remediation(id="r-tagged", message={}))
    digest = chat.post_digest([make_remediation(id="r-d1"), make_remediation(id="r-d2")], playbook="p", group="g",
                              digest_id="dg-1")
    posted = slack.message(ref.channel, ref.ts)
    assert posted is not None
    assert posted["metadata"] == {"event_type": "remediator_request", "event_payload": {"remediation_id": "r-tagged"}}
    assert chat.find_posted(MessageTag(kind="request", key="r-tagged"), since=since) == ref
    assert chat.find_posted(MessageTag(kind="digest", key="dg-1"), since=since) == digest
    assert chat.find_posted(MessageTag(kind="request", key="r-other"), since=since) is None
    assert chat.find_posted(MessageTag(kind="request", key="r-d1"), since=since) is None  # a digest is not a request
    history = slack.calls_to("conversations.history")
    assert history[0].body["include_all_metadata"] in ("1", "true", True)
    for _ in range(4):
        chat.post_result(make_remediation(message={}), kind="info", text="noise")
    monkeypatch.setattr(bot_chat, "HISTORY_PAGE", 1)  # more messages than the bounded look back reads
    with pytest.raises(ChatError, match="cannot tell whether the request was posted") as err:
        chat.find_posted(MessageTag(kind="request", key="r-other"), since=since)
    assert not err.value.transient
    assert len(slack.calls_to("conversations.history")) == len(history) + bot_chat.HISTORY_PAGES


def test_an_alarm_is_one_escaped_message_in_the_channel_tagged_and_found_again(slack: FakeSlack,
                                                                               settings: Settings) -> None:
    """A message about remediator itself (a silent export): plain text escaped, no buttons, found by its tag
    after an attempt whose answer was lost."""
    chat = _chat(slack, settings)
    since = datetime.now(UTC)
    key = "export-silent:3f5e6c1a:2026-11-25T12:00:00+00:00"
    ref = chat.post_alarm(key=key, title="Defender has sent nothing from subscription 3f5e6c1a for 25 hours",
                          lines=("Nothing arrived <!channel> <http://evil.example|click>", "Check: the export"))
    posted = slack.message(ref.channel, ref.ts)
    assert posted is not None
    assert ref.channel == "C0APPROVALS"
    assert posted["metadata"] == {"event_type": "remediator_alarm", "event_payload": {"alarm_id": key}}
    text = str(posted["blocks"])
    assert "<!channel>" not in text
    assert "&lt;!channel&gt;" in text
    assert "actions" not in {b["type"] for b in posted["blocks"]}
    assert posted["blocks"][0]["text"]["text"].startswith(":rotating_light: Defender has sent nothing")
    assert chat.find_posted(MessageTag(kind="alarm", key=key), since=since) == ref
    assert chat.find_posted(MessageTag(kind="alarm", key="other"), since=since) is None

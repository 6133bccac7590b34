"""Slack down, slow or half-readable: requests and results are delayed, never dropped, never doubled.

Real parts (tests/bot/world.py): the engine's worker posts through ``SlackChat`` and the real
slack-sdk ``WebClient`` to ``FakeSlack``, which answers 500 for as long as the test says
(``down``/``up``), or does a call and answers after the client gave up (``slow``). Time on the
engine's side is the ``FakeClock`` (re-queued jobs become visible when it passes their delay);
the worker runs when the test says so, with the sweep, as the timers would.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.chat import SharedPacer, SlackChat, worker_client
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.posting import SETTLE
from remediator.lifecycle.worker import CHAT_GIVE_UP
from remediator.store import SQLiteStore
from remediator.testing.fake_slack import FakeSlack
from tests.bot.world import CHANNEL, SlackWorld, make_slack_world
from tests.support.clock import VirtualTime
from tests.support.engine import MEMBERS, TEAM, network_assessment, storage_account

ALICE = MEMBERS[0]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SlackWorld]:
    yield from make_slack_world(tmp_path, storm_threshold=0)  # one message per request


def open_requests(world: SlackWorld, n: int, *, prefix: str) -> list[Remediation]:
    """``n`` pending requests (the storage firewall assessment on ``n`` accounts), planned, not yet posted."""
    docs = [storage_account(f"{prefix}{i:03d}", rg=f"rg-{prefix}-{i}") for i in range(n)]
    world.arm.load(docs)
    opened = world.ingest([network_assessment(d["id"]) for d in docs])
    assert [r.state for r in opened] == ["pending_approval"] * n
    return opened


def tagged(world: SlackWorld, rid: str) -> list[dict[str, Any]]:
    """The channel's top-level messages tagged with ``rid`` (Slack message metadata)."""
    return [m for m in world.slack.messages(CHANNEL)
            if (m.get("metadata") or {}).get("event_payload", {}).get("remediation_id") == rid]


def run_for(world: SlackWorld, seconds: float, step: float = 10.0) -> None:
    """``seconds`` of the engine's time: the worker after each ``step``, the sweep as its timer would."""
    elapsed = 0.0
    while elapsed < seconds:
        world.clock.advance(seconds=step)
        elapsed += step
        world.engine.work()
        world.engine.sweep()
        world.engine.work()


def events(world: SlackWorld, name: str) -> list[Any]:
    return [e for e in world.engine.audit_trail() if e.event == name]


def test_a_slack_outage_of_150_seconds_delays_requests_and_results_and_drops_none(world: SlackWorld) -> None:
    posted = open_requests(world, 10, prefix="before")
    world.engine.work()
    assert all(world.rem(r.id).announced for r in posted)
    for rem in posted:  # ten results, queued (the message update and the thread reply) just before …
        assert world.engine.reject(rem.id, Actor(user_id=ALICE, team_id=TEAM, enterprise_id=None, name="alice"),
                                   "not in this change window").ok
    world.slack.down(500)  # … Slack goes down
    waiting = open_requests(world, 20, prefix="during")
    world.engine.work()
    run_for(world, 150)
    assert world.slack.calls_to("chat.postMessage")  # it kept trying …
    for rem in waiting:  # … and nothing was given up or claimed as announced
        now = world.rem(rem.id)
        assert now.state == "pending_approval"
        assert not now.announced
        assert now.posting["error"] == "Slack chat.postMessage answered 500"
    assert events(world, "job_dropped") == []
    assert events(world, "chat_failed") == []
    delayed = events(world, "post_delayed")
    assert sorted(e.remediation_id for e in delayed) == sorted(r.id for r in waiting)  # once each, not per attempt
    answer = world.command(f"status {waiting[0].id}", ALICE)  # the slash command's answer needs no Web API call
    text = json.loads(answer.body)["text"]
    assert ":warning: The approval message is not posted yet" in text
    assert "last: Slack chat.postMessage answered 500" in text

    world.slack.up()
    run_for(world, 600, step=30)
    for rem in waiting:
        now = world.rem(rem.id)
        assert now.announced
        assert now.posting == {}
        (message,) = tagged(world, rem.id)  # posted exactly once
        assert now.message == {"channel": CHANNEL, "ts": message["ts"]}
    for rem in posted:
        ts = world.rem(rem.id).message["ts"]
        replies = [m["text"] for m in world.slack.replies(CHANNEL, ts)]
        assert len(replies) == 1, replies  # the result, exactly once
        assert "not in this change window" in replies[0]
        updated = world.slack.message(CHANNEL, ts)
        assert updated is not None
        assert updated.get("edited")  # re-rendered as rejected
    assert events(world, "job_dropped") == []
    assert events(world, "chat_failed") == []
    # every post after the outage first looked for a message that a 500 might have let through
    assert world.slack.calls_to("conversations.history")


def test_a_result_that_cannot_reach_slack_for_a_day_ends_with_what_failed(world: SlackWorld) -> None:
    (rem,) = open_requests(world, 1, prefix="dayout")
    world.engine.work()
    assert world.engine.reject(rem.id, Actor(user_id=ALICE, team_id=TEAM, enterprise_id=None, name="alice"),
                               "no").ok
    world.slack.down(500)
    world.engine.work()
    run_for(world, CHAT_GIVE_UP.total_seconds() + 3600, step=3600)
    failed = events(world, "chat_failed")
    assert sorted(e.detail["job"] for e in failed) == ["reply", "update"]
    for e in failed:
        assert e.remediation_id == rem.id
        reason = e.detail["reason"]
        # a 500 may have let the reply through: every later attempt read the thread first, and that failed
        assert reason.startswith("Slack conversations.replies answered 500 for " if e.detail["job"] == "reply"
                                 else "Slack chat.update answered 500 for ")
        assert " attempts over " in reason
        assert "crashed" not in reason
    assert events(world, "job_dropped") == []


def test_slack_slower_than_the_client_timeout_posts_the_request_once(world: SlackWorld) -> None:
    world.chat.client = worker_client(world.settings, sleep=world.pace.sleep, jitter=0, timeout=1)
    world.slack.slow("chat.postMessage", 1.6)  # the post lands; the answer comes after the client gave up
    (rem,) = open_requests(world, 1, prefix="slow")
    world.engine.work()
    assert len(tagged(world, rem.id)) == 1
    after = world.rem(rem.id)
    assert not after.announced
    assert after.posting["outcome"] == "unknown"
    assert after.posting["error"] == "Slack chat.postMessage did not answer in time"
    run_for(world, SETTLE.total_seconds() / 2)  # the post may still be landing: nobody posts or looks yet
    assert world.slack.calls_to("conversations.history") == []
    run_for(world, SETTLE.total_seconds())
    (message,) = tagged(world, rem.id)
    assert len(world.slack.calls_to("chat.postMessage")) == 1
    final = world.rem(rem.id)
    assert final.announced
    assert final.message == {"channel": CHANNEL, "ts": message["ts"]}
    (found,) = events(world, "post_found")
    assert found.remediation_id == rem.id


def test_a_reply_whose_answer_was_lost_is_found_in_its_thread_and_not_posted_again(world: SlackWorld) -> None:
    (rem,) = open_requests(world, 1, prefix="replyslow")
    world.engine.work()
    ts = world.rem(rem.id).message["ts"]
    world.chat.client = worker_client(world.settings, sleep=world.pace.sleep, jitter=0, timeout=0.5)
    world.slack.slow("chat.postMessage", 0.8)  # the reply lands; the answer comes after the client gave up
    assert world.engine.reject(rem.id, Actor(user_id=ALICE, team_id=TEAM, enterprise_id=None, name="alice"),
                               "not this week").ok
    world.engine.work()
    assert len(world.slack.replies(CHANNEL, ts)) == 1
    run_for(world, 600, step=30)  # the reply job comes back: it reads the thread for its tag first
    replies = world.slack.replies(CHANNEL, ts)
    assert len(replies) == 1, [m["text"] for m in replies]  # before: the same reply twice
    assert replies[0]["metadata"]["event_type"] == "remediator_reply"
    assert world.slack.calls_to("conversations.replies")
    (found,) = events(world, "reply_found")
    assert found.remediation_id == rem.id
    assert events(world, "chat_failed") == []


def test_a_reply_delivered_again_after_a_crash_is_not_posted_twice(world: SlackWorld) -> None:
    (rem,) = open_requests(world, 1, prefix="replycrash")
    world.engine.work()
    assert world.engine.reject(rem.id, Actor(user_id=ALICE, team_id=TEAM, enterprise_id=None, name="alice"),
                               "not now").ok
    job = world.store.dequeue(visibility_seconds=1)  # the update or the reply: handled, then the worker dies
    while job is not None and job.kind != "reply":
        world.engine.handle(job)
        world.store.complete(job)
        job = world.store.dequeue(visibility_seconds=1)
    assert job is not None
    world.engine.handle(job)  # posted; the crash comes before the job is completed
    world.clock.advance(seconds=2)
    world.engine.work()  # the job's redelivery
    ts = world.rem(rem.id).message["ts"]
    assert len(world.slack.replies(CHANNEL, ts)) == 1
    assert [e.remediation_id for e in events(world, "reply_found")] == [rem.id]


def test_a_crash_after_the_post_reuses_the_message(world: SlackWorld) -> None:
    (rem,) = open_requests(world, 1, prefix="crash")
    poster = world.engine._worker.poster
    (claimed,) = poster._claim([rem], f"request:{rem.id}", world.clock())  # the intent, recorded first …
    world.chat.post_approval(claimed)  # … the post Slack took; the worker dies before storing the ref
    world.engine.work()  # the announce (and its post job) meanwhile: the attempt may still be in flight
    assert len(world.slack.calls_to("chat.postMessage")) == 1
    run_for(world, SETTLE.total_seconds() + 30)  # the sweep re-announces; the post job looks first
    assert len(world.slack.calls_to("chat.postMessage")) == 1
    (message,) = tagged(world, rem.id)
    assert world.rem(rem.id).message == {"channel": CHANNEL, "ts": message["ts"]}
    assert world.rem(rem.id).announced


def test_a_digest_whose_answer_was_lost_is_found_by_its_tag(tmp_path: Path) -> None:
    for world in make_slack_world(tmp_path, storm_threshold=5):
        world.chat.client = worker_client(world.settings, sleep=world.pace.sleep, jitter=0, timeout=1)
        world.slack.slow("chat.postMessage", 1.6)
        docs = [storage_account(f"digest{i:02d}", rg="rg-storm") for i in range(6)]
        world.arm.load(docs)
        opened = world.ingest([network_assessment(d["id"]) for d in docs])
        world.engine.work()
        run_for(world, SETTLE.total_seconds() + 30)
        (digest,) = world.slack.messages(CHANNEL)
        assert digest["metadata"]["event_type"] == "remediator_digest"
        for rem in opened:
            now = world.rem(rem.id)
            assert now.announced
            assert now.message == {"channel": CHANNEL, "ts": digest["ts"], "digest": "1"}
        assert len(world.slack.calls_to("chat.postMessage")) == 1


def test_without_history_an_unknown_outcome_is_never_posted_twice(tmp_path: Path) -> None:
    with FakeSlack(team_id=TEAM, scopes=("chat:write", "commands", "usergroups:read")) as slack:
        for world in make_slack_world(tmp_path, storm_threshold=0, slack=slack):
            world.chat.client = worker_client(world.settings, sleep=world.pace.sleep, jitter=0, timeout=1)
            world.slack.slow("chat.postMessage", 1.6)
            (rem,) = open_requests(world, 1, prefix="nohist")
            world.engine.work()
            run_for(world, 1800, step=60)
            assert len(tagged(world, rem.id)) == 1  # at most one: never a second
            assert world.slack.calls_to("conversations.history")  # it asked, and could not tell
            unknown = events(world, "post_outcome_unknown")
            assert [e.remediation_id for e in unknown] == [rem.id]  # said once, not per look-up
            assert "missing_scope (needs channels:history)" in unknown[0].detail["error"]
            assert not world.rem(rem.id).announced
            run_for(world, timedelta(days=1).total_seconds(), step=3600)  # the playbook's expires_after: 1d
            assert world.rem(rem.id).state == "expired"
            (expired,) = events(world, "expired")
            assert "never posted" in expired.detail["unposted"]
            assert len(tagged(world, rem.id)) == 1  # the reminder and the expiry went out; the request once


def test_posts_are_paced_per_channel_across_instances(tmp_path: Path) -> None:
    """Three workers (each its own store connection and SlackChat) post 15 messages to one channel:
    never two in one second (Slack documents one message per second per channel)."""
    time_ = VirtualTime(start=1_700_000_000.0)
    with FakeSlack(team_id=TEAM) as slack:
        for world in make_slack_world(tmp_path, slack=slack):
            stores = [SQLiteStore(tmp_path / "remediator.db") for _ in range(3)]
            chats = [SlackChat(worker_client(world.settings, sleep=time_.sleep, jitter=0), world.settings,
                               pacer=SharedPacer(store, clock=time_.monotonic, sleep=time_.sleep))
                     for store in stores]
            (rem,) = open_requests(world, 1, prefix="paced")

            def post(chat: SlackChat, rem: Remediation) -> None:
                for _ in range(5):
                    chat.post_result(rem, kind="info", text="paced")

            threads = [threading.Thread(target=post, args=(chat, rem)) for chat in chats]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for store in stores:
                store.close()
            sent = [at for chat in chats for _, at in chat.pacer.sent]
            assert len(sent) == 15
            per_second = Counter(int(at) for at in sent)
            assert max(per_second.values()) == 1, per_second


@pytest.mark.slow(reason="three posts each wait out a real one-second client timeout")
def test_slack_timing_out_for_a_while_posts_each_request_once(world: SlackWorld) -> None:
    world.chat.client = worker_client(world.settings, sleep=world.pace.sleep, jitter=0, timeout=1)
    world.slack.slow("chat.postMessage", 1.2, times=3)  # every post lands, no answer arrives in time
    requests = open_requests(world, 3, prefix="timeouts")
    world.engine.work()
    assert [world.rem(r.id).posting["outcome"] for r in requests] == ["unknown"] * 3
    run_for(world, 600, step=30)
    for rem in requests:
        (message,) = tagged(world, rem.id)
        assert world.rem(rem.id).message == {"channel": CHANNEL, "ts": message["ts"]}
    assert len(world.slack.calls_to("chat.postMessage")) == 3  # none posted twice
    assert sorted(e.remediation_id for e in events(world, "post_found")) == sorted(r.id for r in requests)

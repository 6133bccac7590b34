"""Results of auto-applied remediations, as the channel shows them: one digest per playbook, updated in place.

Real parts (tests/bot/world.py): the worker posts through ``SlackChat`` and the real slack-sdk
``WebClient`` to ``FakeSlack`` (which checks Slack's Block Kit limits); the store is SQLite, or Table
and Queue Storage on Azurite. A backlog of auto fixes ("Storage account public access should be
disallowed" on many accounts, storage-disable-public-blob-access, approval auto) is ingested and
worked; the test reads the channel's history as a user scrolls it.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.chat import ChannelPacer, SlackChat, worker_client
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.jobs import ReplyJob
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.posting import SETTLE
from remediator.lifecycle.results import ENTRIES_MAX, FLUSH_GAP
from remediator.privilege.elevation import StandingElevator
from remediator.store.azure import AzureStore
from remediator.testing import FakeArm
from remediator.testing.fake_slack import FakeSlack
from tests.bot.world import CHANNEL, SlackWorld, make_slack_world
from tests.support.azurite import azurite_connection_string  # noqa: F401 - registers the session fixture
from tests.support.clock import VirtualTime
from tests.support.engine import (
    ADMIN,
    PLAYBOOKS,
    TEAM,
    FakeClock,
    public_blob_assessment,
    sample_state,
    storage_account,
)

PLAYBOOK = "storage-disable-public-blob-access"
RID = re.compile(r"`([A-Za-z0-9_-]{20,})`")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SlackWorld]:
    yield from make_slack_world(tmp_path, auto_budget_per_hour=1000)


def open_accounts(world: SlackWorld, n: int, *, prefix: str) -> list[Remediation]:
    """``n`` accounts with anonymous blob access on, their findings ingested: ``n`` auto remediations."""
    docs = [storage_account(f"{prefix}{i:03d}", rg=f"rg-{prefix}", allowBlobPublicAccess=True) for i in range(n)]
    world.arm.load(docs)
    opened = world.ingest([public_blob_assessment(d["id"]) for d in docs])
    assert [(r.playbook, r.state) for r in opened] == [(PLAYBOOK, "approved")] * n
    return opened


def run_for(world: SlackWorld, seconds: float, step: float = 5.0) -> None:
    """``seconds`` of the engine's time, the worker after each ``step`` (a delayed job becomes visible)."""
    elapsed = 0.0
    while elapsed < seconds:
        world.engine.work()
        world.clock.advance(seconds=step)
        elapsed += step
    world.engine.work()


def digests(slack: FakeSlack) -> list[dict[str, Any]]:
    """The channel's results digests, oldest first."""
    return [m for m in slack.messages(CHANNEL) if (m.get("metadata") or {}).get("event_type") == "remediator_results"]


def listed(message: dict[str, Any]) -> list[str]:
    """The remediation ids a digest message lists, in order (each line ends with its id in code)."""
    text = "\n".join(b["text"]["text"] for b in message["blocks"] if b.get("type") == "section")
    return RID.findall(text)


def told(trail: list[Any], rid: str) -> list[Any]:
    return [e for e in trail if e.remediation_id == rid and e.event == "result_posted"]


def test_a_backlog_of_auto_fixes_is_one_digest_per_25_results_updated_in_place(world: SlackWorld) -> None:
    first = open_accounts(world, 10, prefix="early")
    run_for(world, 10)
    (digest,) = digests(world.slack)
    assert listed(digest) == [r.id for r in first]
    assert digest["text"] == f"{PLAYBOOK}: 10 applied"
    assert not digest.get("edited")

    later = open_accounts(world, 20, prefix="late")  # within the window: the same message grows to 25
    run_for(world, 20)
    one, two = digests(world.slack)
    assert one["ts"] == digest["ts"]
    assert one.get("edited")  # updated in place (chat.update), not posted again
    assert listed(one) == [r.id for r in first + later][:ENTRIES_MAX]
    assert listed(two) == [r.id for r in later][ENTRIES_MAX - 10:]  # full: the next ones start a new message
    # nothing else in the channel: no message per result
    assert [m for m in world.slack.messages(CHANNEL) if m not in (one, two)] == []
    assert len(world.slack.calls_to("chat.postMessage")) == 2
    trail = world.engine.audit_trail()
    for rem in first + later:
        assert world.rem(rem.id).state == "applied"
        (record,) = told(trail, rem.id)  # each remediation's own record of where its result was told
        assert record.detail["ts"] == (one if rem.id in listed(one) else two)["ts"]
        assert record.detail["kind"] == "applied"
    undo = next(b for b in one["blocks"] if b.get("type") == "actions")["elements"][0]
    assert undo["type"] == "static_select"
    assert [o["value"] for o in undo["options"]] == listed(one)


def test_the_undo_menu_of_a_digest_asks_for_the_undo_of_the_one_chosen(world: SlackWorld) -> None:
    rem, _ = open_accounts(world, 2, prefix="undo")
    run_for(world, 5)
    (digest,) = digests(world.slack)
    request = world.slack.block_actions(action_id="remediator.undo", value="", user_id=ADMIN, team_id=TEAM,
                                        channel=CHANNEL, message_ts=digest["ts"], selected=rem.id)
    assert world.send(request).status == 200
    world.engine.work()
    (undo,) = [r for r in world.engine.pending() if r.undo_of == rem.id]
    assert undo.state == "pending_approval"


def test_results_later_than_the_window_start_a_new_digest(world: SlackWorld) -> None:
    open_accounts(world, 2, prefix="morning")
    run_for(world, 5)
    world.clock.advance(seconds=world.settings.result_window.total_seconds() + 1)
    open_accounts(world, 1, prefix="noon")
    run_for(world, 5)
    one, two = digests(world.slack)
    assert (len(listed(one)), len(listed(two))) == (2, 1)
    assert not one.get("edited")


def test_a_digest_whose_answer_was_lost_is_found_and_not_posted_again(world: SlackWorld) -> None:
    world.chat.client = worker_client(world.settings, sleep=world.pace.sleep, jitter=0, timeout=1)
    world.slack.slow("chat.postMessage", 1.6)  # the post lands; the answer comes after the client gave up
    rems = open_accounts(world, 3, prefix="slow")
    world.engine.work()
    assert len(digests(world.slack)) == 1
    trail = world.engine.audit_trail()
    assert all(told(trail, r.id) == [] for r in rems)  # not confirmed: not recorded as told
    run_for(world, SETTLE.total_seconds() / 2)
    assert world.slack.calls_to("conversations.history") == []  # it may still be landing: nobody looks yet
    run_for(world, SETTLE.total_seconds() + 30)
    (digest,) = digests(world.slack)
    assert len(world.slack.calls_to("chat.postMessage")) == 1
    assert listed(digest) == [r.id for r in rems]
    trail = world.engine.audit_trail()
    for rem in rems:
        (record,) = told(trail, rem.id)
        assert (record.detail["ts"], record.detail["found"]) == (digest["ts"], True)


class Crash(BaseException):
    """The worker process dies (not an Exception: nothing in the worker catches it)."""


def test_a_crash_after_the_digest_was_posted_neither_posts_it_again_nor_lists_a_result_twice(
        world: SlackWorld) -> None:
    real = world.chat.post_results

    def post_and_die(digest: Any) -> Any:
        real(digest)
        raise Crash

    world.chat.post_results = post_and_die  # type: ignore[method-assign]
    rems = open_accounts(world, 4, prefix="crash")
    with pytest.raises(Crash):
        run_for(world, 5)
    world.chat.post_results = real  # type: ignore[method-assign]
    # the reply jobs delivered again after the crash (each one's result is in the digest already)
    for rem in rems:
        world.engine._worker.reply(ReplyJob(remediation_id=rem.id, kind="applied",
                                            text="Applied and verified: 1 change.", undo_available=True),
                                   redelivered=True)
    run_for(world, world.settings.lock_ttl.total_seconds() + SETTLE.total_seconds() + 60, step=10)
    (digest,) = digests(world.slack)
    assert listed(digest) == [r.id for r in rems]
    assert len(world.slack.calls_to("chat.postMessage")) == 1
    trail = world.engine.audit_trail()
    assert [len(told(trail, r.id)) for r in rems] == [1, 1, 1, 1]


def test_slack_down_delays_the_digest_and_drops_no_result(world: SlackWorld) -> None:
    world.slack.down(500)
    rems = open_accounts(world, 6, prefix="down")
    run_for(world, 300, step=15)
    assert digests(world.slack) == []
    trail = world.engine.audit_trail()
    assert sorted(e.remediation_id for e in trail if e.event == "result_delayed") == sorted(r.id for r in rems)
    assert [e for e in trail if e.event in ("job_dropped", "chat_failed")] == []
    world.slack.up()
    run_for(world, 900, step=30)
    (digest,) = digests(world.slack)  # a 500 may have let a post through: it was looked for first
    assert listed(digest) == [r.id for r in rems]
    assert world.slack.calls_to("conversations.history")
    trail = world.engine.audit_trail()
    assert all(len(told(trail, r.id)) == 1 for r in rems)


def test_with_no_window_each_result_is_a_message_of_its_own(tmp_path: Path) -> None:
    for world in make_slack_world(tmp_path, auto_budget_per_hour=1000, result_window=timedelta(0)):
        rems = open_accounts(world, 3, prefix="single")
        run_for(world, 5)
        assert digests(world.slack) == []
        texts = Counter(m["text"] for m in world.slack.messages(CHANNEL))
        assert texts == {"Applied and verified: 1 change.": 3}
        assert len(rems) == 3


@pytest.mark.slow(reason="two workers on one Azurite: each result's digest state and record is a Table round trip")
def test_on_table_storage_two_workers_list_each_result_once(azurite_connection_string: str) -> None:  # noqa: F811
    """Two instances (each its own AzureStore and SlackChat) work one backlog of auto fixes at once:
    one digest, each result listed once, one record each."""
    prefix = "r" + uuid.uuid4().hex[:12]
    pace = VirtualTime(start=1_700_000_000.0)
    clock = FakeClock(datetime.now(UTC))
    with FakeSlack(team_id=TEAM) as slack, FakeArm() as arm:
        settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), slack_channel=CHANNEL, slack_bot_token=slack.token,
                            slack_api_url=slack.base_url, group_wait=timedelta(0), auto_budget_per_hour=1000)
        docs = [storage_account(f"tbl{i:03d}", rg="rg-tbl", allowBlobPublicAccess=True) for i in range(8)]
        arm.load(sample_state())
        arm.load(docs)
        clients = arm.clients()
        stores = [AzureStore(azurite_connection_string, prefix=prefix) for _ in range(2)]
        try:
            engines = [Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                              clients=clients, elevator=StandingElevator(), clock=clock,
                              chat=SlackChat(worker_client(settings, sleep=pace.sleep, jitter=0), settings,
                                             pacer=ChannelPacer(clock=pace.monotonic, sleep=pace.sleep)))
                       for store in stores]
            engines[0].ingest([public_blob_assessment(d["id"]) for d in docs])
            for _ in range(6):
                for engine in engines:
                    engine.work(threads=2)
                clock.advance(seconds=FLUSH_GAP.total_seconds() + 1)
            rems = engines[0].store.list(limit=100)
            assert sorted(r.state for r in rems) == ["applied"] * 8
            (digest,) = digests(slack)
            assert sorted(listed(digest)) == sorted(r.id for r in rems)
            for rem in rems:
                records = [e for e in engines[1].store.audit_log(rem.id) if e.event == "result_posted"]
                assert [e.detail["ts"] for e in records] == [digest["ts"]]
        finally:
            for store in stores:
                store.close()

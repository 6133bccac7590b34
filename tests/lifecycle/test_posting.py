"""Posting approval messages (``remediator.lifecycle.posting``): the intent is recorded first, so
concurrent post jobs make one message; the backoff grows and is capped.

The chat is ``RecordingChat`` (the port's recording double; the Slack implementation, outages
and look-ups are tested against FakeSlack in tests/scenarios/test_slack_outages.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediator.lifecycle.chat import MessageRef
from remediator.lifecycle.jobs import PostJob
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.posting import RETRY_CAP, RETRY_INITIAL, SETTLE, backoff
from tests.support.engine import World, make_world, sample


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def test_backoff_doubles_from_its_start_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [RETRY_INITIAL, 2 * RETRY_INITIAL, 4 * RETRY_INITIAL,
                                                   8 * RETRY_INITIAL]
    assert backoff(50) == RETRY_CAP
    assert SETTLE.total_seconds() > 30  # longer than the Slack worker client's timeout


def test_concurrent_post_jobs_for_one_request_post_one_message(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))
    assert rem.state == "pending_approval"
    posted: list[str] = []
    original = world.chat.post_approval

    def slow_post(remediation: Remediation) -> MessageRef:
        posted.append(remediation.id)
        time.sleep(0.05)  # the others arrive while this post is in flight
        return original(remediation)

    world.chat.post_approval = slow_post  # type: ignore[method-assign]
    worker = world.engine._worker
    threads = [threading.Thread(target=worker.post, args=(PostJob(remediation_id=rem.id),)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert posted == [rem.id]
    now = world.rem(rem.id)
    assert now.announced
    assert now.posting == {}
    assert now.message["ts"]


def test_a_post_job_after_the_message_is_stored_does_nothing(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))
    world.engine.work()
    assert world.chat.of("post_approval") == [rem.id]
    world.engine._worker.post(PostJob(remediation_id=rem.id))
    assert world.chat.of("post_approval") == [rem.id]
    assert world.chat.of("find_posted") == []  # nothing in doubt: no look-up either

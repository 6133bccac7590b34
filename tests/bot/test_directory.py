"""SlackDirectory: usergroups.users.list cached with a TTL, one lookup under concurrency, fail closed."""

from __future__ import annotations

import threading

import pytest

from bot.chat import ack_client
from bot.directory import DirectoryUnavailable, SlackDirectory
from remediator.config.settings import Settings
from remediator.testing.fake_slack import FakeSlack


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_members_are_cached_for_the_ttl(slack: FakeSlack, settings: Settings) -> None:
    clock = Clock()
    directory = SlackDirectory(ack_client(settings), ttl=300, clock=clock)
    assert directory.members("S0SECONCALL") == frozenset({"U0ALICE", "U0BOB"})
    slack.set_group("S0SECONCALL", ["U0CAROL"])
    clock.now = 299
    assert directory.members("S0SECONCALL") == frozenset({"U0ALICE", "U0BOB"})
    assert len(slack.calls_to("usergroups.users.list")) == 1
    clock.now = 300
    assert directory.members("S0SECONCALL") == frozenset({"U0CAROL"})
    assert len(slack.calls_to("usergroups.users.list")) == 2
    slack.set_group("S0SECONCALL", ["U0DAVE"])
    directory.invalidate("S0SECONCALL")
    assert directory.members("S0SECONCALL") == frozenset({"U0DAVE"})


def test_errors_fail_closed_and_are_remembered_briefly(slack: FakeSlack, settings: Settings) -> None:
    clock = Clock()
    directory = SlackDirectory(ack_client(settings), ttl=300, failure_ttl=10, clock=clock)
    slack.rate_limit("usergroups.users.list", times=1, retry_after=30)
    with pytest.raises(DirectoryUnavailable):
        directory.members("S0SECONCALL")
    with pytest.raises(DirectoryUnavailable):  # not asked again at once
        directory.members("S0SECONCALL")
    assert len(slack.calls_to("usergroups.users.list")) == 1
    clock.now = 10
    assert directory.members("S0SECONCALL") == frozenset({"U0ALICE", "U0BOB"})
    slack.fail("usergroups.users.list", "plan_upgrade_required")
    with pytest.raises(DirectoryUnavailable):
        directory.members("S0OTHER")
    with pytest.raises(DirectoryUnavailable):  # no_such_subteam
        directory.members("S0NOSUCH")
    assert directory.members("not-a-group") == frozenset()
    assert directory.members("U0ALICE") == frozenset()  # a user id is not a group: no call
    assert len(slack.calls_to("usergroups.users.list")) == 4


def test_a_dead_slack_fails_closed(settings: Settings) -> None:
    from dataclasses import replace

    dead = replace(settings, slack_api_url="http://127.0.0.1:9/api/")
    with pytest.raises(DirectoryUnavailable):
        SlackDirectory(ack_client(dead, timeout=1)).members("S0SECONCALL")


def test_concurrent_cold_lookups_make_one_call(slack: FakeSlack, settings: Settings) -> None:
    directory = SlackDirectory(ack_client(settings))
    results: list[frozenset[str]] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def look() -> None:
        start.wait()
        got = directory.members("S0SECONCALL")
        with lock:
            results.append(got)

    threads = [threading.Thread(target=look) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [frozenset({"U0ALICE", "U0BOB"})] * 50
    assert len(slack.calls_to("usergroups.users.list")) == 1
    assert directory.lookups == 1


def test_only_user_ids_count_as_members(slack: FakeSlack, settings: Settings) -> None:
    slack.set_group("S0ODD", ["U0OK", "<!channel>", "", "W0GRID"])
    assert SlackDirectory(ack_client(settings)).members("S0ODD") == frozenset({"U0OK", "W0GRID"})


def test_a_worker_client_is_made_safe_for_the_ack_path(slack: FakeSlack, settings: Settings) -> None:
    from bot.chat import worker_client

    slept: list[float] = []
    directory = SlackDirectory(worker_client(settings, sleep=slept.append))
    assert directory.client.retry_handlers == []
    assert directory.client.timeout <= 2
    slack.rate_limit("usergroups.users.list", times=1, retry_after=30)
    with pytest.raises(DirectoryUnavailable):
        directory.members("S0SECONCALL")
    assert slept == []  # never waited for Retry-After on Slack's 3-second path

"""The Functions Slack route under hostile input: 400/401 (413 past the size), never 500, and never
an exception for the host to log; nothing of an unverified body in any log record."""

from __future__ import annotations

import logging

import pytest

from remediator.lifecycle.worker import PAUSE_FLAG
from tests.bot.hostile import MARKER, cases
from tests.function_app.conftest import FunctionWorld, http_request, user_function
from tests.support.engine import ADMIN


def test_every_malformed_request_is_400_or_401(world: FunctionWorld, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = world.slack.signing_secret
    got = {}
    for case in cases(secret):
        response = user_function("slack_events")(http_request("POST", "slack/events", case.body, case.headers))
        got[case.name] = (response.status_code, case.status)
    assert {name: pair for name, pair in got.items() if pair[0] != pair[1]} == {}
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert MARKER not in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no exception logged per request
    assert world.store.get_flag(PAUSE_FLAG) is None


def test_a_replayed_pause_is_refused_across_instances(world: FunctionWorld) -> None:
    from function_app.runtime import runtime

    pause = world.slack.slash_command(command="/remediate", text="pause", user_id=ADMIN)
    resume = world.slack.slash_command(command="/remediate", text="resume", user_id=ADMIN)
    assert world.slack_request(pause).status_code == 200
    assert world.slack_request(resume).status_code == 200
    runtime.configure(runtime._o)  # a new instance: nothing cached in memory, the same store
    assert world.slack_request(pause).status_code == 401
    assert world.store.get_flag(PAUSE_FLAG) is None
    assert [e.event for e in world.store.audit_log()].count("slack_replay_refused") == 1


def test_a_failure_inside_the_endpoint_is_a_503_and_one_log_line(world: FunctionWorld,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from function_app.runtime import runtime

    assert world.slack_request(world.slack.slash_command(command="/remediate", text="help", user_id=ADMIN)) \
        .status_code == 200  # the endpoint is built
    runtime.store().close()  # type: ignore[attr-defined]  # the store goes away under it
    caplog.clear()
    response = world.slack_request(world.slack.slash_command(command="/remediate", text="pause", user_id=ADMIN))
    assert response.status_code == 503
    # the endpoint's replay check meets the closed store first: it refuses itself (fail closed), one line
    (line,) = [r for r in caplog.records if r.name in ("function_app.slack", "bot.endpoint")
               and r.levelno >= logging.WARNING]
    assert line.getMessage().startswith(("Slack request (", "the replay cache could not be checked"))
    assert line.exc_info is None

"""The Slack endpoint's fuzz target (``tests/fuzz/slack_target.py``): its few hundred examples in CI run
with every other target's in ``test_fuzz.py`` (``test_fuzz_target[slack-endpoint]``), ``scripts/fuzz``
runs 10,000; here, that the target follows the harness and that its contract checks catch a broken
endpoint."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.http import BoltResponse
from tests.fuzz import slack_target
from tests.fuzz.slack_target import Example, run


def test_the_target_follows_the_harness_convention() -> None:
    assert slack_target.NAME == "slack-endpoint"
    assert callable(slack_target.run)


def test_the_target_catches_a_leak_a_5xx_and_an_accepted_forgery(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract checks themselves: an endpoint that broke them would be caught."""
    forged = Example(body=b"payload=1" + slack_target.MARKER.encode(), content_type=slack_target.FORM,
                     signing="wrong-secret")
    assert run(forged) == "401 bad signature"
    target = slack_target._Target.get()
    log = logging.getLogger("bot.endpoint")

    def leaky(body: bytes, headers: Any, query: Any = None) -> BoltResponse:
        log.debug("got %r", body)
        return BoltResponse(status=401, body="")

    monkeypatch.setattr(target.world.endpoint, "handle", leaky)
    with pytest.raises(AssertionError, match="an unverified body reached the log"):
        run(forged)
    monkeypatch.setattr(target.world.endpoint, "handle", lambda *a, **k: BoltResponse(status=200, body=""))
    with pytest.raises(AssertionError, match="was answered 200, not refused"):
        run(forged)
    monkeypatch.setattr(target.world.endpoint, "handle", lambda *a, **k: 1 / 0)
    with pytest.raises(AssertionError, match="500"):
        run(forged)

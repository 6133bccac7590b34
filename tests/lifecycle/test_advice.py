"""An alert that no change answers (``alert.send-advice``): recorded with its advice, told to the channel once
(per alert and day, through a chat outage), nothing written."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from remediator.lifecycle.chat import ChatError, MessageRef
from remediator.lifecycle.model import Remediation
from tests.actions.test_ai import account, alert, deployment, rai_policy
from tests.support.engine import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, docs=[account(), deployment(), rai_policy()])


def test_advice_is_recorded_and_told_once_per_alert_and_day(world: World) -> None:
    finding = alert("export", "AI.Azure_AnomalousToolInvocation")
    (first,) = world.deliver([finding])
    assert first.outcome == "no_changes"
    assert first.remediation is not None
    world.engine.work()
    (told,) = world.chat.of("post_notice")
    rid, lines = told
    assert rid == first.remediation.id
    assert lines[0].startswith("A Jailbreak attempt") or "AI.Azure_AnomalousToolInvocation" in lines[0]
    assert "evidence: caller IP: 203.0.113.77" in lines
    assert any(line.startswith("step 3: For a service principal") for line in lines)
    opening = next(e for e in world.trail(rid) if e.event == "no_change")
    assert opening.detail["advice"] == list(lines)
    assert "notice_posted" in world.events(rid)
    assert world.arm.writes == []

    (again,) = world.deliver([finding])  # the exporter sends it again
    world.engine.work()
    assert len(world.chat.of("post_notice")) == 1
    assert again.remediation is not None
    assert "notice_skipped" in world.events(again.remediation.id)

    world.clock.advance(days=1)
    world.deliver([finding])
    world.engine.work()
    assert len(world.chat.of("post_notice")) == 2  # a day later it is news again


def test_a_chat_outage_delays_the_notice_never_drops_it(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    real = world.chat.post_notice
    down = [2]  # Slack answers 503 (transient, nothing posted) to the first two notices

    def flaky(remediation: Remediation, *, lines: Sequence[str]) -> MessageRef:
        if down[0] > 0:
            down[0] -= 1
            raise ChatError("Slack chat.postMessage answered 503", transient=True)
        return real(remediation, lines=lines)

    monkeypatch.setattr(world.chat, "post_notice", flaky)
    (planned,) = world.deliver([alert("export", "AI.Azure_SensitiveDataAnomaly")])
    world.engine.work()
    assert world.chat.of("post_notice") == []
    for _ in range(3):
        world.clock.advance(minutes=10)
        world.engine.work()
    assert len(world.chat.of("post_notice")) == 1
    assert planned.remediation is not None
    assert world.events(planned.remediation.id).count("notice_posted") == 1

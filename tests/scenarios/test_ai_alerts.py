"""Defender's AI services alerts, end to end through the real parts (tests/bot/world.py): the alert in
the shape continuous export sends, the worker's plan, the Slack approval message on FakeSlack, a signed
click, the apply under a PIM grant on FakeArm; and an alert that no change answers becomes one message
in the channel, recorded, nothing written. The prompt and completion text the alert carries appears
nowhere: not in Slack, the audit trail, the logs, the store or the plan output."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from bot import blocks
from bot.chat import worker_client
from remediator.app.cli import main
from remediator.app.demo import DEMO_EXECUTOR
from remediator.findings.model import Finding
from remediator.findings.parse import parse_value
from tests.actions.test_ai import ACCOUNT, DEPLOYMENT, account, alert, deployment, rai_policy
from tests.bot.world import SlackWorld, text_objects
from tests.findings.test_ai import CANARIES, EXPORT
from tests.support.engine import MEMBERS

ALICE = MEMBERS[0]
COGNITIVE_SERVICES_CONTRIBUTOR = "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68"


def everything_said(world: SlackWorld, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> str:
    """Every place the prompt text could leak to: Slack (messages, replies, calls), the audit trail, the
    logs, the store's file, FakeArm's requests."""
    slack = json.dumps([c.body for c in world.slack.calls], default=str)
    audit = json.dumps([(e.event, e.detail) for e in world.engine.audit_trail()], default=str)
    store = b"".join(p.read_bytes() for p in tmp_path.glob("remediator.db*")).decode("utf-8", "replace")
    arm = json.dumps([(r.path, r.body) for r in world.arm.requests], default=str)
    return "\n".join([slack, audit, caplog.text, store, arm])


def test_a_detected_jailbreak_is_approved_in_slack_and_blocked_under_pim(
        world: SlackWorld, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    world.arm.load([account(), deployment(), rai_policy()])
    hostile = "<!channel> <https://evil.example|click> *now*"
    (rem,) = world.ingest([alert("export", **{"User agent": hostile})])
    assert rem.state == "pending_approval"
    world.engine.work()  # the approval message
    msg = world.message(rem.id)
    shown = " ".join(t["text"] for t in text_objects(msg))
    # the evidence, escaped: never a mention or a link
    for evidence in ("deployment: gpt-4o-chat", "caller IP: 203.0.113.77",
                     "user agent: &lt;!channel&gt; &lt;https://evil.example|click&gt; *now*",
                     "prompt or completion text: the alert carries it"):
        assert evidence in shown
    assert "<!channel>" not in json.dumps(msg)
    asked = next(e for e in world.engine.audit_trail(rem.id) if e.event == "approval_requested")
    assert asked.detail["evidence"]["caller_ip"] == "203.0.113.77"
    assert asked.detail["evidence"]["user_agent"] == hostile  # the audit keeps the text, one capped line
    assert "A Jailbreak attempt on an Azure AI model deployment was detected" in shown
    assert "ai-alert-block-prompt-attacks" in shown
    assert "jailbreak (Prompt): detect only -&gt; block" in shown
    assert "raiPolicyName Microsoft.DefaultV2 -&gt; remediator-gpt-4o-chat" in shown

    world.click(blocks.ACTION_APPROVE, rem.id, ALICE)
    world.engine.work()
    assert world.rem(rem.id).state == "applied", world.engine.audit_trail(rem.id)
    assert (world.arm.get(DEPLOYMENT) or {})["properties"]["raiPolicyName"] == "remediator-gpt-4o-chat"
    policy = world.arm.get(f"{ACCOUNT}/raiPolicies/remediator-gpt-4o-chat") or {}
    blocking = {f["name"] for f in policy["properties"]["contentFilters"] if f.get("blocking") and f.get("enabled")}
    assert {"jailbreak", "indirect_attack"} <= blocking
    # each write under its own PIM grant of Cognitive Services Contributor, released after it
    grants = world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)
    assert sorted(g.scope.rsplit("/", 1)[-1] for g in grants) == ["gpt-4o-chat", "oai-contoso"]
    assert {g.role_definition_id.rsplit("/", 1)[-1] for g in grants} == {COGNITIVE_SERVICES_CONTRIBUTOR}
    assert world.arm.pim_grants(DEMO_EXECUTOR) == []
    said = everything_said(world, caplog, tmp_path)
    assert not any(c in said for c in CANARIES)


def test_an_alert_with_no_configuration_answer_is_one_message_recorded_and_nothing_written(
        world: SlackWorld, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    world.arm.load([account(), deployment(), rai_policy()])
    hostile = "<!channel> <https://evil.example|click> *now*"
    finding = alert("export", "AI.Azure_SensitiveDataAnomaly", **{"User agent": hostile})
    (rem,) = world.ingest([finding])
    assert rem.state == "no_change"
    world.engine.work()
    world.engine.work()  # a second run posts nothing more
    notices = [m for m in world.slack.messages() if (m.get("metadata") or {}).get("event_type") == "remediator_notice"]
    assert len(notices) == 1
    text = " ".join(t["text"] for t in text_objects(notices[0]))
    assert "Suspicious anomaly" in text or "SensitiveDataAnomaly" in text
    for evidence in ("deployment: gpt-4o-chat", "caller IP: 203.0.113.77", "step 1: Read the flagged responses",
                     "withheld"):
        assert evidence in text
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt;" in text  # escaped, never a mention or a link
    assert "<!channel>" not in json.dumps(notices[0])
    assert world.arm.resource_writes == []
    events = {e.event: e.detail for e in world.engine.audit_trail(rem.id)}
    assert "step 1: Read the flagged responses on the alert in Defender for Cloud (remediator does not copy them)" \
        in events["no_change"]["advice"]
    assert events["notice_posted"]["found"] is False
    said = everything_said(world, caplog, tmp_path)
    assert not any(c in said for c in CANARIES)


@pytest.mark.slow(reason="the lost answer is a real client timeout (1 s) on a post FakeSlack holds for 1.6 s")
def test_a_notice_whose_answer_was_lost_is_looked_for_not_posted_twice(world: SlackWorld) -> None:
    world.chat.client = worker_client(world.settings, sleep=world.pace.sleep, jitter=0, timeout=1)
    world.slack.slow("chat.postMessage", 1.6)  # posted, but the answer comes after the client gave up
    world.arm.load([account(), deployment(), rai_policy()])
    (rem,) = world.ingest([alert("export", "AI.Azure_MaliciousUrl.ModelResponse")])
    world.engine.work()
    world.clock.advance(minutes=10)  # the re-queued notice job is due
    world.engine.work()
    notices = [m for m in world.slack.messages() if (m.get("metadata") or {}).get("event_type") == "remediator_notice"]
    assert len(notices) == 1
    assert len(world.slack.calls_to("chat.postMessage")) == 1
    events = [e for e in world.engine.audit_trail(rem.id) if e.event == "notice_posted"]
    assert [e.detail["found"] for e in events] == [True]


def test_plan_prints_the_advice_and_the_filter_diff_and_never_the_prompt(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "ai.json").write_text(json.dumps([account(), deployment(), rai_policy()]), encoding="utf-8")
    sensitive = json.loads(EXPORT.read_text(encoding="utf-8"))
    sensitive["AlertType"] = "AI.Azure_SensitiveDataAnomaly"
    sensitive["SystemAlertId"] += "-2"
    (tmp_path / "sensitive.json").write_text(json.dumps(sensitive), encoding="utf-8")
    for output in ("text", "json"):
        out = io.StringIO()
        code = main(["plan", str(EXPORT), str(tmp_path / "sensitive.json"), "--resources", str(state),
                     "--output", output], out=out, stdin=io.StringIO(""))
        assert code == 2
        printed = out.getvalue()
        assert not any(c in printed for c in CANARIES)
        if output == "text":
            assert "#   advice: evidence: caller IP: 203.0.113.77" in printed
            assert "jailbreak (Prompt): detect only -> block" in printed
        else:
            results = json.loads(printed)["results"]
            assert [r["outcome"] for r in results] == ["changes", "no_changes"]
            assert any(a.startswith("step 1: ") for a in results[1]["advice"])
            assert "advice" not in results[0]


def test_parse_alone_keeps_no_prompt_for_any_consumer() -> None:
    (f,) = parse_value(json.loads(EXPORT.read_text(encoding="utf-8")), source="x")
    assert isinstance(f, Finding)
    assert not any(c in repr(f) or c in json.dumps(f.raw) for c in CANARIES)

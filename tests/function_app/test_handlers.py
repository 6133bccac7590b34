"""Every trigger, called the way the worker calls it, through the real runtime and engine.

A Defender export batch with a malformed event, an Azure Policy event through Event Grid, the Logic
App body over HTTP, Slack's signed requests, the queue worker (apply under a PIM grant scoped to
the one resource, retries, poison), the sweep timer and the health route.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from bot import blocks
from function_app.runtime import Overrides, runtime
from remediator.app.demo import DEMO_EXECUTOR
from remediator.findings.parse import parse_file
from remediator.lifecycle.model import Job
from remediator.lifecycle.worker import PAUSE_FLAG
from remediator.testing.fake_arm import PimGrant
from tests.conftest import ROOT
from tests.function_app.conftest import (
    CHANNEL,
    FunctionWorld,
    event_hub_batch,
    export,
    http_request,
    queue_message,
    user_function,
)
from tests.support.engine import CONTOSOWEB, MEMBERS, SUB

SAMPLES = ROOT / "remediator" / "samples" / "findings"
STORAGE_ALERT = (SAMPLES / "01-storage-open-container-alert.json").read_bytes()
PORTS_ASSESSMENT = (SAMPLES / "02-management-ports-assessment.json").read_bytes()
ACR_POLICY_EVENT = json.loads((SAMPLES / "04-acr-admin-user-policy-event.json").read_text())[0]
REGISTRY = (f"/subscriptions/{SUB}/resourceGroups/rg-prod-data/providers/Microsoft.ContainerRegistry/registries/"
            "contosoacr")
ACR_ROLE = "3bc748fc-213d-45c1-8d91-9da5725539b9"  # Container Registry Contributor and Data Access Configuration Admin
STORAGE_ROLE = "17d1049b-9a84-46fb-8f53-869881c3d3ab"  # Storage Account Contributor


def _remediations(world: FunctionWorld) -> dict[str, str]:
    """playbook → state of every stored remediation."""
    return {r.playbook: r.state for r in world.store.list()}


def _scoped(grants: list[PimGrant]) -> list[tuple[str, str]]:
    """(scope, role GUID) of each PIM grant the executor received."""
    return [(g.scope.lower(), g.role_definition_id.rsplit("/", 1)[-1]) for g in grants]


def _policy_event() -> func.EventGridEvent:
    e = ACR_POLICY_EVENT
    return func.EventGridEvent(id=e["id"], data=e["data"], topic=e["topic"], subject=e["subject"],
                               event_type=e["eventType"], event_time=datetime(2026, 11, 27, 9, 41, 12, tzinfo=UTC),
                               data_version=e["dataVersion"])


# -- Event Hub: Defender continuous export ------------------------------------------------------------


def test_event_hub_batch_ingests_every_good_event_and_records_the_malformed_one(world: FunctionWorld) -> None:
    truncated = b'{"AlertType": "Storage.Blob_OpenACL", "Severity": '
    batch = event_hub_batch([STORAGE_ALERT, truncated, PORTS_ASSESSMENT], partition="3", first_sequence=100)

    export(batch)
    assert world.store.list() == []  # stored and queued for planning; nothing planned on the ingest path
    assert world.drain(only=("plan",)) == ["plan"]  # the two good events, planned together

    assert _remediations(world) == {"storage-disable-public-blob-access": "approved",  # low risk, auto
                                    "nsg-close-management-ports": "pending_approval"}
    rejected = [e for e in world.store.audit_log() if e.event == "payload_rejected"]
    assert len(rejected) == 1
    detail = rejected[0].detail
    assert rejected[0].actor == "defender-export"
    assert "partition 3" in detail["position"]
    assert "sequence 101" in detail["position"]
    assert "offset 4294967808" in detail["position"]
    assert detail["bytes"] == len(truncated)
    assert detail["head"].startswith('{"AlertType"')
    assert "not JSON" in detail["reason"]


def test_event_hub_redelivered_batch_creates_nothing_twice(world: FunctionWorld) -> None:
    export(event_hub_batch([PORTS_ASSESSMENT]))
    export(event_hub_batch([PORTS_ASSESSMENT]), retry_count=1)  # the retry policy ran it again, before planning
    assert world.drain(only=("plan",)) == ["plan"]  # one plan job: the redelivery was a duplicate on arrival
    export(event_hub_batch([PORTS_ASSESSMENT]), retry_count=2)  # and again while the request is open

    assert len(world.store.list()) == 1
    assert world.drain() == ["announce", "post"]  # nothing queued for the redeliveries


def test_event_hub_store_failure_raises_so_the_retry_policy_runs_the_batch_again(
        world: FunctionWorld, caplog: pytest.LogCaptureFixture) -> None:
    runtime.configure(Overrides(settings=runtime.settings().__class__(store_url="ftp://nowhere")))
    batch = event_hub_batch([STORAGE_ALERT, PORTS_ASSESSMENT], partition="1", first_sequence=500)

    with pytest.raises(Exception, match="ftp"):
        export(batch, retry_count=3)
    assert not [r for r in caplog.records if r.levelname == "CRITICAL"]
    with pytest.raises(Exception, match="ftp"):
        export(batch, retry_count=8)  # the policy's last try

    (critical,) = [r.getMessage() for r in caplog.records if r.levelname == "CRITICAL"]
    assert "partition 1, sequence 500-501" in critical
    assert "replay" in critical


def test_event_hub_event_built_by_hand(world: FunctionWorld) -> None:
    event = func.EventHubEvent(body=PORTS_ASSESSMENT, sequence_number=7, offset="42")

    export([event])
    world.drain(only=("plan",))

    assert _remediations(world) == {"nsg-close-management-ports": "pending_approval"}


# -- Event Grid: Azure Policy → Slack approval → queue → applied under PIM ----------------------------


def test_policy_event_to_applied_fix_under_a_grant_scoped_to_the_registry(world: FunctionWorld) -> None:
    user_function("policy_events")(_policy_event())
    assert world.drain(only=("plan",)) == ["plan"]
    (rem,) = world.store.list()
    assert (rem.playbook, rem.state, rem.resource_id.lower()) == ("acr-disable-admin-user", "pending_approval",
                                                                  REGISTRY.lower())

    assert world.drain() == ["announce", "post"]
    ref = world.rem(rem.id).message
    assert ref["channel"] == CHANNEL
    assert world.slack.message(CHANNEL, ref["ts"]) is not None

    click = world.slack.block_actions(action_id=blocks.ACTION_APPROVE, value=rem.id, user_id=MEMBERS[0],
                                      channel=CHANNEL, message_ts=ref["ts"])
    arm_calls = len(world.arm.requests)
    answer = world.slack_request(click)
    assert answer.status_code == 200
    assert world.rem(rem.id).state == "approved"
    assert len(world.arm.requests) == arm_calls  # the click touched no ARM: it recorded and enqueued
    assert world.store.dequeue(visibility_seconds=0) is not None  # the apply waits on the queue

    world.drain()

    assert world.rem(rem.id).state == "applied"
    registry = world.arm.get(REGISTRY)
    assert registry is not None
    assert registry["properties"]["adminUserEnabled"] is False
    grants = world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)
    assert _scoped(grants) == [(REGISTRY.lower(), ACR_ROLE)]  # one grant: that registry, that role
    events = world.events(rem.id)
    assert events.index("elevated") < events.index("change_applied") < events.index("applied")
    replies = world.slack.replies(CHANNEL, ref["ts"])
    assert any("Applied and verified" in str(r.get("text")) for r in replies)


def test_event_grid_event_that_is_not_a_finding_is_ignored(world: FunctionWorld) -> None:
    event = func.EventGridEvent(id="e-1", data={"url": "https://x.blob.core.windows.net/c/b"}, topic="/t",
                                subject="/blobServices/default/containers/c/blobs/b",
                                event_type="Microsoft.Storage.BlobCreated", event_time=None, data_version="1")

    user_function("policy_events")(event)

    assert world.store.list() == []
    assert "payload_rejected" not in world.events()


def test_malformed_policy_event_is_recorded_not_redelivered(world: FunctionWorld) -> None:
    event = func.EventGridEvent(id="e-2", data={"complianceState": "NonCompliant"}, topic="/t", subject=REGISTRY,
                                event_type="Microsoft.PolicyInsights.PolicyStateChanged", event_time=None,
                                data_version="1")

    user_function("policy_events")(event)  # returns: Event Grid does not redeliver it

    (rejected,) = [e for e in world.store.audit_log() if e.event == "payload_rejected"]
    assert rejected.detail["position"] == "event e-2"
    assert "policyDefinitionId" in rejected.detail["reason"]


# -- HTTP: the Logic App workflow automation ---------------------------------------------------------------


def test_logic_app_body_is_stored_and_answered_202(world: FunctionWorld) -> None:
    response = user_function("workflow_automation")(http_request("POST", "findings", STORAGE_ALERT,
                                                                 {"content-type": "application/json"}))

    assert response.status_code == 202
    assert json.loads(response.get_body()) == {"records": 1, "results": {"queued": 1}}
    assert response.mimetype == "application/json"
    assert world.arm.requests == []  # 202 after storing and enqueueing; planning and applying are the worker's
    assert world.drain(only=("plan",)) == ["plan"]
    assert _remediations(world) == {"storage-disable-public-blob-access": "approved"}
    assert world.arm.resource_writes == []


def test_logic_app_bad_payload_is_400_with_one_line(world: FunctionWorld) -> None:
    response = user_function("workflow_automation")(http_request("POST", "findings", b'{"hello": "world"}'))

    assert response.status_code == 400
    error = json.loads(response.get_body())["error"]
    assert "\n" not in error
    assert error.startswith("request body")
    assert world.store.list() == []


def test_logic_app_store_failure_is_503_so_the_logic_app_retries(world: FunctionWorld) -> None:
    runtime.configure(Overrides(settings=runtime.settings().__class__(store_url="ftp://nowhere")))

    response = user_function("workflow_automation")(http_request("POST", "findings", STORAGE_ALERT))

    assert response.status_code == 503
    assert "retry" in json.loads(response.get_body())["error"]


# -- Slack ------------------------------------------------------------------------------------------------


def test_signed_slash_command_is_answered(world: FunctionWorld) -> None:
    request = world.slack.slash_command(command="/remediate", text="help", user_id=MEMBERS[0])

    response = world.slack_request(request)

    assert response.status_code == 200
    assert "/remediate" in response.get_body().decode()
    assert response.charset == "utf-8"


def test_the_workspace_is_learned_from_auth_test_and_others_are_refused(
        world: FunctionWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without REMEDIATOR_SLACK_TEAM_ID the Slack route asks auth.test which workspace it serves; a
    correctly signed command from another workspace is refused, one from its own answered."""
    monkeypatch.delenv("REMEDIATOR_SLACK_TEAM_ID")
    runtime.configure(Overrides(executor=world.arm.clients(principal_id=DEMO_EXECUTOR), clock=world.clock))
    evil = world.slack.slash_command(command="/remediate", text="list", user_id="U0EVIL00001", team_id="TEVIL00001")
    assert "Only members of this workspace can do this" in world.slack_request(evil).get_body().decode()
    assert [c.method for c in world.slack.calls] == ["auth.test"]
    home = world.slack.slash_command(command="/remediate", text="list", user_id=MEMBERS[0])
    assert "waiting for approval" in world.slack_request(home).get_body().decode()
    assert runtime.settings().slack_team_id == world.slack.team_id  # the engine's own check has it too


def test_a_team_id_that_disagrees_with_auth_test_keeps_the_slack_route_closed(
        world: FunctionWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_SLACK_TEAM_ID", "T0OTHER0001")
    runtime.configure(Overrides(executor=world.arm.clients(principal_id=DEMO_EXECUTOR), clock=world.clock))
    request = world.slack.slash_command(command="/remediate", text="list", user_id=MEMBERS[0], team_id="T0OTHER0001")
    response = world.slack_request(request)
    assert response.status_code == 503
    assert "slack_app" not in runtime.built()  # not cached: the next request asks again


def test_unsigned_or_forged_slack_request_is_refused(world: FunctionWorld) -> None:
    forged = world.slack.slash_command(command="/remediate", text="pause", user_id=MEMBERS[0], secret="not-the-secret")

    response = world.slack_request(forged)

    assert response.status_code == 401
    assert world.store.get_flag(PAUSE_FLAG) is None


def test_incoming_bolt_marker_headers_are_stripped(world: FunctionWorld) -> None:
    request = world.slack.slash_command(command="/remediate", text="help", user_id=MEMBERS[0])
    marked = request.with_headers(x_slack_bolt_lazy_only="1", x_slack_bolt_lazy_function_name="anything")

    response = world.slack_request(marked)

    assert response.status_code == 200  # processed as a normal request, not refused as a lazy re-run


def test_oversized_slack_body_is_refused_unread(world: FunctionWorld) -> None:
    req = http_request("POST", "slack/events", b"x" * (1024 * 1024 + 1))

    response = user_function("slack_events")(req)

    assert response.status_code == 413
    assert "slack_app" not in runtime.built()


# -- Queue: the worker, retries and poison ------------------------------------------------------------------


def test_queue_message_applies_the_auto_fix_under_a_grant_scoped_to_the_account(world: FunctionWorld) -> None:
    user_function("workflow_automation")(http_request("POST", "findings", STORAGE_ALERT))

    world.drain()

    (rem,) = world.store.list()
    assert rem.state == "applied"
    account = world.arm.get(CONTOSOWEB)
    assert account is not None
    assert account["properties"]["allowBlobPublicAccess"] is False
    container = CONTOSOWEB + "/blobServices/default/containers/public-assets"
    grants = world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)
    assert sorted(_scoped(grants)) == [(CONTOSOWEB.lower(), STORAGE_ROLE), (container.lower(), STORAGE_ROLE)]
    assert world.arm.pim_grants(DEMO_EXECUTOR) == []  # released after the write


def test_base64_message_body_is_decoded_too(world: FunctionWorld) -> None:
    user_function("workflow_automation")(http_request("POST", "findings", STORAGE_ALERT))
    job = world.take("apply")

    world.deliver(job, base64_body=True)

    assert world.store.list()[0].state == "applied"


def test_last_delivery_ends_the_remediation_failed_with_the_reason(world: FunctionWorld) -> None:
    user_function("workflow_automation")(http_request("POST", "findings", STORAGE_ALERT))
    job = world.take("apply")

    world.deliver(job, dequeue_count=6)  # host.json maxDequeueCount: the host's last delivery

    rem = world.store.list()[0]
    assert rem.state == "failed"
    assert rem.error is not None
    assert "gave up after 6 deliveries of the apply job" in rem.error
    assert world.arm.resource_writes == []


def test_poison_queue_message_ends_the_remediation_failed(world: FunctionWorld) -> None:
    user_function("workflow_automation")(http_request("POST", "findings", STORAGE_ALERT))
    job = world.take("apply")

    user_function("jobs_poison")(queue_message(json.dumps({"kind": job.kind, "payload": dict(job.payload)})))

    rem = world.store.list()[0]
    assert rem.state == "failed"
    assert "deliveries" in (rem.error or "")
    assert world.arm.resource_writes == []


def test_message_that_is_not_a_job_is_quarantined_and_audited(world: FunctionWorld) -> None:
    user_function("jobs")(queue_message("this is not a job", message_id="m-junk"))
    user_function("jobs")(queue_message(base64.b64encode(b"[1, 2]").decode(), message_id="m-list"))

    kept = [(q.source, q.key) for q in world.store.quarantined()]
    assert kept == [("job", "m-junk"), ("job", "m-list")]
    audited = [e.detail["key"] for e in world.store.audit_log() if e.event == "quarantined"]
    assert audited == ["m-junk", "m-list"]


def test_a_failing_job_raises_so_the_host_redelivers_it(world: FunctionWorld) -> None:
    bad = Job(kind="post", payload={}, id="m-bad")  # a payload its kind cannot read
    with pytest.raises(ValueError, match="remediation_id"):
        world.deliver(bad)  # the host makes it visible again, until it is poison


def test_a_slack_failure_completes_the_job_and_the_request_is_posted_later(world: FunctionWorld) -> None:
    user_function("workflow_automation")(http_request("POST", "findings", PORTS_ASSESSMENT))
    job = world.take("post")
    world.slack.fail("chat.postMessage", "channel_not_found")

    world.deliver(job)  # no exception: the delivery is not burnt; the request stays unannounced
    (rem,) = world.store.list()
    assert not rem.announced
    assert rem.posting["error"] == "Slack chat.postMessage answered channel_not_found"
    world.clock.advance(seconds=10)  # past the backoff: the sweep's announce (or a redelivery) offers it again
    world.deliver(job, dequeue_count=2)

    assert world.store.list()[0].message["channel"] == CHANNEL


def test_unknown_job_kind_is_dropped_by_the_engine(world: FunctionWorld) -> None:
    user_function("jobs")(func.QueueMessage(id="m-2", body=b'{"kind": "defrag", "payload": {}}'))

    assert "job_dropped" in world.events()


# -- Timer ---------------------------------------------------------------------------------------------------


def test_timer_sweeps_expired_requests(world: FunctionWorld) -> None:
    user_function("policy_events")(_policy_event())
    world.drain()
    (rem,) = world.store.list()
    world.clock.advance(days=2)  # acr-disable-admin-user: expires_after 1d

    user_function("sweep")(TimerRequest(past_due=True))

    assert world.rem(rem.id).state == "expired"
    world.drain()
    replies = world.slack.replies(CHANNEL, world.rem(rem.id).message["ts"])
    assert any("Expired" in str(r.get("text")) for r in replies)


# -- Health ---------------------------------------------------------------------------------------------------


def test_health_reports_version_store_and_pause(world: FunctionWorld) -> None:
    health = user_function("health")

    first = health(http_request("GET", "health"))
    world.store.set_flag(PAUSE_FLAG, "U0ADMIN0001 2026-11-25T12:00:00+00:00")
    second = health(http_request("GET", "health"))

    assert first.status_code == 200
    assert json.loads(first.get_body()) == {"ok": True, "version": "0.1.0", "store": "ok", "paused": False}
    assert json.loads(second.get_body())["paused"] is True
    assert runtime.built() == {"settings", "store"}  # no engine, no Slack, no ARM


def test_health_without_a_store_is_503_without_details(world: FunctionWorld) -> None:
    runtime.configure(Overrides(settings=runtime.settings().__class__(store_url="ftp://nowhere")))

    response = user_function("health")(http_request("GET", "health"))

    assert response.status_code == 503
    assert json.loads(response.get_body()) == {"ok": False, "version": "0.1.0", "store": "unreachable",
                                               "paused": None}


def test_samples_used_here_parse() -> None:
    assert len(parse_file(SAMPLES / "01-storage-open-container-alert.json")) == 1

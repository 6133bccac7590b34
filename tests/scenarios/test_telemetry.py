"""One trace per remediation, from ingest to verify, and the metrics; recorded by the OpenTelemetry
SDK's in-memory exporters (InMemorySpanExporter, InMemoryMetricReader).

The story: Defender reports a storage account whose network is open (a Slack playbook); the
worker plans it; a security engineer approves it from Slack, which is another process: here a
second engine on a second connection to the same store file, so the trace can only continue
through the context stored with the remediation; the worker (a third engine) elevates through PIM
on FakeArm, applies, verifies. Every span shares one trace id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from remediator import telemetry
from remediator.azure.pace import DEFAULT_RETRY_AFTER
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.model import Remediation
from remediator.privilege.elevation import PimAssignElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.clock import VirtualTime
from tests.support.engine import (
    MEMBERS,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    network_assessment,
    sample_state,
    storage_account,
)

EXECUTOR = "5f0c2a4e-8b1d-4e3f-a6c7-0d9e8f7a6b5c"
BROKER = "6a1d3b5f-9c2e-4f40-b7d8-1e0f9a8b7c6d"


class Recorded:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        tracer = TracerProvider()
        tracer.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer, self.meter = tracer, MeterProvider(metric_readers=[self.metrics])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
                for p in m.data.data_points]


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    rec = Recorded()
    previous = telemetry.install(telemetry.OtelTelemetry(tracer_provider=rec.tracer, meter_provider=rec.meter))
    try:
        yield rec
    finally:
        telemetry.install(previous)
        rec.tracer.shutdown()
        rec.meter.shutdown()


def engine(arm: FakeArm, path: Path, clock: FakeClock, settings: Settings) -> tuple[Engine, SQLiteStore]:
    """One process's engine: its own store connection, clients and elevator."""
    store = SQLiteStore(path, clock=clock)
    clients = arm.clients(principal_id=EXECUTOR)
    elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXECUTOR,
                                 poll_interval=0.01, poll_timeout=1.0, sleep=lambda _s: None)
    return Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients), clients=clients,
                  elevator=elevator, chat=RecordingChat(), directory=StaticDirectory({ONCALL: MEMBERS}),
                  clock=clock), store


def test_one_trace_spans_ingest_plan_approval_elevation_apply_and_verify(tmp_path: Path, recorded: Recorded) -> None:
    account = storage_account("stopen01", networkAcls={"defaultAction": "Allow", "bypass": "AzureServices"})
    clock = FakeClock()
    settings = Settings(approver_roles=ROLES, slack_team_id=TEAM, executor_principal_id=EXECUTOR,
                        elevation="pim-assign", slack_channel="C0REMEDIATE")
    db = tmp_path / "remediator.db"
    with FakeArm() as arm:
        arm.load(sample_state())
        arm.load([account])
        arm.enforce_grants(EXECUTOR)
        ingest, ingest_store = engine(arm, db, clock, settings)
        [received] = ingest.ingest([network_assessment(account["id"])])
        assert received.outcome == "queued"
        ingest.work()  # the plan job
        [rem] = ingest_store.list(states=("pending_approval",))
        assert rem.trace_context is not None
        ingest_store.close()

        slack, slack_store = engine(arm, db, clock, settings)  # the Slack handler's process
        clock.advance(minutes=7)
        decision = slack.approve(rem.id, Actor(user_id=MEMBERS[0], team_id=TEAM, enterprise_id=None, name="lead"))
        assert decision.ok, decision.message
        slack_store.close()

        worker, worker_store = engine(arm, db, clock, settings)  # the queue worker's process
        worker.work()
        done = worker_store.get(rem.id)
        assert done is not None
        assert done.state == "applied", done.error
        worker_store.close()

    spans = recorded.finished()
    names = [s.name for s in spans]
    for stage in ("remediator.ingest", "remediator.plan", "remediator.approval", "remediator.elevation",
                  "remediator.apply", "remediator.verify"):
        assert stage in names, names
    traces = {s.context.trace_id for s in spans if s.name.startswith("remediator.")}
    assert len(traces) == 1  # one trace, across three engines that share only the store
    root = next(s for s in spans if s.name == "remediator.ingest")
    assert root.parent is None
    assert all(s.parent is not None for s in spans if s is not root and s.name.startswith("remediator."))
    _check_attributes(spans, done)
    apply_span = next(s for s in spans if s.name == "remediator.apply")
    for child in ("remediator.elevation", "remediator.verify"):
        span = next(s for s in spans if s.name == child)
        assert span.parent is not None
        assert span.parent.span_id == apply_span.context.span_id

    ingested = recorded.points("remediator.findings.ingested")
    assert [(p.attributes["finding.kind"], p.attributes["outcome"], p.value) for p in ingested] == \
        [("recommendation", "queued", 1)]
    outcomes = recorded.points("remediator.remediations")
    assert [(p.attributes["outcome"], p.value) for p in outcomes] == [("applied", 1)]
    [wait] = recorded.points("remediator.approval.wait")
    assert wait.sum == pytest.approx(7 * 60)
    [ttr] = recorded.points("remediator.remediation.duration")
    assert ttr.count == 1
    assert ttr.sum == pytest.approx(7 * 60)
    [pim] = recorded.points("remediator.pim.grant.duration")
    assert (pim.attributes["strategy"], pim.attributes["outcome"], pim.count) == ("pim-assign", "granted", 1)


def _check_attributes(spans: list[ReadableSpan], rem: Remediation) -> None:
    for name in ("remediator.approval", "remediator.apply", "remediator.elevation", "remediator.verify"):
        span = next(s for s in spans if s.name == name)
        attrs = span.attributes or {}
        assert attrs.get("remediation.id") == rem.id, name
        assert attrs.get("remediation.playbook") == rem.playbook == "storage-restrict-network-access", name
        assert str(attrs.get("remediation.resource")).lower() == rem.resource_id.lower(), name
    plan = next(s for s in spans if s.name == "remediator.plan")
    assert (plan.attributes or {}).get("remediation.id") == rem.id


def test_arm_429s_are_counted(tmp_path: Path, recorded: Recorded) -> None:
    account = storage_account("stthrottled1")
    vt = VirtualTime()  # a 429 without Retry-After waits the pace's default, on this clock
    with FakeArm(clock=vt.monotonic) as arm:
        arm.load([account])
        arm.fail_next("GET", "stthrottled1", 429, times=2)
        clients = arm.clients(retry_total=3, retry_backoff_factor=0.0, clock=vt.monotonic, sleep=vt.sleep)
        assert LiveState(clients).get(account["id"]) is not None
    [throttled] = recorded.points("remediator.arm.throttled")
    assert throttled.value == 2
    assert vt.slept == [DEFAULT_RETRY_AFTER, DEFAULT_RETRY_AFTER]


def test_off_by_default_and_without_a_connection_string() -> None:
    assert telemetry.current() is telemetry.NOOP or not telemetry.current().enabled
    assert telemetry.configure_from_env({}) is telemetry.current()
    with telemetry.NOOP.span("x", parent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") as span:
        assert span.traceparent is None


def test_configured_from_the_connection_string_and_imported_only_then() -> None:
    """In a fresh interpreter: without the setting nothing from OpenTelemetry is imported; with it
    (pointing at a closed local port) azure-monitor-opentelemetry is configured and telemetry is on."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import sys, remediator.telemetry as t, remediator.lifecycle.engine, remediator.lifecycle.worker\n"
        "t.configure_from_env({})\n"
        "assert not t.current().enabled\n"
        "assert not [m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor'))], 'imported'\n"
        "cs = 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/'\n"
        "tel = t.configure_from_env({'APPLICATIONINSIGHTS_CONNECTION_STRING': cs})\n"
        "assert tel.enabled and t.current() is tel\n"
        "assert t.configure_from_env({'APPLICATIONINSIGHTS_CONNECTION_STRING': cs}) is tel  # once\n"
        "with tel.span('remediator.ingest') as s:\n"
        "    assert s.traceparent and s.traceparent.startswith('00-')\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OTEL_METRIC_EXPORT_INTERVAL": "600000",
           "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true"}
    env.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")

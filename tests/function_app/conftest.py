"""A deployed function app in miniature: the real functions, wired through the real runtime.

Settings come from environment variables (as app settings reach the worker) that point at local
stand-ins: a SQLite store in a temporary folder, FakeArm (ARM and PIM over real HTTP, enforcing
that the executor writes only under a grant) and FakeSlack (the Web API, and signed requests).
The runtime receives only what an environment cannot carry: the executor's and the broker's
``ArmClients`` for FakeArm (their tokens name the caller), the engine's clock and the Slack
pacer's virtual time (its one-second spacing is kept on the clock, not waited for). Inputs are
built with azure.functions' own types and converters, the way the worker builds them from the
host's data.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions._abc import RetryContext
from azure.functions.eventhub import EventHubTriggerConverter
from azure.functions.queue import QueueMessageInConverter

import functions_entry
from function_app.runtime import Overrides, runtime
from remediator.app.demo import DEMO_EXECUTOR
from remediator.lifecycle.model import Job, Remediation
from remediator.lifecycle.store import Store
from remediator.store import SQLiteStore, codec
from remediator.testing import FakeArm
from remediator.testing.fake_slack import FakeSlack, SignedRequest
from tests.support.clock import VirtualTime
from tests.support.engine import ADMIN, MEMBERS, ONCALL, ROLES_ENV, TEAM, FakeClock, sample_state

BROKER = "9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
CHANNEL = "C0REMEDIATE"
SETTING_PREFIXES = ("REMEDIATOR_", "SLACK_", "EVENTHUB_", "JOBS_QUEUE", "SWEEP_SCHEDULE", "RECONCILE_SCHEDULE",
                    "AZURE_CLIENT_ID")


@functools.cache
def _indexed() -> dict[str, Any]:
    # ``get_functions`` may run once per app object (it records the names it has seen), as in the worker
    return {str(fn.get_function_name()): fn.get_user_function() for fn in functions_entry.app.get_functions()}


def user_function(name: str) -> Any:
    """The user function of an indexed function, as the worker invokes it."""
    return _indexed()[name]


def queue_message(body: str | bytes, *, message_id: str = "m-1", dequeue_count: int = 1) -> func.QueueMessage:
    """A queue message as the worker decodes it (``QueueMessageInConverter``) from the host's data."""
    datum = meta.Datum(body, "bytes" if isinstance(body, bytes) else "string")
    metadata = {
        "Id": meta.Datum(message_id, "string"),
        "DequeueCount": meta.Datum(dequeue_count, "int"),
        "PopReceipt": meta.Datum("receipt-" + message_id, "string"),
        "InsertionTime": meta.Datum("2026-11-25T12:00:00+00:00", "string"),
    }
    message: func.QueueMessage = QueueMessageInConverter.decode(datum, trigger_metadata=metadata)
    return message


def job_body(job: Job) -> str:
    """The JSON an ``AzureStore`` message carries once the host has undone its base64."""
    return json.dumps({"kind": job.kind, "payload": dict(job.payload)})


def event_hub_batch(bodies: Sequence[bytes], *, partition: str = "3", first_sequence: int = 100) -> list[Any]:
    """A cardinality-many batch as the worker decodes it (``EventHubTriggerConverter``)."""
    props = [{"SequenceNumber": first_sequence + i, "Offset": str(4_294_967_296 + 512 * i),
              "EnqueuedTimeUtc": "2026-11-25T11:59:00Z", "PartitionKey": None} for i in range(len(bodies))]
    metadata = {
        "SystemPropertiesArray": meta.Datum(json.dumps(props), "json"),
        "PartitionContext": meta.Datum(json.dumps({"PartitionId": partition, "EventHubName": "defender-export",
                                                   "ConsumerGroup": "remediator"}), "json"),
    }
    batch = EventHubTriggerConverter.decode(meta.Datum(types.SimpleNamespace(bytes=list(bodies)), "collection_bytes"),
                                            trigger_metadata=metadata)
    assert isinstance(batch, list)
    return batch


class _Retry(RetryContext):
    def __init__(self, count: int, maximum: int) -> None:
        self._count, self._maximum = count, maximum

    @property
    def retry_count(self) -> int:
        return self._count

    @property
    def max_retry_count(self) -> int:
        return self._maximum

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """What the worker passes as ``context`` (its own implementation of the library's ABC)."""

    def __init__(self, function_name: str, *, retry_count: int = 0, max_retry_count: int = 8) -> None:
        self._name = function_name
        self._retry = _Retry(retry_count, max_retry_count)

    @property
    def invocation_id(self) -> str:
        return "00000000-0000-4000-8000-000000000001"

    @property
    def thread_local_storage(self) -> Any:
        return threading.local()

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return str(Path(functions_entry.__file__).parent)

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> RetryContext:
        return self._retry


def export(batch: Sequence[Any], *, retry_count: int = 0) -> None:
    """Run ``defender_export`` on a batch, as try ``retry_count`` of its retry policy."""
    user_function("defender_export")(batch, InvocationContext("defender_export", retry_count=retry_count))


def http_request(method: str, route: str, body: bytes = b"", headers: Mapping[str, str] | None = None,
                 params: Mapping[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method=method, url=f"https://remediator.example/api/{route}", headers=dict(headers or {}),
                            params=dict(params or {}), route_params={}, body=body)


@dataclass
class FunctionWorld:
    arm: FakeArm
    slack: FakeSlack
    clock: FakeClock
    tmp: Path
    time: VirtualTime  # the pacer's monotonic time

    @property
    def store(self) -> Store:
        return runtime.store()

    def rem(self, remediation_id: str) -> Remediation:
        rem = self.store.get(remediation_id)
        assert rem is not None
        return rem

    def events(self, remediation_id: str | None = None) -> list[str]:
        return [e.event for e in self.store.audit_log(remediation_id)]

    def deliver(self, job: Job, *, dequeue_count: int = 1, base64_body: bool = False) -> None:
        """Hand one job to the queue function as the host would (the host deletes it on success)."""
        body = job_body(job)
        text = base64.b64encode(body.encode()).decode() if base64_body else body
        user_function("jobs")(queue_message(text, message_id=job.id or "m", dequeue_count=dequeue_count))

    def drain(self, limit: int = 100, *, only: tuple[str, ...] | None = None) -> list[str]:
        """Run every queued job through the queue function (what the host does); the kinds run.
        With ``only``, stop at the first visible job of another kind (it stays queued)."""
        kinds: list[str] = []
        for _ in range(limit):
            if only is not None and self.next_kind() not in only:
                return kinds
            job = self.store.dequeue(visibility_seconds=300)
            if job is None:
                return kinds
            self.deliver(job, dequeue_count=job.dequeue_count)
            self.store.complete(job)
            kinds.append(job.kind)
        raise AssertionError(f"more than {limit} jobs: {kinds[-10:]}")

    def next_kind(self) -> str | None:
        """The kind of the job the next dequeue would deliver (read without dequeuing it)."""
        store = self.store
        assert isinstance(store, SQLiteStore)
        row = store._connection().execute(
            "SELECT kind FROM jobs WHERE visible_us <= ? ORDER BY visible_us, seq LIMIT 1",
            (codec.to_micros(self.clock()),)).fetchone()
        return None if row is None else str(row[0])

    def take(self, kind: str) -> Job:
        """Run the jobs before the first ``kind`` job through the queue function; dequeue that one."""
        self.drain(only=tuple(k for k in ("plan", "announce", "post", "post_digest", "update", "reply", "apply",
                                          "resume") if k != kind))
        job = self.store.dequeue(visibility_seconds=300)
        assert job is not None, f"no {kind} job"
        assert job.kind == kind, job
        return job

    def slack_request(self, request: SignedRequest) -> func.HttpResponse:
        req = http_request("POST", "slack/events", request.body.encode(), request.headers)
        response: func.HttpResponse = user_function("slack_events")(req)
        return response


def settings_env(*, arm: FakeArm, slack: FakeSlack, tmp: Path) -> dict[str, str]:
    return {
        "REMEDIATOR_STORE_URL": f"sqlite:///{tmp / 'remediator.db'}",
        "REMEDIATOR_ARM_ENDPOINT": arm.base_url,
        "REMEDIATOR_ELEVATION": "pim-assign",
        "REMEDIATOR_EXECUTOR_PRINCIPAL_ID": DEMO_EXECUTOR,
        "REMEDIATOR_BROKER_CLIENT_ID": BROKER,
        "REMEDIATOR_PIM_DURATION": "5m",
        "REMEDIATOR_PLAYBOOKS_DIR": "playbooks",  # relative: resolved against the app root
        "REMEDIATOR_SLACK_API_URL": slack.base_url,
        "REMEDIATOR_SLACK_CHANNEL": CHANNEL,
        "REMEDIATOR_SLACK_TEAM_ID": TEAM,
        "REMEDIATOR_ADMINS": ADMIN,
        "REMEDIATOR_APPROVER_ROLES": ROLES_ENV,
        "REMEDIATOR_MAX_DELIVERIES": "5",
        "REMEDIATOR_GROUP_WAIT": "0s",  # one delivery is the whole storm here
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "JOBS_QUEUE": "remediator-jobs",
        "SWEEP_SCHEDULE": "0 */5 * * * *",
        "RECONCILE_SCHEDULE": "0 0 3 * * *",
    }


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FunctionWorld]:
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    clock = FakeClock()
    vt = VirtualTime()  # the Slack pacer's: one message a second per channel, on this clock
    with FakeArm() as arm, FakeSlack(team_id=TEAM, groups={ONCALL: MEMBERS}) as slack:
        arm.load(sample_state())
        arm.enforce_grants(DEMO_EXECUTOR)  # every write by the executor needs a PIM grant covering it
        for name, value in settings_env(arm=arm, slack=slack, tmp=tmp_path).items():
            monkeypatch.setenv(name, value)
        runtime.configure(Overrides(executor=arm.clients(principal_id=DEMO_EXECUTOR),
                                    broker=arm.clients(principal_id=BROKER), clock=clock,
                                    monotonic=vt.monotonic, sleep=vt.sleep))
        try:
            yield FunctionWorld(arm=arm, slack=slack, clock=clock, tmp=tmp_path, time=vt)
        finally:
            runtime.configure(None)

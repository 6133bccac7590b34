"""The apply worker: one queue message is one ``Job`` for ``engine.handle``.

Messages are what ``AzureStore.enqueue`` writes: ``{"kind", "payload"}`` JSON, base64-encoded
(``TextBase64EncodePolicy``), which the host decodes (host.json ``messageEncoding: base64``). The
decoder also accepts a body that is still base64 text, so a mismatch between the store's and the
host's encoding settings costs nothing.

Retries and poison, in cooperation with the engine (``remediator.lifecycle.worker.Worker.handle``):

* a handler that raises leaves the message to the host, which makes it visible again after
  host.json's ``visibilityTimeout`` and delivers it again;
* host.json's ``maxDequeueCount`` is ``REMEDIATOR_MAX_DELIVERIES`` + 1 (6 and 5, checked by a
  test), so the last delivery reaches the engine with ``dequeue_count`` above its limit: the engine
  does not run the job again but ends its remediation ``failed`` with the reason ("gave up after
  6 deliveries of the apply job …"), or audits a dropped chat job, and the message completes;
* should even that delivery fail (the store unreachable), the host moves the message to
  ``<queue>-poison``; ``jobs_poison`` hands it to the engine as over the limit, with the same
  result. A remediation whose apply job vanished altogether is re-enqueued by the sweep.

A message that is not a job at all (not JSON, no ``kind``) is logged, audited as ``job_dropped``
and completed: delivering it again cannot help.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import azure.functions as func

from function_app.runtime import runtime
from function_app.settings import JOBS_QUEUE, POISON_SUFFIX, STORAGE_CONNECTION, URGENT_SUFFIX

if TYPE_CHECKING:
    from remediator.lifecycle.model import Job

log = logging.getLogger("function_app.worker")

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@bp.function_name("jobs")
@bp.queue_trigger(arg_name="msg", queue_name=f"%{JOBS_QUEUE}%", connection=STORAGE_CONNECTION)
def jobs(msg: func.QueueMessage) -> None:
    job = job_from_message(msg)
    if job is not None:
        runtime.engine().handle(job)


@bp.function_name("jobs_urgent")
@bp.queue_trigger(arg_name="msg", queue_name=f"%{JOBS_QUEUE}%{URGENT_SUFFIX}", connection=STORAGE_CONNECTION)
def jobs_urgent(msg: func.QueueMessage) -> None:
    """The urgent lane (work a person is waiting on: approved applies, their message updates), a trigger of
    its own so that the host polls it beside the backlog instead of behind it."""
    job = job_from_message(msg, urgent=True)
    if job is not None:
        runtime.engine().handle(job)


@bp.function_name("jobs_poison")
@bp.queue_trigger(arg_name="msg", queue_name=f"%{JOBS_QUEUE}%{POISON_SUFFIX}", connection=STORAGE_CONNECTION)
def jobs_poison(msg: func.QueueMessage) -> None:
    _poison(job_from_message(msg))


@bp.function_name("jobs_urgent_poison")
@bp.queue_trigger(arg_name="msg", queue_name=f"%{JOBS_QUEUE}%{URGENT_SUFFIX}{POISON_SUFFIX}",
                  connection=STORAGE_CONNECTION)
def jobs_urgent_poison(msg: func.QueueMessage) -> None:
    _poison(job_from_message(msg, urgent=True))


def _poison(job: Job | None) -> None:
    """A message the host gave up on: handed to the engine as over the delivery limit, which ends it."""
    if job is None:
        return
    engine = runtime.engine()
    limit = engine.settings.max_deliveries
    log.error("job %s (%s) reached the poison queue; ending it", job.id, job.kind)
    engine.handle(replace(job, dequeue_count=max(job.dequeue_count, limit + 1)))


def job_from_message(msg: func.QueueMessage, *, urgent: bool = False) -> Job | None:
    """The ``Job`` in a queue message, or None (logged and audited) when it holds none."""
    from remediator.lifecycle.model import Job  # noqa: PLC0415 (cold start)

    raw = msg.get_body()
    doc = _json_object(raw)
    if doc is None:
        doc = _json_object(_unbase64(raw))
    kind = doc.get("kind") if doc is not None else None
    payload = doc.get("payload", {}) if doc is not None else None
    if not isinstance(kind, str) or not kind or not isinstance(payload, dict):
        _drop(msg, raw)
        return None
    count = getattr(msg, "dequeue_count", None)  # set on the messages the host delivers
    return Job(kind=kind, payload=payload, id=msg.id or "", receipt=msg.pop_receipt or "",
               dequeue_count=int(count) if count else 1, urgent=urgent)


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _unbase64(raw: bytes) -> bytes | None:
    try:
        return base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _drop(msg: func.QueueMessage, raw: bytes) -> None:
    """A message that is not a job: its text goes to the store's quarantine (audited there as
    ``quarantined``); the host then deletes the message, as for a handled one."""
    head = raw[:200].decode("utf-8", "replace")
    log.error("quarantining queue message %s: not a job (expected {\"kind\", \"payload\"} JSON): %r", msg.id, head)
    try:
        runtime.store().quarantine(source="job", key=msg.id or "", raw=raw.decode("utf-8", "replace"),
                                   error='not a job: expected {"kind", "payload"} JSON, or base64 of it')
    except Exception:
        log.exception("could not quarantine the message %s", msg.id)

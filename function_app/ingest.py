"""Findings in: Defender continuous export (Event Hub), Azure Policy state events (Event Grid), and
the Logic App workflow-automation body (HTTP).

Every path parses with ``remediator.findings.parse`` and hands the records to ``engine.ingest``, which
plans, stores the remediations and enqueues their jobs (posting, applying); nothing here waits for
an apply. Ingest is idempotent (findings have stable ids; an open remediation deduplicates), so a
retried batch creates nothing twice.

Never losing data:

* **Event Hub**: a malformed event is skipped, logged and audited (``payload_rejected``) with its
  partition, sequence number and offset, the length and SHA-256 of its body and its first bytes,
  so it can be found and replayed from the hub; the rest of the batch still ingests. A failure to
  *store* (store or ARM unreachable) raises, and the function's retry policy runs the whole batch
  again (``exponential_backoff``, 8 tries, 5 s to 15 min): Event Hubs checkpoints a batch when the
  function finishes, whether it failed or not, so the retry policy is what keeps a batch. When
  the last retry fails too, the batch's partition and sequence range are logged as CRITICAL so it
  can be replayed while the hub still holds it (7 days in the deployment).
* **Event Grid**: an event that is not a finding (a validation event, a compliant state) is
  ignored; a malformed one is logged and audited and the function returns, so Event Grid does not
  redeliver it; a storage failure raises, and the subscription's retry policy redelivers.
* **HTTP**: 400 with one line for a bad payload (the Logic App should not retry it); 503 when the
  finding could not be stored (the Logic App's retry policy retries 5xx); 202 once stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import typing
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import azure.functions as func

from function_app.runtime import runtime
from function_app.settings import EVENTHUB_CONNECTION, EVENTHUB_CONSUMER_GROUP, EVENTHUB_NAME

log = logging.getLogger("function_app.ingest")

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated

SOURCE_EXPORT = "defender-export"  # remediator.lifecycle.export_watch.EXPORT_ROUTE: its deliveries are "last seen"
SOURCE_POLICY = "policy-event"
SOURCE_LOGIC_APP = "logic-app"
HEAD_BYTES = 512  # of a rejected payload, kept in the audit event


@bp.function_name("defender_export")
@bp.event_hub_message_trigger(arg_name="events", connection=EVENTHUB_CONNECTION,
                              event_hub_name=f"%{EVENTHUB_NAME}%", consumer_group=f"%{EVENTHUB_CONSUMER_GROUP}%",
                              cardinality=func.Cardinality.MANY)
@bp.retry(strategy="exponential_backoff", max_retry_count="8", minimum_interval="00:00:05",
          maximum_interval="00:15:00")
def defender_export(events: typing.List[func.EventHubEvent], context: func.Context) -> None:  # noqa: UP006
    # ``typing.List``, not ``list``: azure-functions 1.26 checks the annotation with a bundled
    # typing_inspect that does not recognise ``list[...]`` and would refuse to load the function.
    from remediator.errors import PayloadError  # noqa: PLC0415 (cold start)
    from remediator.findings.parse import parse_bytes  # noqa: PLC0415

    partition = _partition(events)
    records: list[Any] = []
    rejected = 0
    for event in events:
        where = _position(event, partition)
        body = event.get_body()
        try:
            records.extend(parse_bytes(body, source="event body"))
        except PayloadError as exc:
            rejected += 1
            reject(SOURCE_EXPORT, str(exc), body, position=where)
    try:
        results = runtime.engine().ingest(records, source=SOURCE_EXPORT) if records else []
    except Exception:
        retry = context.retry_context
        if retry is None or retry.retry_count >= retry.max_retry_count:  # the last try: say what to replay
            log.critical("event hub batch NOT ingested, retries exhausted; replay %s from the hub",
                         _span(events, partition))
        raise
    log.info("event hub batch: %d events, %d records, %d malformed; %s", len(events), len(records), rejected,
             _outcomes(results))


@bp.function_name("policy_events")
@bp.event_grid_trigger(arg_name="event")
def policy_events(event: func.EventGridEvent) -> None:
    from remediator.errors import PayloadError  # noqa: PLC0415
    from remediator.findings.parse import parse_value  # noqa: PLC0415

    document = event_grid_document(event)
    try:
        records = parse_value(document, source=f"event grid {event.id}")
    except PayloadError as exc:
        reject(SOURCE_POLICY, str(exc), json.dumps(document, default=str).encode(), position=f"event {event.id}")
        return
    results = runtime.engine().ingest(records, source=SOURCE_POLICY)
    log.info("event grid %s (%s): %s", event.id, event.event_type, _outcomes(results))


@bp.function_name("workflow_automation")
@bp.route(route="findings", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def workflow_automation(req: func.HttpRequest) -> func.HttpResponse:
    from remediator.errors import PayloadError  # noqa: PLC0415
    from remediator.findings.parse import parse_bytes  # noqa: PLC0415

    try:
        records = parse_bytes(req.get_body(), source="request body")
    except PayloadError as exc:
        return json_response(400, {"error": str(exc)})
    try:
        results = runtime.engine().ingest(records, source=SOURCE_LOGIC_APP)
    except Exception:
        log.exception("ingest of a workflow-automation payload failed")
        return json_response(503, {"error": "the finding could not be stored; retry later"})
    return json_response(202, {"records": len(records), "results": _outcomes(results)})


# -- helpers ----------------------------------------------------------------------------------------


def event_grid_document(event: func.EventGridEvent) -> dict[str, Any]:
    """The EventGridSchema document the event arrived as (what ``remediator.findings.parse`` parses)."""
    when = event.event_time
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": when.isoformat() if when is not None else None,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def reject(source: str, reason: str, body: bytes, *, position: str) -> None:
    """Log and audit a payload that is not a finding, with enough to find and replay it."""
    digest = hashlib.sha256(body).hexdigest()
    log.error("%s: skipped a malformed payload (%s, %d bytes, sha256 %s): %s", source, position, len(body), digest,
              reason)
    try:
        from remediator.lifecycle.model import AuditEvent  # noqa: PLC0415

        runtime.store().audit(AuditEvent(remediation_id=None, event="payload_rejected", actor=source,
                                         at=runtime.now(), detail={
                                             "position": position, "reason": reason[:1000], "bytes": len(body),
                                             "sha256": digest,
                                             "head": body[:HEAD_BYTES].decode("utf-8", "replace")}))
    except Exception:  # the log line above already holds everything; do not fail the batch for the audit
        log.exception("%s: could not audit the rejected payload (%s)", source, position)


def json_response(status: int, body: Mapping[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, separators=(",", ":")), status_code=status,
                             mimetype="application/json")


def _partition(events: Sequence[func.EventHubEvent]) -> str | None:
    """The partition id from the batch's trigger metadata (shared by every event of the batch)."""
    try:
        meta = events[0].metadata if events else None
        context = (meta or {}).get("PartitionContext")
        value = context.get("PartitionId") if isinstance(context, Mapping) else None
    except Exception:  # metadata is best effort: a position without it is still useful
        return None
    return str(value) if value is not None else None


def _position(event: func.EventHubEvent, partition: str | None) -> str:
    parts = [f"partition {partition}"] if partition is not None else []
    parts.append(f"sequence {event.sequence_number}")
    parts.append(f"offset {event.offset}")
    if event.enqueued_time is not None:
        parts.append(f"enqueued {event.enqueued_time.isoformat()}")
    return ", ".join(parts)


def _span(events: Sequence[func.EventHubEvent], partition: str | None) -> str:
    """Where a batch sits in the hub: partition, first and last sequence numbers and offsets."""
    if not events:
        return "an empty batch"
    first, last = events[0], events[-1]
    where = f"partition {partition}, " if partition is not None else ""
    return (f"{where}sequence {first.sequence_number}-{last.sequence_number} "
            f"(offset {first.offset}-{last.offset}, {len(events)} events)")


def _outcomes(results: Sequence[Any]) -> dict[str, int]:
    return dict(sorted(Counter(str(getattr(r, "outcome", "accepted")) for r in results).items()))

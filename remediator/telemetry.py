"""OpenTelemetry traces and metrics: on only when configured, a no-op otherwise.

One trace per remediation. Ingest starts it (a ``remediator.ingest`` span per queued finding); the
span's W3C ``traceparent`` rides with the finding through the inbox and is stored with the
remediation (``Remediation.trace_context``), so planning, the approval click (another process, the
Slack handler), elevation, apply and verify (the queue worker) all join the same trace:

``remediator.ingest`` → ``remediator.plan`` → ``remediator.approval`` → ``remediator.apply``
(``remediator.elevation``, ``remediator.verify`` inside it), each with the attributes
``remediation.id``, ``remediation.playbook`` and ``remediation.resource``.

Metrics (names as exported):

==================================== ========= ===========================================
``remediator.findings.ingested``     counter   by ``finding.kind`` and ``outcome``
``remediator.remediations``          counter   final states, by ``outcome`` and ``playbook``
``remediator.approval.wait``         histogram seconds from the request to its approval
``remediator.remediation.duration``  histogram seconds from opening to applied (time to remediate)
``remediator.arm.throttled``         counter   ARM answers 429 (every attempt, retries included)
``remediator.pim.grant.duration``    histogram seconds to obtain a grant, by ``strategy``, ``outcome``
==================================== ========= ===========================================

``configure_from_env`` (the Function app and ``remediator serve`` call it) turns this on when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set: ``azure.monitor.opentelemetry`` is imported and
configured then, and only then, so a cold start without it imports nothing from OpenTelemetry.
Tests install an ``OtelTelemetry`` on the SDK's in-memory exporters (``install``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

log = logging.getLogger("remediator.telemetry")

CONNECTION_STRING_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
NAME = "remediator"


class Span:
    """What a ``span`` block yields: set attributes, mark an error; ``traceparent`` to carry on."""

    traceparent: str | None = None

    def set(self, **attributes: Any) -> None:
        """Add attributes (None values are left out)."""

    def error(self, reason: str) -> None:
        """Mark the span failed, with a one-line reason."""


_NOOP_SPAN = Span()


class _NoopContext(AbstractContextManager[Span]):
    def __enter__(self) -> Span:
        return _NOOP_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


_NOOP_CONTEXT = _NoopContext()


class Telemetry:
    """The no-op default; ``OtelTelemetry`` records. Every method is safe to call at any time."""

    enabled = False

    def span(self, name: str, *, parent: str | None = None, **attributes: Any) -> AbstractContextManager[Span]:
        """A span named ``name``, child of the W3C ``parent`` traceparent when given (else of the
        current span, or a new trace). The no-op one is a shared, stateless context manager."""
        return _NOOP_CONTEXT

    def finding_ingested(self, kind: str, outcome: str) -> None: ...

    def remediation_ended(self, outcome: str, playbook: str) -> None: ...

    def approval_wait(self, seconds: float, playbook: str) -> None: ...

    def time_to_remediate(self, seconds: float, playbook: str) -> None: ...

    def arm_throttled(self, method: str) -> None: ...

    def pim_grant(self, seconds: float, strategy: str, outcome: str) -> None: ...


NOOP = Telemetry()
_current: Telemetry = NOOP
_configure_lock = threading.Lock()


def current() -> Telemetry:
    return _current


def install(telemetry: Telemetry) -> Telemetry:
    """Make ``telemetry`` the process-wide one; returns the previous one (tests restore it)."""
    global _current  # one telemetry per process, like OpenTelemetry's own globals
    previous, _current = _current, telemetry
    return previous


def configure_from_env(env: Mapping[str, str] | None = None) -> Telemetry:
    """Turn telemetry on when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (once per process)."""
    env = os.environ if env is None else env
    connection = env.get(CONNECTION_STRING_ENV, "").strip()
    with _configure_lock:
        if not connection or _current.enabled:
            return _current
        from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415 - only when on

        configure_azure_monitor(connection_string=connection, logger_name=NAME)
        install(OtelTelemetry())
        log.info("telemetry on: traces and metrics go to Application Insights")
        return _current


class _OtelSpan(Span):
    def __init__(self, span: Any, traceparent: str | None) -> None:
        self._span = span
        self.traceparent = traceparent

    def set(self, **attributes: Any) -> None:
        for key, value in _attributes(attributes).items():
            self._span.set_attribute(key, value)

    def error(self, reason: str) -> None:
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        self._span.set_status(Status(StatusCode.ERROR, reason[:500]))


def _attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``remediation_id`` → ``remediation.id``; values as str/int/float/bool; None dropped."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        name = key.replace("__", ".") if "__" in key else _DOTTED.get(key, key)
        out[name] = value if isinstance(value, str | bool | int | float) else str(value)
    return out


_DOTTED = {
    "remediation_id": "remediation.id", "playbook": "remediation.playbook", "resource": "remediation.resource",
    "finding_id": "finding.id", "finding_kind": "finding.kind", "finding_type": "finding.type",
}


class OtelTelemetry(Telemetry):
    """Records through the OpenTelemetry API: the global providers, or the ones given (tests)."""

    enabled = True

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry import metrics, trace  # noqa: PLC0415 - imported only when telemetry is on
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

        self._trace = trace
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(NAME)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(NAME)
        self._propagator = TraceContextTextMapPropagator()
        self._ingested = meter.create_counter("remediator.findings.ingested", unit="{finding}",
                                              description="Findings received, by kind and outcome")
        self._ended = meter.create_counter("remediator.remediations", unit="{remediation}",
                                           description="Remediations that reached a final state, by outcome")
        self._wait = meter.create_histogram("remediator.approval.wait", unit="s",
                                            description="From the approval request to its approval")
        self._ttr = meter.create_histogram("remediator.remediation.duration", unit="s",
                                           description="Time to remediate: from opening to applied and verified")
        self._throttled = meter.create_counter("remediator.arm.throttled", unit="{response}",
                                               description="ARM responses 429 Too Many Requests")
        self._pim = meter.create_histogram("remediator.pim.grant.duration", unit="s",
                                           description="Time to obtain a privilege grant")

    def span(self, name: str, *, parent: str | None = None, **attributes: Any) -> AbstractContextManager[Span]:
        return self._span(name, parent, attributes)

    @contextlib.contextmanager
    def _span(self, name: str, parent: str | None, attributes: Mapping[str, Any]) -> Iterator[Span]:
        context = self._propagator.extract({"traceparent": parent}) if parent else None
        with self._tracer.start_as_current_span(name, context=context, attributes=_attributes(attributes)) as span:
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
            handle = _OtelSpan(span, carrier.get("traceparent"))
            try:
                yield handle
            except Exception as e:
                handle.error(f"{type(e).__name__}: {e}")
                raise

    def finding_ingested(self, kind: str, outcome: str) -> None:
        self._ingested.add(1, {"finding.kind": kind, "outcome": outcome})

    def remediation_ended(self, outcome: str, playbook: str) -> None:
        self._ended.add(1, {"outcome": outcome, "remediation.playbook": playbook})

    def approval_wait(self, seconds: float, playbook: str) -> None:
        self._wait.record(max(seconds, 0.0), {"remediation.playbook": playbook})

    def time_to_remediate(self, seconds: float, playbook: str) -> None:
        self._ttr.record(max(seconds, 0.0), {"remediation.playbook": playbook})

    def arm_throttled(self, method: str) -> None:
        self._throttled.add(1, {"http.request.method": method})

    def pim_grant(self, seconds: float, strategy: str, outcome: str) -> None:
        self._pim.record(max(seconds, 0.0), {"strategy": strategy, "outcome": outcome})


class Stopwatch:
    """``with Stopwatch() as w: …`` then ``w.seconds`` (monotonic)."""

    def __enter__(self) -> Stopwatch:
        self.started = time.monotonic()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.started


def throttle_policy() -> Any:
    """An azure-core per-retry policy that counts ARM 429 answers (every attempt)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy  # noqa: PLC0415

    class _CountThrottled(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_response(self, request: Any, response: Any) -> None:
            if response.http_response.status_code == 429:
                current().arm_throttled(str(request.http_request.method))

    return _CountThrottled()

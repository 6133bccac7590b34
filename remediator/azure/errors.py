"""ARM errors: what an ``HttpResponseError`` means, and the one retry policy above azure-core's.

Classification. Actions wrap SDK errors in ``ActionError`` raised inside the ``except`` block, so
``http_error`` walks an exception's ``__cause__``/``__context__`` chain to the
``HttpResponseError``; ``error_code`` reads ARM's ``error.code`` (parsed, else from the body):

* ``is_propagation_error``: ``403 AuthorizationFailed`` while a new role assignment propagates
  (ARM caches role assignments for minutes);
* ``is_operation_in_progress``: ``409 AnotherOperationInProgress`` (ARM serialises writes on some
  resources);
* ``is_transient``: ``408``/``429``/``5xx`` or no answer (timeout, connection reset) once azure-core's
  retries gave up: planning retries those with backoff (``remediator.lifecycle.worker``).

Retries (``retry_propagation``): azure-core's pipeline already retries 408/429/5xx (honouring
``Retry-After``; ``remediator.azure.pace`` paces a throttled subscription). tenacity retries only
what azure-core does not: the two errors above. Nothing else is retried, so no error is retried by
two layers. Before a retry of a 403 the caller's ``refresh`` runs
(``remediator.azure.credentials.FreshTokenCredential.refresh``: the next request carries a newly
issued token).

``azure.core`` and tenacity are imported on first use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from remediator.errors import ConfigError

log = logging.getLogger("remediator.azure.errors")

T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class Backoff:
    """Exponential backoff: ``initial``, ``2 * initial``, … seconds, each wait capped at ``cap``."""

    initial: float = 2.0
    cap: float = 60.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.cap < self.initial:
            raise ConfigError(f"backoff: need 0 <= initial <= cap, got initial={self.initial} cap={self.cap}")


DEFAULT_BACKOFF = Backoff()


def http_error(exc: BaseException) -> Any | None:
    """The ``HttpResponseError`` behind ``exc``: itself, or one on its ``__cause__``/``__context__``
    chain (actions wrap SDK errors in ``ActionError`` inside the ``except`` block)."""
    from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, HttpResponseError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def error_code(exc: Any) -> str | None:
    """ARM's ``error.code`` of an ``HttpResponseError`` (from the parsed error, else the body)."""
    code = getattr(getattr(exc, "error", None), "code", None)
    if code:
        return str(code)
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:
        return None
    err = body.get("error") if isinstance(body, dict) else None
    return str(err["code"]) if isinstance(err, dict) and err.get("code") else None


TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """An answer that says "try again later", not "no": ``408``/``429``/``5xx`` from ARM, or no answer
    at all (a timeout, a connection refused or reset), on ``exc`` or its cause/context chain (after
    azure-core's own retries gave up). Planning retries these with backoff before it reports an error."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError  # noqa: PLC0415

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, (ServiceRequestError, ServiceResponseError)):
            return True
        if isinstance(cur, HttpResponseError):
            return getattr(cur, "status_code", None) in TRANSIENT_STATUS
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def is_propagation_error(exc: BaseException) -> bool:
    """``403 AuthorizationFailed``: the grant has not reached ARM's authorization cache yet."""
    err = http_error(exc)
    return err is not None and getattr(err, "status_code", None) == 403 and error_code(err) == "AuthorizationFailed"


def is_operation_in_progress(exc: BaseException) -> bool:
    """``409 AnotherOperationInProgress``: ARM serialises writes on some resources."""
    err = http_error(exc)
    return (err is not None and getattr(err, "status_code", None) == 409
            and error_code(err) == "AnotherOperationInProgress")


def retry_propagation(
    fn: Callable[[], T],
    *,
    attempts: int = 8,
    wait: Backoff = DEFAULT_BACKOFF,
    refresh: Callable[[], None] | None = None,
    forbidden: bool = True,
    until: datetime | None = None,
    clock: Callable[[], datetime] = _utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; retry it (tenacity) only on ``403 AuthorizationFailed`` (when ``forbidden``) and
    ``409 AnotherOperationInProgress``, at most ``attempts`` calls in all, with exponential backoff
    (``wait``), never past ``until`` (the grant's expiry); the last error is re-raised unchanged.

    ``refresh`` is called before each retry of a 403 (``FreshTokenCredential.refresh``). Throttling
    and server errors (429/5xx) are azure-core's to retry and pass straight through.
    """
    import tenacity  # noqa: PLC0415

    if attempts < 1:
        raise ConfigError(f"retry attempts must be at least 1, got {attempts}")

    def retryable(exc: BaseException) -> bool:
        return (forbidden and is_propagation_error(exc)) or is_operation_in_progress(exc)

    class PastDeadline(tenacity.stop.stop_base):
        """Stop when the next attempt would start after ``until`` (the grant would be gone)."""

        def __call__(self, state: tenacity.RetryCallState) -> bool:
            return until is not None and clock() + timedelta(seconds=state.upcoming_sleep) >= until

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        err = http_error(exc) if exc is not None else None
        what = f"{getattr(err, 'status_code', '?')} {error_code(err) if err is not None else '?'}"
        fresh = forbidden and exc is not None and is_propagation_error(exc) and refresh is not None
        log.warning("write answered %s (attempt %d of %d); retrying in %.1fs%s", what, state.attempt_number,
                    attempts, state.upcoming_sleep, " with a fresh token" if fresh else "")
        if fresh and refresh is not None:
            refresh()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(retryable),
        stop=tenacity.stop_any(tenacity.stop_after_attempt(attempts), PastDeadline()),
        wait=tenacity.wait_exponential(multiplier=wait.initial, min=wait.initial, max=wait.cap),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    return retrying(fn)

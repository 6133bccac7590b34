"""ARM error classification and the one retry policy above azure-core's (``remediator.azure.errors``);
how the privilege strategies use it against FakeArm: tests/privilege/test_elevation.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError

from remediator.azure.errors import (
    Backoff,
    error_code,
    http_error,
    is_operation_in_progress,
    is_propagation_error,
    retry_propagation,
)
from remediator.errors import ActionError, ConfigError

FAST = Backoff(initial=0.01, cap=0.04)


def _forbidden() -> HttpResponseError:
    err = HttpResponseError(message="Forbidden")
    err.status_code = 403
    err.error = type("ODataError", (), {"code": "AuthorizationFailed"})()
    return err


def test_retry_propagation_finds_the_http_error_behind_an_action_error() -> None:
    calls: list[int] = []

    def write() -> str:
        calls.append(1)
        if len(calls) < 3:
            try:
                raise _forbidden()
            except HttpResponseError:  # as the actions do: wrapped inside the except block
                raise ActionError("PATCH failed: 403 AuthorizationFailed") from None
        return "done"

    refreshed: list[int] = []
    assert retry_propagation(write, attempts=5, wait=FAST, refresh=lambda: refreshed.append(1),
                             sleep=lambda s: None) == "done"
    assert (len(calls), len(refreshed)) == (3, 2)
    calls.clear()
    with pytest.raises(ActionError):
        retry_propagation(write, attempts=5, wait=FAST, forbidden=False, sleep=lambda s: None)
    assert len(calls) == 1

    def bare() -> None:
        calls.append(1)
        raise _forbidden()

    calls.clear()
    with pytest.raises(HttpResponseError):  # unwrapped errors too; the last one is re-raised as it is
        retry_propagation(bare, attempts=2, wait=FAST, sleep=lambda s: None)
    assert len(calls) == 2


def _in_progress() -> HttpResponseError:
    err = HttpResponseError(message="Conflict")
    err.status_code = 409
    err.error = type("ODataError", (), {"code": "AnotherOperationInProgress"})()
    return err


def _raise_wrapped(err: HttpResponseError) -> None:
    """``err`` wrapped as the actions wrap it: raised inside the ``except`` block, ``from None``."""
    try:
        raise err
    except HttpResponseError:
        raise ActionError("PATCH failed") from None  # the context survives `from None`


def _wrapped(err: HttpResponseError) -> ActionError:
    with pytest.raises(ActionError) as caught:
        _raise_wrapped(err)
    return caught.value


def test_classification_walks_the_wrapping_chain() -> None:
    wrapped = _wrapped(_forbidden())
    assert http_error(wrapped) is wrapped.__context__
    assert is_propagation_error(wrapped)
    assert not is_operation_in_progress(wrapped)
    assert is_operation_in_progress(_wrapped(_in_progress()))
    assert is_operation_in_progress(_in_progress())
    assert not is_propagation_error(_in_progress())
    assert http_error(ValueError("not an HTTP error")) is None
    other = HttpResponseError(message="Forbidden")
    other.status_code = 403
    other.error = type("ODataError", (), {"code": "LinkedAuthorizationFailed"})()
    assert not is_propagation_error(other)  # a real refusal: never retried


def test_error_code_from_a_body_without_a_parsed_error() -> None:
    class Response:
        def json(self) -> object:
            return {"error": {"code": "AnotherOperationInProgress", "message": "busy"}}

    err = HttpResponseError(message="Conflict")
    err.status_code, err.error, err.response = 409, None, Response()
    assert error_code(err) == "AnotherOperationInProgress"
    assert is_operation_in_progress(err)
    err.response = None
    assert error_code(err) is None


def test_retries_stop_before_the_deadline() -> None:
    calls: list[int] = []
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def write() -> None:
        calls.append(1)
        raise _in_progress()

    with pytest.raises(HttpResponseError):
        retry_propagation(write, attempts=8, wait=Backoff(initial=10, cap=10), until=now + timedelta(seconds=25),
                          clock=lambda: now + timedelta(seconds=10 * (len(calls) - 1)), sleep=lambda s: None)
    assert len(calls) == 3  # at +0, +10, +20 s; a fourth would start at +30 s, past the deadline at +25 s


def test_bad_backoff_and_attempts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="backoff"):
        Backoff(initial=5, cap=1)
    with pytest.raises(ConfigError, match="at least 1"):
        retry_propagation(lambda: None, attempts=0)

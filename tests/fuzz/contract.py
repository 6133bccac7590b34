"""Checks a fuzz target applies to what the user would see (see ``tests/fuzz/__init__.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


class Violation(AssertionError):
    """The target broke its contract with the user (not merely refused the input)."""


def one_line_error(message: str, *, names: Iterable[str] = (), what: str = "error") -> str:
    """``message`` when it is one non-empty line without a traceback that names one of ``names``."""
    if not message.strip():
        raise Violation(f"empty {what} message")
    if "\n" in message or "\r" in message:
        raise Violation(f"multi-line {what} message: {message[:300]!r}")
    if "Traceback" in message or "internal error" in message:
        raise Violation(f"{what} message looks like a crash: {message[:300]!r}")
    wanted = [n for n in names if n]
    if wanted and not any(n in message for n in wanted):
        raise Violation(f"{what} message names none of {wanted}: {message[:300]!r}")
    return message


def _refuse_constant(token: str) -> Any:
    raise Violation(f"output is not strict JSON: it holds {token}")


def strict_json(text: str) -> Any:
    """Parse ``text`` as one strict JSON document (no NaN/Infinity, nothing after it)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise Violation(f"output is not one whole JSON document: {exc} (length {len(text)})") from None


def tidy(message: str, *paths: str) -> str:
    """The message with per-run paths (temp folders) replaced by ``<tmp>``."""
    for path in sorted((p for p in paths if p), key=len, reverse=True):
        message = message.replace(path, "<tmp>")
    return message

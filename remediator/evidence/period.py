"""Report periods: ``2026-Q3``, ``q3`` (this year's, or last year's if it has not begun), ``last 30d``,
``2026-07-01..2026-09-30`` (both days included), ``2026-07`` (a month), ``this quarter``.

A period is ``[start, end)`` in UTC: ``end`` is the instant after its last day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from remediator.errors import InputError
from remediator.words import plural

_QUARTER = re.compile(r"(?:(\d{4})-)?q([1-4])", re.I)
_LAST = re.compile(r"last\s+(\d{1,4})\s*(d|days?|w|weeks?)", re.I)
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
EXAMPLES = "2026-Q3, q3, last 30d, 2026-07-01..2026-09-30, 2026-07, this quarter"


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime  # exclusive
    label: str

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    def cli(self) -> str:
        """The ``--from``/``--to`` arguments that select this period."""
        return f"--from {self.first_day.isoformat()} --to {self.last_day.isoformat()}"


def _day(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _quarter(year: int, q: int) -> Period:
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return Period(_day(start), _day(end), f"{year}-Q{q}")


def between(first: date, last: date) -> Period:
    """Whole days ``first`` to ``last``, both included."""
    if last < first:
        raise InputError(f"the period ends ({last.isoformat()}) before it starts ({first.isoformat()})")
    return Period(_day(first), _day(last + timedelta(days=1)), f"{first.isoformat()}..{last.isoformat()}")


def parse_date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{what}: expected a date YYYY-MM-DD, got {text!r}") from None


def parse_period(text: str, *, now: datetime) -> Period:
    """One of ``EXAMPLES``; ``InputError`` (one line, the valid forms) otherwise."""
    value = " ".join(text.strip().split())
    today = now.astimezone(UTC).date()
    if m := _QUARTER.fullmatch(value):
        q = int(m.group(2))
        if m.group(1):
            return _quarter(int(m.group(1)), q)
        year = today.year if 3 * q - 2 <= today.month else today.year - 1
        return _quarter(year, q)
    if value.lower() in ("this quarter", "quarter"):
        return _quarter(today.year, (today.month - 1) // 3 + 1)
    if value.lower() in ("last quarter",):
        q = (today.month - 1) // 3
        return _quarter(today.year, q) if q else _quarter(today.year - 1, 4)
    if m := _LAST.fullmatch(value):
        days = int(m.group(1)) * (7 if m.group(2).lower().startswith("w") else 1)
        if days < 1:
            raise InputError(f"period {text!r}: at least one day")
        return Period(_day(today - timedelta(days=days - 1)), _day(today + timedelta(days=1)),
                      f"last {plural(days, 'day')}")
    if m := _RANGE.fullmatch(value):
        return between(parse_date(m.group(1), "period start"), parse_date(m.group(2), "period end"))
    if (m := _MONTH.fullmatch(value)) and 1 <= int(m.group(2)) <= 12:
        year, month = int(m.group(1)), int(m.group(2))
        start = date(year, month, 1)
        end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return Period(_day(start), _day(end), f"{year}-{month:02d}")
    raise InputError(f"period {text!r}: expected one of {EXAMPLES}")

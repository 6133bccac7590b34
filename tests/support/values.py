"""Walking plain JSON values (dicts, lists, scalars) in tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def dicts(value: Any) -> Iterator[dict[str, Any]]:
    """Every object (dict) in a JSON value, outermost first, depth-first."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from dicts(v)
    elif isinstance(value, list):
        for v in value:
            yield from dicts(v)

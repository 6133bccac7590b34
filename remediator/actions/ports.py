"""Moved to :mod:`remediator.checks.ports` (pydantic-free, for ``validate``'s fast path); re-exported."""

from remediator.checks.ports import (
    ALL,
    MAX_PORT,
    MIN_PORT,
    PortRange,
    PortSpecError,
    expand,
    format_range,
    intersect,
    intersect_specs,
    intersects,
    normalize,
    overlaps,
    parse_range,
    parse_ranges,
    subtract,
    subtract_specs,
)

__all__ = ["ALL", "MAX_PORT", "MIN_PORT", "PortRange", "PortSpecError", "expand", "format_range", "intersect",
           "intersect_specs", "intersects", "normalize", "overlaps", "parse_range", "parse_ranges", "subtract",
           "subtract_specs"]

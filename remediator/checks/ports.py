"""TCP/UDP port ranges as NSG rules write them (``*``, ``22``, ``3380-3390``) and set arithmetic on them.

A range is an inclusive ``(low, high)`` pair within 0-65535. ``*`` is the whole space (ARM documents
NSG ports as "integer or range between 0 and 65535; asterisk '*' matches all ports").

Subtraction and intersection work per element so that an NSG rule keeps its own spelling: removing
22 from ``["80", "20-25"]`` gives ``["80", "20-21", "23-25"]``, not a re-normalised list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MIN_PORT = 0
MAX_PORT = 65535
ALL = "*"

PortRange = tuple[int, int]


class PortSpecError(ValueError):
    """A port or range that is not ``*``, ``N`` or ``A-B`` within 0-65535 with A <= B."""


def parse_range(value: str | int) -> PortRange:
    """``"*"`` → (0, 65535); ``"22"`` / ``22`` → (22, 22); ``"3380-3390"`` → (3380, 3390)."""
    if isinstance(value, bool):  # bool is an int; True is not a port
        raise PortSpecError(f"{value!r} is not a port")
    if isinstance(value, int):
        low = high = value
    else:
        text = value.strip()
        if text == ALL:
            return (MIN_PORT, MAX_PORT)
        lo_text, sep, hi_text = text.partition("-")
        try:
            low = int(lo_text.strip())
            high = int(hi_text.strip()) if sep else low
        except ValueError:
            raise PortSpecError(f"{value!r} is not a port or range (expected '*', 'N' or 'A-B')") from None
    if not (MIN_PORT <= low <= MAX_PORT and MIN_PORT <= high <= MAX_PORT):
        raise PortSpecError(f"{value!r} is outside {MIN_PORT}-{MAX_PORT}")
    if low > high:
        raise PortSpecError(f"{value!r} is an empty range (start after end)")
    return (low, high)


def normalize(ranges: Iterable[PortRange]) -> list[PortRange]:
    """Sorted, disjoint, with adjacent ranges merged."""
    out: list[PortRange] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            if high > out[-1][1]:
                out[-1] = (out[-1][0], high)
        else:
            out.append((low, high))
    return out


def parse_ranges(values: Iterable[str | int]) -> list[PortRange]:
    """Parse and normalise a list of ports/ranges."""
    return normalize(parse_range(v) for v in values)


def overlaps(a: PortRange, b: PortRange) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def intersects(ranges: Iterable[PortRange], others: Sequence[PortRange]) -> bool:
    return any(overlaps(r, o) for r in ranges for o in others)


def subtract(keep: PortRange, remove: Sequence[PortRange]) -> list[PortRange]:
    """The parts of ``keep`` not covered by ``remove`` (which must be normalised)."""
    out: list[PortRange] = []
    low, high = keep
    for r_low, r_high in remove:
        if r_high < low:
            continue
        if r_low > high:
            break
        if r_low > low:
            out.append((low, r_low - 1))
        low = r_high + 1
        if low > high:
            return out
    out.append((low, high))
    return out


def intersect(keep: PortRange, within: Sequence[PortRange]) -> list[PortRange]:
    """The parts of ``keep`` covered by ``within`` (normalised)."""
    return [(max(keep[0], lo), min(keep[1], hi)) for lo, hi in within if overlaps(keep, (lo, hi))]


def format_range(r: PortRange) -> str:
    """(22, 22) → "22"; (20, 21) → "20-21"; the whole space → "*"."""
    if r == (MIN_PORT, MAX_PORT):
        return ALL
    return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"


def subtract_specs(specs: Sequence[str], remove: Sequence[PortRange]) -> list[str]:
    """Remove ``remove`` from each NSG port spec in place, keeping the others' spelling.

    ``["80", "20-25"]`` minus 22 → ``["80", "20-21", "23-25"]``; ``["*"]`` minus 22 →
    ``["0-21", "23-65535"]``. Specs that lose nothing are kept verbatim.
    """
    targets = normalize(remove)
    out: list[str] = []
    for spec in specs:
        r = parse_range(spec)
        pieces = subtract(r, targets)
        if pieces == [r]:
            out.append(spec)
        else:
            out.extend(format_range(p) for p in pieces)
    return out


def intersect_specs(specs: Sequence[str], within: Sequence[PortRange]) -> list[str]:
    """The parts of the specs inside ``within``, merged and in order.

    ``["*"]`` within {22, 3389} → ``["22", "3389"]``.
    """
    targets = normalize(within)
    out: list[str] = []
    for r in normalize(parse_range(s) for s in specs):
        for piece in intersect(r, targets):
            text = format_range(piece)
            if text not in out:
                out.append(text)
    return out


def expand(ranges: Iterable[PortRange]) -> set[int]:
    """Every port in ``ranges`` (for tests and small sets only)."""
    return {p for low, high in ranges for p in range(low, high + 1)}

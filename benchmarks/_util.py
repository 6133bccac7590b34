"""Small helpers shared by the benchmark scripts: paths, statistics, verdicts and tables.

Standard library only, so a benchmark can run before anything else is installed.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "benchmarks"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "defender"
SHIPPED_PLAYBOOKS = REPO_ROOT / "playbooks"


def ensure_repo_on_path() -> None:
    """Make ``import remediator`` work when a script is run from a checkout without an install."""
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table; numbers are right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], int | float) for row in rows) if rows else False for i in range(len(headers))]

    def fmt(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines.extend(fmt(r) for r in cells[1:])
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}" if value < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def load_average() -> float | None:
    """The 1-minute load average, printed with the figures: this machine may be shared, and a
    busy neighbour shows up in every number (None where the platform has no load average)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def emit(result: dict[str, Any], *, as_json: bool, print_text: Callable[[dict[str, Any]], None]) -> int:
    """Print a benchmark's figures as JSON (``--json``) or as its text report; exit status 0."""
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_text(result)
    return 0

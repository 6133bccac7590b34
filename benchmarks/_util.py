"""Small helpers shared by the benchmark scripts: paths, statistics, verdicts and tables.

Standard library only, so a benchmark can run before anything else is installed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


# -- measuring one child process -----------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system time of the child: far less sensitive to busy neighbours than wall
    maxrss_kib: int
    returncode: int
    output: str


# The launcher: a bare ``python -S -I`` that spawns the tool, waits for it with os.wait4 and writes
# "<wall s> <cpu s> <exit code> <ru_maxrss>" to the report file. Why not spawn from this process:
# Linux carries the parent's peak RSS into the child's ru_maxrss (vfork/fork, then exec folds the
# old address space's high-water mark into the process's maxrss), so a child spawned from this
# ~20 MiB benchmark process never reports less than ~20 MiB. The launcher's own peak (~8.5 MiB,
# reported as "launcher_floor_kib") is below any Python process's, so the figure is the tool's.
LAUNCHER = """
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as f:
    cpu = usage.ru_utime + usage.ru_stime
    f.write(f"{wall!r} {cpu!r} {os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_once(argv: list[str], *, cwd: Path = REPO_ROOT, env: Mapping[str, str] | None = None) -> Run:
    """Run ``argv`` once through the launcher; its wall time and the rusage of exactly that child."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        launcher = [sys.executable, "-S", "-I", "-c", LAUNCHER, str(report), *argv]
        done = subprocess.run(
            launcher, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False,
            env=dict(env) if env is not None else None,
        )
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
        if done.returncode != 0 or not report.exists():
            return Run(wall_s=0.0, cpu_s=0.0, maxrss_kib=0, returncode=done.returncode or 1, output=text)
        wall, cpu, code, maxrss = report.read_text().split()
    rss = int(maxrss) // 1024 if sys.platform == "darwin" else int(maxrss)  # macOS reports bytes
    return Run(wall_s=float(wall), cpu_s=float(cpu), maxrss_kib=rss, returncode=int(code), output=text)

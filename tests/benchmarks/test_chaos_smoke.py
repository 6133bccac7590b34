"""``bench_chaos.py`` runs end to end in a tiny configuration and reports every figure.

The figures' PASS/MISS are for humans (benchmarks/README.md); this only proves that the instrument
works: worker processes start, faults are injected (a kill, an outage, Slack down, corrupt data),
the run is measured and every figure is present with its verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow(reason="starts worker processes and runs a chaos schedule of about a minute")

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("writes", "one_per_finding", "final_one_message", "audit", "grants", "recovery")


def test_chaos_bench_runs_a_tiny_schedule_and_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_chaos.py"), "--quick", "--store", "sqlite",
         "--workers", "2", "--accounts", "2", "--tp-accounts", "2", "--fault-span", "12", "--kill-every", "6",
         "--kill-span", "8", "--kill-wait", "4", "--recovery-wait", "10", "--outages", "1", "--outage", "2",
         "--slack-down", "3", "--slow-write", "2", "--write-time", "0.2", "--deadline", "30", "--tp-deadline", "60",
         "--latency", "0", "--tp-latency", "0", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=420, check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    (run,) = result["runs"]
    chaos = run["chaos"]
    assert chaos["queued"] == 10  # 2 accounts x 5 findings
    assert set(chaos["figures"]) == set(FIGURES)
    for name in FIGURES:
        assert isinstance(chaos["figures"][name]["pass"], bool), name
    assert chaos["figures"]["one_per_finding"]["remediations"] >= 1
    assert chaos["figures"]["recovery"]["kills"] >= 1
    happened = " | ".join(what for _, what in chaos["timeline"])
    for fault in ("SIGKILL worker", "storage outage", "Slack answers 500", "corrupt remediation row"):
        assert fault in happened, (fault, happened)
    assert chaos["figures"]["audit"]["summary"]  # remediator audit verify ran and said something
    one, four = run["throughput"]
    assert (one["workers"], four["workers"]) == (1, 4)
    assert one["queued"] == four["queued"] == 10
    for t in (one, four):  # where the time goes: planning, Slack's pace, ARM
        assert t["plan_jobs"] == 1  # 10 findings: a trickle stays one plan job
        assert t["planned_s"] is not None
        assert t["planned_s"] >= 0
        assert t["slack_posts"] >= 1
        assert t["arm_requests"] >= 1
    assert isinstance(run["throughput_ratio"]["pass"], bool)

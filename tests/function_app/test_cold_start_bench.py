"""benchmarks/bench_cold_start.py runs and reports its figures (one run each; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow(reason="the benchmark starts fresh interpreters that import the Functions app and every SDK")
def test_cold_start_bench_reports_the_ratio_and_no_heavy_module() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cold_start.py"), "--repeat", "1",
                           "--warmup", "0", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["entry"]["heavy_modules_loaded"] == []
    assert result["entry"]["functions"] == 11
    assert result["entry"]["import_ms_median"] > 0
    assert result["eager"]["import_ms_median"] > 0
    assert result["ratio"] > 0
    assert result["target"]["verdict"] in {"PASS", "MISS"}

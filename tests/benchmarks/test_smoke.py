"""The benchmark scripts run and print their figures (tiny sizes; no timing is asserted here).

Speed targets live in benchmarks/ and are reported there as PASS/MISS; a test that failed on a
slow CI machine would only teach people to ignore it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow(reason="each runs a benchmark script in fresh Python processes (imports and all)")

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
C7N_CUSTODIAN = ROOT / ".bench-venvs" / "c7n" / "bin" / "custodian"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _json(script: str, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(_run(script, *args, "--json").stdout)
    return out


def test_validate_bench_remediator_only_reports_time_and_rss() -> None:
    result = _json("bench_validate_vs_custodian.py", "--remediator-only", "--repeat", "1", "--warmup", "0")
    rem = result["tools"]["remediator"]
    assert rem["argv"][-2:] == ["validate", "playbooks"]
    assert rem["runs"] == 1
    assert rem["wall_ms_median"] > 0
    assert rem["maxrss_kib_median"] > 1024  # a Python process is never under 1 MiB resident
    assert "custodian" not in result["tools"]
    assert "ratios" not in result
    assert Path(result["byte_compiled"]).name == "remediator"  # as pip install leaves it: .pyc files


def test_validate_bench_prints_a_table() -> None:
    out = _run(
        "bench_validate_vs_custodian.py", "--remediator-only", "--repeat", "1", "--warmup", "0", "--no-floor"
    ).stdout
    assert "median ms" in out
    assert "remediator" in out
    assert "no ratios" in out


def test_validate_bench_skip_install_without_venv_is_a_tool_failure(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_validate_vs_custodian.py"),
            "--skip-install",
            "--venv",
            str(tmp_path / "absent"),
            "--repeat",
            "1",
            "--warmup",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "--skip-install" in done.stderr


@pytest.mark.skipif(not C7N_CUSTODIAN.exists(), reason="c7n venv not installed (run the benchmark once)")
def test_validate_bench_against_custodian_reports_ratios_and_verdicts() -> None:
    result = _json("bench_validate_vs_custodian.py", "--skip-install", "--repeat", "1", "--warmup", "0", "--no-floor")
    assert set(result["tools"]) == {"remediator", "custodian"}
    assert result["ratios"]["time"] > 0
    assert result["ratios"]["memory"] > 0
    assert {t["verdict"] for t in result["targets"].values()} <= {"PASS", "MISS"}


def test_parse_match_bench_reports_rates_and_verdict() -> None:
    result = _json("bench_parse_match.py", "--events", "200", "--repeat", "1", "--warmup", "0")
    batch = result["batch"]
    assert batch["events"] == 200
    assert batch["records"] >= 200  # every event yields at least one record (finding or ignored)
    assert batch["findings"] > 0
    assert batch["ignored"] > 0  # Healthy / Delete / NotApplicable / simulated events are in the mix
    assert batch["matched"] > 0  # the batch exercises matching, not just parsing
    assert {"alert", "recommendation"} <= set(batch["findings_by_kind"])
    timings = result["timings"]
    assert len(timings) == 3
    assert all(t["records_per_s"] > 0 for t in timings.values())
    assert result["target"]["verdict"] in {"PASS", "MISS"}
    assert result["parse_peak_tracemalloc_kib"] > 0


def test_parse_match_bench_text_output_and_deterministic_batch(tmp_path: Path) -> None:
    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    args = ("--events", "50", "--repeat", "1", "--warmup", "0", "--no-tracemalloc")
    out = _run("bench_parse_match.py", *args, "--write-batch", str(first)).stdout
    _run("bench_parse_match.py", *args, "--write-batch", str(second))
    assert "records/s" in out
    assert "parse + match" in out
    assert first.read_bytes() == second.read_bytes()
    lines = first.read_bytes().splitlines()
    assert len(lines) == 50
    ids = [
        json.loads(line).get("SystemAlertId") or json.loads(line).get("id") or json.loads(line).get("Id")
        for line in lines
    ]
    assert len(set(ids)) == len(ids)  # every event has its own id


def test_ingest_bench_reports_each_pass_against_the_planner() -> None:
    result = _json("bench_ingest.py", "--findings", "40", "--repeat", "1", "--warmup", "0", "--profile",
                   "--profile-top", "3")
    passes = result["passes"]
    assert set(passes) == {"planner", "a", "b", "b2", "w", "c", "parse_a", "parse_c"}
    assert all(p["per_s"] > 0 for p in passes.values())
    assert passes["a"]["outcomes"] == {"queued": 40}
    assert passes["b"]["outcomes"] == {"duplicate": 40}  # the redelivery queues nothing
    assert passes["b2"]["outcomes"] == {"duplicate": 40}  # nor after a restart (the store's inbox)
    assert sum(passes["w"]["outcomes"].values()) == 40  # the worker opened one remediation per finding
    assert set(passes["w"]["outcomes"]) <= {"approved", "pending_approval"}
    assert {"queued", "duplicate", "ignored"} <= set(passes["c"]["outcomes"])
    assert passes["planner"]["x_planner"] == 1.0
    assert {t["verdict"] for k, t in result["target"].items() if k != "findings_per_s_min"} <= {"PASS", "MISS"}
    assert result["profile"]["phases"]["could any playbook claim it (PlaybookSet.could_claim)"]["calls"] == 40


def test_ingest_bench_prints_a_table() -> None:
    out = _run("bench_ingest.py", "--findings", "20", "--repeat", "1", "--warmup", "0").stdout
    assert "records/s" in out
    assert "x planner time" in out
    assert "target >= 5,000" in out


def test_approve_bench_reports_percentiles_against_the_bad_signature_baseline() -> None:
    result = _json("bench_approve.py", "--clicks", "4", "--warmup", "1", "--profile")
    checks = result["checks"]
    assert checks["approved"] == checks["remediations"] == 5  # every click approved its remediation
    assert checks["chat_update_calls"] == 5
    assert checks["ephemeral_refusals"] == 0
    latency = result["latency_ms"]
    assert latency["approve"]["statuses"] == {"200": 4}
    assert latency["baseline"]["statuses"] == {"401": 4}  # bolt refused the forged clicks
    stats = latency["approve"]["build_and_dispatch"]
    assert 0 < stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"]
    assert result["target"]["verdict"] in {"PASS", "MISS"}
    assert result["profile"]["  Engine.approve (checks, CAS, audit, 2 jobs)"]["calls"] == 4


def test_storm_bench_reports_messages_rate_and_rss() -> None:
    result = _json("bench_storm.py", "--findings", "120", "--chunks", "0,40", "--real-findings", "10",
                   "--real-groups", "2")
    one, chunked = result["runs"]
    assert one["ingest_calls"] == 1
    assert chunked["ingest_calls"] == 3
    for run in (one, chunked):
        assert run["messages"]["remediations_announced"] == 120  # every remediation is in a message
        assert run["peak_posts_per_channel_1s"] == 1  # the pacer's 1 message per second per channel
        assert run["ru_maxrss_mib"] > result["launcher_floor_ru_maxrss_mib"]
    assert one["messages"]["digests"] == 8  # 2 playbooks x 4 resource groups, one ingest
    real = result["real_time"]
    assert real["messages"]["digests"] == 2
    assert real["gap_s"]["min"] >= 0.9  # really spaced by the pacer (FakeSlack's wall-clock receipt times)
    assert result["target"]["verdict"] in {"PASS", "MISS"}


def test_plan_fold_bench_reports_folded_unfolded_and_distinct() -> None:
    result = _json("bench_plan_fold.py", "--records", "40", "--repeat", "1")
    assert result["records"] == 40
    assert (result["cli_results"], result["cli_duplicates_folded"]) == (1, 39)
    assert result["exit_codes"] == [2, 2, 2, 2]
    assert result["unfolded_output_chars"] > 30 * result["folded_output_chars"]
    assert result["folded_s"] > 0
    assert result["verdict"] in {"PASS", "MISS"}


def test_report_bench_reports_time_rss_and_baseline() -> None:
    out = _json("bench_report.py", "--records", "500", "--repeat", "1")
    assert out["records"] == 500
    assert out["exit_codes"] == [0]
    assert out["report_wall_s"] > 0
    assert out["report_peak_rss_mib"] > 0
    assert out["html_bytes"] > 1000
    assert out["verdict"] in ("PASS", "MISS")

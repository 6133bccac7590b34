"""``remediator plan`` on a payload of identical records: folded (one plan) versus unfolded.

Issue 12, item 8: 50,000 identical records in one payload gave 50,000 identical changes and took
about a minute; ``plan`` now folds repeats of a finding id the way ingest deduplicates them, and
the parser reuses its result for a record equal to one it parsed already.

The payload is a sample finding in a ``{"records": [...]}`` envelope, ``--records`` times:
``--record alert`` (default) is the storage alert ``01-storage-open-container-alert.json`` (2.5 KB,
two changes: the account and its container), ``--record policy`` the Azure Policy event
``04-acr-admin-user-policy-event.json`` (0.9 KB). Figures, each the median of ``--repeat`` passes
(``time.perf_counter``, ``gc.collect()`` before):

0) the floor: decoding the payload alone (``remediator._json.decode``, pydantic-core's parser, as
   the findings parser does): no plan can be faster than reading its input;
a) folded: ``remediator.app.cli.main(["plan", FILE, "--resources", samples/state, "--output", "json"])``
   in-process (imports done, playbooks and state loaded inside the pass), stdout to a sink;
b) the unfolded baseline, measured in the same run: the same pass with every record planned and
   written, as before the fold (``Planner.plan`` on all records, then the same JSON writer);
c) distinct: ``--records`` records that differ in ``SystemAlertId`` (distinct findings on one
   resource), folded path: what folding cannot save, for scale;
d) the command as a user runs it: ``python -m remediator plan …`` in a subprocess (interpreter
   start and imports included), once.

The target is (a) in about a second (<= 1.5 s), printed PASS or MISS with (a) / (0), how much more
than reading its input the folded plan takes; it does not change the exit status. (b) and (c) run
once unless ``--repeat-baseline``: at 50,000 records they take tens of seconds and write ~230 MB of
JSON.

    python benchmarks/bench_plan_fold.py                   # 50,000 records
    python benchmarks/bench_plan_fold.py --records 500 --json
"""

from __future__ import annotations

import argparse
import copy
import gc
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import REPO_ROOT, ensure_repo_on_path, load_average, median, table, verdict

ensure_repo_on_path()

SAMPLES = REPO_ROOT / "remediator" / "samples"
RECORDS = {"alert": SAMPLES / "findings" / "01-storage-open-container-alert.json",
           "policy": SAMPLES / "findings" / "04-acr-admin-user-policy-event.json"}
STATE = SAMPLES / "state"
TARGET_S = 1.5


class _Sink(io.TextIOBase):
    """Counts what the CLI writes instead of keeping ~190 MB of JSON."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)


def _payloads(record: Path, records: int, folder: Path) -> tuple[Path, Path]:
    value = json.loads(record.read_text(encoding="utf-8"))
    base = value[0] if isinstance(value, list) else value
    same = folder / "identical.json"
    same.write_text(json.dumps({"records": [base] * records}), encoding="utf-8")
    distinct = []
    for i in range(records):
        one = copy.deepcopy(base)
        if "SystemAlertId" in one:
            one["SystemAlertId"] = f"{one['SystemAlertId']}-{i}"
        else:  # a policy event: its id hashes the timestamp
            one["data"]["timestamp"] = f"2026-11-27T09:41:{i % 60:02d}.{i:07d}Z"
        distinct.append(one)
    other = folder / "distinct.json"
    other.write_text(json.dumps({"records": distinct}), encoding="utf-8")
    return same, other


def _folded(path: Path) -> tuple[int, int]:
    from remediator.app.cli import main

    sink = _Sink()
    code = main(["plan", str(path), "--resources", str(STATE), "--output", "json"], out=sink,
                stdin=io.StringIO(""))
    return code, sink.chars


def _unfolded(path: Path) -> tuple[int, int]:
    """The plan command as it was before folding: every record planned and written."""
    from remediator.app.cli.inputs import load_playbooks
    from remediator.app.cli.output import exit_code, print_results
    from remediator.azure.state import SavedState
    from remediator.findings.parse import parse_file
    from remediator.planning.planner import Planner

    planner = Planner(playbooks=load_playbooks(None), state=SavedState.from_path(STATE))
    results = planner.plan(parse_file(path))
    sink = _Sink()
    print_results(results, "json", sink)
    return exit_code(results), sink.chars


def _time(run: Callable[[], tuple[int, int]], repeat: int) -> tuple[list[float], tuple[int, int]]:
    times, last = [], (0, 0)
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        last = run()
        times.append(time.perf_counter() - started)
    return times, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--record", choices=sorted(RECORDS), default="alert", help="which sample record to repeat")
    parser.add_argument("--repeat", type=int, default=3, help="passes of the folded run (median)")
    parser.add_argument("--repeat-baseline", type=int, default=1, help="passes of the unfolded and distinct runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        same, distinct = _payloads(RECORDS[args.record], args.records, Path(tmp))
        from remediator import _json

        raw = same.read_bytes()
        _folded(same)  # warm-up: imports, caches
        floor, _ = _time(lambda: (len(_json.decode(raw)), 0), args.repeat)
        folded, (folded_code, folded_chars) = _time(lambda: _folded(same), args.repeat)
        unfolded, (unfolded_code, unfolded_chars) = _time(lambda: _unfolded(same), args.repeat_baseline)
        spread, (distinct_code, distinct_chars) = _time(lambda: _folded(distinct), args.repeat_baseline)
        started = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "remediator", "plan", str(same), "--resources", str(STATE),
                              "--output", "json"], cwd=REPO_ROOT, capture_output=True, check=False, timeout=600)
        cli_s = time.perf_counter() - started
        folded_doc = json.loads(cli.stdout)
    figures: dict[str, Any] = {
        "records": args.records, "record": RECORDS[args.record].name, "payload_bytes": len(raw),
        "decode_s": median(floor), "folded_to_decode": median(folded) / median(floor),
        "folded_s": median(folded), "folded_runs": folded, "folded_output_chars": folded_chars,
        "unfolded_s": median(unfolded), "unfolded_output_chars": unfolded_chars,
        "distinct_s": median(spread), "distinct_output_chars": distinct_chars,
        "cli_subprocess_s": cli_s, "cli_results": len(folded_doc["results"]),
        "cli_duplicates_folded": folded_doc["duplicates_folded"],
        "ratio_folded_to_unfolded": median(folded) / median(unfolded),
        "exit_codes": [folded_code, unfolded_code, distinct_code, cli.returncode],
        "target_s": TARGET_S, "verdict": verdict(median(folded) <= TARGET_S),
        "load_average": load_average(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    n = f"{args.records:,}"
    print(f"remediator plan on {n} copies of {figures['record']} ({len(raw) / 2**20:.1f} MiB; "
          f"load average {figures['load_average']})")
    print(table(["run", "seconds", "results", "JSON written (chars)"], [
        ["(0) decoding the payload alone (the floor)", round(median(floor), 3), 0, 0],
        [f"(a) {n} identical, folded (in-process)", round(median(folded), 3), 1, folded_chars],
        [f"(b) {n} identical, unfolded baseline", round(median(unfolded), 3), args.records, unfolded_chars],
        [f"(c) {n} distinct, folded path", round(median(spread), 3), args.records, distinct_chars],
        [f"(d) {n} identical, python -m remediator plan", round(cli_s, 3), figures["cli_results"],
         len(cli.stdout)],
    ]))
    print(f"folded / unfolded: {figures['ratio_folded_to_unfolded']:.4f}  "
          f"(duplicates_folded = {figures['cli_duplicates_folded']:,})")
    print(f"target: (a) <= {TARGET_S} s: {figures['verdict']} ((a) is {figures['folded_to_decode']:.2f}x the decoding)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

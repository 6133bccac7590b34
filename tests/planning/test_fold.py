"""``remediator plan`` folds repeated findings the way ingest deduplicates them (issue 12, item 8)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from remediator.app.cli import main
from remediator.findings.model import Finding, Ignored
from remediator.findings.parse import parse_bytes
from tests.conftest import ROOT

SAMPLES = ROOT / "remediator" / "samples"
STATE = str(SAMPLES / "state")
ALERT = SAMPLES / "findings" / "01-storage-open-container-alert.json"
ASSESSMENT = SAMPLES / "findings" / "02-management-ports-assessment.json"


def run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out, stdin=io.StringIO(stdin))
    return code, out.getvalue()


def _load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def test_identical_records_in_one_payload_plan_once(tmp_path: Path) -> None:
    alert = _load(ALERT)
    batch = tmp_path / "storm.json"
    batch.write_text(json.dumps({"records": [alert] * 1000 + [_load(ASSESSMENT)]}), encoding="utf-8")
    code, out = run(["plan", str(batch), "--resources", STATE, "--output", "json"])
    assert code == 2
    doc = json.loads(out)
    assert doc["duplicates_folded"] == 999
    assert [r["finding"]["type"] for r in doc["results"]] == ["Storage.Blob_OpenACL",
                                                             "bc303248-3d14-44c2-96a0-55f5c326b5fe"]
    single_code, single = run(["plan", str(ALERT), str(ASSESSMENT), "--resources", STATE, "--output", "json"])
    assert single_code == 2
    assert doc["results"] == json.loads(single)["results"]

    code, text = run(["plan", str(batch), "--resources", STATE])
    assert code == 2
    assert text.rstrip().splitlines()[-1] == "(2 records: 2 with changes; 999 duplicates folded (same finding id))"
    assert text.count("# alert Storage.Blob_OpenACL") == 1


def test_repeats_fold_across_files_and_stdin_and_by_id_like_ingest(tmp_path: Path) -> None:
    alert = _load(ALERT)
    later = copy.deepcopy(alert)
    later["TimeGenerated"] = "2026-11-27T09:00:00.000Z"  # re-delivered later: same SystemAlertId, same finding
    (tmp_path / "later.json").write_text(json.dumps(later), encoding="utf-8")
    code, out = run(["plan", str(ALERT), str(tmp_path / "later.json"), "-", "--resources", STATE,
                     "--output", "json"], stdin=json.dumps(alert))
    assert code == 2
    doc = json.loads(out)
    assert (len(doc["results"]), doc["duplicates_folded"]) == (1, 2)


def test_a_resolved_alert_is_not_folded_into_the_active_one(tmp_path: Path) -> None:
    alert = _load(ALERT)
    resolved = {**alert, "Status": "Resolved"}
    batch = tmp_path / "b.json"
    batch.write_text(json.dumps([alert, resolved, resolved]), encoding="utf-8")
    code, out = run(["plan", str(batch), "--resources", STATE, "--output", "json"])
    doc = json.loads(out)
    assert code == 2
    assert [r["outcome"] for r in doc["results"]] == ["changes", "ignored"]
    assert doc["duplicates_folded"] == 1


def test_fold_keeps_order_and_counts() -> None:
    from remediator.planning.planner import fold

    a, b = parse_bytes(ALERT.read_bytes(), source="a"), parse_bytes(ASSESSMENT.read_bytes(), source="b")
    unique, folded = fold(iter([*a, *b, *a, *a, *b]))
    assert (unique, folded) == ([*a, *b], 3)
    ignored = [Ignored(reason="x"), Ignored(reason="x"), Ignored(reason="y")]
    assert fold(ignored) == ([ignored[0], ignored[2]], 1)
    assert fold([]) == ([], 0)


def test_parser_reuses_results_only_for_equal_records() -> None:
    assessment = _load(ASSESSMENT)
    healthy = copy.deepcopy(assessment)
    healthy["properties"]["status"]["code"] = "Healthy"  # differs only deep inside
    records = parse_bytes(json.dumps([assessment, assessment, healthy, assessment]).encode(), source="x")
    assert [type(r) for r in records] == [Finding, Finding, Ignored, Finding]
    assert records[0] is records[1] is records[3]
    ndjson = parse_bytes("\n".join([json.dumps(assessment)] * 3 + [json.dumps(healthy)]).encode(), source="x")
    assert ndjson[0] is ndjson[1] is ndjson[2]
    assert isinstance(ndjson[3], Ignored)
    # many near-equal records (the same size, the same top-level strings): each is parsed on its own
    variants = []
    for i in range(50):
        v = copy.deepcopy(assessment)
        v["properties"]["status"]["statusChangeDate"] = f"2026-11-26T21:03:{i:02d}Z"
        variants.append(v)
    parsed = parse_bytes(json.dumps(variants).encode(), source="x")
    assert len({r.id for r in parsed if isinstance(r, Finding)}) == 50

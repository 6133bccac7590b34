"""The evidence report's figures, from a scenario run of the real engine (tests/evidence/scenario.py),
asserted exactly; the formats carry the same rows; an empty period says so; the CLI writes it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from remediator.app.cli import main
from remediator.evidence.period import parse_period
from remediator.evidence.render import ALLOWED_URL_PREFIXES, RENDERERS, to_csv, to_html, to_json
from remediator.evidence.report import Filters, Report, build_report
from remediator.playbooks import load_exemptions
from tests.evidence.scenario import Scenario, run_scenario
from tests.support.engine import MEMBERS, PLAYBOOKS, World, make_world

CONTROLS = {p.name: p.controls for p in PLAYBOOKS}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


@pytest.fixture
def scenario(world: World) -> Scenario:
    return run_scenario(world)


def _report(world: World, period: str = "2026-Q4", **kwargs: object) -> Report:
    return build_report(world.store, parse_period(period, now=world.clock()), now=world.clock(),
                        playbook_controls=CONTROLS, **kwargs)  # type: ignore[arg-type]


def test_the_figures_of_the_scenario(world: World, scenario: Scenario) -> None:
    report = _report(world)
    assert report.totals() == {
        "findings": 6, "remediations": 7, "auto_applied": 1, "approved_applied": 1, "rolled_back": 0, "rejected": 1,
        "exempt": 1, "stale_reasked": 1, "stale": 0, "failed": 1, "withdrawn": 0, "expired": 0, "no_change": 0,
        "open": 1, "overdue": 0, "incomplete_trails": 0, "integrity_problems": 0}
    assert report.sections["findings"] == [
        {"source": "defender", "kind": "alert", "severity": "Low", "count": 1},
        {"source": "defender", "kind": "policy", "severity": "Unknown", "count": 1},
        {"source": "defender", "kind": "recommendation", "severity": "High", "count": 1},
        {"source": "defender", "kind": "recommendation", "severity": "Medium", "count": 2},
        {"source": "defender", "kind": "recommendation", "severity": "Low", "count": 1},
    ]
    # the auto fix 10 minutes after arrival; the NSG fix 2 hours after its finding arrived (through the re-ask)
    assert report.sections["time_to_remediate"] == [
        {"severity": "Medium", "count": 1, "median_s": 7200, "p90_s": 7200, "max_s": 7200},
        {"severity": "Low", "count": 1, "median_s": 600, "p90_s": 600, "max_s": 600},
    ]
    rows = {r["remediation_id"]: r for r in report.sections["changes"]}
    assert {k: rows[scenario.auto.id][k] for k in ("outcome", "approved_by", "quorum_held", "time_to_remediate_s")} \
        == {"outcome": "auto_applied", "approved_by": "auto", "quorum_held": "auto", "time_to_remediate_s": "600"}
    assert rows[scenario.stale.id]["outcome"] == "stale_reasked"
    assert rows[scenario.stale.id]["replaced_by"] == scenario.successor.id
    assert {k: rows[scenario.successor.id][k] for k in ("outcome", "approved_by", "approvals", "quorum", "quorum_held",
                                                       "expiry_held")} == {
        "outcome": "approved_applied", "approved_by": MEMBERS[1], "approvals": 1, "quorum": 1, "quorum_held": "yes",
        "expiry_held": "yes"}
    assert rows[scenario.rejected.id]["outcome"] == "rejected"
    assert rows[scenario.rejected.id]["reason"] == "CI pulls with the admin user until CHG-7"
    assert rows[scenario.failed.id]["outcome"] == "failed"
    assert rows[scenario.failed.id]["reason"].startswith("storage.restrict-network-access: PATCH of storage account "
                                                         "contosodata failed: 409 Conflict")
    assert rows[scenario.exempt.id]["outcome"] == "exempt"
    assert {k: rows[scenario.open.id][k] for k in ("outcome", "approvals", "quorum", "overdue")} == {
        "outcome": "open", "approvals": 1, "quorum": 2, "overdue": False}
    assert rows[scenario.auto.id]["controls"] == "MCSB NS-2; ISO27001 A.8.3; GDPR Art.32"
    approvals = [(a["remediation_id"], a["user_id"], a["decision"]) for a in report.sections["approvals"]]
    assert sorted(approvals) == sorted([
        (scenario.stale.id, MEMBERS[0], "approve"), (scenario.successor.id, MEMBERS[1], "approve"),
        (scenario.rejected.id, MEMBERS[2], "reject"), (scenario.failed.id, MEMBERS[3], "approve"),
        (scenario.open.id, MEMBERS[4], "approve")])
    exemptions = report.sections["exemptions"]
    assert [(e["remediation_id"], e["owner"], e["source"]) for e in exemptions] == [(scenario.exempt.id, "", "tag")]
    assert exemptions[0]["reason"]
    # every grant: the auto fix's two changes, the NSG re-ask's three, the failed write's one (standing strategy)
    grants = [(g["remediation_id"], g["strategy"], g["role"]) for g in report.sections["pim_requests"]]
    assert grants.count((scenario.auto.id, "standing", "Storage Account Contributor")) == 2
    assert grants.count((scenario.successor.id, "standing", "Network Contributor")) == 3
    assert grants.count((scenario.failed.id, "standing", "Storage Account Contributor")) == 1
    assert len(grants) == 6
    verified = [(v["remediation_id"], v["result"]) for v in report.sections["verifications"]]
    assert verified.count((scenario.auto.id, "verified")) == 2
    assert verified.count((scenario.successor.id, "verified")) == 3
    assert len(verified) == 5
    assert report.integrity.ok
    control_rows = {r["control"]: r for r in report.sections["by_control"]}
    assert control_rows["MCSB NS-2"]["total"] == 3  # the two storage playbooks: auto, failed, exempt
    assert (control_rows["MCSB NS-2"]["auto_applied"], control_rows["MCSB NS-2"]["failed"],
            control_rows["MCSB NS-2"]["exempt"]) == (1, 1, 1)
    assert control_rows["MCSB PA-7"]["open"] == 1


def test_remediations_are_counted_from_the_store_and_an_incomplete_trail_is_listed(
        world: World, scenario: Scenario) -> None:
    from dataclasses import replace

    before = _report(world).totals()
    first = world.store.list(limit=1)[0]
    # one written around the trail (no record at all), as a crash between state and record used to leave
    bare, created = world.store.create(replace(first, id="bare-remediation-without-trail", dedup_key="bare",
                                               state="applied", version=""))
    assert created
    report = _report(world)
    totals = report.totals()
    assert totals["remediations"] == before["remediations"] + 1  # counted although no record mentions it
    assert totals["incomplete_trails"] == 1, [p.line() for p in report.integrity.problems]
    assert report.sections["incomplete_trails"] == [{
        "remediation_id": bare.id, "state": "applied",
        "problems": f"deleted   {bare.id}#1: the remediation exists but its audit chain is gone (every record "
                    "deleted, or never written)"}]
    assert [row["remediation_id"] for row in report.sections["changes"] if row["remediation_id"] == bare.id] == \
        [bare.id]
    assert not report.integrity.ok


def test_filters_answer_one_control_or_resource_type(world: World, scenario: Scenario) -> None:
    by_control = _report(world, filters=Filters(controls=("MCSB NS-1",)))
    assert {r["remediation_id"] for r in by_control.sections["changes"]} == {scenario.stale.id, scenario.successor.id}
    by_type = _report(world, filters=Filters(resource_types=("microsoft.containerregistry/registries",)))
    assert [r["remediation_id"] for r in by_type.sections["changes"]] == [scenario.rejected.id]
    assert by_type.totals()["findings"] == 1


def test_exemptions_expiring_within_30_days_from_the_file(world: World, scenario: Scenario, tmp_path: Path) -> None:
    path = tmp_path / "exemptions.yaml"
    rid = scenario.auto.resource_id
    path.write_text("exemptions:\n"
                    f"  - resource: {rid}\n    playbook: storage-disable-public-blob-access\n    owner: data-team\n"
                    "    reason: migration (TICKET-9)\n    expires: 2026-12-10\n"
                    f"  - resource: {rid}\n    playbook: storage-restrict-network-access\n    owner: data-team\n"
                    "    reason: later\n    expires: 2027-06-01\n", encoding="utf-8")
    report = _report(world, exemptions=list(load_exemptions(path)))
    expiring = report.sections["exemptions_expiring"]
    assert [(e["playbook"], e["owner"], e["expires"]) for e in expiring] == [
        ("storage-disable-public-blob-access", "data-team", "2026-12-10")]


def test_an_empty_period_says_so_in_every_format(world: World, scenario: Scenario) -> None:
    report = _report(world, "2026-Q2")
    assert report.empty
    assert "No findings and no remediations in this period." in to_html(report)
    assert "No findings and no remediations in this period." in RENDERERS["md"](report)
    doc = json.loads(to_json(report))
    assert doc["empty"] is True
    assert {"key": "note", "value": "No findings and no remediations in this period."} in doc["sections"]["summary"]
    assert "No findings and no remediations in this period." in to_csv(report)


def test_csv_and_json_carry_the_same_rows(world: World, scenario: Scenario) -> None:
    report = _report(world)
    doc = json.loads(to_json(report))
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    for name, section in doc["sections"].items():
        mine = [r for r in rows if r["section"] == name]
        assert len(mine) == len(section), name
        for got, want in zip(mine, section, strict=True):
            for key, value in want.items():
                text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
                assert got[key].removeprefix("'") == text, (name, key)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.svgs = 0
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.svgs += tag == "svg"
        self.urls += [v or "" for k, v in attrs if k in ("href", "src", "action", "xlink:href", "srcset")]


def test_the_html_is_self_contained_escaped_and_embeds_its_charts(world: World, scenario: Scenario) -> None:
    # a finding title that tries to inject markup and a link
    rem = world.rem(scenario.open.id)
    hostile = '<script>alert(1)</script><img src="https://evil.example/x.png"> "quoted"'
    world.store.update(rem, finding={**rem.finding, "title": hostile})
    text = to_html(_report(world))
    parser = _Links()
    parser.feed(text)
    assert parser.svgs == 3
    assert not {"script", "img", "link", "iframe", "object"} & set(parser.tags)
    assert all(u.startswith(ALLOWED_URL_PREFIXES) for u in parser.urls), parser.urls
    assert "https://portal.azure.com/#@/resource/subscriptions/" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "evil.example" not in "".join(parser.urls)
    external = [u for u in __import__("re").findall(r"https?://[^\s\"'<>)]+", text)
                if not u.startswith(ALLOWED_URL_PREFIXES)]
    assert all("evil.example" in u for u in external)  # none, or only the escaped, inert title text


def test_cli_report_writes_each_format(world: World, scenario: Scenario, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    world.store.close()
    store = str(tmp_path / "remediator.db")
    for fmt in ("html", "md", "csv", "json"):
        out = tmp_path / f"r.{fmt}"
        code = main(["report", "--from", "2026-10-01", "--to", "2026-12-31", "--format", fmt, "--out", str(out),
                     "--store", store])
        assert code == 0
        assert out.stat().st_size > 0
    printed = capsys.readouterr().out
    assert "r.json: json evidence report for 2026-10-01..2026-12-31: 6 findings, 7 remediations; OK:" in printed
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["totals"]["failed"] == 1
    assert main(["report", "--period", "nonsense", "--store", store]) == 1
    assert "period 'nonsense': expected one of 2026-Q3" in capsys.readouterr().err


def _ttr_labels(html: str) -> list[str]:
    chart = html.split('aria-label="Time to remediate by severity"', 1)[1].split("</svg>", 1)[0]
    return __import__("re").findall(r'font-size="9" text-anchor="start" fill="#333">([^<]+)</text>', chart)


def test_the_time_to_remediate_chart_reads_in_minutes_and_hours(world: World, scenario: Scenario) -> None:
    """The auto fix took 10 minutes and the NSG fix 2 hours: the chart says so (not "0.2 h")."""
    assert _ttr_labels(to_html(_report(world))) == ["2.0 h"] * 3 + ["10 min"] * 3


@pytest.mark.slow(reason="runs the whole demo (every sample finding planned, approved and applied) before the report")
def test_a_fix_in_seconds_is_not_shown_as_zero_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's fixes take a second or two from arrival to applied: the report of its store says seconds."""
    store = str(tmp_path / "demo.db")
    assert main(["demo", "--approve-all", "--store", store]) == 0
    capsys.readouterr()
    assert main(["report", "--period", "last 30d", "--format", "html", "--store", store]) == 0
    labels = _ttr_labels(capsys.readouterr().out)
    assert len(labels) == 12  # four severities, median, p90 and max each
    assert all(label.endswith(" s") for label in labels), labels


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (2.4, "2 s"), (59, "59 s"), (60, "1 min"), (600, "10 min"),
                                               (3540, "59 min"), (3600, "1.0 h"), (5400, "1.5 h"), (86400, "24.0 h"),
                                               (3 * 86400, "3.0 d")])
def test_durations(seconds: float, text: str) -> None:
    from remediator.evidence.render import duration

    assert duration(seconds) == text


def test_periods() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    assert parse_period("q3", now=now).label == "2026-Q3"
    assert parse_period("q4", now=datetime(2026, 2, 1, tzinfo=UTC)).label == "2025-Q4"
    assert parse_period("2026-Q3", now=now).cli() == "--from 2026-07-01 --to 2026-09-30"
    assert parse_period("last 30d", now=now).cli() == "--from 2026-10-27 --to 2026-11-25"
    assert parse_period("2026-07-01..2026-09-30", now=now).cli() == "--from 2026-07-01 --to 2026-09-30"
    assert parse_period("2026-02", now=now).cli() == "--from 2026-02-01 --to 2026-02-28"

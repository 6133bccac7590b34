"""``/remediate report [period]``: the period's evidence summary and the command for the full report."""

from __future__ import annotations

import json

from tests.bot.world import SlackWorld
from tests.support.engine import MEMBERS, sample


def _ask(world: SlackWorld, text: str) -> str:
    resp = world.command(text, MEMBERS[0])
    assert resp.status == 200
    answer = json.loads(resp.body)
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


def test_report_summarises_the_period_and_says_where_the_full_report_is(world: SlackWorld) -> None:
    world.ingest(sample("02-management-ports-assessment"))
    world.ingest(sample("06-storage-public-access-exempt"))
    text = _ask(world, "report 2026-Q4")
    assert text.splitlines() == [
        "*Evidence 2026-Q4* (2026-10-01 to 2026-12-31)",
        "2 findings, 2 remediations: 0 auto-applied, 0 approved and applied, 0 rejected, 1 exempt, 0 stale, "
        "0 failed, 0 withdrawn, 1 still open (0 overdue)",
        ":white_check_mark: audit trail complete and unaltered",
        "Full report: `remediator report --from 2026-10-01 --to 2026-12-31 --format html --out evidence-2026-Q4.html`",
    ]
    assert "/remediate report [period]" in _ask(world, "help").replace("`", "")


def test_an_empty_period_and_a_bad_one(world: SlackWorld) -> None:
    assert "No findings and no remediations in this period." in _ask(world, "report 2026-07-01..2026-09-30")
    bad = _ask(world, "report <!channel> soon")
    assert bad.startswith("period '&lt;!channel&gt; soon': expected one of 2026-Q3, q3, last 30d")

"""Fuzz target: the findings parser, as ``remediator plan FINDING`` and ingest use it.

Examples are bytes or text: real payloads from ``tests/fixtures`` and the samples, mutated at the
JSON level and the byte level (BOMs, UTF-16, truncation, hostile tokens), random JSON, and hostile
payloads as a whole. What parses is planned against the sample state and written as the CLI
writes it (JSON and text), so the output stage is checked too.

Contract: ``parse_bytes`` returns findings and ignored records or raises ``PayloadError`` with one
line naming the source; planning never raises, every result's reason is one line; the JSON
output is one strict document.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from remediator.errors import PayloadError, RemediatorError
from remediator.findings.model import Finding, Ignored
from tests.fuzz.contract import Violation, one_line_error, strict_json
from tests.fuzz.strategies import JSON, Seeds, hostile_bytes, mutated, serialise

NAME = "findings"
SOURCE = "fuzz/payload.json"
ROOT = Path(__file__).resolve().parents[2]
_PLANNED = 8  # findings planned per example (the parser is the target; planning checks the output)


def _seeds() -> list[Any]:
    seeds: list[Any] = []
    folders = [ROOT / "tests" / "fixtures" / "defender", ROOT / "tests" / "fixtures" / "crafted",
               ROOT / "remediator" / "samples" / "findings"]
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix == ".json":
                seeds.append(json.loads(path.read_text(encoding="utf-8")))
            elif path.suffix == ".ndjson":
                lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
                seeds += [lines, *lines]
    return seeds


SEEDS = Seeds(_seeds())


def _batch(value: Any) -> Any:
    """Wrap what there is in a batch with a copy of a real record (cross-record effects)."""
    return {"records": [value, SEEDS[len(str(value)) % len(SEEDS)]]}


STRATEGY = st.one_of(
    mutated(SEEDS, extra=_batch).flatmap(serialise),
    mutated(SEEDS, extra=_batch, max_mutations=1).flatmap(serialise),
    JSON.flatmap(serialise),
    hostile_bytes(),
    mutated(SEEDS, max_mutations=2).map(json.dumps),  # text, as an HTTP body decoded already
)


@functools.cache
def _planner() -> Any:
    from remediator.app.paths import SHIPPED_PLAYBOOKS
    from remediator.azure.state import SavedState
    from remediator.planning.planner import Planner
    from remediator.playbooks import load_playbooks

    return Planner(playbooks=load_playbooks(SHIPPED_PLAYBOOKS),
                   state=SavedState.from_path(ROOT / "remediator" / "samples" / "state"))


def run(example: bytes | str) -> str | None:
    from remediator.app.cli.output import print_results
    from remediator.findings.parse import parse_bytes
    from remediator.planning.planner import fold

    try:
        records = parse_bytes(example, source=SOURCE)
    except PayloadError as exc:
        return one_line_error(str(exc), names=[SOURCE])
    for record in records:
        if not isinstance(record, Finding | Ignored):
            raise Violation(f"parse_bytes returned {type(record).__name__}")
        json.dumps(record.summary(), allow_nan=False)
        if isinstance(record, Ignored):
            one_line_error(record.reason, what="ignored reason")
    unique, folded = fold(records)
    results = _planner().plan(unique[:_PLANNED])
    for result in results:
        one_line_error(result.reason, what=f"{result.outcome} reason")
    for output in ("json", "text"):
        out = io.StringIO()
        try:
            print_results(results, output, out, folded=folded)
        except RemediatorError as exc:  # e.g. a number JSON cannot carry: refused whole, nothing written
            if out.getvalue():
                raise Violation("output written before the error") from None
            return one_line_error(str(exc))
        if output == "json":
            doc = strict_json(out.getvalue())
            if len(doc["results"]) != len(results):
                raise Violation("JSON output lost results")
    return None

"""``remediator scan``: the backlog from Resource Graph (or saved exports), planned or ingested.

``--dry-run`` prints the plan of the whole backlog exactly as ``remediator plan`` does (text or
JSON, exit 0 nothing to change / 2 changes / 1 an error), then a per-playbook summary table (in
JSON: a ``summary`` array beside ``results`` and ``duplicates_folded``: a finding reported more than
once, by one export or across ``--from-file`` files, is planned once, as ingest deduplicates it).
State is read in bulk from Resource Graph's ``resources`` table (``--resources`` reads saved
documents instead, offline), and read-only.

Without ``--dry-run`` the findings are ingested into the configured store, as if Defender had
pushed them (deduplicated by finding id, then planned by the worker: approval or auto-apply as
usual), and after a complete live scan the pending requests it no longer reports are withdrawn
(``Engine.reconcile``). The store is opened only then, after the scan succeeded; a scan that found
nothing creates no store.

``--from-file`` reads what users already export instead of querying: ``az graph query`` output,
``az policy state list`` / Policy Insights ``queryResults``, ``az security assessment list``, or
any payload ``remediator plan`` reads. A progress line goes to stderr when it is a terminal.

Live reads act as the executor identity in the settings' cloud (``inputs.reader_clients``); the
output goes through the writer every command shares (``output``: whole, strict JSON, narrow
encodings escaped).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import EXIT_OK, emit, exit_code, render_results, write_json
from remediator.errors import InputError, UsageError
from remediator.words import plural

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients
    from remediator.azure.graph import ScanResult
    from remediator.findings.model import Record
    from remediator.planning.result import Result

SUMMARY_COLUMNS = ("changes", "no_changes", "exempt", "error")


class ProgressLine:
    """One self-rewriting status line on a terminal; silent when the stream is not a TTY (piped)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self._width = 0

    def show(self, text: str, done: int | None = None, total: int | None = None) -> None:
        if not self.enabled:
            return
        if done is not None and total:
            filled = int(30 * done / total)
            text = f"{text} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,}"
        pad = max(self._width - len(text), 0)
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def summary_rows(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Per playbook (``(no playbook)`` for no_match/ignored): findings, and counts per outcome."""
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        by[r.playbook or "(no playbook)"][r.outcome] += 1
    rows = []
    for name in sorted(by, key=lambda n: (n == "(no playbook)", n)):
        counts = by[name]
        rows.append({"playbook": name, "findings": sum(counts.values()),
                     **{c: counts.get(c, 0) for c in (*SUMMARY_COLUMNS, "no_match", "ignored")}})
    return rows


def render_summary(rows: Sequence[dict[str, Any]]) -> str:
    headers = ("playbook", "findings", "changes", "no changes", "exempt", "error", "no match", "ignored")
    keys = ("playbook", "findings", *SUMMARY_COLUMNS, "no_match", "ignored")
    table = [headers, *[tuple(str(r[k]) for k in keys) for r in rows]]
    total = ("total", *(str(sum(int(r[k]) for r in rows)) for k in keys[1:]))
    table.append(total)
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(table):
        cells = [row[0].ljust(widths[0]), *(row[i].rjust(widths[i]) for i in range(1, len(row)))]
        lines.append("  ".join(cells).rstrip())
        if n == 0 or n == len(table) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def add_parser(sub: Any) -> None:
    sc = sub.add_parser("scan", help="the backlog from Azure Resource Graph (or saved exports): plan it or ingest it")
    sc.add_argument("--subscription", action="append", metavar="ID", help="subscription to scan (repeatable)")
    sc.add_argument("--management-group", metavar="ID", help="management group to scan (instead of subscriptions)")
    sc.add_argument("--dry-run", action="store_true",
                    help="print the plan of the whole backlog and a per-playbook summary; ingest nothing")
    sc.add_argument("--from-file", action="append", metavar="FILE",
                    help="read exported results instead of querying (az graph query, az policy state list, "
                         "az security assessment list, any finding payload); repeatable")
    sc.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or one JSON document")
    sc.add_argument("--resources", metavar="PATH", help="with --dry-run: saved ARM documents instead of live state")
    sc.add_argument("--playbooks", metavar="DIR", help="playbooks folder (default: ./playbooks or the shipped ones)")
    sc.add_argument("--exemptions", metavar="FILE", help="exemptions YAML file")
    sc.add_argument("--arm-endpoint", metavar="URL",
                    help="ARM endpoint (sovereign clouds); env REMEDIATOR_ARM_ENDPOINT")
    sc.add_argument("--protect", action="append", metavar="OBJECT_ID",
                    help="principal never touched (the bot's own identities; repeatable); env "
                         "REMEDIATOR_PROTECTED_PRINCIPALS")
    sc.add_argument("--config", metavar="FILE", help="settings YAML for ingesting (the store, playbooks)")
    sc.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO | None = None, *, clients: ArmClients | None = None,
        err: TextIO | None = None) -> int:
    """The ``scan`` command; ``clients``: the ARM clients to read with instead of the executor's."""
    if args.subscription and args.management_group:
        raise InputError("scan: give --subscription or --management-group, not both")
    progress = ProgressLine(err or sys.stderr)
    scan: ScanResult | None = None
    try:
        if args.from_file:
            records = _read_files(args.from_file, progress)
        else:
            scan = _live_scan(args, _clients(args, clients), progress)
            records = scan.records
            for problem in scan.problems:
                print(f"warning: {problem}", file=sys.stderr)
        if not args.dry_run:
            return _ingest(args, records, scan, out, clients=clients)
        from remediator.planning.planner import Planner, fold  # noqa: PLC0415
        from remediator.playbooks import load_exemptions  # noqa: PLC0415

        records, folded = fold(records)  # as ingest deduplicates (and as ``plan`` does): planned once
        playbooks = inputs.load_playbooks(args.playbooks)
        state = _state(args, records, clients, progress, scan)
        planner = Planner(playbooks=playbooks, state=state, protected_principals=inputs.protected(args),
                          exemptions=load_exemptions(args.exemptions) if args.exemptions else None,
                          settings=inputs.settings(args).for_actions(),
                          private_link=inputs.settings(args).private_link() if args.config else None)
        results: list[Result] = []
        for i, record in enumerate(records, 1):
            results.append(planner.plan_one(record))
            if i % 200 == 0 or i == len(records):
                progress.show("planning", i, len(records))
    finally:
        progress.close()
    rows = summary_rows(results)
    if args.output == "json":
        write_json(out, {"results": [r.to_json() for r in results], "duplicates_folded": folded, "summary": rows})
    else:
        emit(out, render_results(results, folded=folded) + "\n" + render_summary(rows))
    return exit_code(results)


def _clients(args: argparse.Namespace, given: ArmClients | None) -> ArmClients:
    return given if given is not None else inputs.reader_clients(args)


def _read_files(paths: Sequence[str], progress: ProgressLine) -> list[Record]:
    from remediator.findings.parse import parse_file  # noqa: PLC0415

    records: list[Record] = []
    for path in paths:
        progress.show(f"reading {path}")
        records.extend(parse_file(path))
    return records


def _live_scan(args: argparse.Namespace, clients: ArmClients, progress: ProgressLine) -> ScanResult:
    from remediator.azure.graph import Graph, Scope  # noqa: PLC0415

    scope = Scope(subscriptions=tuple(args.subscription or ()), management_group=args.management_group)
    return Graph(clients).scan(scope, progress=lambda name, rows: progress.show(f"Resource Graph {name}: "
                                                                                f"{rows:,} rows"))


def _state(args: argparse.Namespace, records: Sequence[Record], clients: ArmClients | None,
           progress: ProgressLine, scan: ScanResult | None = None) -> Any:
    from remediator.findings.model import Finding  # noqa: PLC0415

    if args.resources:
        from remediator.azure.state import SavedState  # noqa: PLC0415

        return SavedState.from_path(args.resources)
    from remediator.azure.graph import Graph, GraphState  # noqa: PLC0415
    from remediator.azure.reader import LiveState  # noqa: PLC0415

    live_clients = _clients(args, clients)
    state = GraphState(LiveState(live_clients), Graph(live_clients))
    if scan is not None:
        state.preload(scan.documents)  # the exemptions the scan read whole
    wanted = [r.resource_id for r in records if isinstance(r, Finding) and r.resource_type]
    progress.show(f"reading {plural(len(set(wanted)), 'resource', sep=',')} from Resource Graph")
    state.prefetch(wanted)
    return state


def _ingest(args: argparse.Namespace, records: Sequence[Record], scan: ScanResult | None, out: TextIO, *,
            clients: ArmClients | None) -> int:
    from remediator.app.wiring import build_engine  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    settings = inputs.settings(args)
    try:  # nothing found and no store yet: nothing to write and nothing to withdraw, so nothing is created
        store = open_store(settings.store_url, must_exist=not records)
    except UsageError:
        if args.output == "json":
            write_json(out, {"ingested": {}, "duplicates_folded": 0, "withdrawn": [],
                             "complete": scan.complete if scan is not None else None})
        else:
            emit(out, f"Nothing to ingest: the scan found no findings (store {settings.store_url} not created).\n")
        return EXIT_OK
    from remediator.planning.planner import fold  # noqa: PLC0415

    folded = fold(records)[1]  # what ingest's dedup by finding id folds: reported the same way as --dry-run
    engine = build_engine(settings, clients=clients, store=store)
    answers = engine.ingest(records, source="scan")
    withdrawn = engine.reconcile(scan) if scan is not None else []
    tally = Counter(a.outcome for a in answers)
    if args.output == "json":
        write_json(out, {"ingested": dict(sorted(tally.items())), "duplicates_folded": folded,
                         "withdrawn": [r.id for r in withdrawn],
                         "complete": scan.complete if scan is not None else None})
    else:
        from remediator.planning.render import outcome_count  # noqa: PLC0415

        parts = ", ".join(outcome_count(n, o) for o, n in sorted(tally.items())) or "nothing"
        lines = [f"Ingested {plural(len(answers), 'record')}: {parts}."
                 + (f" {plural(folded, 'duplicate')} folded (same finding id)." if folded else "")]
        if scan is not None:
            lines.append(f"Withdrawn: {len(withdrawn)} pending request{'s' if len(withdrawn) != 1 else ''} the scan "
                         "no longer reports." if scan.complete else "Nothing withdrawn: the scan was incomplete.")
        lines.append(f"The worker plans them (store {settings.store_url}): approval requests or auto-apply as usual.")
        emit(out, "\n".join(lines) + "\n")
    return EXIT_OK

"""``remediator report``: the evidence report of a period (``remediator.evidence``) as HTML with
charts, Markdown, CSV or JSON; exit 1 when the period's audit trail fails verification, 2 when
the store does not exist or a ``--control``/``--playbook`` filter matches no playbook (with the
closest names): a typo must not read as "no findings".
``--policy-snapshot`` reads Azure Policy compliance from Resource Graph as the executor identity
(``inputs.reader_clients``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import EXIT_ERROR, EXIT_OK
from remediator.errors import InputError
from remediator.words import plural


def add_parser(sub: Any) -> None:
    r = sub.add_parser("report", help="the evidence report of a period: HTML with charts, Markdown, CSV or JSON")
    r.add_argument("--from", dest="date_from", metavar="DATE", help="first day (YYYY-MM-DD)")
    r.add_argument("--to", dest="date_to", metavar="DATE", help="last day, included (YYYY-MM-DD)")
    r.add_argument("--period", metavar="PERIOD", help="instead of --from/--to: 2026-Q3, q3, last 30d, 2026-07")
    r.add_argument("--format", choices=("html", "md", "csv", "json"), default="html",
                   help="html with charts (default), md, csv or json")
    r.add_argument("--out", metavar="FILE", help="write the report here (default: standard output)")
    r.add_argument("--store", metavar="URL",
                   help="store URL or SQLite path (default: the configured store); refused when it does not exist")
    r.add_argument("--config", metavar="FILE", help="settings YAML (environment variables win); env REMEDIATOR_CONFIG")
    r.add_argument("--playbooks", metavar="DIR", help="playbooks folder (their controls; default: ./playbooks)")
    r.add_argument("--exemptions", metavar="FILE", help="also list this file's exemptions expiring in 30 days")
    r.add_argument("--playbook", action="append", metavar="GLOB", help="only these playbooks (repeatable)")
    r.add_argument("--control", action="append", metavar="CONTROL",
                   help="only playbooks serving this control or framework: 'MCSB NS-2', 'NIST-AI-RMF' (repeatable)")
    r.add_argument("--resource-type", action="append", metavar="TYPE",
                   help="only findings on this ARM type, e.g. Microsoft.CognitiveServices/accounts (repeatable)")
    r.add_argument("--policy-snapshot", action="store_true",
                   help="add Azure Policy compliance per assignment from Resource Graph (reads Azure)")
    r.add_argument("--subscription", action="append", metavar="ID", help="subscriptions for the policy snapshot")
    r.add_argument("--arm-endpoint", metavar="URL", help="ARM endpoint (sovereign clouds)")
    r.add_argument("--names", action="store_true", help=inputs.NAMES_HELP)
    r.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from remediator.evidence.period import between, parse_date, parse_period  # noqa: PLC0415
    from remediator.evidence.render import RENDERERS  # noqa: PLC0415
    from remediator.evidence.report import Filters, build_report, check_filters  # noqa: PLC0415
    from remediator.playbooks import load_exemptions  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    now = datetime.now(UTC)
    if args.period:
        if args.date_from or args.date_to:
            raise InputError("report: give --period or --from/--to, not both")
        period = parse_period(args.period, now=now)
    elif args.date_from and args.date_to:
        period = between(parse_date(args.date_from, "--from"), parse_date(args.date_to, "--to"))
    else:
        raise InputError("report: say which period: --from YYYY-MM-DD --to YYYY-MM-DD, or --period 2026-Q3")
    url = args.store or inputs.settings(args).store_url
    playbooks = inputs.load_playbooks(args.playbooks)
    filters = Filters(playbooks=tuple(args.playbook or ()), controls=tuple(args.control or ()),
                      resource_types=tuple(args.resource_type or ()))
    check_filters(filters, {p.name: p.controls for p in playbooks})
    store = open_store(url, must_exist=True)
    exemptions = list(load_exemptions(args.exemptions)) if args.exemptions else []
    graph = _graph(args) if args.policy_snapshot else None
    report = build_report(store, period, now=now, store_name=url, exemptions=exemptions, graph=graph,
                          subscriptions=tuple(args.subscription or ()),
                          playbook_controls={p.name: p.controls for p in playbooks},
                          filters=filters)
    text = _named(args, report, RENDERERS[args.format])
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise InputError(f"--out {args.out}: cannot write: {e.strerror or e}") from None
        totals = report.totals()
        out.write(f"{args.out}: {args.format} evidence report for {period.label}: "
                  f"{plural(totals['findings'], 'finding')}, {plural(totals['remediations'], 'remediation')}; "
                  f"{report.integrity.summary()}\n")
    else:
        out.write(text)
    return EXIT_OK if report.integrity.ok else EXIT_ERROR


def _named(args: argparse.Namespace, report: Any, render: Any) -> str:
    """``render(report)`` with names beside ids (``remediator.evidence.render``: every format escapes them as
    any other text; JSON keeps the ids and adds ``names``), looked up once for the whole report."""
    from remediator.evidence.render import to_json  # noqa: PLC0415
    from remediator.planning.names import naming  # noqa: PLC0415

    names = inputs.offline_names(args).resolve([to_json(report)])
    with naming(names):
        return str(render(report))


def _graph(args: argparse.Namespace) -> Any:
    """The Resource Graph client for the policy snapshot, or None when the SDK is not installed
    (the report then says why the snapshot is absent)."""
    try:
        import azure.mgmt.resourcegraph  # noqa: F401, PLC0415
    except ImportError:
        return None
    return inputs.reader_clients(args).resourcegraph()

"""The ``remediator`` command: validate, schema, plan, scan, demo, serve, audit.

Exit codes follow Terraform's plan: 2 changes are planned (even when another finding failed or a
warning names something that could not be checked), 1 an error and nothing planned (unreadable or
invalid input, invalid playbooks, findings that could not be planned), 0 nothing would change. Errors a
user can cause print one line on stderr naming the file and the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from remediator.errors import ConfigError, InputError, PlaybookError, RemediatorError

if TYPE_CHECKING:
    from remediator.azure.state import StateReader
    from remediator.config.settings import Settings
    from remediator.findings.model import Record
    from remediator.planning.result import Result
    from remediator.playbooks import PlaybookSet

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # remediator/
SHIPPED_PLAYBOOKS = PACKAGE_DIR.parent / "playbooks"
SAMPLES = PACKAGE_DIR / "samples"


def default_playbooks_dir() -> Path:
    """``./playbooks`` when run inside a checkout of one's own playbooks, else the shipped folder."""
    local = Path("playbooks")
    return local if local.is_dir() else SHIPPED_PLAYBOOKS


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _protected(args: argparse.Namespace) -> frozenset[str]:
    env = os.environ.get("REMEDIATOR_PROTECTED_PRINCIPALS", "")
    given = [p for p in env.split(",") if p.strip()] + list(args.protect or [])
    return frozenset(p.strip().lower() for p in given)


def _read_findings(paths: Sequence[str], stdin: TextIO) -> list[Record]:
    from remediator.findings.parse import parse_bytes, parse_file  # noqa: PLC0415

    records: list[Record] = []
    for p in paths:
        if p == "-":
            records.extend(parse_bytes(stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read(),
                                       source="<stdin>"))
        else:
            records.extend(parse_file(p))
    return records


def _state(args: argparse.Namespace) -> StateReader:
    if args.resources:
        from remediator.azure.state import SavedState  # noqa: PLC0415

        return SavedState.from_path(args.resources)
    from remediator.azure.clients import ArmClients  # noqa: PLC0415
    from remediator.azure.reader import LiveState  # noqa: PLC0415

    endpoint = args.arm_endpoint or os.environ.get("REMEDIATOR_ARM_ENDPOINT") or "https://management.azure.com"
    return LiveState(ArmClients(base_url=endpoint))


def _load_playbooks(directory: str | None) -> PlaybookSet:
    from remediator.playbooks import load_playbooks  # noqa: PLC0415

    return load_playbooks(Path(directory) if directory else default_playbooks_dir())


def _plan(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.planning.planner import Planner, fold  # noqa: PLC0415
    from remediator.playbooks import load_exemptions  # noqa: PLC0415

    playbooks = _load_playbooks(args.playbooks)
    exemptions = load_exemptions(args.exemptions) if args.exemptions else None
    if args.exemptions:
        _warn_exemptions(args.exemptions, playbooks)
    records, folded = fold(_read_findings(args.findings, stdin))
    planner = Planner(playbooks=playbooks, state=_state(args), exemptions=exemptions,
                      protected_principals=_protected(args))
    results = planner.plan(records)
    _print_results(results, args.output, out, folded=folded)
    return _exit_code(results)


def _print_results(results: Sequence[Result], output: str, out: TextIO, *, folded: int = 0) -> None:
    """The whole plan, built first and written at once: a failure leaves stdout empty, never cut off."""
    if output == "json":
        doc = {"results": [r.to_json() for r in results], "duplicates_folded": folded}
        _emit(out, _strict_json(doc, ensure_ascii=False), lambda: _strict_json(doc, ensure_ascii=True))
    else:
        from remediator.planning.render import render_plan  # noqa: PLC0415

        _emit(out, render_plan(results, folded=folded))


def _strict_json(value: object, *, ensure_ascii: bool) -> str:
    """``--output json`` is strict JSON: NaN or Infinity (only a live read could bring one) is an error."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=ensure_ascii, allow_nan=False) + "\n"
    except ValueError as e:
        raise RemediatorError(f"cannot write JSON: {e} (a resource holds NaN or Infinity, which strict JSON "
                              "does not allow); nothing was written") from None


def _emit(out: TextIO, text: str, ascii_text: Callable[[], str] | None = None) -> None:
    """Write ``text`` in one go. When the stream's encoding (``PYTHONIOENCODING=ascii``, a legacy
    console) cannot carry it, JSON is written ASCII-escaped (``ascii_text``), still valid and
    lossless, and other text with ``\\uXXXX`` escapes: never an error."""
    encoding = getattr(out, "encoding", None)
    if isinstance(encoding, str):
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            text = ascii_text() if ascii_text is not None else \
                text.encode(encoding, "backslashreplace").decode(encoding)
        except LookupError:
            pass
    out.write(text)
    out.flush()


def _exit_code(results: Sequence[Result]) -> int:
    """2 when any change is planned (even if another record failed or a warning says something was
    not checked: the changes stand and the output lists the rest); 1 when nothing could be planned
    and some record failed; 0 otherwise."""
    if any(r.outcome == "changes" for r in results):
        return EXIT_CHANGES
    return EXIT_ERROR if any(r.outcome == "error" for r in results) else EXIT_OK


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    from remediator.playbooks import load_playbooks, validate_exemptions  # noqa: PLC0415

    directory = Path(args.directory) if args.directory else default_playbooks_dir()
    try:
        playbooks = load_playbooks(directory)  # raises with every problem found, not just the first
    except PlaybookError as e:
        issues = list(e.issues)
    else:
        issues = validate_exemptions(args.exemptions) if args.exemptions else []
        if args.exemptions and not issues:
            _warn_exemptions(args.exemptions, playbooks)
    if issues:
        for issue in issues:
            print(issue, file=sys.stderr)
        print(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} in {_display(directory)}", file=sys.stderr)
        return EXIT_ERROR
    count = len(playbooks)
    _emit(out, f"{_display(directory)}: {count} playbook{'s' if count != 1 else ''} valid\n")
    return EXIT_OK


def _warn_exemptions(path: str, playbooks: PlaybookSet) -> None:
    """Exemptions that no longer apply, or name no playbook, are warnings (stderr), not errors."""
    from datetime import date  # noqa: PLC0415

    from remediator.playbooks import load_exemptions  # noqa: PLC0415

    exemptions = load_exemptions(path)
    for issue in exemptions.unknown_playbooks(playbooks.names):
        print(f"warning: {issue}", file=sys.stderr)
    for e in exemptions.expired(date.today()):
        print(f"warning: {e.file}:{e.line}: exemption for {e.resource} expired on {e.expires.isoformat()} "
              f"(owner {e.owner}): it no longer applies", file=sys.stderr)


def _schema(out: TextIO) -> int:
    from remediator.playbooks import json_schema  # noqa: PLC0415

    _emit(out, json.dumps(json_schema(), indent=2, allow_nan=False) + "\n")
    return EXIT_OK


def _demo(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.app.demo import run_demo  # noqa: PLC0415

    def ask(prompt: str) -> str:
        out.write(prompt)
        out.flush()
        line = stdin.readline()
        if not line:  # end of input: leave the rest pending
            out.write("(no answer: skipped)\n")
            return "s"
        return line

    return run_demo(out=out, approve_all=args.approve_all, ask=ask, playbooks_dir=args.playbooks,
                    store_path=args.store)


def _settings(args: argparse.Namespace) -> Settings:
    from remediator.config.settings import load_settings  # noqa: PLC0415

    return load_settings(file=args.config) if args.config else load_settings()


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    # The Slack side lives in bot/ (the only package that imports slack_bolt); loaded only for serve.
    from bot.chat import build_slack_engine  # noqa: PLC0415
    from bot.http import ingest_token_problem, serve  # noqa: PLC0415

    settings = _settings(args)
    ingest = not args.no_ingest
    if ingest and (problem := ingest_token_problem(settings.ingest_token)):  # fail closed: never an open ingest
        raise ConfigError(f"serve: {problem}")
    if not (settings.slack_bot_token and settings.slack_signing_secret and settings.slack_channel):
        raise ConfigError("serve needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and REMEDIATOR_SLACK_CHANNEL "
                          "(approvals happen in Slack; `remediator demo` runs the loop without Slack)")
    from remediator.telemetry import configure_from_env  # noqa: PLC0415

    configure_from_env()  # traces and metrics when APPLICATIONINSIGHTS_CONNECTION_STRING is set
    engine = build_slack_engine(settings)

    def ready(url: str) -> None:
        routes = "POST /api/findings (bearer token), /slack/events" if ingest else "POST /slack/events (ingest off)"
        out.write(f"remediator serving on {url} ({routes}; GET /health); Ctrl-C stops\n")
        out.flush()

    serve(engine, settings, args.host, args.port, worker=not args.no_worker, ingest=ingest,
          ingest_token=settings.ingest_token or None, ready=ready)
    return EXIT_OK


def _doctor(args: argparse.Namespace, out: TextIO) -> int:
    """The preflight (``remediator.app.doctor``): one line per check; 0 when all pass, 1 otherwise."""
    from remediator.app import doctor  # noqa: PLC0415
    from remediator.config.settings import load_settings  # noqa: PLC0415
    from remediator.playbooks import load_playbooks  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    checks, settings = doctor.check_settings(lambda: load_settings(os.environ, args.config))
    if settings is None:
        out.write(doctor.render(checks))
        return EXIT_ERROR

    def slack(s: Settings) -> list[doctor.Check]:
        from bot.doctor import check_slack  # noqa: PLC0415 (slack_sdk, not slack_bolt)

        return check_slack(s)

    executor, broker = _identities(settings)
    checks += doctor.preflight(settings, playbooks=lambda: doctor.check_playbooks(settings, load_playbooks),
                               store=lambda: doctor.check_store(settings, open_store), slack=slack,
                               executor=executor, broker=broker)
    out.write(doctor.render(checks))
    return EXIT_OK if doctor.passed(checks) else EXIT_ERROR


def _identities(settings: Settings) -> tuple[Any, Any]:
    """The executor's and the broker's ``ArmClients`` (azure.identity's DefaultAzureCredential: the
    executor through ``AZURE_CLIENT_ID``, the broker through ``REMEDIATOR_BROKER_CLIENT_ID``)."""
    from remediator.azure.clients import ArmClients  # noqa: PLC0415

    def credential(client_id: str | None) -> Any:
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415

        kwargs: dict[str, Any] = {"managed_identity_client_id": client_id} if client_id else {}
        if settings.authority_host:
            kwargs["authority"] = settings.authority_host
        return DefaultAzureCredential(**kwargs)

    executor = ArmClients(credential(os.environ.get("AZURE_CLIENT_ID")), base_url=settings.arm_endpoint)
    broker = ArmClients(credential(settings.broker_client_id), base_url=settings.arm_endpoint) \
        if settings.elevation == "pim-assign" else None
    return executor, broker


def _audit(args: argparse.Namespace, out: TextIO) -> int:
    from remediator.evidence.trail import audit_json, render_audit  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    url = args.store or _settings(args).store_url
    store = open_store(url)
    if args.remediation == "verify":  # remediation ids are 22 random characters, never this word
        return _verify(args, store, out)
    if args.remediation and store.get(args.remediation) is None:
        raise InputError(f"{url}: no remediation {args.remediation!r} (remediator audit without an id lists all)")
    events = store.audit_log(args.remediation)
    if args.output == "json":
        doc = audit_json(events)
        _emit(out, _strict_json(doc, ensure_ascii=False), lambda: _strict_json(doc, ensure_ascii=True))
    else:
        _emit(out, render_audit(events))
    return EXIT_OK


def _verify(args: argparse.Namespace, store: object, out: TextIO) -> int:
    """``remediator audit verify [--from D --to D]``: exit 0 when the trail is intact, 1 otherwise."""
    from remediator.evidence.period import between, parse_date  # noqa: PLC0415
    from remediator.evidence.verify import verify_store  # noqa: PLC0415

    start = end = None
    if args.date_from or args.date_to:
        period = between(parse_date(args.date_from or "1970-01-01", "--from"),
                         parse_date(args.date_to or "9999-12-30", "--to"))
        start, end = period.start, period.end
    result = verify_store(store, start=start, end=end)
    if args.output == "json":
        json.dump(result.to_json(), out, indent=2)
        out.write("\n")
    else:
        for problem in result.problems:
            out.write(problem.line() + "\n")
        if result.more_problems:
            out.write(f"… and {result.more_problems} more problems\n")
        out.write(result.summary() + "\n")
    return EXIT_OK if result.ok else EXIT_ERROR


def _report(args: argparse.Namespace, out: TextIO) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from remediator.evidence.period import between, parse_date, parse_period  # noqa: PLC0415
    from remediator.evidence.render import RENDERERS  # noqa: PLC0415
    from remediator.evidence.report import Filters, build_report  # noqa: PLC0415
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
    url = args.store or _settings(args).store_url
    store = open_store(url)
    playbooks = _load_playbooks(args.playbooks)
    exemptions = list(load_exemptions(args.exemptions)) if args.exemptions else []
    graph = _graph(args) if args.policy_snapshot else None
    report = build_report(store, period, now=now, store_name=url, exemptions=exemptions, graph=graph,
                          subscriptions=tuple(args.subscription or ()),
                          playbook_controls={p.name: p.controls for p in playbooks},
                          filters=Filters(playbooks=tuple(args.playbook or ()), controls=tuple(args.control or ()),
                                          resource_types=tuple(args.resource_type or ())))
    text = RENDERERS[args.format](report)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise InputError(f"--out {args.out}: cannot write: {e.strerror or e}") from None
        totals = report.totals()
        out.write(f"{args.out}: {args.format} evidence report for {period.label}: {totals['findings']} findings, "
                  f"{totals['remediations']} remediations; {report.integrity.summary()}\n")
    else:
        out.write(text)
    return EXIT_OK if report.integrity.ok else EXIT_ERROR


def _graph(args: argparse.Namespace) -> Any:
    """A Resource Graph client for the policy snapshot, or None when the SDK is not installed
    (the report then says why the snapshot is absent)."""
    try:
        from azure.mgmt.resourcegraph import ResourceGraphClient  # noqa: PLC0415
    except ImportError:
        return None
    from azure.identity import DefaultAzureCredential  # noqa: PLC0415

    endpoint = args.arm_endpoint or os.environ.get("REMEDIATOR_ARM_ENDPOINT") or "https://management.azure.com"
    return ResourceGraphClient(DefaultAzureCredential(), base_url=endpoint)


def _add_scan(sub: Any) -> None:
    sc = sub.add_parser("scan", help="the backlog from Azure Resource Graph (or saved exports): plan it or ingest it")
    sc.add_argument("--subscription", action="append", metavar="ID", help="subscription to scan (repeatable)")
    sc.add_argument("--management-group", metavar="ID", help="management group to scan (instead of subscriptions)")
    sc.add_argument("--dry-run", action="store_true",
                    help="print the plan of the whole backlog and a per-playbook summary; ingest nothing")
    sc.add_argument("--from-file", action="append", metavar="FILE",
                    help="read exported results instead of querying (az graph query, az policy state list, "
                         "az security assessment list, any finding payload); repeatable")
    sc.add_argument("--output", choices=("text", "json"), default="text")
    sc.add_argument("--resources", metavar="PATH", help="with --dry-run: saved ARM documents instead of live state")
    sc.add_argument("--playbooks", metavar="DIR")
    sc.add_argument("--exemptions", metavar="FILE")
    sc.add_argument("--arm-endpoint", metavar="URL",
                    help="ARM endpoint (sovereign clouds); env REMEDIATOR_ARM_ENDPOINT")
    sc.add_argument("--protect", action="append", metavar="OBJECT_ID")
    sc.add_argument("--config", metavar="FILE", help="settings YAML for ingesting (the store, playbooks)")


def _add_report(sub: Any) -> None:
    r = sub.add_parser("report", help="the evidence report of a period: HTML with charts, Markdown, CSV or JSON")
    r.add_argument("--from", dest="date_from", metavar="DATE", help="first day (YYYY-MM-DD)")
    r.add_argument("--to", dest="date_to", metavar="DATE", help="last day, included (YYYY-MM-DD)")
    r.add_argument("--period", metavar="PERIOD", help="instead of --from/--to: 2026-Q3, q3, last 30d, 2026-07")
    r.add_argument("--format", choices=("html", "md", "csv", "json"), default="html")
    r.add_argument("--out", metavar="FILE", help="write the report here (default: standard output)")
    r.add_argument("--store", metavar="URL", help="store URL or SQLite path (default: the configured store)")
    r.add_argument("--config", metavar="FILE")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediator", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("plan", help="show the exact changes playbooks would make for saved findings (never writes)")
    p.add_argument("findings", nargs="+", metavar="FINDING", help="payload file in any supported shape, or - for stdin")
    p.add_argument("--resources", metavar="PATH",
                   help="saved ARM documents (a JSON file or folder); without it, live state is read (read-only)")
    p.add_argument("--playbooks", metavar="DIR", help="playbooks folder (default: ./playbooks or the shipped ones)")
    p.add_argument("--exemptions", metavar="FILE", help="exemptions YAML file")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("--arm-endpoint", metavar="URL",
                   help="ARM endpoint for live reads (sovereign clouds); env REMEDIATOR_ARM_ENDPOINT")
    p.add_argument("--protect", action="append", metavar="OBJECT_ID",
                   help="principal never touched (the bot's own identities); env REMEDIATOR_PROTECTED_PRINCIPALS")

    _add_scan(sub)

    v = sub.add_parser("validate", help="check a playbooks folder; every problem as file:line: path: message")
    v.add_argument("directory", nargs="?", metavar="DIR")
    v.add_argument("--exemptions", metavar="FILE", help="also check an exemptions file against the playbooks")

    sub.add_parser("schema", help="print the JSON Schema of playbook files (for editors)")

    d = sub.add_parser("demo", help="the whole loop on the sample findings against simulated Azure (no Slack)")
    d.add_argument("--approve-all", action="store_true", help="approve every request instead of asking")
    d.add_argument("--playbooks", metavar="DIR")
    d.add_argument("--store", metavar="PATH", help="keep the SQLite store here (for remediator audit)")

    s = sub.add_parser("serve", help="run the HTTP endpoints locally: findings ingest, Slack, health")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.add_argument("--config", metavar="FILE", help="settings YAML (environment variables win); env REMEDIATOR_CONFIG")
    s.add_argument("--no-worker", action="store_true", help="do not run the queue worker in this process")
    s.add_argument("--no-ingest", action="store_true",
                   help="serve Slack and health only; POST /api/findings answers 404 (else REMEDIATOR_INGEST_TOKEN "
                        "is required)")

    c = sub.add_parser("doctor", help="preflight a deployment's settings, store, Slack, ARM and roles; 0 when all pass")
    c.add_argument("--config", metavar="FILE", help="settings YAML (environment variables win); env REMEDIATOR_CONFIG")

    a = sub.add_parser("audit", help="print the audit trail of one remediation, or of all")
    a.add_argument("remediation", nargs="?", metavar="ID")
    a.add_argument("--store", metavar="URL", help="store URL or SQLite path (default: the configured store)")
    a.add_argument("--config", metavar="FILE")
    a.add_argument("--output", choices=("text", "json"), default="text")
    a.add_argument("--from", dest="date_from", metavar="DATE", help="audit verify: report problems from this day")
    a.add_argument("--to", dest="date_to", metavar="DATE", help="audit verify: up to this day (included)")

    _add_report(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.command == "plan":
            return _plan(args, out, stdin or sys.stdin)
        if args.command == "scan":
            from remediator.app.scan import run  # noqa: PLC0415

            if args.subscription and args.management_group:
                raise InputError("scan: give --subscription or --management-group, not both")
            return run(args, out)
        if args.command == "validate":
            return _validate(args, out)
        if args.command == "schema":
            return _schema(out)
        if args.command == "serve":
            return _serve(args, out)
        if args.command == "audit":
            return _audit(args, out)
        if args.command == "doctor":
            return _doctor(args, out)
        if args.command == "report":
            return _report(args, out)
        return _demo(args, out, stdin or sys.stdin)
    except PlaybookError as e:
        for issue in e.issues or [str(e)]:
            print(f"error: {issue}", file=sys.stderr)
        return EXIT_ERROR
    except RemediatorError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("REMEDIATOR_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {e} (set REMEDIATOR_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR

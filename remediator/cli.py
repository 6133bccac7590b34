"""The ``remediator`` command: validate, schema, plan, scan, demo, serve, audit.

Exit codes follow Terraform's plan: 0 nothing would change, 2 changes are planned, 1 an error
(unreadable or invalid input, invalid playbooks, a finding that could not be planned). Errors a
user can cause print one line on stderr naming the file and the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from remediator.errors import ConfigError, InputError, PlaybookError, RemediatorError

if TYPE_CHECKING:
    from remediator.config import Settings
    from remediator.model import Record
    from remediator.plan import Result
    from remediator.playbooks import PlaybookSet
    from remediator.state import StateReader

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
PACKAGE_DIR = Path(__file__).resolve().parent
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
    from remediator.findings import parse_bytes, parse_file  # noqa: PLC0415

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
        from remediator.state import SavedState  # noqa: PLC0415

        return SavedState.from_path(args.resources)
    from remediator.azure.clients import ArmClients  # noqa: PLC0415
    from remediator.azure.reader import LiveState  # noqa: PLC0415

    endpoint = args.arm_endpoint or os.environ.get("REMEDIATOR_ARM_ENDPOINT") or "https://management.azure.com"
    return LiveState(ArmClients(base_url=endpoint))


def _load_playbooks(directory: str | None) -> PlaybookSet:
    from remediator.playbooks import load_playbooks  # noqa: PLC0415

    return load_playbooks(Path(directory) if directory else default_playbooks_dir())


def _plan(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.planner import Planner  # noqa: PLC0415
    from remediator.playbooks import load_exemptions  # noqa: PLC0415

    playbooks = _load_playbooks(args.playbooks)
    exemptions = load_exemptions(args.exemptions) if args.exemptions else None
    if args.exemptions:
        _warn_exemptions(args.exemptions, playbooks)
    records = _read_findings(args.findings, stdin)
    planner = Planner(playbooks=playbooks, state=_state(args), exemptions=exemptions,
                      protected_principals=_protected(args))
    results = planner.plan(records)
    _print_results(results, args.output, out)
    return _exit_code(results)


def _print_results(results: Sequence[Result], output: str, out: TextIO) -> None:
    if output == "json":
        json.dump({"results": [r.to_json() for r in results]}, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        from remediator.render import render_plan  # noqa: PLC0415

        out.write(render_plan(results))


def _exit_code(results: Sequence[Result]) -> int:
    if any(r.outcome == "error" for r in results):
        return EXIT_ERROR
    return EXIT_CHANGES if any(r.outcome == "changes" for r in results) else EXIT_OK


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
    out.write(f"{_display(directory)}: {count} playbook{'s' if count != 1 else ''} valid\n")
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

    json.dump(json_schema(), out, indent=2)
    out.write("\n")
    return EXIT_OK


def _demo(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.demo import run_demo  # noqa: PLC0415

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
    from remediator.config import load_settings  # noqa: PLC0415

    return load_settings(file=args.config) if args.config else load_settings()


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    # The Slack side lives in bot/ (the only package that imports slack_bolt); loaded only for serve.
    from bot.chat import build_slack_engine  # noqa: PLC0415
    from bot.http import serve  # noqa: PLC0415

    settings = _settings(args)
    if not (settings.slack_bot_token and settings.slack_signing_secret and settings.slack_channel):
        raise ConfigError("serve needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and REMEDIATOR_SLACK_CHANNEL "
                          "(approvals happen in Slack; `remediator demo` runs the loop without Slack)")
    engine = build_slack_engine(settings)

    def ready(url: str) -> None:
        out.write(f"remediator serving on {url} (POST /api/findings, /slack/events; GET /health); Ctrl-C stops\n")
        out.flush()

    serve(engine, settings, args.host, args.port, worker=not args.no_worker, ready=ready)
    return EXIT_OK


def _audit(args: argparse.Namespace, out: TextIO) -> int:
    from remediator.audit import audit_json, render_audit  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    url = args.store or _settings(args).store_url
    store = open_store(url)
    if args.remediation and store.get(args.remediation) is None:
        raise InputError(f"{url}: no remediation {args.remediation!r} (remediator audit without an id lists all)")
    events = store.audit_log(args.remediation)
    if args.output == "json":
        json.dump(audit_json(events), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(render_audit(events))
    return EXIT_OK


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

    a = sub.add_parser("audit", help="print the audit trail of one remediation, or of all")
    a.add_argument("remediation", nargs="?", metavar="ID")
    a.add_argument("--store", metavar="URL", help="store URL or SQLite path (default: the configured store)")
    a.add_argument("--config", metavar="FILE")
    a.add_argument("--output", choices=("text", "json"), default="text")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.command == "plan":
            return _plan(args, out, stdin or sys.stdin)
        if args.command == "scan":
            from remediator.scan import run  # noqa: PLC0415

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

"""``remediator audit [ID]``: the trail of one remediation, or of all; ``remediator audit verify
[--from D --to D]``: check the hash chains (exit 0 intact, 1 otherwise). A store that does not
exist is refused (exit 2), never created: an empty new store would verify as complete."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import EXIT_ERROR, EXIT_OK, emit, write_json
from remediator.errors import InputError


def add_parser(sub: Any) -> None:
    a = sub.add_parser("audit", help="print the audit trail (of one remediation, or of all); "
                                     "`audit verify` checks it is complete and unaltered",
                       description="remediator audit [ID]: the trail, one line per event "
                                   "(ID: a remediation id or its first 4+ characters). "
                                   "remediator audit verify [--from DATE] [--to DATE]: check the hash chains "
                                   "(each from its genesis record, no gaps, every remediation accounted for).")
    a.add_argument("remediation", nargs="?", metavar="ID|verify",
                   help="a remediation id: its trail only (default: every remediation); or the word verify: "
                        "check the hash chains are complete and unaltered (exit 0 intact, 1 otherwise)")
    a.add_argument("--store", metavar="URL",
                   help="store URL or SQLite path (default: the configured store); refused when it does not exist")
    a.add_argument("--config", metavar="FILE", help="settings YAML (environment variables win); env REMEDIATOR_CONFIG")
    a.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")
    a.add_argument("--brief", action="store_true",
                   help="text: per remediation its life on one line and each write on one (grant, write, "
                        "release, verify), as remediator demo prints it")
    a.add_argument("--names", action="store_true", help=inputs.NAMES_HELP)
    a.add_argument("--from", dest="date_from", metavar="DATE", help="audit verify: report problems from this day")
    a.add_argument("--to", dest="date_to", metavar="DATE", help="audit verify: up to this day (included)")
    a.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.evidence.trail import audit_json, render_audit  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    url = args.store or inputs.settings(args).store_url
    store = open_store(url, must_exist=True)
    if args.remediation == "verify":  # remediation ids are 22 random characters, never this word
        return _verify(args, store, out)
    if args.remediation and store.get(args.remediation) is None:
        args.remediation = _by_prefix(store, url, args.remediation)
    events = store.audit_log(args.remediation)
    # names beside ids, looked up once for the whole trail: the human view shows them, JSON adds them
    from remediator.lifecycle.naming import names_for  # noqa: PLC0415
    from remediator.planning.names import naming  # noqa: PLC0415

    ids = dict.fromkeys(e.remediation_id for e in events if e.remediation_id)
    rems = {rid: rem for rid in ids if (rem := store.get(rid)) is not None}
    texts = [json.dumps(e.detail, default=str, ensure_ascii=False) for e in events]
    names = names_for(inputs.offline_names(args), list(rems.values()), texts=texts)
    if args.output == "json":
        doc = audit_json(events)
        if names:
            doc["names"] = names.to_json(texts)
        write_json(out, doc)
        return EXIT_OK
    if args.brief:
        from remediator.app.briefs import trail_lines  # noqa: PLC0415

        with naming(names):
            emit(out, "".join(line + "\n" for line in trail_lines(events, rems)) or "(no audit events)\n")
    else:
        emit(out, names.annotate(render_audit(events)))
    return EXIT_OK


MIN_PREFIX = 4


def _by_prefix(store: Any, url: str, given: str) -> str:
    """The one remediation whose id starts with ``given`` (at least ``MIN_PREFIX`` characters, as git
    takes a short commit id); an ``InputError`` naming the candidates when it is ambiguous or none."""
    candidates: list[str] = sorted(rid for rid, _ in store.remediation_states() if rid.startswith(given)) \
        if len(given) >= MIN_PREFIX else []
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        shown = ", ".join(candidates[:5]) + (f" and {len(candidates) - 5} more" if len(candidates) > 5 else "")
        raise InputError(f"{url}: {given!r} is the start of {len(candidates)} remediation ids ({shown}); "
                         "give more characters")
    raise InputError(f"{url}: no remediation {given!r} (an id or its first {MIN_PREFIX}+ characters; "
                     "remediator audit without an id lists all)")


def _verify(args: argparse.Namespace, store: object, out: TextIO) -> int:
    from remediator.evidence.period import between, parse_date  # noqa: PLC0415
    from remediator.evidence.verify import verify_store  # noqa: PLC0415

    start = end = None
    if args.date_from or args.date_to:
        period = between(parse_date(args.date_from or "1970-01-01", "--from"),
                         parse_date(args.date_to or "9999-12-30", "--to"))
        start, end = period.start, period.end
    result = verify_store(store, start=start, end=end)
    if args.output == "json":
        write_json(out, result.to_json())
    else:
        lines = [problem.line() + "\n" for problem in result.problems]
        if result.more_problems:
            lines.append(f"… and {result.more_problems} more problems\n")
        emit(out, "".join(lines) + result.summary() + "\n")
    return EXIT_OK if result.ok else EXIT_ERROR

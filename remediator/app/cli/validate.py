"""``remediator validate``: check a playbooks folder (and an exemptions file); every problem as
``file:line: path: message`` on stderr, exit 1; else one line on stdout, exit 0."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import EXIT_ERROR, EXIT_OK, emit
from remediator.app.paths import playbooks_dir
from remediator.errors import PlaybookError


def add_parser(sub: Any) -> None:
    v = sub.add_parser("validate", help="check a playbooks folder; every problem as file:line: path: message")
    v.add_argument("directory", nargs="?", metavar="DIR",
                   help="playbooks folder to check (default: ./playbooks, else the shipped ones)")
    v.add_argument("--exemptions", metavar="FILE", help="also check an exemptions file against the playbooks")
    v.set_defaults(run=run, collect=False)  # no cyclic GC: see main()


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.playbooks import load_playbooks, validate_exemptions  # noqa: PLC0415

    directory = playbooks_dir(args.directory)
    try:
        playbooks = load_playbooks(directory)  # raises with every problem found, not just the first
    except PlaybookError as e:
        issues = list(e.issues)
    else:
        issues = validate_exemptions(args.exemptions) if args.exemptions else []
        if args.exemptions and not issues:
            inputs.warn_exemptions(args.exemptions, playbooks)
    if issues:
        for issue in issues:
            print(issue, file=sys.stderr)
        print(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} in {inputs.display(directory)}",
              file=sys.stderr)
        return EXIT_ERROR
    count = len(playbooks)
    emit(out, f"{inputs.display(directory)}: {count} playbook{'s' if count != 1 else ''} valid\n")
    return EXIT_OK

"""``remediator demo``: the whole loop on the sample findings against simulated Azure, no Slack
(``remediator.app.demo``); approvals are asked at the terminal unless ``--approve-all``."""

from __future__ import annotations

import argparse
from typing import Any, TextIO


def add_parser(sub: Any) -> None:
    d = sub.add_parser("demo", help="the whole loop on the sample findings against simulated Azure (no Slack)")
    d.add_argument("--approve-all", action="store_true", help="approve every request instead of asking")
    d.add_argument("--playbooks", metavar="DIR", help="playbooks folder (default: the shipped ones)")
    d.add_argument("--store", metavar="PATH", help="keep the SQLite store here (for remediator audit)")
    d.add_argument("--graph-unreachable", action="store_true",
                   help="run with the simulated Microsoft Graph down: ids instead of names, and one warning")
    d.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.app.console import EndOfInput  # noqa: PLC0415
    from remediator.app.demo import run_demo  # noqa: PLC0415

    def ask(prompt: str) -> str:
        out.write(prompt)
        out.flush()
        line = stdin.readline()
        if not line:  # end of input (Ctrl-D, a closed pipe): the rest stays pending
            raise EndOfInput
        if not getattr(stdin, "isatty", lambda: False)():
            out.write(line if line.endswith("\n") else line + "\n")  # piped answers echoed, as a terminal shows them
        return line

    return run_demo(out=out, approve_all=args.approve_all, ask=ask, playbooks_dir=args.playbooks,
                    store_path=args.store, graph_unreachable=args.graph_unreachable)

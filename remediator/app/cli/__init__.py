"""The ``remediator`` command: validate, schema, plan, scan, demo, serve, doctor, audit, report.

One module per command (``plan``, ``scan``, ``validate``, ``schema``, ``demo``, ``serve``,
``doctor``, ``audit``, ``report``), each with ``add_parser(sub)`` (its arguments) and
``run(args, out, stdin) -> int``; what they share is in ``inputs`` (findings, playbooks, settings,
Azure for live reads) and ``output`` (the whole-output, strict-JSON writer and the exit codes).
Every module imports its heavy parts inside ``run``, so ``remediator --help`` loads no SDK.

Exit codes follow Terraform's plan: 2 changes are planned (even when another finding failed or a
warning names something that could not be checked), 1 an error and nothing planned (unreadable or
invalid input, invalid playbooks, findings that could not be planned), 0 nothing would change. Errors a
user can cause print one line on stderr naming the file and the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from remediator.app.cli import audit, demo, doctor, plan, report, scan, schema, serve, validate
from remediator.app.cli.output import EXIT_ERROR
from remediator.errors import PlaybookError, RemediatorError

COMMANDS = (plan, scan, validate, schema, demo, serve, doctor, audit, report)  # the order of --help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediator", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    # A short command whose garbage is bounded by its input and which holds no resource that only a
    # collection would close (``set_defaults(collect=False)``: validate) runs without the cyclic
    # garbage collector: its passes over the objects that importing pydantic and the actions creates
    # cost about 7% of such a run. Run as the process's command (no ``argv``: the console script,
    # ``python -m remediator``), which exits right after, it also freezes them: the interpreter's exit
    # would otherwise collect them all once more, ~50 ms, a fifth of a ``validate``.
    pause = not getattr(args, "collect", True) and gc.isenabled()
    if pause:
        gc.disable()
    try:
        code: int = args.run(args, out, stdin or sys.stdin)
        return code
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
    finally:
        if pause:
            if argv is None:
                gc.freeze()
            gc.enable()

"""The ``remediator`` command: validate, schema, plan, scan, coverage, demo, serve, doctor, audit, report.

One module per command (``plan``, ``scan``, ``validate``, ``schema``, ``demo``, ``serve``,
``doctor``, ``audit``, ``report``), each with ``add_parser(sub)`` (its arguments) and
``run(args, out, stdin) -> int``; what they share is in ``inputs`` (findings, playbooks, settings,
Azure for live reads) and ``output`` (the whole-output, strict-JSON writer and the exit codes).
Every module imports its heavy parts inside ``run``, so ``remediator --help`` loads no SDK.

Exit codes follow Terraform's plan: 2 changes are planned (even when another finding failed or a
warning names something that could not be checked), 1 an error and nothing planned (unreadable or
invalid input, invalid playbooks, findings that could not be planned), 0 nothing would change. Errors a
user can cause print one line on stderr naming the file and the problem, never a traceback.
``--verbose`` (before or after the command) adds the detail: log lines, azure.identity's account of
each credential it tried, and the traceback of an error; without it azure.identity's warnings are
silenced (the error line already says what was tried and how to log in).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from remediator.app.cli import audit, coverage, demo, doctor, plan, report, scan, schema, serve, validate
from remediator.app.cli.output import EXIT_ERROR, EXIT_USAGE
from remediator.errors import ConfigError, PlaybookError, RemediatorError, UsageError, one_line

COMMANDS = (plan, scan, coverage, validate, schema, demo, serve, doctor, audit, report)  # the order of --help

DESCRIPTION = ("Remediation bot for Azure: Defender and Azure Policy findings -> YAML playbooks -> the exact "
               "change -> approved in Slack -> applied under a PIM grant scoped to the resource.")
EPILOG = ("`remediator COMMAND --help` shows a command's options. Start with `remediator demo --approve-all` "
          "(no Azure, no Slack needed); deploying: docs/deploy.md.")


def version() -> str:
    """The installed package's version (its metadata), or the source tree's ``pyproject.toml`` one."""
    from importlib.metadata import PackageNotFoundError  # noqa: PLC0415
    from importlib.metadata import version as installed  # noqa: PLC0415

    try:
        return installed("remediator")
    except PackageNotFoundError:  # run from a source tree that was never installed
        import tomllib  # noqa: PLC0415
        from pathlib import Path  # noqa: PLC0415

        pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown (not installed)"


class _Version(argparse.Action):
    """``--version``, read only when asked (importing the metadata machinery costs ~20 ms per command)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        sys.stdout.write(f"remediator {version()}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediator", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--verbose", "-v", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands", help="one of:")
    for command in COMMANDS:
        command.add_parser(sub)
    for command_parser in sub.choices.values():  # `remediator plan … --verbose` works too
        command_parser.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS,
                                    help=VERBOSE_HELP)
    return parser


VERBOSE_HELP = "show the detail behind an error: log lines, each Azure credential tried, the traceback"


def configure_logging(verbose: bool) -> None:
    """Verbose: INFO and above on stderr (Azure's per-request lines stay at WARNING). Otherwise only
    what the commands print, and azure.identity's multi-line credential warnings not at all."""
    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
        logging.getLogger("azure.identity").setLevel(logging.NOTSET)
    else:
        logging.getLogger("azure.identity").setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    configure_logging(verbose)
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
    except Exception as e:
        if verbose:  # the detail first, the one line last
            traceback.print_exception(e, file=sys.stderr)
        return _failed(e)
    except KeyboardInterrupt:
        return 130
    finally:
        if pause:
            if argv is None:
                gc.freeze()
            gc.enable()


def _failed(e: Exception) -> int:
    """One line per problem on stderr, and the exit code."""
    if isinstance(e, PlaybookError | ConfigError):  # every problem at once, one line each
        problems = e.issues if isinstance(e, PlaybookError) else e.problems
        for problem in problems or (str(e),):
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(e, RemediatorError):
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, UsageError) else EXIT_ERROR
    if os.environ.get("REMEDIATOR_DEBUG"):  # a bug, not bad input: one line, the traceback on request
        raise e
    print(f"internal error: {type(e).__name__}: {one_line(e)} (--verbose or REMEDIATOR_DEBUG=1 for the traceback)",
          file=sys.stderr)
    return EXIT_ERROR

"""``remediator validate``: check playbooks (folders or files, as an overlay of the shipped ones),
an exemptions file, and with ``--config`` the deployment's approver roles; every problem as
``file:line: path: message`` on stderr, exit 1; else one line on stdout, exit 0.

A folder or file that is not the shipped folder is validated as ``serve`` loads it: over the
shipped playbooks (same name: replaces; ``name`` + ``enabled: false``: disables; else added), so
a collision with a shipped playbook is found here, not at start. Disabled playbooks are listed.
Without ``--config`` the approver roles cannot be checked (they are the deployment's); with it,
a role no setting maps is an error naming the playbook and the role.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import EXIT_ERROR, EXIT_OK, emit
from remediator.app.paths import SHIPPED_PLAYBOOKS, playbooks_dir
from remediator.errors import Issue, PlaybookError

if TYPE_CHECKING:
    from remediator.playbooks.match import PlaybookSet


def add_parser(sub: Any) -> None:
    v = sub.add_parser("validate", help="check playbooks (folders or files); every problem as file:line: path: message")
    v.add_argument("paths", nargs="*", metavar="PATH",
                   help="playbook folders or files (default: ./playbooks, else the shipped ones); checked as an "
                        "overlay of the shipped playbooks")
    v.add_argument("--exemptions", metavar="FILE", help="also check an exemptions file against the playbooks")
    v.add_argument("--config", metavar="FILE",
                   help="settings YAML: also check that every approver role is mapped (approver_roles)")
    v.set_defaults(run=run, collect=False)  # no cyclic GC: see main()


def full_load(paths: list[Path]) -> PlaybookSet:
    """The full loader (pydantic and the actions): every problem, worded, as ``PlaybookError``."""
    from remediator.playbooks import load_playbooks  # noqa: PLC0415

    return load_playbooks(paths, base=SHIPPED_PLAYBOOKS)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.playbooks.fastcheck import quick_load  # noqa: PLC0415

    paths = [Path(p) for p in args.paths] or [playbooks_dir(None)]
    shown = ", ".join(inputs.display(p) for p in paths)
    issues: list[Issue] = []
    # The fast path (no pydantic, no actions imported) answers when everything is certainly valid;
    # on any doubt the full loader runs and words every problem (remediator.playbooks.fastcheck).
    quick = None if args.exemptions or args.config else quick_load(paths, base=SHIPPED_PLAYBOOKS)
    if quick is not None:
        playbooks = quick
    else:
        try:
            playbooks = full_load(paths)
        except PlaybookError as e:
            issues = list(e.issues)
    if not issues:
        if args.exemptions:
            from remediator.playbooks import validate_exemptions  # noqa: PLC0415

            issues = validate_exemptions(args.exemptions)
        if args.config:
            from remediator.config.roles import role_issues  # noqa: PLC0415
            from remediator.config.settings import load_settings  # noqa: PLC0415

            issues += role_issues(playbooks, load_settings(file=args.config).approver_roles)
        if args.exemptions and not issues:
            inputs.warn_exemptions(args.exemptions, playbooks)
    if issues:
        for issue in issues:
            print(issue, file=sys.stderr)
        print(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} in {shown}", file=sys.stderr)
        return EXIT_ERROR
    count = len(playbooks)
    lines = [f"{shown}: {count} playbook{'s' if count != 1 else ''} valid"]
    if playbooks.overlay is not None:
        o = playbooks.overlay
        parts = [f"{label} {', '.join(names)}" for label, names in
                 (("adds", o.added), ("overrides", o.overridden), ("disables", o.disabled)) if names]
        lines[0] += f" (over the shipped playbooks: {'; '.join(parts) or 'no changes'})"
    by = dict(playbooks.overlay.disabled_by) if playbooks.overlay is not None else {}
    for pb in playbooks.disabled:
        where = f"by {by[pb.name]}" if pb.name in by else f"{inputs.display(Path(pb.file))}:{pb.line}"
        lines.append(f"  disabled: {pb.name} ({where}) claims nothing")
    roles = sorted({r for pb in playbooks for r in pb.approval.roles})
    if roles:
        checked = "all mapped" if args.config else "map each in approver_roles; --config FILE checks it"
        lines.append(f"  approver roles: {', '.join(roles)} ({checked})")
    emit(out, "\n".join(lines) + "\n")
    return EXIT_OK

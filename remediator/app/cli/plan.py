"""``remediator plan``: the exact changes playbooks would make for saved findings (never writes).

State comes from ``--resources`` (saved ARM documents, offline) or is read live and read-only as
the executor identity (``inputs.reader_clients``). ``--config FILE`` (or ``REMEDIATOR_CONFIG``) reads the
settings file that ``serve`` and the Functions app read, offline, the environment winning: where resource
logs go (``diagnostics_workspace_id``), and the ``private_link_subnets`` and ``private_dns_zones`` with
which the network fixes plan a private endpoint before closing public access. Output and exit codes:
``output``.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import exit_code, print_results, warn

if TYPE_CHECKING:
    from remediator.actions.private_link_table import PrivateLinkSettings
    from remediator.azure.state import StateReader
    from remediator.config.settings import Settings
    from remediator.planning.names import NameResolver


def add_parser(sub: Any) -> None:
    p = sub.add_parser("plan", help="show the exact changes playbooks would make for saved findings (never writes)")
    p.add_argument("findings", nargs="+", metavar="FINDING", help="payload file in any supported shape, or - for stdin")
    p.add_argument("--resources", metavar="PATH",
                   help="saved ARM documents (a JSON file or folder); without it, live state is read (read-only)")
    p.add_argument("--definitions", metavar="PATH",
                   help="saved Azure Policy definitions (az policy definition show/list output, a file or folder), "
                        "read before live state or --resources: what policy.apply-modify plans from")
    p.add_argument("--playbooks", metavar="DIR",
                   help="your playbooks folder or file, an overlay of the shipped ones: same name replaces, "
                        "enabled: false disables (default: ./playbooks or the shipped ones)")
    p.add_argument("--exemptions", metavar="FILE", help="exemptions YAML file")
    p.add_argument("--output", choices=("text", "json"), default="text",
                   help="text: a Terraform-like plan (default); json: one document (the contract above)")
    p.add_argument("--arm-endpoint", metavar="URL",
                   help="ARM endpoint for live reads (sovereign clouds); env REMEDIATOR_ARM_ENDPOINT")
    p.add_argument("--config", metavar="FILE",
                   help="settings YAML (as serve reads it; environment variables win): private_link_subnets and "
                        "private_dns_zones let the network fixes plan a private endpoint first, "
                        "diagnostics_workspace_id is where resource logs go; env REMEDIATOR_CONFIG")
    p.add_argument("--no-names", action="store_true",
                   help="show ids only: no display names of principals (Microsoft Graph, live plans) or policy "
                        "definitions (the catalog, ARM)")
    p.add_argument("--protect", action="append", metavar="OBJECT_ID",
                   help="principal never touched (the bot's own identities); env REMEDIATOR_PROTECTED_PRINCIPALS")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO, *, state: StateReader | None = None,
        names: NameResolver | None = None) -> int:
    """``state``: a state reader to plan against instead of ``--resources`` or live reads; ``names``: the
    name lookups instead of those the settings make (tests: a resolver on the fake Graph)."""
    from remediator.planning.planner import Planner, fold  # noqa: PLC0415
    from remediator.playbooks import load_exemptions  # noqa: PLC0415

    playbooks = inputs.load_playbooks(args.playbooks)
    exemptions = load_exemptions(args.exemptions) if args.exemptions else None
    if args.exemptions:
        inputs.warn_exemptions(args.exemptions, playbooks)
    records, folded = fold(inputs.read_findings(args.findings, stdin))
    reader = state if state is not None else _state(args)
    if getattr(args, "definitions", None):
        from remediator.azure.definitions import WithDefinitions, load_definitions  # noqa: PLC0415

        reader = WithDefinitions(reader, load_definitions(args.definitions))
    settings = inputs.settings(args)  # the deployment settings the plans read, offline (--config, environment)
    planner = Planner(playbooks=playbooks, state=reader, exemptions=exemptions,
                      protected_principals=inputs.protected(args), settings=settings.for_actions(),
                      private_link=_private_link(args))
    results = planner.plan(records)
    if names is None:
        names = _names(args, settings, reader, live=state is None)
    print_results(results, args.output, out, folded=folded, names=names)
    return exit_code(results)


def _names(args: argparse.Namespace, settings: Settings, reader: StateReader, *, live: bool) -> NameResolver | None:
    """Names beside ids: built-in policy definitions from the catalog, others from the state reader;
    principals from Microsoft Graph only for a live plan (``--resources`` is offline); ``--no-names``: none."""
    if getattr(args, "no_names", False):
        return None
    from remediator.app.wiring import name_resolver  # noqa: PLC0415
    from remediator.planning.names import NameResolver  # noqa: PLC0415

    if live and not args.resources:
        return name_resolver(settings, definitions=reader, report=warn)
    return NameResolver(definitions=reader, report=warn)


def _state(args: argparse.Namespace) -> StateReader:
    if args.resources:
        from remediator.azure.state import SavedState  # noqa: PLC0415

        return SavedState.from_path(args.resources)
    from remediator.azure.reader import LiveState  # noqa: PLC0415

    return LiveState(inputs.reader_clients(args))


_PRIVATE_LINK_ENV = ("REMEDIATOR_CONFIG", "REMEDIATOR_PRIVATE_LINK_SUBNETS", "REMEDIATOR_PRIVATE_DNS_ZONES")


def _private_link(args: argparse.Namespace) -> PrivateLinkSettings | None:
    """The private-link settings of ``--config`` (or of the environment's settings), None without them."""
    if not (args.config or any(os.environ.get(v) for v in _PRIVATE_LINK_ENV)):
        return None
    return inputs.settings(args).private_link()

"""What the commands read: findings, playbooks, exemptions, settings, and Azure for live reads.

Live reads (``plan`` without ``--resources``, ``scan``, ``report --policy-snapshot``) act as the
executor identity in the settings' cloud, through ``remediator.app.wiring.azure_wiring``, exactly
as ``serve``, ``doctor`` and the Functions app do; ``--arm-endpoint`` overrides the settings' ARM
endpoint (``REMEDIATOR_ARM_ENDPOINT``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from remediator.app.paths import SHIPPED_PLAYBOOKS, playbooks_dir

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients
    from remediator.config.settings import Settings
    from remediator.findings.model import Record
    from remediator.planning.names import NameResolver
    from remediator.playbooks import PlaybookSet


def display(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def protected(args: argparse.Namespace) -> frozenset[str]:
    """``--protect`` and ``REMEDIATOR_PROTECTED_PRINCIPALS``: principals never touched."""
    env = os.environ.get("REMEDIATOR_PROTECTED_PRINCIPALS", "")
    given = [p for p in env.split(",") if p.strip()] + list(args.protect or [])
    return frozenset(p.strip().lower() for p in given)


def read_findings(paths: Sequence[str], stdin: TextIO) -> list[Record]:
    """Every record of the payload files (``-``: standard input)."""
    from remediator.findings.parse import parse_bytes, parse_file  # noqa: PLC0415

    records: list[Record] = []
    for p in paths:
        if p == "-":
            records.extend(parse_bytes(stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read(),
                                       source="<stdin>"))
        else:
            records.extend(parse_file(p))
    return records


def load_playbooks(directory: str | None) -> PlaybookSet:
    """``--playbooks`` (a folder or file) as an overlay of the shipped playbooks, as ``serve`` loads
    ``playbooks_dir``; without it, ``./playbooks`` or the shipped ones."""
    from remediator.playbooks import load_playbooks as load  # noqa: PLC0415

    return load(playbooks_dir(directory), base=SHIPPED_PLAYBOOKS)


def warn_exemptions(path: str, playbooks: PlaybookSet) -> None:
    """Exemptions that no longer apply, or name no playbook, are warnings (stderr), not errors."""
    from datetime import date  # noqa: PLC0415

    from remediator.playbooks import load_exemptions  # noqa: PLC0415

    exemptions = load_exemptions(path)
    for issue in exemptions.unknown_playbooks(playbooks.names):
        print(f"warning: {issue}", file=sys.stderr)
    for e in exemptions.expired(date.today()):
        print(f"warning: {e.file}:{e.line}: exemption for {e.resource} expired on {e.expires.isoformat()} "
              f"(owner {e.owner}): it no longer applies", file=sys.stderr)


def settings(args: argparse.Namespace) -> Settings:
    """The settings: ``--config`` (or ``REMEDIATOR_CONFIG``) and the environment; ``--arm-endpoint``
    where the command has it."""
    from dataclasses import replace  # noqa: PLC0415

    from remediator.config.settings import load_settings  # noqa: PLC0415

    config = getattr(args, "config", None)
    loaded = load_settings(file=config) if config else load_settings()
    endpoint = getattr(args, "arm_endpoint", None)
    return replace(loaded, arm_endpoint=endpoint) if endpoint else loaded


def reader_clients(args: argparse.Namespace) -> ArmClients:
    """The executor's ``ArmClients`` for a command's live reads (see the module docstring)."""
    from remediator.app.wiring import azure_wiring  # noqa: PLC0415

    return azure_wiring(settings(args)).executor_clients()


NAMES_HELP = ("names beside principal ids from Microsoft Graph (as the executor identity, which needs "
              "Directory.Read.All) and custom policy definitions from ARM; built-in policies are always named "
              "from the catalog, offline")


def offline_names(args: argparse.Namespace) -> NameResolver:
    """Names for what a command reads from the store (``audit``, ``report``): the built-in policies from the
    catalog always; principals (Graph) and custom policy definitions (ARM) only with ``--names``, which
    reads Azure as the executor. A failed lookup is one ``warning:`` line on stderr."""
    from remediator.app.cli.output import warn  # noqa: PLC0415
    from remediator.planning.names import NameResolver  # noqa: PLC0415

    if not getattr(args, "names", False):
        return NameResolver(report=warn)
    from remediator.app.wiring import name_resolver  # noqa: PLC0415
    from remediator.azure.reader import LiveState  # noqa: PLC0415

    return name_resolver(settings(args), definitions=LiveState(reader_clients(args)), report=warn)

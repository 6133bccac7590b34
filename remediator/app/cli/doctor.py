"""``remediator doctor``: the preflight (``remediator.app.doctor``), one line per check; exit 0
when all pass, 1 otherwise. The ARM and role checks act as the identities ``serve`` and the
Functions app use (``remediator.app.wiring.azure_wiring``): what passes here is what runs there."""

from __future__ import annotations

import argparse
import functools
import os
from typing import TYPE_CHECKING, Any, TextIO

from remediator.app.cli.output import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from remediator.config.preflight import Check
    from remediator.config.settings import Settings


def add_parser(sub: Any) -> None:
    c = sub.add_parser("doctor", help="preflight a deployment's settings, store, Slack, ARM and roles; 0 when all pass")
    c.add_argument("--config", metavar="FILE", help="settings YAML (environment variables win); env REMEDIATOR_CONFIG")
    c.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.app import doctor  # noqa: PLC0415
    from remediator.app.paths import SHIPPED_PLAYBOOKS  # noqa: PLC0415
    from remediator.app.wiring import azure_wiring  # noqa: PLC0415
    from remediator.config.settings import read_settings  # noqa: PLC0415
    from remediator.playbooks import load_playbooks  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    def slack(s: Settings) -> list[Check]:
        from bot.doctor import check_slack  # noqa: PLC0415 (slack_sdk, not slack_bolt)

        return check_slack(s)

    def identities(s: Settings) -> tuple[Any, Any]:
        azure = azure_wiring(s)
        return azure.executor_clients(), azure.broker_clients()

    checks = doctor.run_all(lambda: read_settings(os.environ, args.config),
                            open_store=functools.partial(open_store, must_exist=True),  # a preflight creates nothing
                            load_playbooks=lambda d: load_playbooks(d, base=SHIPPED_PLAYBOOKS), slack=slack,
                            identities=identities,
                            directory=lambda s: azure_wiring(s).directory(str(s.graph())) if s.graph() else None)
    out.write(doctor.render(checks))
    return EXIT_OK if doctor.passed(checks) else EXIT_ERROR

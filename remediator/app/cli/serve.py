"""``remediator serve``: the endpoints locally (findings ingest, Slack, health) and the worker.

HTTP (``bot.http``, on waitress): ``POST /api/findings`` behind ``Authorization: Bearer
$REMEDIATOR_INGEST_TOKEN`` (serve refuses to start without a usable token unless ``--no-ingest``),
``POST /slack/events``, ``GET /health``. ``--socket``: Slack over Socket Mode instead (``bot.socket``,
for local development with a dev Slack app and its ``SLACK_APP_TOKEN``; no HTTP endpoint). Either
way the engine is ``remediator.app.wiring.build_slack_engine``'s: the same Azure wiring as the
Functions app and ``doctor``.

Before it serves, it names every setting it lacks at once (one line each), then learns its Slack
workspace from ``auth.test`` (``bot.workspace``): requests from any other workspace are refused, and
a token Slack refuses or a ``REMEDIATOR_SLACK_TEAM_ID`` that disagrees stops it from starting.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import EXIT_OK
from remediator.errors import ConfigError

if TYPE_CHECKING:
    from remediator.config.settings import Settings


def add_parser(sub: Any) -> None:
    s = sub.add_parser("serve", help="run the HTTP endpoints locally: findings ingest, Slack, health")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    s.add_argument("--port", type=int, default=3000, help="TCP port to listen on (default: 3000; 0 picks a free one)")
    s.add_argument("--config", metavar="FILE", help="settings YAML (environment variables win); env REMEDIATOR_CONFIG")
    s.add_argument("--no-worker", action="store_true", help="do not run the queue worker in this process")
    s.add_argument("--no-ingest", action="store_true",
                   help="serve Slack and health only; POST /api/findings answers 404 (else REMEDIATOR_INGEST_TOKEN "
                        "is required)")
    s.add_argument("--socket", action="store_true",
                   help="Slack over Socket Mode instead of HTTP (local development; needs SLACK_APP_TOKEN)")
    s.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    # The Slack side lives in bot/ (the only package that imports slack_bolt); loaded only for serve.
    from remediator.app.wiring import build_slack_engine, deployment_playbooks  # noqa: PLC0415

    settings = inputs.settings(args)
    ingest = not args.socket and not args.no_ingest
    problems = missing_settings(settings, socket=args.socket, ingest=ingest)
    if problems:  # every one at once, one line each: not one per restart
        raise ConfigError(problems=[f"serve{' --socket' if args.socket else ''}: {p}" for p in problems])
    deployment_playbooks(settings)  # an unmapped approver role is refused before Slack is asked anything
    from bot.workspace import learn_workspace  # noqa: PLC0415

    settings = learn_workspace(settings)  # fail closed: serve only the token's own workspace
    if args.socket:
        from bot.socket import run as run_socket  # noqa: PLC0415

        _telemetry()
        out.write(f"remediator serving Slack workspace {settings.slack_team_id} over Socket Mode; Ctrl-C stops\n")
        out.flush()
        run_socket(build_slack_engine(settings), settings, worker=not args.no_worker)
        return EXIT_OK
    from bot.http import serve  # noqa: PLC0415

    _telemetry()
    engine = build_slack_engine(settings)

    def ready(url: str) -> None:
        routes = "POST /api/findings (bearer token), /slack/events" if ingest else "POST /slack/events (ingest off)"
        out.write(f"remediator serving on {url} ({routes}; GET /health) for Slack workspace "
                  f"{settings.slack_team_id}; Ctrl-C stops\n")
        out.flush()

    serve(engine, settings, args.host, args.port, worker=not args.no_worker, ingest=ingest,
          ingest_token=settings.ingest_token or None, ready=ready)
    return EXIT_OK


def missing_settings(settings: Settings, *, socket: bool, ingest: bool) -> list[str]:
    """What ``serve`` needs and the settings lack (or hold unusable), one line each."""
    from bot.http import ingest_token_problem  # noqa: PLC0415

    problems = []
    if ingest and (problem := ingest_token_problem(settings.ingest_token)):  # fail closed: never an open ingest
        problems.append(problem)
    if not settings.slack_bot_token:
        problems.append("set SLACK_BOT_TOKEN (the Bot User OAuth Token, xoxb-…; approvals happen in Slack, "
                        "`remediator demo` runs the loop without it)")
    if not socket and not settings.slack_signing_secret:
        problems.append("set SLACK_SIGNING_SECRET (Basic Information → Signing Secret)")
    if not settings.slack_channel:
        problems.append("set REMEDIATOR_SLACK_CHANNEL (the approval channel's id, C…)")
    if socket and not settings.slack_app_token:
        problems.append("set SLACK_APP_TOKEN (the dev Slack app's app-level token, xapp-…; Socket Mode needs it)")
    return problems


def _telemetry() -> None:
    from remediator.telemetry import configure_from_env  # noqa: PLC0415

    configure_from_env()  # traces and metrics when APPLICATIONINSIGHTS_CONNECTION_STRING is set

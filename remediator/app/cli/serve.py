"""``remediator serve``: the endpoints locally (findings ingest, Slack, health) and the worker.

HTTP (``bot.http``, on waitress): ``POST /api/findings`` behind ``Authorization: Bearer
$REMEDIATOR_INGEST_TOKEN`` (serve refuses to start without a usable token unless ``--no-ingest``),
``POST /slack/events``, ``GET /health``. ``--socket``: Slack over Socket Mode instead (``bot.socket``,
for local development with a dev Slack app and its ``SLACK_APP_TOKEN``; no HTTP endpoint). Either
way the engine is ``remediator.app.wiring.build_slack_engine``'s: the same Azure wiring as the
Functions app and ``doctor``.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import EXIT_OK
from remediator.errors import ConfigError


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
    from remediator.app.wiring import build_slack_engine  # noqa: PLC0415

    settings = inputs.settings(args)
    if args.socket:
        if not (settings.slack_bot_token and settings.slack_channel and settings.slack_app_token):
            raise ConfigError("serve --socket needs SLACK_BOT_TOKEN, REMEDIATOR_SLACK_CHANNEL and SLACK_APP_TOKEN "
                              "(the dev Slack app's app-level token, xapp-…)")
        from bot.socket import run as run_socket  # noqa: PLC0415

        _telemetry()
        out.write("remediator serving Slack over Socket Mode; Ctrl-C stops\n")
        out.flush()
        run_socket(build_slack_engine(settings), settings, worker=not args.no_worker)
        return EXIT_OK
    from bot.http import ingest_token_problem, serve  # noqa: PLC0415

    ingest = not args.no_ingest
    if ingest and (problem := ingest_token_problem(settings.ingest_token)):  # fail closed: never an open ingest
        raise ConfigError(f"serve: {problem}")
    if not (settings.slack_bot_token and settings.slack_signing_secret and settings.slack_channel):
        raise ConfigError("serve needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and REMEDIATOR_SLACK_CHANNEL "
                          "(approvals happen in Slack; `remediator demo` runs the loop without Slack)")
    _telemetry()
    engine = build_slack_engine(settings)

    def ready(url: str) -> None:
        routes = "POST /api/findings (bearer token), /slack/events" if ingest else "POST /slack/events (ingest off)"
        out.write(f"remediator serving on {url} ({routes}; GET /health); Ctrl-C stops\n")
        out.flush()

    serve(engine, settings, args.host, args.port, worker=not args.no_worker, ingest=ingest,
          ingest_token=settings.ingest_token or None, ready=ready)
    return EXIT_OK


def _telemetry() -> None:
    from remediator.telemetry import configure_from_env  # noqa: PLC0415

    configure_from_env()  # traces and metrics when APPLICATIONINSIGHTS_CONNECTION_STRING is set

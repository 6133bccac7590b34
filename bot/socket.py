"""Socket Mode for local development: the same App over a WebSocket, no public URL needed.

``remediator serve --socket`` builds the engine with the Slack chat and directory
(``remediator.app.wiring.build_slack_engine``) and calls ``run``: the worker in a thread, then
the connection. Use a separate dev Slack app with Socket Mode on (its app-level ``xapp-`` token in
``SLACK_APP_TOKEN``). Bolt skips signature verification in Socket Mode (the WebSocket is
authenticated by the app token); everything else (authorisation, engine decisions, escaping) is
the same as in HTTP mode. It needs the network, so tests only check the wiring.

Start failures are one line (``ConfigError``), never a traceback: no app token, an app token Slack
refuses, or Slack out of reach. The caller (``remediator serve --socket``) has learned the workspace
first (``bot.workspace.learn_workspace``); ``build_app`` refuses settings without one.
``python -m bot.socket`` is not an entry point (the engine is built by the composition root, which
``bot`` does not import): it says to run ``remediator serve --socket`` and exits 2.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.app import build_app
from remediator.errors import ConfigError, error_line

if TYPE_CHECKING:
    from bot.http import ServingEngine
    from remediator.config.settings import Settings

log = logging.getLogger("bot.socket")


def handler(engine: ServingEngine, settings: Settings) -> SocketModeHandler:
    """A ``SocketModeHandler`` for ``build_app(engine, settings)`` (not connected yet)."""
    if not settings.slack_app_token:
        raise ConfigError("Socket Mode needs an app-level token (SLACK_APP_TOKEN, xapp-…)")
    return SocketModeHandler(build_app(engine, settings), settings.slack_app_token)


def run(engine: ServingEngine, settings: Settings, *, worker: bool = True, poll_interval: float = 0.5) -> None:
    """Connect and serve until interrupted; with ``worker`` the engine's jobs run in a thread."""
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            done = 0
            try:
                engine.sweep()
                done = engine.work(max_jobs=50)
            except Exception:  # keep the dev loop alive; the engine audits what failed
                log.exception("worker iteration failed; continuing")
            if not done:
                stop.wait(poll_interval)

    thread = threading.Thread(target=work, name="remediator-worker", daemon=True)
    if worker:
        thread.start()
    try:
        socket = handler(engine, settings)
        try:  # start() connects (this is where it fails), then blocks until Ctrl-C
            socket.start()  # type: ignore[no-untyped-call]  # bolt leaves start() unannotated
        except Exception as e:  # SlackApiError (invalid_auth, not_allowed_token_type), URLError: one line
            raise ConfigError(f"Socket Mode could not connect with SLACK_APP_TOKEN: {_why(e)}") from None
    finally:
        stop.set()


def _why(e: Exception) -> str:
    response = getattr(e, "response", None)
    error = response.get("error") if response is not None and hasattr(response, "get") else None
    if error:
        return f"Slack answered {error} (an app-level token, xapp-…, with connections:write)"
    return error_line(e, 300)


if __name__ == "__main__":
    print("error: start Socket Mode with `remediator serve --socket` (it builds the engine; bot.socket is a part "
          "of it, not an entry point)", file=sys.stderr)
    sys.exit(2)

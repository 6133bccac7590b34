"""Socket Mode: the wiring only (connecting needs Slack)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot import socket as bot_socket
from bot.chat import SlackChat, StoreDigestIndex
from bot.directory import SlackDirectory
from remediator.app.wiring import build_slack_engine
from remediator.errors import ConfigError
from remediator.testing.fake_slack import FakeSlack
from tests.bot.world import SlackWorld, make_slack_world
from tests.support.engine import ROLES_ENV


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SlackWorld]:
    yield from make_slack_world(tmp_path, slack_app_token="xapp-1-fake")


def test_handler_wraps_the_app_with_the_app_token(world: SlackWorld) -> None:
    handler = bot_socket.handler(world.engine, world.settings)
    assert handler.app_token == "xapp-1-fake"
    assert handler.app.process_before_response is True
    assert world.slack.calls == []  # built, not connected; no auth.test


def test_no_app_token_is_a_clear_error(world: SlackWorld) -> None:
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        bot_socket.handler(world.engine, replace(world.settings, slack_app_token=""))


def test_run_starts_the_worker_and_the_handler(world: SlackWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []

    def fake_start(self: object) -> None:
        started.append("connected")
        world.slack.wait_for("chat.postMessage", 1, timeout=10)  # the worker thread posted meanwhile

    monkeypatch.setattr(type(bot_socket.handler(world.engine, world.settings)), "start", fake_start)
    from tests.support.engine import sample

    world.engine.ingest(sample("02-management-ports-assessment"))
    bot_socket.run(world.engine, world.settings, poll_interval=0.05)
    assert started == ["connected"]
    assert len(world.slack.calls_to("chat.postMessage")) == 1


def test_build_slack_engine_wires_the_slack_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, object] = {}

    def fake_build_engine(settings: object, *, chat: object, directory: object, **parts: object) -> object:
        captured.update(chat=chat, directory=directory, **parts)

        class Engine:
            store = object()

            def requirement(self, remediation: object) -> str:
                return ""

        return Engine()

    monkeypatch.setattr("remediator.app.wiring.build_engine", fake_build_engine)
    with FakeSlack() as slack:
        from tests.bot.conftest import bot_settings

        engine = build_slack_engine(bot_settings(slack))
    chat, directory = captured["chat"], captured["directory"]
    assert isinstance(chat, SlackChat)
    assert isinstance(directory, SlackDirectory)
    assert isinstance(chat.digests, StoreDigestIndex)
    assert chat.digests.store is engine.store
    assert directory.client.retry_handlers == []
    assert chat.names is captured["names"]  # one name cache for the worker's messages and the App's answers
    assert chat.names.directory.endpoint == "https://graph.microsoft.com"  # the ARM endpoint's cloud's Graph


def test_build_slack_engine_for_real(tmp_path: Path) -> None:
    from remediator.app.paths import SHIPPED_PLAYBOOKS
    from remediator.lifecycle.engine import Engine
    from tests.bot.conftest import bot_settings

    with FakeSlack() as slack:
        settings = bot_settings(slack, store_url=f"sqlite:///{tmp_path / 'r.db'}", elevation="standing",
                                playbooks_dir=SHIPPED_PLAYBOOKS)
        engine = build_slack_engine(settings)
        assert isinstance(engine, Engine)
        assert engine.pending() == []
        assert slack.calls == []  # nothing talks to Slack until there is something to say
        close = getattr(engine.store, "close", None)
        if close is not None:
            close()


def test_serve_socket_needs_the_app_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    """``remediator serve --socket`` (Socket Mode for local development) refuses to start without
    the dev app's app-level token: one line naming it, nothing opened."""
    from remediator.app.cli import main

    for name in ("SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "REMEDIATOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"SLACK_BOT_TOKEN": "xoxb-1", "REMEDIATOR_SLACK_CHANNEL": "C0123456789",
                        "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'r.db'}"}.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--socket"], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: serve --socket: set SLACK_APP_TOKEN (the dev Slack app's app-level token")
    assert err.count("\n") == 1
    assert not (tmp_path / "r.db").exists()


def test_serve_socket_start_failures_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    """The workspace comes from auth.test first; an app-level token Slack refuses (apps.connections.open)
    is one line, not a traceback from the Socket Mode client."""
    from remediator.app.cli import main

    with FakeSlack(team_id="T0HOME00001") as slack:
        monkeypatch.delenv("REMEDIATOR_CONFIG", raising=False)
        monkeypatch.delenv("REMEDIATOR_SLACK_TEAM_ID", raising=False)
        for name, value in {"SLACK_BOT_TOKEN": slack.token, "SLACK_APP_TOKEN": "xapp-1-refused",
                            "REMEDIATOR_SLACK_CHANNEL": "C0123456789", "REMEDIATOR_SLACK_API_URL": slack.base_url,
                            "REMEDIATOR_ELEVATION": "standing", "REMEDIATOR_APPROVER_ROLES": ROLES_ENV,
                            "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'r.db'}"}.items():
            monkeypatch.setenv(name, value)
        out = io.StringIO()
        assert main(["serve", "--socket", "--no-worker"], out=out) == 1
        assert [c.method for c in slack.calls][:2] == ["auth.test", "apps.connections.open"]
    err = capsys.readouterr().err
    assert err == "error: Socket Mode could not connect with SLACK_APP_TOKEN: Slack answered invalid_auth (an " \
                  "app-level token, xapp-…, with connections:write)\n"
    assert "workspace T0HOME00001" in out.getvalue()


def test_python_dash_m_bot_socket_says_what_to_run() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run([sys.executable, "-m", "bot.socket"], capture_output=True, cwd=ROOT, timeout=60,
                          check=False)
    assert proc.returncode == 2
    assert proc.stderr.decode().count("\n") == 1
    assert "remediator serve --socket" in proc.stderr.decode()


def test_building_the_app_and_the_handler_logs_no_warning(world: SlackWorld, caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Bolt warns "As you gave client as well, token will be unused." when it has both, and it reads
    SLACK_BOT_TOKEN from the environment on its own (as `remediator serve` runs): not printed."""
    import logging

    monkeypatch.setenv("SLACK_BOT_TOKEN", world.settings.slack_bot_token)
    with caplog.at_level(logging.WARNING):
        bot_socket.handler(world.engine, world.settings)
    assert [r.getMessage() for r in caplog.records] == []

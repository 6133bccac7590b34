"""What the functions share in one worker process: settings, store, engine and the Slack App.

Each is built on first use and cached for the life of the process (``runtime.engine()``), under a
lock, because the Python worker runs synchronous functions on a thread pool. Importing this module
imports nothing but the standard library: the worker imports the entry file to *index* the app,
and that import must stay cheap (``benchmarks/bench_cold_start.py``). The management SDKs,
azure.identity and slack_bolt load only when a function needs them, and even then lazily:

* the Slack path (``slack_app()``) builds the engine and bolt, but no ARM client and no
  credential: approving is a store operation;
* ARM clients are ``ArmClients`` (each SDK imported on first use of its client) over a
  ``FreshTokenCredential`` whose factory imports azure.identity on the first token request, built
  by ``remediator.app.wiring.azure_wiring`` from this runtime's settings and environment: the same
  wiring as ``remediator serve`` and ``remediator doctor``.

A build that fails (bad setting, unreachable store) is not cached: the next invocation tries
again, and the error propagates, so the host retries the trigger or answers 5xx.

Identities (``docs/deploy.md``): the *executor* reads state and writes under PIM grants; its
client id is ``AZURE_CLIENT_ID``, which azure.identity's managed identity credential reads. The
*broker* (``REMEDIATOR_BROKER_CLIENT_ID``) creates the PIM requests. Locally both fall back to
the developer's ``az login`` through ``DefaultAzureCredential``.

Tests and other hosts pass an ``Overrides`` (``runtime.configure(Overrides(...))``): an
environment mapping instead of ``os.environ``, ready ``Settings``, a store, the executor's and
broker's ``ArmClients`` (e.g. ``FakeArm.clients()``), a clock, and the Slack pacer's time. The code
path is the same with or without them; nothing checks whether it runs under a test.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from function_app.settings import STORAGE_CONNECTION

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.endpoint import SlackEndpoint
    from remediator.azure.clients import ArmClients
    from remediator.config.settings import Settings
    from remediator.lifecycle.engine import Engine
    from remediator.lifecycle.store import Store

log = logging.getLogger("function_app.runtime")

APP_ROOT = Path(__file__).resolve().parent.parent  # the Functions app root (wwwroot): function_app/..


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """Parts given instead of built; ``None`` means build it from the environment."""

    env: Mapping[str, str] | None = None  # read settings from this instead of os.environ
    settings: Settings | None = None
    store: Store | None = None
    executor: ArmClients | None = None  # the executor's clients: state reads and the writes
    broker: ArmClients | None = None  # the broker's clients: PIM schedule requests
    clock: Callable[[], datetime] | None = None
    monotonic: Callable[[], float] | None = None  # the Slack pacer's clock (``time.monotonic``)
    sleep: Callable[[float], None] | None = None  # the Slack pacer's and Retry-After waits (``time.sleep``)


class Runtime:
    """Lazily built, cached parts; see the module docstring. ``configure`` resets the cache."""

    def __init__(self, overrides: Overrides | None = None) -> None:
        self._lock = threading.RLock()
        self._o = overrides or Overrides()
        self._cache: dict[str, Any] = {}

    def configure(self, overrides: Overrides | None = None) -> None:
        """Forget everything built so far (closing the store this runtime opened) and use ``overrides``."""
        with self._lock:
            store = self._cache.get("store")
            if store is not None and self._o.store is None:
                close = getattr(store, "close", None)
                if callable(close):
                    close()
            self._cache.clear()
            self._o = overrides or Overrides()

    @property
    def env(self) -> Mapping[str, str]:
        return self._o.env if self._o.env is not None else os.environ

    def built(self) -> frozenset[str]:
        """Names of the parts built so far (``settings``, ``store``, ``engine``, ``slack_app``)."""
        with self._lock:
            return frozenset(self._cache)

    def now(self) -> datetime:
        return self._o.clock() if self._o.clock is not None else datetime.now(UTC)

    # -- the parts -------------------------------------------------------------------------------

    def settings(self) -> Settings:
        return self._get("settings", self._build_settings)  # type: ignore[no-any-return]

    def store(self) -> Store:
        return self._get("store", self._build_store)  # type: ignore[no-any-return]

    def engine(self) -> Engine:
        return self._get("engine", self._build_engine)  # type: ignore[no-any-return]

    def slack_app(self) -> App:
        return self._get("slack_app", self._build_slack_app)  # type: ignore[no-any-return]

    def slack_endpoint(self) -> SlackEndpoint:
        """``bot.endpoint.SlackEndpoint`` around ``slack_app()``: signature, replay cache in this store, shape."""
        return self._get("slack_endpoint", self._build_slack_endpoint)  # type: ignore[no-any-return]

    def _get(self, name: str, build: Callable[[], Any]) -> Any:
        value = self._cache.get(name)
        if value is not None:
            return value
        with self._lock:
            value = self._cache.get(name)
            if value is None:
                value = build()
                self._cache[name] = value
            return value

    # -- builders ---------------------------------------------------------------------------------

    def _build_settings(self) -> Settings:
        from dataclasses import replace  # noqa: PLC0415

        if self._o.settings is not None:
            settings = self._o.settings
        else:
            from remediator.config.settings import load_settings  # noqa: PLC0415 (cold start: see the module docstring)

            settings = load_settings(self.env)
        # relative paths are relative to the app root, not to whatever the worker's cwd is
        settings = replace(settings, playbooks_dir=self.path(settings.playbooks_dir),
                           exemptions_file=self.path(settings.exemptions_file) if settings.exemptions_file else None)
        log.info("settings: %s", settings.describe())
        return settings

    def _build_store(self) -> Store:
        if self._o.store is not None:
            return self._o.store
        from remediator.store import open_store  # noqa: PLC0415

        settings = self.settings()
        return open_store(settings.store_url, connection_string=self.env.get(STORAGE_CONNECTION) or None,
                          clock=self._o.clock)

    def _build_engine(self) -> Engine:
        """``remediator.app.wiring.build_engine`` (with Slack: ``build_slack_engine``, which also wires
        the worker's chat, the digest index and the acknowledgement-path directory), given this
        runtime's store, environment (the executor's ``AZURE_CLIENT_ID``) and overrides; the two
        identities' clients authenticate lazily."""
        from remediator.app.wiring import build_engine, build_slack_engine  # noqa: PLC0415 (slack_sdk, not bolt)

        settings = self.settings()
        from remediator.telemetry import configure_from_env  # noqa: PLC0415

        configure_from_env(self.env)  # traces and metrics when APPLICATIONINSIGHTS_CONNECTION_STRING is set
        parts: dict[str, Any] = {"store": self.store(), "env": self.env}
        if self._o.executor is not None:
            parts["clients"] = self._o.executor
        if self._o.broker is not None:
            parts["broker"] = self._o.broker
        if self._o.clock is not None:
            parts["clock"] = self._o.clock
        if settings.slack_bot_token and settings.slack_channel:
            if self._o.monotonic is not None:
                parts["monotonic"] = self._o.monotonic
            if self._o.sleep is not None:
                parts["sleep"] = self._o.sleep
            engine = build_slack_engine(settings, **parts)
        else:
            log.warning("Slack is not configured (SLACK_BOT_TOKEN and REMEDIATOR_SLACK_CHANNEL): approval requests "
                        "are stored but not posted")
            engine = build_engine(settings, **parts)
        log.info("engine ready: elevation %s, Slack %s", settings.elevation,
                 "on" if settings.slack_bot_token and settings.slack_channel else "off")
        return engine

    def _build_slack_app(self) -> App:
        """The bolt App for the settings' workspace, learned from ``auth.test`` (``bot.workspace``): a
        token Slack refuses, Slack out of reach or a ``REMEDIATOR_SLACK_TEAM_ID`` that disagrees is an
        error, not cached (the Slack route answers 503 and the next request tries again)."""
        from bot.app import build_app  # noqa: PLC0415 (slack_bolt loads here, on the first Slack request)
        from bot.workspace import learn_workspace  # noqa: PLC0415

        settings = learn_workspace(self.settings())
        log.info("Slack workspace %s%s (auth.test)", settings.slack_team_id,
                 f", Enterprise Grid org {settings.slack_enterprise_id}" if settings.slack_enterprise_id else "")
        with self._lock:  # an engine built from now on checks the workspace too (its same_org requirement)
            self._cache["settings"] = settings
        return build_app(self.engine(), settings)

    def _build_slack_endpoint(self) -> SlackEndpoint:
        from bot.endpoint import build_endpoint  # noqa: PLC0415

        return build_endpoint(self.slack_app(), self.settings(), self.store(), clock=self.now)

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def path(value: Path) -> Path:
        """A setting's path: relative paths are relative to the app root, not the worker's cwd."""
        return value if value.is_absolute() else APP_ROOT / value


runtime = Runtime()
"""The process-wide instance the functions use."""

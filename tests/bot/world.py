"""The whole Slack stack with real parts, for the app and scenario tests.

FakeArm seeded from the shipped sample state (enforcing that the executor writes only under a PIM
grant), SQLiteStore on a temp file, the real Engine with PimAssignElevator and the shipped
playbooks, FakeSlack (a real HTTP server) behind SlackChat (the
worker client: Retry-After honoured, posts paced by an injected clock) and SlackDirectory (the
acknowledgement client), and the bolt App from ``build_app``. Requests reach the App the way
production does: signed by FakeSlack, through ``bot.endpoint.SlackEndpoint`` (signature, replay
cache in the store, shape check) into bolt.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_app
from bot.chat import ChannelPacer, SlackChat, StoreDigestIndex, ack_client, worker_client
from bot.directory import SlackDirectory
from bot.endpoint import SlackEndpoint, build_endpoint
from bot.http import App, BoltResponse, LocalServer
from remediator.actions.approles import APP_ROLE_ASSIGNMENT_READWRITE_ALL
from remediator.app.demo import DEMO_BROKER as BROKER
from remediator.app.demo import DEMO_EXECUTOR
from remediator.app.doctor import deployment_preflight
from remediator.azure.reader import LiveState
from remediator.azure.state import StateReader
from remediator.config.settings import Settings
from remediator.evidence.report import period_totals
from remediator.findings.model import Record
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.model import Remediation
from remediator.privilege.elevation import PimAssignElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm, FakeMsGraph
from remediator.testing.fake_slack import FakeSlack, SignedRequest
from tests.support.clock import VirtualTime
from tests.support.engine import (
    ADMIN,
    LEAD1,
    LEAD2,
    MEMBERS,
    ONCALL,
    PLATFORM,
    PLAYBOOKS,
    ROLES,
    TEAM,
    FakeClock,
    deliver,
    sample_state,
)
from tests.support.values import dicts

CHANNEL = "C0REMEDIATE"
INGEST_TOKEN = "test-ingest-token-0123456789abcdef"  # the ``server`` fixture's findings ingest bearer token
STOP_WITHIN = 0.01  # a test's LocalServer stops within 10 ms (its event loop's timeout; 0.1 s by default)


@dataclass
class SlackWorld:
    engine: Engine
    store: SQLiteStore
    arm: FakeArm
    slack: FakeSlack
    clock: FakeClock
    pace: VirtualTime
    settings: Settings
    app: App
    endpoint: SlackEndpoint
    chat: SlackChat
    directory: SlackDirectory

    # --- Slack requests -----------------------------------------------------------------------

    def send(self, request: SignedRequest) -> BoltResponse:
        return self.endpoint.handle(request.body.encode(), request.headers)

    def click_request(self, action_id: str, value: str, user: str, *, rid: str | None = None,
                      **kwargs: Any) -> SignedRequest:
        """A signed click on the stored message of ``rid`` (default: ``value``)."""
        rem = self.engine.get(rid or value)
        msg: Mapping[str, str] = rem.message if rem is not None else {}
        kwargs.setdefault("team_id", TEAM)
        return self.slack.block_actions(action_id=action_id, value=value, user_id=user,
                                        channel=msg.get("channel", CHANNEL), message_ts=msg.get("ts", ""), **kwargs)

    def click(self, action_id: str, value: str, user: str, **kwargs: Any) -> BoltResponse:
        return self.send(self.click_request(action_id, value, user, **kwargs))

    def submit_reject(self, rid: str, user: str, reason: str, **kwargs: Any) -> BoltResponse:
        rem = self.engine.get(rid)
        msg: Mapping[str, str] = rem.message if rem is not None else {}
        kwargs.setdefault("team_id", TEAM)
        meta = json.dumps({"id": rid, "channel": msg.get("channel", ""), "ts": msg.get("ts", "")})
        return self.send(self.slack.view_submission(
            callback_id="remediator.reject_reason", values={"reject_reason": {"reason": reason}}, user_id=user,
            private_metadata=meta, **kwargs))

    def command(self, text: str, user: str, **kwargs: Any) -> BoltResponse:
        kwargs.setdefault("team_id", TEAM)
        return self.send(self.slack.slash_command(command="/remediate", text=text, user_id=user,
                                                  channel=CHANNEL, **kwargs))

    # --- inspection ---------------------------------------------------------------------------

    def rem(self, rid: str) -> Remediation:
        rem = self.engine.get(rid)
        assert rem is not None
        return rem

    def ingest(self, records: Sequence[Record]) -> list[Remediation]:
        """The remediations a delivery opened, once planned (``tests.support.engine.deliver``)."""
        return [r.remediation for r in deliver(self.engine, self.store, records)
                if r.remediation is not None]

    def message(self, rid: str) -> dict[str, Any]:
        """The approval message of ``rid`` as Slack shows it now (after any chat.update)."""
        msg = self.rem(rid).message
        assert msg.get("channel"), "no message posted yet"
        assert msg.get("ts"), "no message posted yet"
        found = self.slack.message(msg["channel"], msg["ts"])
        assert found is not None
        return found

    def thread(self, rid: str) -> list[dict[str, Any]]:
        msg = self.rem(rid).message
        return self.slack.replies(msg["channel"], msg["ts"])

    def ephemerals(self, user: str | None = None) -> list[str]:
        return [c.body["text"] for c in self.slack.calls_to("chat.postEphemeral")
                if user is None or c.body.get("user") == user]

    def writes(self) -> list[str]:
        return [f"{w.method} {w.path}" for w in self.arm.resource_writes]


def make_slack_world(tmp_path: Path, *, state: StateReader | None = None, slack: FakeSlack | None = None,
                     **overrides: Any) -> Iterator[SlackWorld]:
    """A started SlackWorld; ``yield from make_slack_world(tmp_path)`` in a fixture.

    ``state`` replaces the live reads from FakeArm (a storm plans against ``SavedState``);
    ``slack``: a started FakeSlack of the test's own (its scopes, say; the on-call group is added);
    ``overrides`` go to ``Settings``.
    """
    clock = FakeClock()
    pace = VirtualTime()
    with contextlib.ExitStack() as stack:
        if slack is None:
            slack = stack.enter_context(FakeSlack(team_id=TEAM, groups={ONCALL: MEMBERS}))
        else:
            slack.set_group(ONCALL, MEMBERS)
        # the workspace holds every id the approver roles map to (doctor checks that they exist)
        slack.set_group(PLATFORM, MEMBERS[:3])
        slack.users |= {LEAD1, LEAD2, ADMIN}
        yield from _slack_world(tmp_path, slack, clock, pace, state=state, overrides=overrides)


def _slack_world(tmp_path: Path, slack: FakeSlack, clock: FakeClock, pace: VirtualTime, *,
                 state: StateReader | None, overrides: dict[str, Any]) -> Iterator[SlackWorld]:
    with FakeArm() as arm, FakeMsGraph() as graph, SQLiteStore(tmp_path / "remediator.db", clock=clock) as store:
        # Microsoft Graph, where the executor holds AppRoleAssignment.ReadWrite.All (doctor checks it)
        graph.add_service_principal("remediator-executor", object_id=DEMO_EXECUTOR)
        graph.assign_app_role(DEMO_EXECUTOR, graph.add_microsoft_graph(), APP_ROLE_ASSIGNMENT_READWRITE_ALL)
        values: dict[str, Any] = {
            "slack_bot_token": slack.token, "slack_signing_secret": slack.signing_secret,
            "slack_channel": CHANNEL, "slack_api_url": slack.base_url, "slack_team_id": TEAM,
            "admins": (ADMIN,), "executor_principal_id": DEMO_EXECUTOR, "group_wait": timedelta(0),
            "approver_roles": ROLES, **overrides,
        }
        settings = Settings(**values)
        arm.load(sample_state())
        # The executor holds no standing role: every write needs a PIM grant on the resource, which
        # the broker asks for (pim-assign), as in production.
        arm.enforce_grants(DEMO_EXECUTOR)
        clients = arm.clients(principal_id=DEMO_EXECUTOR, msgraph=graph.client())
        elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=DEMO_EXECUTOR,
                                     poll_interval=0.01, sleep=lambda _s: None)
        chat = SlackChat(worker_client(settings, sleep=pace.sleep, jitter=0), settings,
                         pacer=ChannelPacer(clock=pace.monotonic, sleep=pace.sleep), digests=StoreDigestIndex(store))
        directory = SlackDirectory(ack_client(settings))
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=state or LiveState(clients),
                        clients=clients, elevator=elevator, chat=chat, directory=directory, clock=clock,
                        preflight=deployment_preflight(settings, store=store, playbooks=PLAYBOOKS, executor=clients,
                                                       broker=elevator.requester),
                        evidence=period_totals(store, PLAYBOOKS))
        app = build_app(engine, settings)
        endpoint = build_endpoint(app, settings, store, clock=clock)
        yield SlackWorld(engine=engine, store=store, arm=arm, slack=slack, clock=clock, pace=pace,
                         settings=settings, app=app, endpoint=endpoint, chat=chat, directory=directory)


def text_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every Block Kit text object (``mrkdwn`` / ``plain_text`` with a ``text``) in a message or view."""
    return (d for d in dicts(value) if d.get("type") in {"mrkdwn", "plain_text"} and "text" in d)


# The fixtures of the Slack tests (tests/bot/conftest.py and tests/scenarios/conftest.py import them).


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SlackWorld]:
    """The whole Slack stack in a temporary folder (``make_slack_world``)."""
    yield from make_slack_world(tmp_path)


@pytest.fixture
def server(world: SlackWorld) -> Iterator[LocalServer]:
    """``remediator serve``'s endpoints for ``world`` on port 0: no worker thread (a test runs the worker
    when it says so), the findings ingest behind ``INGEST_TOKEN``, stopped within ``STOP_WITHIN``."""
    with LocalServer(world.engine, world.settings, port=0, endpoint=world.endpoint, worker=False,
                     ingest_token=INGEST_TOKEN, loop_timeout=STOP_WITHIN) as srv:
        yield srv

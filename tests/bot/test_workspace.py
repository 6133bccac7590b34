"""The workspace is learned from Slack at start (``auth.test``), never left open.

Through real slack_sdk against FakeSlack; the bolt App (real signing, real dispatch) refuses a
correctly signed request from another workspace although ``REMEDIATOR_SLACK_TEAM_ID`` is unset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.app import build_app
from bot.http import BoltRequest
from bot.workspace import learn_workspace
from remediator.config.settings import Settings
from remediator.errors import ConfigError
from remediator.testing.fake_slack import FakeSlack, SignedRequest
from tests.bot.world import SlackWorld, make_slack_world

TEAM = "T0HOME00001"


def settings_for(slack: FakeSlack, **values: object) -> Settings:
    return Settings(**{"slack_bot_token": slack.token, "slack_api_url": slack.base_url, **values})  # type: ignore[arg-type]


def test_the_workspace_comes_from_auth_test() -> None:
    with FakeSlack(team_id=TEAM) as slack:
        learned = learn_workspace(settings_for(slack))
    assert (learned.slack_team_id, learned.slack_enterprise_id) == (TEAM, None)
    assert [c.method for c in slack.calls] == ["auth.test"]


def test_an_enterprise_grid_workspace_brings_its_org() -> None:
    with FakeSlack(team_id=TEAM, enterprise_id="E0ORG000001") as slack:
        learned = learn_workspace(settings_for(slack))
        assert (learned.slack_team_id, learned.slack_enterprise_id) == (TEAM, "E0ORG000001")
        assert learn_workspace(settings_for(slack, slack_enterprise_id="E0ORG000001")) == learned


@pytest.mark.parametrize(("values", "expected"), [
    ({"slack_team_id": "T0OTHER0001"},
     "REMEDIATOR_SLACK_TEAM_ID is T0OTHER0001 but SLACK_BOT_TOKEN belongs to workspace T0HOME00001 (auth.test): "
     "fix one of them"),
    ({"slack_enterprise_id": "E0ORG000001"},
     "REMEDIATOR_SLACK_ENTERPRISE_ID is E0ORG000001 but SLACK_BOT_TOKEN's workspace T0HOME00001 is in no Enterprise "
     "Grid org (auth.test)"),
    ({"slack_bot_token": "xoxb-revoked"}, "refused SLACK_BOT_TOKEN: invalid_auth: copy the Bot User OAuth Token"),
    ({"slack_bot_token": ""}, "SLACK_BOT_TOKEN is not set: remediator learns its Slack workspace from it"),
])
def test_what_cannot_be_learned_or_disagrees_is_a_start_error(values: dict[str, object], expected: str) -> None:
    with FakeSlack(team_id=TEAM) as slack, pytest.raises(ConfigError) as caught:
        learn_workspace(settings_for(slack, **values))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_slack_out_of_reach_is_a_start_error() -> None:
    settings = Settings(slack_bot_token="xoxb-1", slack_api_url="http://127.0.0.1:9/api/")
    client = WebClient(token="xoxb-1", base_url=settings.slack_api_url, retry_handlers=[])  # no retry wait
    with pytest.raises(ConfigError, match=r"^Slack auth.test \(http://127.0.0.1:9/api/\) failed: URLError: "):
        learn_workspace(settings, client)


def test_an_org_wide_install_is_refused() -> None:
    with FakeSlack(team_id="") as slack, pytest.raises(ConfigError, match="named no workspace"):
        learn_workspace(settings_for(slack))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SlackWorld]:
    yield from make_slack_world(tmp_path)


def test_build_app_refuses_without_a_workspace(world: SlackWorld) -> None:
    with pytest.raises(ConfigError, match="the Slack workspace is unknown"):
        build_app(world.engine, replace(world.settings, slack_team_id=None))


def _dispatch(app: object, request: SignedRequest) -> str:
    response = app.dispatch(BoltRequest(body=request.body, headers=request.headers))  # type: ignore[attr-defined]
    assert response.status == 200
    return str(response.body)


def test_unset_team_id_no_longer_answers_another_workspace(world: SlackWorld) -> None:
    """The defect: with ``slack_team_id`` unset, a correctly signed ``/remediate list`` from
    TEVIL00001 was answered. Learned from auth.test, the same request is refused."""
    open_settings = replace(world.settings, slack_team_id=None)
    app = build_app(world.engine, learn_workspace(open_settings))
    evil = world.slack.slash_command(command="/remediate", text="list", user_id="U0EVIL00001", team_id="TEVIL00001")
    assert "Only members of this workspace can do this" in _dispatch(app, evil)
    home = world.slack.slash_command(command="/remediate", text="list", user_id="U0EVIL00001")
    assert "waiting for approval" in _dispatch(app, home).lower()

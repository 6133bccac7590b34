"""Which Slack workspace (and Enterprise Grid org) this deployment serves: asked of Slack at start.

Requests are accepted only from the bot's own workspace (``remediator.lifecycle.approval.org_reason``
compares the signed payload's team and enterprise ids with the settings'). Left to configuration,
an unset ``REMEDIATOR_SLACK_TEAM_ID`` would accept a correctly signed request from any workspace the
app is installed in. So every Slack entry point (``remediator serve``, Socket Mode, the Functions
app's Slack route) calls ``learn_workspace`` before it serves: ``auth.test`` with the bot token (no
scope needed; api.slack.com/methods/auth.test) names the token's workspace (``team_id``) and, for a
workspace of an Enterprise Grid org, the org (``enterprise_id``). The settings come back with both
filled in; a configured id that disagrees, a token Slack refuses, or Slack out of reach is a
``ConfigError`` (one line) and the entry point does not start: it never serves without knowing its
workspace. An org-wide install (``auth.test`` names no workspace) is refused too: the manifest does
not enable org deploys.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from remediator.errors import ConfigError, error_line

if TYPE_CHECKING:
    from remediator.config.settings import Settings

TIMEOUT_SECONDS = 10


def learn_workspace(settings: Settings, client: WebClient | None = None) -> Settings:
    """``settings`` with ``slack_team_id`` (and ``slack_enterprise_id`` on Grid) from ``auth.test``;
    ``ConfigError`` when they cannot be learned or disagree with the configured ones. ``client``
    defaults to one for the settings' API URL and bot token."""
    token = client.token if client is not None else settings.slack_bot_token
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN is not set: remediator learns its Slack workspace from it (auth.test) "
                          "and does not serve Slack without it")
    client = client or WebClient(token=token, base_url=settings.slack_api_url, timeout=TIMEOUT_SECONDS)
    try:
        auth = client.auth_test()
    except SlackApiError as e:
        error = str(e.response.get("error", "")) if e.response is not None else ""
        raise ConfigError(f"Slack auth.test ({settings.slack_api_url}) refused SLACK_BOT_TOKEN: {error or 'error'}: "
                          "copy the Bot User OAuth Token (xoxb-…) again; remediator does not serve Slack without "
                          "knowing its workspace") from None
    except Exception as e:  # URLError, a timeout: Slack out of reach
        raise ConfigError(f"Slack auth.test ({settings.slack_api_url}) failed: {error_line(e, 300)}; remediator "
                          "does not serve Slack without knowing its workspace (check REMEDIATOR_SLACK_API_URL and "
                          "the network)") from None
    team = auth.get("team_id")
    enterprise = auth.get("enterprise_id") or None
    if not isinstance(team, str) or not team:
        raise ConfigError("Slack auth.test named no workspace for SLACK_BOT_TOKEN (an org-wide install?): install "
                          "the app to the approvers' workspace")
    if settings.slack_team_id and settings.slack_team_id != team:
        raise ConfigError(f"REMEDIATOR_SLACK_TEAM_ID is {settings.slack_team_id} but SLACK_BOT_TOKEN belongs to "
                          f"workspace {team} (auth.test): fix one of them")
    if settings.slack_enterprise_id and settings.slack_enterprise_id != enterprise:
        org = f"in org {enterprise}" if enterprise else "in no Enterprise Grid org"
        raise ConfigError(f"REMEDIATOR_SLACK_ENTERPRISE_ID is {settings.slack_enterprise_id} but SLACK_BOT_TOKEN's "
                          f"workspace {team} is {org} (auth.test): fix one of them")
    return replace(settings, slack_team_id=team, slack_enterprise_id=str(enterprise) if enterprise else None)

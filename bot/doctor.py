"""The Slack checks of ``remediator doctor`` (``remediator.app.doctor`` has the others), as
``remediator.config.preflight.Check`` values.

``auth.test`` (no scope needed) proves the token and names the bot and its workspace; Slack returns
the token's scopes in the ``x-oauth-scopes`` response header, compared with ``BOT_SCOPES``
(slack/manifest.yaml's bot scopes; a test keeps the two equal). ``conversations.history`` with
``limit=1`` proves the channel exists and that the bot is in it (``not_in_channel`` otherwise, as
``chat.postMessage`` would answer).

Why ``conversations.history`` and not ``conversations.info``: the latter needs ``channels:read`` /
``groups:read``, scopes the bot has no other use for (the manifest once lacked them, so doctor could
not pass); the history scopes are the ones the worker already needs to find a message whose post
timed out (``bot.chat``), so this check needs no extra scope and proves that look-up works too. The
alternative that needs no read scope, posting (``chat.postMessage``, or scheduling and deleting a
message), would write to the approval channel every time the preflight runs; a preflight reads.

``check_approver_ids``: every Slack id the settings map (approver roles, the approvers allowlist,
admins) exists in the workspace (``usergroups.list``, ``users.info``).

Without a token nothing is sent to Slack: both checks say what is missing.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from remediator.config.preflight import Check
from remediator.config.settings import Settings
from remediator.errors import error_line

BOT_SCOPES: tuple[str, ...] = ("chat:write", "commands", "usergroups:read", "users:read", "channels:history",
                               "groups:history")

_FIXES = {
    "invalid_auth": "the token is not valid: copy the Bot User OAuth Token (xoxb-…) again into SLACK_BOT_TOKEN",
    "not_authed": "no token was sent: set SLACK_BOT_TOKEN",
    "token_revoked": "the token was revoked: reinstall the app and copy the new Bot User OAuth Token",
    "account_inactive": "the app was uninstalled or its workspace is inactive: reinstall it",
    "channel_not_found": "the channel does not exist or is private without the bot: check REMEDIATOR_SLACK_CHANNEL "
                         "(the id, C…) and invite the bot",
    "not_in_channel": "the bot is not in it: /invite @remediator there",
}


def _why(e: Exception) -> str:
    if isinstance(e, SlackApiError):
        error = str(e.response.get("error", "")) if e.response is not None else ""
        if error == "missing_scope":
            return (f"the token lacks scope {e.response.get('needed') or '?'}: add it under OAuth & Permissions "
                    "(slack/manifest.yaml has it) and reinstall the app")
        return _FIXES.get(error, f"Slack answered {error or e.response.status_code}")
    return error_line(e)


def check_slack(settings: Settings, client: WebClient | None = None) -> list[Check]:
    """Token and scopes, then the channel; ``client`` defaults to one for the settings' API URL.
    Without a bot token, Slack is not called."""
    token = client.token if client is not None else settings.slack_bot_token
    if not token:
        return [Check(name="slack token", ok=False, message="not checked: SLACK_BOT_TOKEN is not set"),
                Check(name="slack channel", ok=False, message="not checked: SLACK_BOT_TOKEN is not set")]
    client = client or WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
    try:
        auth = client.auth_test()
    except Exception as e:
        return [Check(name="slack token", ok=False, message=f"{settings.slack_api_url}: {_why(e)}"),
                Check(name="slack channel", ok=False, message="not checked: the token failed")]
    header = next((v for k, v in (auth.headers or {}).items() if k.lower() == "x-oauth-scopes"), None)
    granted = {s.strip() for s in str(header or "").split(",") if s.strip()}
    missing = [s for s in BOT_SCOPES if s not in granted]
    who = f"bot {auth.get('user_id')} in workspace {auth.get('team_id')}"
    checks: list[Check] = []
    if header is None:
        checks.append(Check(name="slack token", ok=False,
                            message=f"{who}: Slack reported no scopes (x-oauth-scopes): is this a bot token?"))
    elif missing:
        checks.append(Check(name="slack token", ok=False,
                            message=f"{who}: missing scope{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
                                    "add them under OAuth & Permissions (slack/manifest.yaml) and reinstall"))
    elif settings.slack_team_id and auth.get("team_id") != settings.slack_team_id:
        checks.append(Check(name="slack token", ok=False,
                            message=f"{who}: REMEDIATOR_SLACK_TEAM_ID is {settings.slack_team_id}: the token "
                                    "belongs to another workspace"))
    elif not auth.get("team_id"):
        checks.append(Check(name="slack token", ok=False,
                            message=f"{who}: auth.test named no workspace (an org-wide install?): install the app "
                                    "to the approvers' workspace"))
    else:
        learned = "" if settings.slack_team_id else \
            " (REMEDIATOR_SLACK_TEAM_ID is not set: serve learns this workspace from auth.test and refuses others)"
        checks.append(Check(name="slack token", ok=True,
                            message=f"{who}{learned}; scopes {', '.join(BOT_SCOPES)}"))
    checks.append(check_approver_ids(settings, client))
    if not settings.slack_channel:
        checks.append(Check(name="slack channel", ok=False, message="not checked: REMEDIATOR_SLACK_CHANNEL is not set"))
        return checks
    try:
        client.conversations_history(channel=settings.slack_channel, limit=1)
    except Exception as e:
        checks.append(Check(name="slack channel", ok=False, message=f"{settings.slack_channel}: {_why(e)}"))
        return checks
    checks.append(Check(name="slack channel", ok=True,
                        message=f"{settings.slack_channel}: reachable, the bot is a member and reads its history"))
    return checks


def _where(settings: Settings) -> dict[str, list[str]]:
    """Every Slack id the settings name → where (``approver_roles.security-oncall``, ``admins`` …)."""
    out: dict[str, list[str]] = {}
    for role, ids in sorted(settings.approver_roles.items()):
        for i in ids:
            out.setdefault(i, []).append(f"approver_roles.{role}")
    for name in ("approvers", "admins"):
        for i in getattr(settings, name):
            out.setdefault(i, []).append(name)
    return out


def check_approver_ids(settings: Settings, client: WebClient) -> Check:
    """Every user and user group the settings map (approver roles, the approvers allowlist, admins)
    exists in the workspace: groups through ``usergroups.list`` (disabled ones are not listed),
    users through ``users.info`` (a deactivated account is ``deleted``)."""
    where = _where(settings)
    if not where:
        return Check(name="slack approvers", ok=False, message="no approver roles or admins are mapped: set "
                                                               "REMEDIATOR_APPROVER_ROLES and REMEDIATOR_ADMINS")
    problems: list[str] = []
    groups = sorted(i for i in where if i.startswith("S"))
    if groups:
        try:
            listed = {str(g.get("id")) for g in client.usergroups_list().get("usergroups") or []
                      if not g.get("date_delete")}
        except Exception as e:
            return Check(name="slack approvers", ok=False, message=f"cannot list user groups: {_why(e)}")
        problems += [f"user group {g} ({', '.join(where[g])}) is not an active group of this workspace"
                     for g in groups if g not in listed]
    for user in sorted(i for i in where if not i.startswith("S")):
        try:
            found = client.users_info(user=user).get("user") or {}
        except SlackApiError as e:
            error = str(e.response.get("error", "")) if e.response is not None else ""
            if error in ("user_not_found", "users_not_found"):
                problems.append(f"user {user} ({', '.join(where[user])}) is not in this workspace")
                continue
            return Check(name="slack approvers", ok=False, message=f"cannot look up {user}: {_why(e)}")
        except Exception as e:
            return Check(name="slack approvers", ok=False, message=f"cannot look up {user}: {_why(e)}")
        if found.get("deleted"):
            problems.append(f"user {user} ({', '.join(where[user])}) is deactivated")
    if problems:
        return Check(name="slack approvers", ok=False,
                     message="; ".join(problems) + ": fix REMEDIATOR_APPROVER_ROLES / REMEDIATOR_ADMINS")
    return Check(name="slack approvers", ok=True,
                 message=f"{len(where)} mapped id{'s' if len(where) != 1 else ''} exist ({len(groups)} user "
                         f"group{'s' if len(groups) != 1 else ''}, {len(where) - len(groups)} "
                         f"user{'s' if len(where) - len(groups) != 1 else ''})")

"""``FakeSlack``: a local Slack Web API for tests, plus signed Slack requests to drive an app.

A real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, port 0, daemon threads) that the real
``slack_sdk.WebClient`` talks to (``WebClient(base_url=fake.base_url)``)::

    with FakeSlack(groups={"S1": ["U1", "U2"]}) as slack:
        client = WebClient(token=slack.token, base_url=slack.base_url)
        client.chat_postMessage(channel="C1", text="hi")
        assert slack.calls_to("chat.postMessage")[0].body["text"] == "hi"

What it serves (bodies as in api.slack.com/methods; every call needs ``Authorization: Bearer
<token>``, else ``invalid_auth``):

* ``chat.postMessage`` → ``{"ok", "channel", "ts", "message"}`` with increasing ``ts``; a
  ``thread_ts`` makes it a reply (``slack.replies(channel, ts)``); ``chat.update`` replaces the
  stored message (``message_not_found`` for an unknown one); ``slack.message(channel, ts)`` is the
  current version;
* ``chat.postMessage`` also keeps ``metadata`` (``{"event_type", "event_payload"}``, a JSON object or
  its text as form-encoded calls send it; ``invalid_metadata_format`` / ``invalid_metadata_schema``
  otherwise, as Slack answers);
* ``conversations.history`` → ``{"ok", "messages", "has_more", "response_metadata": {"next_cursor"}}``:
  the channel's top-level messages, newest first, between ``oldest`` and ``latest`` (exclusive unless
  ``inclusive``), ``limit`` per page (default 100, at most 999) and ``cursor`` paging; a message's
  ``metadata`` only with ``include_all_metadata=true``. It needs ``channels:history`` (or
  ``groups:history`` for a private channel, id ``G…`` or ``private=`` here) among the token's scopes,
  else ``missing_scope`` with ``needed`` and ``provided``; ``not_in_channel`` when the bot is not a
  member (api.slack.com/methods/conversations.history);
* ``conversations.replies`` (``channel``, ``ts``): a thread, the parent first and then its replies in
  order, with the same window, paging, metadata and scopes as ``conversations.history``;
  ``thread_not_found`` for an unknown parent;
* ``chat.postEphemeral`` → ``{"ok", "message_ts"}``;
* ``views.open`` → ``{"ok", "view"}``; the ``trigger_id`` must be one this fake issued in a signed
  request, unused (``trigger_exchanged``) and at most 3 s old by the fake's clock
  (``trigger_expired``), else ``invalid_trigger_id``;
* ``usergroups.users.list`` → ``{"ok", "users"}`` for the configured groups, ``no_such_subteam``;
* ``usergroups.list`` → ``{"ok", "usergroups": [{"id", "handle", "date_delete": 0, "users"?}]}`` (the
  users with ``include_users``); ``users.info`` → ``{"ok", "user": {"id", "deleted": false}}`` for a
  known user (``users=``, plus every group member), ``user_not_found`` otherwise;
* ``auth.test`` (no scope needed) → the bot identity as Slack answers it for a bot token (``url``,
  ``team``, ``user``, ``team_id``, ``user_id``, ``bot_id``, ``is_enterprise_install``, and
  ``enterprise_id`` only for a workspace of an Enterprise Grid org), with the token's scopes in the
  ``x-oauth-scopes`` response header (as Slack sends it; ``scopes=`` sets them);
* ``conversations.info`` → the channel (``{"id", "name", "is_member", "is_private"}``); ``channels=``
  (id → whether the bot is a member) limits the known ones, else every channel exists with the bot
  in it; ``channel_not_found`` otherwise; ``private=`` names private channels (a private channel
  the bot is not in is ``channel_not_found``, as for Slack);
* ``POST /response_url`` (a ``response_url`` target, as Slack's hooks) → ``ok``.

Every method needs the scopes Slack documents for it (``NEEDS``: ``chat:write`` for posting,
``usergroups:read``, ``users:read``, ``channels:read`` for a public channel's ``conversations.info``
and ``groups:read`` for a private one's, ``channels:history``/``groups:history`` for
``conversations.history``); a token without them gets ``{"ok": false, "error":
"missing_scope", "needed": …, "provided": …}``. The default scopes are slack/manifest.yaml's.

Messages and views are checked against the Block Kit limits Slack enforces (50 blocks per
message, 100 per view, 3,000 characters per section text, 150 per header, 2,000 per button
value, 255 per ``action_id``/``block_id``), answering ``invalid_blocks`` like Slack does.

Every call is recorded as ``SlackCall`` (method, parsed body, headers, time by the fake's clock,
HTTP status); ``rate_limit(method, times, retry_after)`` answers the next calls with 429 and a
``Retry-After`` header; ``fail(method, error)`` answers ``{"ok": false, "error": …}``.
Outages: ``down(status=500)`` answers every Web API call with that HTTP status (and nothing
happens) until ``up()``; ``http_error(method, status, times)`` does it for the next calls of one
method; ``slow(method, seconds, times)`` does the call (a post lands) and answers only after
``seconds`` of real time, so a client with a shorter timeout gives up on a call that succeeded.

Signed requests: ``block_actions(…)``, ``view_submission(…)`` and ``slash_command(…)`` build the
exact bodies Slack sends (form-encoded ``payload=<json>`` for interactions, form fields for
commands) and sign them with the app's signing secret (``slack_sdk.signature``, the real
algorithm), with any timestamp, so tests can also build stale or forged requests.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from urllib.request import Request, urlopen

from slack_sdk.signature import SignatureVerifier

TRIGGER_TTL_SECONDS = 3.0
_LIMITS = {"blocks": 50, "view_blocks": 100, "section": 3000, "header": 150, "value": 2000, "id": 255, "title": 24}
MANIFEST_SCOPES = ("chat:write", "commands", "usergroups:read", "users:read", "channels:history", "groups:history")
NEEDS: dict[str, tuple[str, ...]] = {  # method → scopes, any one of which is enough (api.slack.com/methods)
    "chat.postMessage": ("chat:write",), "chat.update": ("chat:write",), "chat.postEphemeral": ("chat:write",),
    "usergroups.users.list": ("usergroups:read",), "usergroups.list": ("usergroups:read",),
    "users.info": ("users:read",),
}
STOP_POLL = 0.01  # seconds: how often the server thread checks for stop() (how long stop() can wait)


@dataclass(frozen=True, slots=True)
class SlackCall:
    """One request the fake received. ``method`` is the Web API method or ``"response_url"``."""

    method: str
    body: dict[str, Any]
    headers: dict[str, str] = field(repr=False)
    at: float
    status: int = 200
    ok: bool = True


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request as Slack sends it: the raw body and its (lower-case) headers."""

    body: str
    headers: dict[str, str]

    def with_headers(self, **headers: str) -> SignedRequest:
        """A copy with headers added or replaced (``x_slack_signature="v0=bad"``: underscores become dashes)."""
        extra = {k.replace("_", "-").lower(): v for k, v in headers.items()}
        return replace(self, headers={**self.headers, **extra})


@dataclass(slots=True)
class _Injected:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


class FakeSlack:
    """A recording fake of the Slack Web API on a real local port; see the module docstring."""

    def __init__(
        self,
        *,
        token: str = "xoxb-fake-token",  # noqa: S107 (a fake's placeholder, not a secret)
        signing_secret: str = "fake-signing-secret",  # noqa: S107
        team_id: str = "T0FAKE",
        enterprise_id: str | None = None,
        bot_user_id: str = "U0FAKEBOT",
        bot_id: str = "B0FAKEBOT",
        groups: Mapping[str, Iterable[str]] | None = None,
        clock: Callable[[], float] = time.time,
        scopes: Iterable[str] = MANIFEST_SCOPES,
        channels: Mapping[str, bool] | None = None,
        private: Iterable[str] = (),
        users: Iterable[str] = (),
    ) -> None:
        self.token = token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.enterprise_id = enterprise_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.clock = clock
        self.scopes = tuple(scopes)
        self.channels = dict(channels) if channels is not None else None
        self.private = frozenset(private)
        self._down: int | None = None
        self._slow: dict[str, list[list[float]]] = {}
        self._groups: dict[str, list[str]] = {g: list(u) for g, u in (groups or {}).items()}
        self.users = set(users)
        self._lock = threading.Lock()
        self._calls: list[SlackCall] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._injected: dict[str, list[_Injected]] = {}
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._ts = itertools.count(1)
        self._views = itertools.count(1)
        self._base_ts = int(clock())
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = _Server(("127.0.0.1", 0), Handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": STOP_POLL},
                                        name="FakeSlack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """For ``WebClient(base_url=…)`` (with the trailing slash the client expects)."""
        return self.url + "/api/"

    @property
    def response_url(self) -> str:
        return self.url + "/response_url"

    # --- configuration -----------------------------------------------------------------------

    def set_group(self, group_id: str, users: Iterable[str]) -> None:
        with self._lock:
            self._groups[group_id] = list(users)

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``Retry-After: retry_after``."""
        with self._lock:
            self._injected.setdefault(method, []).append(_Injected(
                429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}, times))

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error": error}``."""
        with self._lock:
            self._injected.setdefault(method, []).append(_Injected(200, {"ok": False, "error": error}, {}, times))

    def http_error(self, method: str, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP ``status`` (a text body, as a proxy sends it)."""
        with self._lock:
            self._injected.setdefault(method, []).append(_Injected(status, {"_text": "Internal Server Error"}, {},
                                                                   times))

    def down(self, status: int = 500) -> None:
        """Answer every Web API call with HTTP ``status`` (nothing is done) until ``up()``."""
        with self._lock:
            self._down = status

    def up(self) -> None:
        with self._lock:
            self._down = None

    def slow(self, method: str, seconds: float, times: int = 1) -> None:
        """Do the next ``times`` calls of ``method``, then wait ``seconds`` (real time) before answering."""
        with self._lock:
            self._slow.setdefault(method, []).append([seconds, times])

    def reset(self) -> None:
        """Forget recorded calls (messages and groups stay)."""
        with self._lock:
            self._calls.clear()

    # --- inspection --------------------------------------------------------------------------

    @property
    def calls(self) -> list[SlackCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[SlackCall]:
        """Poll (real time) until ``method`` was called at least ``count`` times."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls_to(method)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.01)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current version of a posted message (after any ``chat.update``)."""
        with self._lock:
            msg = self._messages.get((channel, ts))
            return _copy([msg])[0] if msg is not None else None

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Top-level messages (not thread replies), oldest first."""
        with self._lock:
            found = [m for (ch, _), m in self._messages.items()
                     if (channel is None or ch == channel) and not m.get("thread_ts")]
        return _copy(found)

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        with self._lock:
            found = [m for (ch, _), m in self._messages.items() if ch == channel and m.get("thread_ts") == thread_ts]
        return _copy(found)

    # --- signed requests ---------------------------------------------------------------------

    def sign(self, body: str, *, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        """The Slack signature headers for ``body`` (``v0=hmac_sha256(secret, "v0:ts:body")``)."""
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret or self.signing_secret).generate_signature(timestamp=ts, body=body)
        return {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": ts,
            "x-slack-signature": signature or "",
        }

    def new_trigger_id(self) -> str:
        trigger = f"{next(self._views)}{secrets.randbelow(10**9)}.{self.team_id}.{secrets.token_hex(8)}"
        with self._lock:
            self._triggers[trigger] = self.clock()
        return trigger

    def _identity(self, user_id: str, team_id: str | None, enterprise_id: str | None,
                  user_name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        team = team_id or self.team_id
        ent = enterprise_id if enterprise_id is not None else self.enterprise_id
        name = user_name or user_id.lower()
        user: dict[str, Any] = {"id": user_id, "username": name, "name": name, "team_id": team}
        team_obj: dict[str, Any] = {"id": team, "domain": team.lower()}
        if ent:
            team_obj |= {"enterprise_id": ent, "enterprise_name": "Fake Org"}
        enterprise = {"id": ent, "name": "Fake Org"} if ent else None
        return user, team_obj, enterprise

    def block_actions(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str,
        team_id: str | None = None,
        enterprise_id: str | None = None,
        user_name: str = "",
        channel: str = "C0FAKE",
        message_ts: str = "",
        block_id: str = "b",
        timestamp: int | None = None,
        secret: str | None = None,
        trigger_id: str | None = None,
        response_url: str | None = None,
        selected: str | None = None,
    ) -> SignedRequest:
        """A signed button click (``payload=<json>`` form body, like the fixtures in tests/fixtures/slack);
        with ``selected``, the choice of that option's value in a menu (``static_select``) instead."""
        user, team, enterprise = self._identity(user_id, team_id, enterprise_id, user_name)
        now = self.clock()
        message = self.message(channel, message_ts) if message_ts else None
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": user,
            "api_app_id": "A0FAKEAPP",
            "token": "deprecated-verification-token",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": trigger_id or self.new_trigger_id(),
            "team": team,
            "enterprise": enterprise,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "security-approvals"},
            "message": {"type": "message", "ts": message_ts, "bot_id": self.bot_id,
                        "text": (message or {}).get("text", ""), "blocks": (message or {}).get("blocks", [])},
            "state": {"values": {}},
            "response_url": response_url or self.response_url,
            "actions": [{"action_id": action_id, "block_id": block_id, "value": value, "type": "button",
                         "text": {"type": "plain_text", "text": action_id}, "action_ts": f"{now:.6f}"}],
        }
        if selected is not None:  # a menu's action carries the chosen option, no value of its own
            payload["actions"] = [{"action_id": action_id, "block_id": block_id, "type": "static_select",
                                   "selected_option": {"text": {"type": "plain_text", "text": selected},
                                                       "value": selected},
                                   "action_ts": f"{now:.6f}"}]
        body = "payload=" + quote(json.dumps(payload, separators=(",", ":")), safe="")
        return SignedRequest(body, self.sign(body, timestamp=timestamp, secret=secret))

    def view_submission(
        self,
        *,
        callback_id: str,
        values: Mapping[str, Mapping[str, str]],
        user_id: str,
        private_metadata: str = "",
        team_id: str | None = None,
        enterprise_id: str | None = None,
        user_name: str = "",
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """A signed modal submission; ``values`` maps block_id → action_id → the typed text."""
        user, team, enterprise = self._identity(user_id, team_id, enterprise_id, user_name)
        state = {b: {a: {"type": "plain_text_input", "value": v} for a, v in acts.items()}
                 for b, acts in values.items()}
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": team,
            "user": user,
            "api_app_id": "A0FAKEAPP",
            "token": "deprecated-verification-token",
            "trigger_id": self.new_trigger_id(),
            "view": {
                "id": f"V{next(self._views):08d}", "team_id": team["id"], "type": "modal", "blocks": [],
                "private_metadata": private_metadata, "callback_id": callback_id, "state": {"values": state},
                "hash": f"{int(self.clock())}.fake", "title": {"type": "plain_text", "text": "Fake"},
                "app_id": "A0FAKEAPP", "app_installed_team_id": self.team_id, "bot_id": self.bot_id,
                "root_view_id": None, "previous_view_id": None, "external_id": "",
            },
            "response_urls": [],
            "enterprise": enterprise,
        }
        body = "payload=" + quote(json.dumps(payload, separators=(",", ":")), safe="")
        return SignedRequest(body, self.sign(body, timestamp=timestamp, secret=secret))

    def slash_command(
        self,
        *,
        command: str,
        text: str,
        user_id: str,
        team_id: str | None = None,
        enterprise_id: str | None = None,
        user_name: str = "",
        channel: str = "C0FAKE",
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """A signed slash command (plain form fields, like Slack's documented example)."""
        team = team_id or self.team_id
        ent = enterprise_id if enterprise_id is not None else self.enterprise_id
        fields = {
            "token": "deprecated-verification-token", "team_id": team, "team_domain": team.lower(),
            "channel_id": channel, "channel_name": "security-approvals", "user_id": user_id,
            "user_name": user_name or user_id.lower(), "command": command, "text": text,
            "api_app_id": "A0FAKEAPP", "is_enterprise_install": "false",
            "response_url": self.response_url, "trigger_id": self.new_trigger_id(),
        }
        if ent:
            fields |= {"enterprise_id": ent, "enterprise_name": "Fake Org"}
        body = urlencode(fields)
        return SignedRequest(body, self.sign(body, timestamp=timestamp, secret=secret))

    @staticmethod
    def send(url: str, request: SignedRequest, timeout: float = 10.0) -> tuple[int, str]:
        """POST a signed request to an app over real HTTP; (status, body text), also for 4xx/5xx."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an HTTP URL: {url}")
        req = Request(url, data=request.body.encode(), headers=request.headers, method="POST")  # noqa: S310
        try:
            with urlopen(req, timeout=timeout) as resp:  # noqa: S310 (scheme checked above)
                return int(resp.status), resp.read().decode()
        except HTTPError as exc:  # 4xx/5xx: the error carries the response
            return exc.code, exc.read().decode()

    # --- the Web API -------------------------------------------------------------------------

    def _record(self, call: SlackCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _take_slow(self, method: str) -> float:
        with self._lock:
            queue = self._slow.get(method)
            if not queue:
                return 0.0
            head = queue[0]
            head[1] -= 1
            if head[1] <= 0:
                queue.pop(0)
            return head[0]

    def _take_injected(self, method: str) -> _Injected | None:
        with self._lock:
            if self._down is not None and method != "response_url":
                return _Injected(self._down, {"_text": "Service Unavailable" if self._down == 503 else
                                              "Internal Server Error"}, {}, 1)
            queue = self._injected.get(method)
            if not queue:
                return None
            head = queue[0]
            head.times -= 1
            if head.times <= 0:
                queue.pop(0)
            return head

    def _next_ts(self) -> str:
        with self._lock:
            n = next(self._ts)
        return f"{self._base_ts + n // 1_000_000}.{n % 1_000_000:06d}"

    def handle(self, method: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """Answer one call: (status, JSON body or text, extra headers)."""
        injected = self._take_injected(method)
        if injected is not None:
            body_out: Any = injected.body.get("_text", injected.body)
            return injected.status, body_out, injected.headers
        if method == "response_url":
            return 200, "ok", {}
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "not_authed" if not auth else "invalid_auth"}, {}
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        needed = NEEDS.get(method, ())
        if method == "conversations.info":
            needed = ("groups:read",) if str(body.get("channel") or "") in self.private else ("channels:read",)
        if needed and not set(needed) & set(self.scopes):
            return 200, {"ok": False, "error": "missing_scope", "needed": ",".join(needed),
                         "provided": ",".join(self.scopes)}, {"x-oauth-scopes": ",".join(self.scopes)}
        result: dict[str, Any] = handler(body)
        if method == "auth.test":
            return 200, result, {"x-oauth-scopes": ",".join(self.scopes)}
        return 200, result, {}

    def _api_auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": True, "url": f"https://{self.team_id.lower()}.slack.com/", "team": "Fake",
                                  "user": "remediator", "team_id": self.team_id, "user_id": self.bot_user_id,
                                  "bot_id": self.bot_id, "is_enterprise_install": False}
        if self.enterprise_id:  # Slack adds it only for a workspace of an Enterprise Grid org
            answer["enterprise_id"] = self.enterprise_id
        return answer

    def _api_conversations_info(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = str(body.get("channel") or "")
        if not channel or (self.channels is not None and channel not in self.channels):
            return {"ok": False, "error": "channel_not_found"}
        member = True if self.channels is None else self.channels[channel]
        private = channel in self.private
        if private and not member:  # a private channel is invisible to a bot outside it
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": channel, "name": f"chan-{channel.lower()}", "is_channel": not private,
                                        "is_group": private, "is_private": private, "is_member": member}}

    def _api_conversations_history(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._read_messages(body, thread=None)

    def _api_conversations_replies(self, body: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent message first, then the replies in order (api.slack.com/methods/
        conversations.replies: ``channel`` and ``ts`` required, the window and paging as history's)."""
        ts = str(body.get("ts") or "")
        if not ts:
            return {"ok": False, "error": "invalid_arguments"}
        return self._read_messages(body, thread=ts)

    def _read_messages(self, body: dict[str, Any], *, thread: str | None) -> dict[str, Any]:
        channel = str(body.get("channel") or "")
        if not channel or (self.channels is not None and channel not in self.channels):
            return {"ok": False, "error": "channel_not_found"}
        needed = "groups:history" if channel.startswith("G") or channel in self.private else "channels:history"
        if needed not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(self.scopes)}
        if self.channels is not None and not self.channels[channel]:
            return {"ok": False, "error": "not_in_channel"}
        try:
            oldest = float(body.get("oldest") or 0)
            latest = float(body["latest"]) if body.get("latest") else float("inf")
            limit = min(max(int(body.get("limit") or 100), 1), 999)
            offset = int(body.get("cursor") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        inclusive = _truthy(body.get("inclusive"))
        with_metadata = _truthy(body.get("include_all_metadata"))
        with self._lock:
            if thread is None:  # history: the top-level messages, newest first
                found = [m for (ch, _), m in self._messages.items() if ch == channel and not m.get("thread_ts")]
                found.sort(key=lambda m: float(m["ts"]), reverse=True)
            else:  # replies: the parent, then its thread, oldest first
                if (channel, thread) not in self._messages:
                    return {"ok": False, "error": "thread_not_found"}
                found = [m for (ch, ts), m in self._messages.items()
                         if ch == channel and (ts == thread or m.get("thread_ts") == thread)]
                found.sort(key=lambda m: float(m["ts"]))
        found = [m for m in found if (oldest <= float(m["ts"]) <= latest if inclusive else
                                      oldest < float(m["ts"]) < latest)]
        page = _copy(found[offset:offset + limit])
        if not with_metadata:
            for m in page:
                m.pop("metadata", None)
        more = offset + limit < len(found)
        return {"ok": True, "messages": page, "has_more": more, "pin_count": 0,
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""}}

    def _api_chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        problem = _check_blocks(body.get("blocks"), _LIMITS["blocks"])
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        metadata, error = _metadata(body.get("metadata"))
        if error:
            return {"ok": False, "error": error}
        ts = self._next_ts()
        msg = {"type": "message", "ts": ts, "user": self.bot_user_id, "bot_id": self.bot_id,
               "text": body.get("text", ""), "blocks": body.get("blocks") or []}
        if metadata is not None:
            msg["metadata"] = metadata
        if body.get("thread_ts"):
            msg["thread_ts"] = str(body["thread_ts"])
        with self._lock:
            self._messages[(str(channel), ts)] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def _api_chat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        key = (str(body.get("channel", "")), str(body.get("ts", "")))
        problem = _check_blocks(body.get("blocks"), _LIMITS["blocks"])
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        metadata, error = _metadata(body.get("metadata"))
        if error:
            return {"ok": False, "error": error}
        with self._lock:
            msg = self._messages.get(key)
            if msg is None:
                return {"ok": False, "error": "message_not_found"}
            if metadata is not None:  # an update without metadata keeps the message's
                msg["metadata"] = metadata
            msg["text"] = body.get("text", msg.get("text", ""))
            if "blocks" in body:
                msg["blocks"] = body.get("blocks") or []
            msg["edited"] = {"user": self.bot_user_id, "ts": f"{self.clock():.6f}"}
        return {"ok": True, "channel": key[0], "ts": key[1], "text": msg["text"]}

    def _api_chat_postEphemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _api_views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        trigger = str(body.get("trigger_id") or "")
        with self._lock:
            if trigger in self._used_triggers:
                return {"ok": False, "error": "trigger_exchanged"}
            issued = self._triggers.pop(trigger, None)
            if issued is None:
                return {"ok": False, "error": "invalid_trigger_id"}
            self._used_triggers.add(trigger)
        if self.clock() - issued > TRIGGER_TTL_SECONDS:
            return {"ok": False, "error": "trigger_expired"}
        view = body.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        problem = _check_blocks(view.get("blocks"), _LIMITS["view_blocks"])
        title = view.get("title", {}).get("text", "") if isinstance(view.get("title"), dict) else ""
        if problem or not title or len(title) > _LIMITS["title"]:
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": [problem or "title"]}}
        return {"ok": True, "view": {**view, "id": f"V{next(self._views):08d}"}}

    def _api_usergroups_list(self, body: dict[str, Any]) -> dict[str, Any]:
        with_users = str(body.get("include_users", "")).lower() in ("1", "true")
        with self._lock:
            groups = [{"id": g, "handle": g.lower(), "date_delete": 0, **({"users": list(u)} if with_users else {})}
                      for g, u in self._groups.items()]
        return {"ok": True, "usergroups": groups}

    def _api_users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        user = str(body.get("user") or "")
        with self._lock:
            known = user in self.users or any(user in members for members in self._groups.values())
        if not known:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": user, "team_id": self.team_id, "deleted": False, "is_bot": False}}

    def _api_usergroups_users_list(self, body: dict[str, Any]) -> dict[str, Any]:
        group = str(body.get("usergroup") or "")
        with self._lock:
            users = self._groups.get(group)
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}


def _copy(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    copied: list[dict[str, Any]] = json.loads(json.dumps(messages))
    return copied


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _metadata(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A message's ``metadata`` argument checked as Slack does: (the metadata, None) or (None, the error)."""
    if value is None or value == "":
        return None, None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None, "invalid_metadata_format"
    if not isinstance(value, dict):
        return None, "invalid_metadata_format"
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        return None, "invalid_metadata_schema"
    return {"event_type": event_type, "event_payload": payload}, None


def _text_of(obj: Any) -> str:
    return obj.get("text", "") if isinstance(obj, dict) else ""


def _check_blocks(blocks: Any, max_blocks: int) -> str | None:
    """The first Block Kit limit a message's blocks break, like Slack's ``invalid_blocks`` errors."""
    if blocks is None:
        return None
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "blocks is not JSON"
    if not isinstance(blocks, list):
        return "blocks must be an array"
    if len(blocks) > max_blocks:
        return f"no more than {max_blocks} items allowed [json-pointer:/blocks]"
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            return f"invalid block [json-pointer:/blocks/{i}]"
        if len(str(block.get("block_id", ""))) > _LIMITS["id"]:
            return f"block_id too long [json-pointer:/blocks/{i}/block_id]"
        if block["type"] == "section" and len(_text_of(block.get("text"))) > _LIMITS["section"]:
            return f"must be less than 3001 characters [json-pointer:/blocks/{i}/text/text]"
        if block["type"] == "header" and len(_text_of(block.get("text"))) > _LIMITS["header"]:
            return f"must be less than 151 characters [json-pointer:/blocks/{i}/text/text]"
        elements = block.get("elements") if block["type"] == "actions" else []
        for j, el in enumerate(elements or []):
            if len(str(el.get("value", ""))) > _LIMITS["value"]:
                return f"must be less than 2001 characters [json-pointer:/blocks/{i}/elements/{j}/value]"
            if len(str(el.get("action_id", ""))) > _LIMITS["id"]:
                return f"action_id too long [json-pointer:/blocks/{i}/elements/{j}/action_id]"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent calls (the default backlog of 5 resets them)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeSlack
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        body: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        ctype = headers.get("content-type", "")
        if raw:
            if "json" in ctype:
                try:
                    decoded = json.loads(raw)
                except ValueError:
                    decoded = {"_raw": raw.decode(errors="replace")}
                body.update(decoded if isinstance(decoded, dict) else {"_json": decoded})
            else:
                body.update(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
        for key in ("blocks", "view"):  # form-encoded calls carry these as JSON strings (metadata: checked by the call)
            if isinstance(body.get(key), str):
                with contextlib.suppress(ValueError):
                    body[key] = json.loads(body[key])
        path = parts.path.rstrip("/")
        if path.startswith("/api/"):
            method = path[len("/api/"):]
        elif path.startswith("/response_url"):
            method = "response_url"
        else:
            method = path.lstrip("/") or "?"
        status, reply, extra = self.owner.handle(method, body, headers)
        ok = bool(reply.get("ok", True)) if isinstance(reply, dict) else status == 200
        self.owner._record(SlackCall(method, body, headers, self.owner.clock(), status, ok and status == 200))
        delay = self.owner._take_slow(method) if status == 200 else 0.0
        if delay:
            time.sleep(delay)  # the call is done; the answer comes late (a client may have given up)
        data = (json.dumps(reply) if isinstance(reply, dict) else str(reply)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8" if isinstance(reply, dict) else
                             "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (``slow``)
            self.close_connection = True

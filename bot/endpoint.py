"""Slack's HTTP endpoint: every request verified from its raw bytes before anything reads the body.

``SlackEndpoint.handle(body, headers, query)`` is what ``remediator serve`` (``bot.http``) and the
Functions route (``function_app.slack``) call. In order, and each step answers on its own:

==========================================  ======  =============================================
check                                       status  what reaches the log
==========================================  ======  =============================================
body over ``max_body`` (1 MiB)              413     its length
signature headers missing or malformed      401     the reason and the body's length, nothing else
(timestamp: 1-11 ASCII digits; signature:
``v0=`` + 64 hex digits)
timestamp more than 5 minutes away          401     same
HMAC-SHA256 of ``v0:<ts>:<raw bytes>``      401     same
does not match (``hmac.compare_digest``)
signature seen before (``bot.replay``)      401     same; audited as ``slack_replay_refused``
the replay cache cannot be checked (the     503     the store's error, one line (fail closed:
store fails: an outage, a held lock)                nothing is dispatched; the signature is not
                                                    recorded, so the same request works later)
content type neither form nor JSON          400     same
not UTF-8, or not a request remediator      400     same
handles (shape check below)
bolt (``App.dispatch``)                     bolt's  bolt's own logs, of a verified body only
bolt found no listener (404)                400
==========================================  ======  =============================================

So bolt never builds a request (whose constructor parses the body and builds its context, and
raised ``AttributeError`` on ``payload=1``) from an unverified body, and never logs one (its
``RequestVerification`` logs a failing request's whole body at INFO; it stays enabled behind this
check as a second lock, and ``bot.app`` filters that log line too). Incoming ``x-slack-bolt-*``
headers are dropped (bolt reads its lazy-listener markers from headers no signature covers).

The shape check admits what Slack sends to this app and what its listeners read: a form body
with one ``payload`` (a JSON object: ``block_actions`` with a non-empty list of actions, or
``view_submission``/``view_closed`` with a view) or one ``command``, or bolt's ``ssl_check``; a
JSON body only for ``url_verification``. Objects Slack nests (``user``, ``team``, ``channel`` …)
must be objects and their ids text, so a signed but odd body is a 400, not an exception.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest, BoltResponse

from bot.replay import ReplayCache
from remediator.errors import error_line

if TYPE_CHECKING:
    from remediator.config.settings import Settings
    from remediator.lifecycle.store import Store

log = logging.getLogger("bot.endpoint")

MAX_BODY = 1024 * 1024  # Slack's payloads are small; anything larger is refused unread
WINDOW_SECONDS = 300
BOLT_HEADER_PREFIX = "x-slack-bolt-"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
_TIMESTAMP = re.compile(r"[0-9]{1,11}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
INTERACTIONS = frozenset({"block_actions", "view_submission", "view_closed"})
MAX_FIELDS = 100  # form fields in a body Slack sends: about 12 for a slash command
# objects Slack nests in interaction payloads, and the text fields bolt and the listeners read from them
_NESTED: dict[str, tuple[str, ...]] = {
    "user": ("id", "team_id", "username", "name"), "team": ("id", "enterprise_id", "domain"),
    "enterprise": ("id",), "channel": ("id",), "container": ("channel_id", "message_ts", "type", "view_id"),
    "message": ("ts", "thread_ts", "text"), "view": ("id", "callback_id", "private_metadata", "type", "team_id"),
}
_TEXT = ("trigger_id", "response_url", "api_app_id", "token", "type")
_COMMAND_TEXT = ("command", "text", "user_id", "team_id", "enterprise_id", "channel_id", "user_name",
                 "trigger_id", "response_url", "api_app_id", "token", "team_domain", "channel_name",
                 "enterprise_name", "is_enterprise_install")

__all__ = ["MAX_BODY", "Refused", "SlackEndpoint", "build_endpoint", "strip_bolt_headers", "to_bolt_request"]


class Refused(Exception):
    """A request answered before bolt: ``status`` and a reason that names no part of the body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def strip_bolt_headers(headers: Mapping[str, str | Sequence[str]]) -> dict[str, str | Sequence[str]]:
    """The headers without any ``x-slack-bolt-*`` (internal markers only our own code may set)."""
    return {k: v for k, v in headers.items() if not k.lower().startswith(BOLT_HEADER_PREFIX)}


def to_bolt_request(body: bytes | str, headers: Mapping[str, str | Sequence[str]],
                    query: str | Mapping[str, str | Sequence[str]] | None = None) -> BoltRequest:
    """A ``BoltRequest`` from a *verified* raw body (decoded as UTF-8, never ``str(bytes)``) and safe headers."""
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    clean = {k: (v if isinstance(v, str) else list(v)) for k, v in strip_bolt_headers(headers).items()}
    return BoltRequest(body=text, query=query if query else None, headers=clean)  # type: ignore[arg-type]


def _header(headers: Mapping[str, str | Sequence[str]], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            if isinstance(value, str):
                return value
            values = list(value)
            return values[0] if len(values) == 1 and isinstance(values[0], str) else None
    return None


class SlackEndpoint:
    """The checks in the module docstring, then ``app.dispatch``. Thread-safe (the store is)."""

    def __init__(self, app: App, *, signing_secret: str, replay: ReplayCache, max_body: int = MAX_BODY,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self._secret = signing_secret.encode()
        self.replay = replay
        self.max_body = max_body
        self.clock = clock

    def handle(self, body: bytes, headers: Mapping[str, str | Sequence[str]],
               query: str | Mapping[str, str | Sequence[str]] | None = None) -> BoltResponse:
        try:
            timestamp, signature = self.verify(body, headers)
            self._not_replayed(body, timestamp, signature)
            text = self._well_formed(body, _header(headers, "content-type") or "")
        except Refused as refused:
            log.info("refused a Slack request: %s (%d bytes)", refused.reason, len(body))
            # a 401 says no more than bolt's does; the log line has the reason
            answer = "invalid request" if refused.status == 401 else refused.reason
            return BoltResponse(status=refused.status, body={"error": answer})
        resp = self.app.dispatch(to_bolt_request(text, headers, query))
        if resp.status == 404:  # bolt found no listener: a request remediator does not handle
            log.info("refused a Slack request: no listener for it (%d bytes)", len(body))
            return BoltResponse(status=400, body={"error": "unsupported request"})
        return resp

    # --- the checks ----------------------------------------------------------------------------

    def verify(self, body: bytes, headers: Mapping[str, str | Sequence[str]]) -> tuple[int, str]:
        """(timestamp, signature) of a request Slack signed within the window; else ``Refused``."""
        if len(body) > self.max_body:
            raise Refused(413, f"body over {self.max_body} bytes")
        ts = _header(headers, "x-slack-request-timestamp")
        signature = _header(headers, "x-slack-signature")
        if not ts or not signature:
            raise Refused(401, "no signature")
        if not _TIMESTAMP.fullmatch(ts) or not _SIGNATURE.fullmatch(signature):
            raise Refused(401, "malformed signature headers")
        if not self._secret:
            raise Refused(401, "no signing secret configured")
        timestamp = int(ts)
        if abs(self.clock() - timestamp) > WINDOW_SECONDS:
            raise Refused(401, "timestamp outside the five-minute window")
        expected = "v0=" + hmac.new(self._secret, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Refused(401, "bad signature")
        return timestamp, signature

    def _not_replayed(self, body: bytes, timestamp: int, signature: str) -> None:
        try:
            first = self.replay.first_seen(timestamp, signature)
        except Exception as e:  # fail closed: a check that cannot be made refuses (503: Slack may retry)
            log.warning("the replay cache could not be checked (the store failed: %s)", error_line(e))
            raise Refused(503, "the store is unavailable; try again") from None
        if first:
            return
        self.replay.refused(timestamp=timestamp, signature=signature, size=len(body), summary=summary(body))
        raise Refused(401, "replayed")

    def _well_formed(self, body: bytes, content_type: str) -> str:
        """The verified body as text when it is a request remediator handles; else ``Refused(400)``."""
        mimetype = content_type.partition(";")[0].strip().lower()
        if mimetype not in (FORM, JSON):
            raise Refused(400, "unsupported content type")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "body is not UTF-8") from None
        problem = _form_problem(text) if mimetype == FORM else _json_problem(text)
        if problem:
            raise Refused(400, problem)
        return text


# --- the shape check -------------------------------------------------------------------------------


def _form_problem(text: str) -> str | None:
    try:
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS,
                          errors="strict")
    except (ValueError, UnicodeDecodeError):
        return "unreadable form body"
    if any(len(v) != 1 for v in fields.values()):
        return "a form field appears more than once"
    if "payload" in fields:
        try:
            payload = json.loads(fields["payload"][0])
        except ValueError:
            return "payload is not JSON"
        return _interaction_problem(payload)
    if "command" in fields:
        if not fields.get("user_id", [""])[0] or not fields["command"][0].startswith("/"):
            return "a slash command without a command or user"
        return None
    if fields.get("ssl_check") == ["1"]:
        return None
    return "neither an interaction nor a slash command"


def _interaction_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "payload is not an object"
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in INTERACTIONS:
        return "unsupported interaction type"
    for key in _TEXT:
        if key in payload and not isinstance(payload[key], str):
            return f"{key} is not text"
    for key, texts in _NESTED.items():
        value = payload.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"{key} is not an object"
        if any(t in value and value[t] is not None and not isinstance(value[t], str) for t in texts):
            return f"an id in {key} is not text"
    user = payload.get("user")
    if not isinstance(user, dict) or not user.get("id"):
        return "no user"
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            return "no actions"
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
                return "an action without an action_id"
            if any(k in action and not isinstance(action[k], str) for k in ("value", "block_id", "type")):
                return "an action field is not text"
        state = payload.get("state")
        if state is not None and not isinstance(state, dict):
            return "state is not an object"
    else:
        view = payload.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
            return "no view"
        state = view.get("state")
        if state is not None and (not isinstance(state, dict) or not isinstance(state.get("values", {}), dict)):
            return "view state is not an object"
    return None


def _json_problem(text: str) -> str | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return "body is not JSON"
    if not isinstance(doc, dict) or doc.get("type") != "url_verification" or not isinstance(doc.get("challenge"), str):
        return "unsupported JSON request"
    return None


def summary(body: bytes) -> dict[str, Any]:
    """What a verified body asked for, for the audit trail: its kind, user and action or command."""
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=MAX_FIELDS)
        if "payload" in fields:
            payload = json.loads(fields["payload"][0])
            user = payload.get("user") if isinstance(payload, dict) else None
            actions = payload.get("actions") if isinstance(payload, dict) else None
            first = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
            return {"kind": str(payload.get("type"))[:40], "user_id": str((user or {}).get("id") or "")[:32],
                    "action_id": str(first.get("action_id") or "")[:80], "value": str(first.get("value") or "")[:80]}
        if "command" in fields:
            return {"kind": "command", "user_id": fields.get("user_id", [""])[0][:32],
                    "command": fields["command"][0][:40], "text": fields.get("text", [""])[0][:80]}
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        pass
    return {"kind": "unknown"}


def build_endpoint(app: App, settings: Settings, store: Store, *,
                   clock: Callable[[], Any] | None = None) -> SlackEndpoint:
    """The endpoint for ``app`` with the settings' signing secret and a replay cache in ``store``
    (``clock``: the audit trail's clock, the engine's)."""
    replay = ReplayCache(store, clock=clock) if clock is not None else ReplayCache(store)
    return SlackEndpoint(app, signing_secret=settings.slack_signing_secret or "", replay=replay)

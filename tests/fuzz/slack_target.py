"""Fuzz target: Slack's endpoint, as ``remediator serve`` serves it (``bot.http.Endpoints``, in-process WSGI).

An example is a request: a body (real Slack shapes from ``FakeSlack`` with random values and
mutations, random JSON as a JSON body or as a form ``payload``, random form fields, random bytes,
invalid UTF-8, now and then more than 1 MiB), a content type, extra headers, and how it is
signed: validly (at run time, over the exact bytes), with a wrong secret, stale or future,
with a mangled timestamp or signature, with one header missing, unsigned, or signed and then
changed. Valid requests reach real listeners: a pending remediation, the admin's ``pause`` and
``resume``, buttons of every action id.

Contract (``run`` raises ``AssertionError``):

* never a 5xx, never an exception out of the WSGI app;
* a request without a valid signature is 401 (413 past the size limit), never accepted, and no
  log record at any level holds any part of its body (each such body carries ``MARKER``);
* a validly signed request is answered below 500 (401 only as a replay).

``run`` returns ``None`` for an accepted request (2xx) and otherwise ``"<status> <reason>"``, the
reason the endpoint logged (``refused a Slack request: <reason>``), e.g. ``"401 bad signature"``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import json
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

from bot import blocks
from bot.endpoint import MAX_BODY
from bot.http import Endpoints
from tests.bot.hostile import wsgi_call
from tests.bot.world import SlackWorld, make_slack_world
from tests.support.engine import ADMIN, MEMBERS, STRANGER, TEAM, sample

NAME = "slack-endpoint"
MARKER = "FUZZ-MARKER-91c4"
PENDING = "<pending>"  # replaced at run time by the id of a real remediation
FORM = "application/x-www-form-urlencoded"
SIGNINGS = ("valid", "valid", "valid", "wrong-secret", "stale", "future", "mangled-ts", "mangled-sig",
            "no-ts", "no-sig", "unsigned", "changed-after-signing")
ACTION_IDS = (blocks.ACTION_APPROVE, blocks.ACTION_REJECT, blocks.ACTION_UNDO, blocks.ACTION_SHOW_PLAN,
              blocks.ACTION_DIGEST_APPROVE, blocks.ACTION_DIGEST_LIST, "other.action")
_REASON = re.compile(r"refused a Slack request: (.*) \(\d+ bytes\)$")


@dataclass(frozen=True)
class Example:
    body: bytes
    content_type: str | None
    signing: str
    mangle: str = ""  # the mangled timestamp or signature
    age: int = 0  # seconds the timestamp lies in the past (inside the window for a valid one)
    huge: bool = False  # pad the body past MAX_BODY at run time
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "/slack/events"


# --- strategies ------------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
                    st.sampled_from([PENDING, ADMIN, MEMBERS[0], STRANGER, TEAM, "", "U", "pause", "<!channel>"]))
JSON = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                    st.dictionaries(st.text(max_size=10), kids, max_size=5)),
                    max_leaves=15)
USERS = st.sampled_from([ADMIN, MEMBERS[0], MEMBERS[1], STRANGER, ""])


def _interaction(kind: str, user: str, *, action: str, value: str, callback: str, text: str) -> dict[str, Any]:
    user_obj = {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM}
    base: dict[str, Any] = {"type": kind, "user": user_obj, "team": {"id": TEAM, "domain": "t"},
                            "api_app_id": "A0FAKEAPP", "token": "t", "trigger_id": "1.2.3",
                            "response_url": "http://127.0.0.1:9/response_url"}
    if kind == "block_actions":
        base |= {"container": {"type": "message", "message_ts": "1.1", "channel_id": "C0REMEDIATE"},
                 "channel": {"id": "C0REMEDIATE"}, "message": {"ts": "1.1", "text": "x"},
                 "actions": [{"action_id": action, "block_id": "b", "value": value, "type": "button"}]}
    else:
        meta = json.dumps({"id": value, "channel": "C0REMEDIATE", "ts": "1.1"})
        base["view"] = {"id": "V1", "callback_id": callback, "private_metadata": meta, "type": "modal",
                        "state": {"values": {blocks.REJECT_BLOCK: {blocks.REJECT_INPUT: {"value": text}}}}}
    return base


def _mutate(doc: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """``doc`` with the value at the first keys of ``path`` that exist replaced by ``value``."""
    out = json.loads(json.dumps(doc))
    node = out
    for key in path:
        if isinstance(node, dict) and key in node and isinstance(node[key], dict | list):
            node = node[key] if isinstance(node[key], dict) else node
            continue
        if isinstance(node, dict):
            node[key] = value
        break
    return out


INTERACTIONS = st.builds(
    _interaction, st.sampled_from(["block_actions", "view_submission", "view_closed", "shortcut"]), USERS,
    action=st.sampled_from(ACTION_IDS), value=st.one_of(st.just(PENDING), st.text(max_size=30)),
    callback=st.sampled_from([blocks.CALLBACK_REJECT, "other"]), text=st.text(max_size=40))
MUTATED = st.builds(_mutate, INTERACTIONS,
                    st.lists(st.sampled_from(["user", "id", "team", "actions", "view", "state", "values", "type",
                                              "container", "channel", "message", "private_metadata", "value"]),
                             min_size=1, max_size=3), JSON)
COMMANDS = st.builds(lambda user, text, extra: {"command": "/remediate", "text": text, "user_id": user,
                                                "team_id": TEAM, "channel_id": "C0REMEDIATE", **extra},
                     USERS, st.one_of(st.sampled_from(["pause", "resume", "list", "help", "status", "status x",
                                                       f"status {PENDING}", ""]), st.text(max_size=30)),
                     st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))


def _payload_form(doc: Any) -> bytes:
    return ("payload=" + quote(json.dumps(doc), safe="")).encode()


BODIES = st.one_of(
    INTERACTIONS.map(_payload_form), MUTATED.map(_payload_form), JSON.map(_payload_form),
    COMMANDS.map(lambda f: urlencode(f).encode()),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=6).map(lambda f: urlencode(f).encode()),
    st.sampled_from([b"", b"[]", b"null", b"1", b"payload=1", b"payload=null", b"payload=", b"payload=%7B%7D",
                     b"ssl_check=1", b'{"type":"url_verification","challenge":"c"}', b"payload=\xff\xfe",
                     b"\xef\xbb\xbfpayload=1", b"payload=%ZZ", b"a=1&a=2", b"%00=%00"]),
    st.binary(max_size=200),
)
CONTENT_TYPES = st.one_of(st.just(FORM), st.just(FORM), st.just(FORM),
                          st.sampled_from(["application/json", "application/json; charset=utf-8",
                                           "APPLICATION/X-WWW-FORM-URLENCODED; charset=UTF-8", "text/plain",
                                           "multipart/form-data; boundary=x", "", None]),
                          st.text(max_size=30))


@st.composite
def _examples(draw: st.DrawFn) -> Example:
    signing = draw(st.sampled_from(SIGNINGS))
    body = draw(BODIES)
    if signing != "valid":  # every unverified body carries the marker the log check looks for
        body = draw(st.sampled_from([body + MARKER.encode(), MARKER.encode() + b"\n" + body,
                                     body.replace(b"=", f"={MARKER}".encode(), 1) or MARKER.encode()]))
        if MARKER.encode() not in body:
            body += MARKER.encode()
    mangle = ""
    if signing == "mangled-ts":
        mangle = draw(st.one_of(st.text(max_size=15), st.sampled_from(["1e9", " 1", "-1", "0x10", "9" * 30, "١٢٣"])))
    elif signing == "mangled-sig":
        mangle = draw(st.one_of(st.text(max_size=80), st.sampled_from(["v0=", "v0=" + "g" * 64, "V0=" + "a" * 64])))
    extra = draw(st.dictionaries(st.sampled_from(["x-slack-bolt-lazy-only", "x-slack-bolt-lazy-function-name",
                                                  "x-slack-retry-num", "x-forwarded-for", "x-junk"]),
                                 st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=10),
                                 max_size=2))
    return Example(body=body, content_type=draw(CONTENT_TYPES), signing=signing, mangle=mangle,
                   age=draw(st.integers(0, 290)), huge=draw(st.sampled_from([False] * 40 + [True])), headers=extra,
                   path=draw(st.sampled_from(["/slack/events", "/api/slack/events"])))


STRATEGY = _examples()


# --- the world the requests go to ------------------------------------------------------------------


class _Target:
    """One SlackWorld (engine, SQLite, FakeSlack, FakeArm) and its WSGI app, built on first use."""

    _lock = threading.Lock()
    _instance: _Target | None = None

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fuzz-slack-"))
        self._worlds = make_slack_world(self.tmp)
        self.world: SlackWorld = next(self._worlds)
        (rem,) = self.world.ingest(sample("02-management-ports-assessment"))
        self.world.engine.work()
        self.pending = rem.id
        self.app = Endpoints(self.world.engine, self.world.endpoint, ingest_token=None, ingest=False)
        self.secret = self.world.settings.slack_signing_secret
        atexit.register(self.close)

    @classmethod
    def get(cls) -> _Target:
        with cls._lock:
            if cls._instance is None:
                cls._instance = _Target()
            return cls._instance

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._worlds.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _captured() -> Iterator[_Capture]:
    root = logging.getLogger()
    handler, level = _Capture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _sign(secret: str, ts: str, body: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()


def _request(example: Example, target: _Target) -> tuple[bytes, dict[str, str]]:
    body = example.body.replace(PENDING.encode(), target.pending.encode())
    if example.huge:
        body += b"x" * (MAX_BODY + 1 - len(body))
    now = int(time.time())
    ts, secret = str(now - example.age), target.secret
    if example.signing == "wrong-secret":
        secret = target.secret + "x"
    elif example.signing == "stale":
        ts = str(now - 301 - len(body) % 10_000)
    elif example.signing == "future":
        ts = str(now + 301 + len(body) % 10_000)
    signature = _sign(secret, ts, body)
    headers = dict(example.headers)
    if example.content_type is not None:
        headers["content-type"] = example.content_type
    if example.signing == "unsigned":
        return body, headers
    headers |= {"x-slack-request-timestamp": ts, "x-slack-signature": signature}
    if example.signing == "mangled-ts":
        headers["x-slack-request-timestamp"] = example.mangle
    elif example.signing == "mangled-sig":
        headers["x-slack-signature"] = example.mangle if example.mangle != signature else signature + "0"
    elif example.signing == "no-ts":
        del headers["x-slack-request-timestamp"]
    elif example.signing == "no-sig":
        del headers["x-slack-signature"]
    elif example.signing == "changed-after-signing":
        body += b"&x=1"
    return body, headers


def run(example: Example) -> str | None:
    """Send ``example`` to the endpoint in-process; see the module docstring."""
    target = _Target.get()
    body, headers = _request(example, target)
    with _captured() as logs:
        try:
            status, _, answer = wsgi_call(target.app, "POST", example.path, body, headers)
        except Exception as exc:
            raise AssertionError(f"an exception escaped the WSGI app: {type(exc).__name__}: {exc}") from exc
    messages = [r.getMessage() + (r.exc_text or "") for r in logs.records]
    if status >= 500:
        raise AssertionError(f"{status} for a {example.signing} request: {answer[:200]!r}; logs: {messages[-3:]}")
    verified = example.signing == "valid" and not example.huge
    if not verified:
        if status not in (401, 413):
            raise AssertionError(f"a {example.signing} request was answered {status}, not refused")
        leaked = [m for m in messages if MARKER in m]
        if leaked:
            raise AssertionError(f"an unverified body reached the log: {leaked[0][:200]!r}")
    elif status == 401 and not any(m.startswith("refused a Slack request: replayed") for m in messages):
        raise AssertionError(f"a validly signed request was refused 401: {messages[-3:]}")
    if 200 <= status < 300:
        return None
    reasons = [m.group(1) for m in map(_REASON.match, messages) if m]
    return f"{status} {reasons[-1] if reasons else _error(answer)}"


def _error(answer: bytes) -> str:
    try:
        doc = json.loads(answer)
    except ValueError:
        return answer[:60].decode("utf-8", "replace")
    return str(doc.get("error", doc))[:60] if isinstance(doc, dict) else str(doc)[:60]

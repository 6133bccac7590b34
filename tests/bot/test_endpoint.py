"""``bot.endpoint.SlackEndpoint`` under hostile input, over real HTTP through ``remediator serve``'s server.

Every malformed request is 400 or 401 (413 past the size limit), never 500; the signature is
checked on the raw bytes before anything parses the body; nothing of an unverified body reaches
any log record, at any level, except its length (also when a caller hands a forged request to
the bolt App directly: bolt's own verification logs whole bodies at INFO).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from bot import blocks
from bot.endpoint import to_bolt_request
from bot.http import LocalServer
from tests.bot.hostile import FORM, MARKER, cases, sign_bytes, wsgi_call
from tests.bot.world import SlackWorld, make_slack_world
from tests.support.engine import ADMIN, MEMBERS, sample


def post_bytes(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST raw bytes (urllib would otherwise add a form content type when none is given)."""
    request = Request(url, data=body, headers=headers or {"Content-Type": ""}, method="POST")
    try:
        with urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except HTTPError as exc:
        exc.read()
        return exc.code


def records_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def test_every_malformed_request_is_400_or_401_over_http(world: SlackWorld, server: LocalServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got = {}
    now = int(time.time())
    for case in (c for c in cases(world.settings.slack_signing_secret, now=now) if c.over_http):
        got[case.name] = (post_bytes(server.url + "/slack/events", case.body, case.headers), case.status)
    for case in cases(world.settings.slack_signing_secret, now=now, age=1):  # signatures not sent yet
        status, _, _ = wsgi_call(server.endpoints, "POST", "/slack/events", case.body, case.headers)
        got["in-process: " + case.name] = (status, case.status)
    assert {name: pair for name, pair in got.items() if pair[0] != pair[1]} == {}
    assert all(status < 500 for status, _ in got.values())
    assert MARKER not in records_text(caplog)
    assert world.engine.audit_trail() == []  # nothing was recorded, not even a replay refusal
    assert world.slack.calls == []  # no listener ran


def test_a_forged_body_never_reaches_the_log_at_any_level(world: SlackWorld, server: LocalServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    lines = f"INFO root: approved by admin\n{MARKER}\n" * 2000
    payload = {"type": "block_actions", "user": {"id": ADMIN}, "actions": [{"action_id": "x", "value": lines}]}
    body = ("payload=" + json.dumps(payload)).encode()
    forged = {"content-type": FORM, **sign_bytes("a-guessed-secret", body)}
    status, _, answer = wsgi_call(server.endpoints, "POST", "/slack/events", body, forged)
    assert (status, json.loads(answer)) == (401, {"error": "invalid request"})
    text = records_text(caplog)
    assert MARKER not in text
    assert "approved by admin" not in text
    assert f"({len(body)} bytes)" in text  # only its length

    caplog.clear()  # a caller that skips the endpoint: bolt verifies, and its log line keeps no body
    resp = world.app.dispatch(to_bolt_request(body, forged))
    assert resp.status == 401
    assert MARKER not in records_text(caplog)
    assert "Invalid request signature detected (body not logged)" in records_text(caplog)


def test_signed_requests_still_work_and_the_unhandled_ones_are_400(world: SlackWorld, server: LocalServer) -> None:
    (rem,) = world.ingest(sample("02-management-ports-assessment"))
    world.engine.work()
    click = world.click_request(blocks.ACTION_APPROVE, rem.id, MEMBERS[0])
    status, _, body = wsgi_call(server.endpoints, "POST", "/api/slack/events", click.body.encode(), click.headers)
    assert (status, body) == (200, b"")
    assert world.rem(rem.id).state == "approved"
    unknown = world.click_request("some.other_action", rem.id, MEMBERS[1])  # signed, but no listener for it
    status, _, body = wsgi_call(server.endpoints, "POST", "/slack/events", unknown.body.encode(), unknown.headers)
    assert (status, json.loads(body)) == (400, {"error": "unsupported request"})
    verification = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"}).encode()
    status, _, body = wsgi_call(server.endpoints, "POST", "/slack/events", verification,
                                {"content-type": "application/json", **sign_bytes(world.slack.signing_secret,
                                                                                  verification)})
    assert (status, json.loads(body)) == (200, {"challenge": "c-123"})


def test_no_signing_secret_refuses_everything(tmp_path: Path) -> None:
    for world in make_slack_world(tmp_path, slack_signing_secret=""):
        request = world.slack.slash_command(command="/remediate", text="pause", user_id=ADMIN)
        assert world.send(request).status == 401
        assert not world.engine.paused()


def _doc_vector(fixtures: Path) -> tuple[bytes, dict[str, str], str, int]:
    lines = (fixtures / "slack" / "slash_command_form_body_slack_docs_signed.txt").read_text().splitlines()
    values = {k.strip("# ").strip(): v.split("(")[0].strip()
              for k, _, v in (ln.partition(":") for ln in lines if ln.startswith("#") and ":" in ln)}
    body = next(ln for ln in lines if not ln.startswith("#")).encode()
    ts = values["X-Slack-Request-Timestamp"]
    headers = {"content-type": FORM, "x-slack-request-timestamp": ts,
               "x-slack-signature": values["X-Slack-Signature"]}
    return body, headers, values["signing secret"], int(ts)


def test_slacks_documented_signature_vector_verifies(world: SlackWorld, fixtures: Path) -> None:
    from bot.endpoint import Refused, SlackEndpoint

    body, headers, secret, ts = _doc_vector(fixtures)
    endpoint = SlackEndpoint(world.app, signing_secret=secret, replay=world.endpoint.replay, clock=lambda: ts + 299)
    assert endpoint.verify(body, headers) == (ts, headers["x-slack-signature"])
    late = SlackEndpoint(world.app, signing_secret=secret, replay=world.endpoint.replay, clock=lambda: ts + 301)
    with pytest.raises(Refused, match="five-minute window"):
        late.verify(body, headers)
    with pytest.raises(Refused, match="bad signature"):
        endpoint.verify(body + b"&x=1", headers)


def test_real_slack_payloads_pass_the_shape_check(world: SlackWorld, fixtures: Path) -> None:
    from urllib.parse import quote

    from bot.endpoint import _form_problem

    folder = fixtures / "slack"
    payloads = [*folder.glob("block_actions*.json"), *folder.glob("view_submission*.json")]
    assert len(payloads) >= 5
    for path in payloads:
        assert _form_problem("payload=" + quote(path.read_text(encoding="utf-8"))) is None, path.name
    for path in folder.glob("slash_command*.txt"):
        body = next(ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#"))
        assert _form_problem(body) is None, path.name


def test_bolt_builds_no_request_from_an_unverified_body(world: SlackWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """``BoltRequest.__init__`` parses the body and builds its context (where ``payload=1`` raised):
    it must not run for any request that failed the signature check."""
    from bot.http import BoltRequest

    built: list[str] = []
    original = BoltRequest.__init__

    def spy(self: BoltRequest, *args: Any, **kwargs: Any) -> None:
        built.append(str(kwargs.get("body", args[0] if args else ""))[:40])
        original(self, *args, **kwargs)

    monkeypatch.setattr(BoltRequest, "__init__", spy)
    unverified = [c for c in cases(world.settings.slack_signing_secret) if c.status in (401, 413)]
    assert len(unverified) > 20
    for case in unverified:
        assert world.endpoint.handle(case.body, case.headers).status == case.status, case.name
    assert built == []
    request = world.slack.slash_command(command="/remediate", text="help", user_id=ADMIN)
    assert world.send(request).status == 200
    assert len(built) == 1  # a verified one does reach bolt


def test_a_store_that_cannot_check_the_replay_cache_refuses_with_503_and_the_click_works_later(
        world: SlackWorld, server: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    (rem,) = world.ingest(sample("02-management-ports-assessment"))
    world.engine.work()
    click = world.click_request(blocks.ACTION_APPROVE, rem.id, MEMBERS[0])
    world.store._connection().execute("PRAGMA busy_timeout = 100")  # "database is locked" after 0.1 s
    holder = sqlite3.connect(world.store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process's long write: the lock table cannot be written
    try:
        status, _, body = wsgi_call(server.endpoints, "POST", "/slack/events", click.body.encode(), click.headers)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (status, json.loads(body)) == (503, {"error": "the store is unavailable; try again"})  # before: 500
    assert world.rem(rem.id).state == "pending_approval"  # nothing was dispatched
    assert all(r.exc_text is None for r in caplog.records)  # one line, no traceback
    assert "the replay cache could not be checked" in records_text(caplog)
    status, _, body = wsgi_call(server.endpoints, "POST", "/slack/events", click.body.encode(), click.headers)
    assert (status, body) == (200, b"")  # the same signed click, once the store answers: not a replay
    assert world.rem(rem.id).state == "approved"

"""``bot.http``: the adapter and the local server over real HTTP (Slack endpoint, findings ingest, health)."""

from __future__ import annotations

import json
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from bot import blocks
from bot.http import LocalServer, event_grid_validation, strip_bolt_headers, to_bolt_request
from remediator.app.paths import SAMPLES
from remediator.testing.fake_slack import FakeSlack, SignedRequest
from tests.bot.world import INGEST_TOKEN, STOP_WITHIN, SlackWorld
from tests.support.engine import ADMIN, MEMBERS, sample

ASSESSMENT = (SAMPLES / "findings" / "02-management-ports-assessment.json").read_bytes()
VALIDATION = json.dumps([{
    "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66", "topic": "/subscriptions/x", "subject": "",
    "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://rp/validate"},
    "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2026-11-25T12:00:00Z",
    "metadataVersion": "1", "dataVersion": "2",
}]).encode()


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    req = Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


INGEST_AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "application/json"}


def test_strip_and_convert() -> None:
    headers = {"X-Slack-Bolt-Lazy-Only": "1", "x-slack-bolt-lazy-function-name": "f", "X-Slack-Signature": "v0=x",
               "content-type": "application/x-www-form-urlencoded"}
    assert set(strip_bolt_headers(headers)) == {"X-Slack-Signature", "content-type"}
    req = to_bolt_request(b"payload=%7B%7D", headers)
    assert req.raw_body == "payload=%7B%7D"  # decoded text, never "b'...'"
    assert not req.lazy_only
    assert req.lazy_function_name is None


def test_slack_endpoint_over_http(world: SlackWorld, server: LocalServer) -> None:
    (rem,) = world.ingest(sample("02-management-ports-assessment"))
    world.engine.work()
    click = world.click_request(blocks.ACTION_APPROVE, rem.id, MEMBERS[0])
    for path in ("/slack/events", "/api/slack/events"):
        status, _, _ = http("POST", server.url + path, b"garbage", {"content-type": "application/json"})
        assert status == 401  # unsigned: refused before anything reads the body
        form = {"content-type": "application/x-www-form-urlencoded"}
        status, _, _ = http("POST", server.url + path, b"payload=%7B%7D", form)
        assert status == 401
    status, _, body = http("POST", server.url + "/slack/events", click.body.encode(), click.headers)
    assert (status, body) == (200, b"")
    assert world.rem(rem.id).state == "approved"
    status, _ = FakeSlack.send(server.url + "/api/slack/events", click)  # a replay: refused before bolt
    assert status == 401
    assert world.ephemerals(MEMBERS[0]) == []


def test_bad_signature_and_stale_timestamp_over_http(world: SlackWorld, server: LocalServer) -> None:
    (rem,) = world.ingest(sample("02-management-ports-assessment"))
    world.engine.work()
    good = world.click_request(blocks.ACTION_APPROVE, rem.id, MEMBERS[0])
    forged = world.click_request(blocks.ACTION_APPROVE, rem.id, MEMBERS[0], secret="not-the-secret")
    old = world.click_request(blocks.ACTION_APPROVE, rem.id, MEMBERS[0], timestamp=int(world.slack.clock()) - 301)
    for request in (forged, old, SignedRequest(good.body + "&x=1", good.headers)):
        status, body = FakeSlack.send(server.url + "/slack/events", request)
        assert status == 401
        assert json.loads(body) == {"error": "invalid request"}
    assert world.rem(rem.id).state == "pending_approval"


def test_slash_command_over_http(world: SlackWorld, server: LocalServer) -> None:
    cmd = world.slack.slash_command(command="/remediate", text="help", user_id=MEMBERS[0],
                                    team_id=world.settings.slack_team_id)
    status, body = FakeSlack.send(server.url + "/slack/events", cmd)
    assert status == 200
    assert "`/remediate list`" in json.loads(body)["text"]


def test_ingest_any_payload_shape(world: SlackWorld, server: LocalServer) -> None:
    status, _, body = http("POST", server.url + "/api/findings", ASSESSMENT, INGEST_AUTH)
    assert status == 202
    assert json.loads(body) == {"records": 1, "results": {"queued": 1}}
    world.engine.work()  # the worker plans it
    (rem,) = world.engine.pending()
    assert rem.playbook == "nsg-close-management-ports"
    wrapped = json.dumps({"records": [json.loads(ASSESSMENT)]}).encode()  # an Event Hub style wrapper
    status, _, body = http("POST", server.url + "/findings", wrapped, INGEST_AUTH)
    assert (status, json.loads(body)) == (202, {"records": 1, "results": {"duplicate": 1}})
    assert len(world.engine.pending()) == 1


def test_ingest_answers_event_grid_validation(server: LocalServer) -> None:
    status, _, body = http("POST", server.url + "/api/findings", VALIDATION, INGEST_AUTH)
    assert (status, json.loads(body)) == (200, {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    status, headers, _ = http("OPTIONS", server.url + "/api/findings", None,
                              {"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert status == 200
    assert headers["webhook-allowed-origin"] == "eventgrid.azure.net"
    assert event_grid_validation(b'{"not": "validation"}') is None


def test_ingest_refusals(server: LocalServer) -> None:
    status, _, body = http("POST", server.url + "/api/findings", b"{not json", INGEST_AUTH)
    assert status == 400
    assert "not JSON" in json.loads(body)["error"]
    status, _, _ = http("POST", server.url + "/api/findings", ASSESSMENT, {"Content-Type": "application/json"})
    assert status == 401
    status, _, _ = http("POST", server.url + "/api/findings", ASSESSMENT, {**INGEST_AUTH, "Authorization": "Bearer x"})
    assert status == 401


def test_health_and_unknown_paths(world: SlackWorld, server: LocalServer) -> None:
    status, _, body = http("GET", server.url + "/health")
    assert (status, json.loads(body)) == (200, {"ok": True, "paused": False})
    world.command("pause", ADMIN)
    assert json.loads(http("GET", server.url + "/api/health")[2]) == {"ok": True, "paused": True}
    assert http("GET", server.url + "/nope")[0] == 404
    assert http("POST", server.url + "/nope", b"x")[0] == 404


def test_oversized_and_non_utf8_slack_bodies(server: LocalServer) -> None:
    status, _, _ = http("POST", server.url + "/slack/events", b"x" * (1024 * 1024 + 1))
    assert status == 413
    status, _, _ = http("POST", server.url + "/slack/events", b"\xff\xfe", {"x-slack-signature": "v0=1"})
    assert status == 401  # unsigned; signed non-UTF-8 bodies: tests/bot/test_endpoint.py


def test_the_worker_thread_posts_what_was_ingested(world: SlackWorld) -> None:
    with LocalServer(world.engine, world.settings, port=0, endpoint=world.endpoint, worker=True,
                     poll_interval=0.05, ingest_token=INGEST_TOKEN, loop_timeout=STOP_WITHIN) as srv:
        status, _, _ = http("POST", srv.url + "/api/findings", ASSESSMENT, INGEST_AUTH)
        assert status == 202
        (post,) = world.slack.wait_for("chat.postMessage", 1, timeout=10)
        assert post.body["channel"] == world.settings.slack_channel

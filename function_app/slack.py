"""Slack's requests (interactivity and ``/remediate``) into the bolt App, inside Slack's 3 seconds.

The route is anonymous because Slack cannot send a function key; every request is verified with
the signing secret instead, by ``bot.endpoint.SlackEndpoint`` on the raw bytes before anything
parses the body: missing, malformed, stale or wrong signatures are 401, a signature seen before
(the replay cache, in the store, so shared by every instance) is 401 and audited, a body that is
not a request remediator handles is 400, over 1 MiB 413; nothing from an unverified body is
logged except its length. Incoming ``x-slack-bolt-*`` headers are dropped (bolt reads its
lazy-listener markers from headers the signature does not cover).

The function never lets an exception reach the host (which would log one per request): a
failure to build the app or the endpoint, or one inside it, is one log line and a 503.

Why it answers in time: the listeners only record the decision (a compare-and-set on the store)
and enqueue the work; the apply runs on the queue worker (``function_app.worker``). The first
request on a cold instance also builds the engine and bolt (no ARM client, no credential), and
the plan keeps an always-ready instance for the HTTP functions (``infra/main.bicep``).
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from function_app.runtime import runtime

log = logging.getLogger("function_app.slack")

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated

MAX_BODY = 1024 * 1024  # Slack's payloads are small; refuse anything larger unread
UNAVAILABLE = "remediator is not available right now; try again in a minute"


@bp.function_name("slack_events")
@bp.route(route="slack/events", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def slack_events(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    if len(body) > MAX_BODY:
        return _json(413, {"error": "body too large"})
    try:
        endpoint = runtime.slack_endpoint()  # slack_bolt loads here, on the first Slack request, not at indexing
    except Exception as exc:
        log.error("could not build the Slack endpoint: %s", type(exc).__name__)
        return func.HttpResponse(UNAVAILABLE, status_code=503)
    try:
        answer = endpoint.handle(body, dict(req.headers), dict(req.params) or None)
        headers = dict(answer.first_headers_without_set_cookie())
        content_type = next((headers.pop(k) for k in list(headers) if k.lower() == "content-type"),
                            "text/plain; charset=utf-8")
        mimetype, _, parameters = content_type.partition(";")
        charset = next((p.split("=", 1)[1].strip() for p in parameters.split(";")
                        if p.strip().startswith("charset=")), "utf-8")
        return func.HttpResponse(answer.body, status_code=answer.status, headers=headers,
                                 mimetype=mimetype.strip(), charset=charset)
    except Exception as exc:  # never the host's exception log per request; the body is not logged
        log.error("Slack request (%d bytes) failed: %s", len(body), type(exc).__name__)
        return func.HttpResponse(UNAVAILABLE, status_code=503)


def _json(status: int, doc: dict[str, str]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(doc), status_code=status, mimetype="application/json")

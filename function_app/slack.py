"""Slack's requests (interactivity and ``/remediate``) into the bolt App, inside Slack's 3 seconds.

The route is anonymous because Slack cannot send a function key; every request is verified with
the signing secret instead (bolt's ``RequestVerification``, 401 otherwise). The adapter only
converts (``bot.http.dispatch``): the body is decoded as UTF-8 text (the signature covers exactly
those bytes; ``str(bytes)`` would break every signature), and incoming ``x-slack-bolt-*`` headers
are dropped (bolt reads its lazy-listener markers from headers the signature does not cover).

Why it answers in time: the listeners only record the decision (a compare-and-set on the store)
and enqueue the work; the apply runs on the queue worker (``function_app.worker``). The first
request on a cold instance also builds the engine and bolt (no ARM client, no credential), and
the plan keeps an always-ready instance for the HTTP functions (``infra/main.bicep``).
"""

from __future__ import annotations

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
        return func.HttpResponse('{"error":"body too large"}', status_code=413, mimetype="application/json")
    from bot.http import dispatch  # noqa: PLC0415 (slack_bolt loads on the first Slack request, not at indexing)

    try:
        app = runtime.slack_app()
    except Exception:
        log.exception("could not build the Slack app")
        return func.HttpResponse(UNAVAILABLE, status_code=503)
    answer = dispatch(app, body, dict(req.headers), dict(req.params) or None)
    headers = dict(answer.first_headers_without_set_cookie())
    content_type = next((headers.pop(k) for k in list(headers) if k.lower() == "content-type"),
                        "text/plain; charset=utf-8")
    mimetype, _, parameters = content_type.partition(";")
    charset = next((p.split("=", 1)[1].strip() for p in parameters.split(";") if p.strip().startswith("charset=")),
                   "utf-8")
    return func.HttpResponse(answer.body, status_code=answer.status, headers=headers, mimetype=mimetype.strip(),
                             charset=charset)

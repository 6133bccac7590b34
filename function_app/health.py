"""``GET /api/health``: the version, whether the store answers, and whether remediation is paused.

Anonymous, on purpose: the platform's health check and uptime probes cannot send a function key,
and the answer holds nothing secret (no setting, no error text, no resource): ``{"ok", "version",
"store": "ok" | "unreachable", "paused"}``; 200 when the store answers, 503 otherwise. The reason
for a failure goes to the log. It reads one flag from the store and builds nothing else (no
engine, no Slack, no ARM), so probing it is cheap and cannot start work.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from function_app.runtime import runtime

log = logging.getLogger("function_app.health")

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    from remediator import __version__  # noqa: PLC0415 (cheap; kept here like every remediator import)
    from remediator.lifecycle.worker import PAUSE_FLAG  # noqa: PLC0415

    answer: dict[str, Any] = {"ok": False, "version": __version__, "store": "unreachable", "paused": None}
    try:
        paused = runtime.store().get_flag(PAUSE_FLAG) is not None
    except Exception:
        log.exception("health: the store did not answer")
    else:
        answer.update(ok=True, store="ok", paused=paused)
    return func.HttpResponse(json.dumps(answer, separators=(",", ":")), status_code=200 if answer["ok"] else 503,
                             mimetype="application/json", headers={"Cache-Control": "no-store"})

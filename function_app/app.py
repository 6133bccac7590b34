"""The one ``FunctionApp``: every blueprint registered on it.

The worker finds this object through ``functions_entry.py`` (``from function_app.app import app``)
and indexes it with ``app.get_functions()``:

=====================  ==========================================  ============================
function               trigger                                     module
=====================  ==========================================  ============================
defender_export        Event Hub, cardinality many                 ``function_app.ingest``
policy_events          Event Grid (Azure Policy state events)      ``function_app.ingest``
workflow_automation    HTTP POST /api/findings (function key)      ``function_app.ingest``
slack_events           HTTP POST /api/slack/events (anonymous)     ``function_app.slack``
jobs                   Queue ``%JOBS_QUEUE%``                      ``function_app.worker``
jobs_urgent            Queue ``%JOBS_QUEUE%-urgent``               ``function_app.worker``
jobs_poison            Queue ``%JOBS_QUEUE%-poison``               ``function_app.worker``
jobs_urgent_poison     Queue ``%JOBS_QUEUE%-urgent-poison``        ``function_app.worker``
sweep                  Timer ``%SWEEP_SCHEDULE%``                  ``function_app.timers``
reconcile              Timer ``%RECONCILE_SCHEDULE%``              ``function_app.timers``
health                 HTTP GET /api/health (anonymous)            ``function_app.health``
=====================  ==========================================  ============================

HTTP routes default to function-key auth; the two anonymous ones say so on their route.
"""

from __future__ import annotations

import azure.functions as func

from function_app import health, ingest, slack, timers, worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for _blueprint in (ingest.bp, slack.bp, worker.bp, timers.bp, health.bp):
    app.register_functions(_blueprint)

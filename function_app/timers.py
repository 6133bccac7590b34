"""The sweep on a schedule: expire overdue approval requests, send due reminders, and re-enqueue
applies that were lost (``engine.sweep``); and the backlog reconcile (``engine.scan_and_reconcile``):
scan Resource Graph for what is open now, check each subscription's Defender continuous export (a wrong
one is a finding; a subscription silent for ``REMEDIATOR_EXPORT_SILENCE`` with open findings is one message,
``remediator.lifecycle.export_watch``), ingest it, withdraw the pending requests it no longer reports.

The reconcile schedule is ``RECONCILE_SCHEDULE`` (daily by default in the deployment); its scope is
``REMEDIATOR_SCAN_SUBSCRIPTIONS`` or ``REMEDIATOR_SCAN_MANAGEMENT_GROUP`` (neither: every
subscription the executor identity can read). A scan Resource Graph refuses raises: the run fails
loudly, withdraws nothing, and the next run tries again.

The schedule is the app setting ``SWEEP_SCHEDULE`` (NCRONTAB with seconds; every minute by
default in the deployment: an apply whose worker died is queued again within ``lock_ttl`` and a
minute, reminders and expiries are minute-grained, and a missed run is caught up by the next,
which sweeps everything due). ``use_monitor`` keeps the schedule across restarts;
a run that raises is not retried by the runtime: the next run does the same work.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from function_app.runtime import runtime
from function_app.settings import RECONCILE_SCHEDULE, SWEEP_SCHEDULE

if TYPE_CHECKING:
    from remediator.lifecycle.engine import Engine

log = logging.getLogger("function_app.timers")

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@bp.function_name("sweep")
@bp.timer_trigger(arg_name="timer", schedule=f"%{SWEEP_SCHEDULE}%", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    touched = _engine(timer, "sweep").sweep()
    log.info("sweep touched %d remediations", touched)


@bp.function_name("reconcile")
@bp.timer_trigger(arg_name="timer", schedule=f"%{RECONCILE_SCHEDULE}%", run_on_startup=False, use_monitor=True)
def reconcile(timer: func.TimerRequest) -> None:
    report = _engine(timer, "reconcile").scan_and_reconcile()
    log.info("reconcile: %s", report)


def _engine(timer: func.TimerRequest, name: str) -> Engine:
    """The runtime's engine, after saying when the timer fires late (the host was down or busy)."""
    if timer.past_due:
        log.info("%s is running late (past due)", name)
    return runtime.engine()

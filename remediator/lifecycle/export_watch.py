"""Watching Defender's continuous export: is each scanned subscription still sending, and can it?

remediator sees only what Defender exports to its Event Hub, so the daily reconcile
(``Engine.scan_and_reconcile``) checks two things per scanned subscription:

* **the export is there** (``check``): an enabled ``Microsoft.Security/automations`` sends the
  ``export_sources`` to ``export_event_hub_id`` (``remediator.actions.continuous_export.export_status``, read
  live as the executor). A subscription whose export is missing, disabled, incomplete or sends elsewhere
  becomes a finding (``export_finding``: one stable id per subscription, so it is raised once while its
  request is open) that goes through ingest like any other, and ``defender-restore-export`` plans the fix. A
  subscription whose automations could not be read is named in the report, and reconcile leaves its export
  request alone (``ScanResult.export_checked``): an outage is not a repair.
* **something arrived** (``silence``, with ``export_event_hub_id`` set: a deployment without it may take its
  findings another way): the export route (``EXPORT_ROUTE``: the ``defender_export`` function)
  records when it last brought anything of a subscription (``seen``; a finding or a record remediator
  ignores, such as a healthy assessment: either proves the export alive), as the store flag
  ``export-seen:<subscription>`` (an ISO time; SQLite and Tables alike). When the scan shows open findings in
  a subscription and nothing arrived from it for ``export_silence`` (24 h by default; a subscription never
  heard from counts from when remediator first watched it, ``export-watched:<subscription>``), one message
  goes to the channel (an ``alarm`` job: which subscription, since when, how many open findings, what to
  check) and the audit records ``export_silent``. It is told once per silence: the flag
  ``export-silence-told:<subscription>`` keeps the time the silence began, so the next reconcile says
  nothing until the export has been heard from again and gone silent anew.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from remediator import ids
from remediator.actions.continuous_export import (
    EXPORT_POLICY,
    ExportStatus,
    automations_of,
    export_finding,
    export_status,
)
from remediator.errors import error_line
from remediator.findings.model import Finding, Record
from remediator.lifecycle.jobs import AlarmJob
from remediator.lifecycle.runtime import Runtime
from remediator.words import plural

if TYPE_CHECKING:
    from remediator.azure.graph import ScanResult

log = logging.getLogger("remediator.export_watch")

EXPORT_ROUTE = "defender-export"  # the ingest source of the Event Hub function (function_app.ingest.SOURCE_EXPORT)
SEEN = "export-seen:"
WATCHED = "export-watched:"
TOLD = "export-silence-told:"
SEEN_EVERY = timedelta(minutes=10)  # an instance writes a subscription's last-seen at most this often


def subscription_of(record: Record) -> str | None:
    """The subscription a record is about (lower-case), or None."""
    if isinstance(record, Finding) and record.subscription_id:
        return record.subscription_id.lower()
    sub = ids.parse(str(record.resource_id or "")).subscription_id
    return sub.lower() if sub else None


def _time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


class ExportWatch:
    """See the module docstring. One per engine; thread-safe."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._written: dict[str, datetime] = {}
        self._lock = threading.Lock()

    # -- what arrived --------------------------------------------------------------------------------
    def seen(self, subscriptions: Iterable[str], at: datetime) -> None:
        """The export route brought something of these subscriptions at ``at``: their last-seen, written at most
        every ``SEEN_EVERY`` by this instance (a storm of events is not a storm of writes)."""
        for sub in {s.lower() for s in subscriptions if s}:
            with self._lock:
                last = self._written.get(sub)
                if last is not None and at - last < SEEN_EVERY:
                    continue
                self._written[sub] = at
            self.rt.store.set_flag(SEEN + sub, at.isoformat())

    def last_seen(self, subscription: str) -> datetime | None:
        return _time(self.rt.store.get_flag(SEEN + subscription.lower()))

    # -- the export is there ---------------------------------------------------------------------------
    def check(self, scan: ScanResult) -> dict[str, ExportStatus | str]:
        """Each scanned subscription's export (``ExportStatus``, or the one-line reason it could not be read); a
        wrong one adds its finding to ``scan.records``. Nothing is checked without ``export_event_hub_id``."""
        settings = self.rt.settings
        hub = settings.export_event_hub_id
        out: dict[str, ExportStatus | str] = {}
        if not hub:
            return out
        now = self.rt.clock()
        checked: set[str] = set()
        for sub in sorted(scan.subscriptions):
            try:
                automations = automations_of(self.rt.state, sub)
            except Exception as e:
                out[sub] = f"cannot read the subscription's continuous exports: {error_line(e)}"
                scan.problems.append(f"continuous export of /subscriptions/{sub}: {out[sub]}")
                continue
            status = export_status(sub, automations, hub=hub, sources=settings.export_sources)
            out[sub] = status
            checked.add(sub)
            if not status.ok:
                scan.records.append(export_finding(status, at=now))
        scan.export_checked = frozenset(checked)
        problems = {s: (v.problem if isinstance(v, ExportStatus) else "unreadable") for s, v in out.items()}
        self.rt.audit(None, "exports_checked", "reconcile", hub=hub,
                      wrong={s: p for s, p in problems.items() if p}, ok=sum(1 for p in problems.values() if not p))
        return out

    # -- something arrived -----------------------------------------------------------------------------
    def silence(self, scan: ScanResult, exports: Mapping[str, ExportStatus | str]) -> list[str]:
        """Tell the channel, once per silence, of each subscription the scan shows open findings in and the export
        route has not brought anything of for ``export_silence``. Returns those subscriptions. Without
        ``export_event_hub_id`` nothing is watched: the deployment may take its findings another way (a Logic App)."""
        rt, store = self.rt, self.rt.store
        if not rt.settings.export_event_hub_id:
            return []
        now = rt.clock()
        open_by_sub: dict[str, int] = {}
        for f in scan.findings:
            sub = subscription_of(f)
            if sub and f.type != EXPORT_POLICY:  # remediator's own export finding says nothing of what Defender sees
                open_by_sub[sub] = open_by_sub.get(sub, 0) + 1
        told: list[str] = []
        for sub in sorted(scan.subscriptions):
            since = self.last_seen(sub)
            if since is None:
                watched = _time(store.get_flag(WATCHED + sub))
                if watched is None:
                    store.set_flag(WATCHED + sub, now.isoformat())
                    continue
                since = watched
            if now - since < rt.settings.export_silence or not open_by_sub.get(sub):
                continue
            if store.get_flag(TOLD + sub) == since.isoformat():
                continue  # this silence was told already
            export = exports.get(sub)
            self._tell(sub, since, open_by_sub[sub], export, heard=self.last_seen(sub) is not None)
            store.set_flag(TOLD + sub, since.isoformat())
            told.append(sub)
        return told

    def _tell(self, sub: str, since: datetime, open_findings: int, export: ExportStatus | str | None, *,
              heard: bool) -> None:
        rt = self.rt
        hours = int((rt.clock() - since).total_seconds() // 3600)
        start = f"since {when(since)}" if heard else f"since remediator began watching it ({when(since)})"
        title = f"Defender has sent nothing from subscription {sub} for {plural(hours, 'hour')}"
        if isinstance(export, ExportStatus):
            state = f"Its continuous export: {export.line()}." if not export.ok else \
                f"Its continuous export looks right ({export.line()}), so the break is further on."
        elif isinstance(export, str):
            state = f"Its continuous export could not be checked: {export}."
        else:
            state = "Its continuous export was not checked (set export_event_hub_id)."
        lines = (
            f"Nothing arrived through Defender's continuous export from /subscriptions/{sub} {start}, while the "
            f"backlog scan shows {plural(open_findings, 'open finding')} there: remediator is blind to new ones.",
            state,
            "Check: the subscription's continuous export (Defender for Cloud > Environment settings > Continuous "
            "export; `remediator doctor` shows it); that the Event Hub accepts Defender as a trusted service (Azure "
            "Event Hubs Data Sender for 'Windows Azure Security Resource Provider'); the defender_export function "
            "(its consumer group, errors and retries in Application Insights).",
        )
        rt.audit(None, "export_silent", "reconcile", subscription=sub, since=since.isoformat(),
                 open_findings=open_findings, heard_before=heard,
                 export=(export.problem or "ok") if isinstance(export, ExportStatus) else export)
        rt.enqueue(AlarmJob(key=f"export-silent:{sub}:{since.isoformat()}", title=title, lines=lines))
        log.warning("%s (%s)", title, start)


def report(exports: Mapping[str, ExportStatus | str]) -> dict[str, Any]:
    """The reconcile report's ``exports``: per subscription ``ok``, the problem, or ``unreadable``."""
    return {s: ((v.problem or "ok") if isinstance(v, ExportStatus) else "unreadable") for s, v in exports.items()}

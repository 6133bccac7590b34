"""The evidence report as HTML (one self-contained file: inline CSS and SVG charts, no script, no
CDN, opens offline), Markdown, CSV and JSON. CSV and JSON carry the same rows: every section of
``Report.sections`` plus a ``summary`` section; a CSV has one header (``section`` then the union of
the sections' columns), so a spreadsheet filters it by section.

Every string from a finding or the store is escaped for its format: HTML-escaped (quotes too) in
HTML, pipes and newlines in Markdown, and in CSV a cell starting with ``= + - @`` (a formula to a
spreadsheet) gets a leading apostrophe. The only links are Azure portal links built from ARM ids
and documentation links.

Names beside ids: rendered inside ``remediator.planning.names.naming`` (``remediator report``), each text
cell shows ``name (id)`` for the ids the report's batch named, escaped for its format like any other text
(display names are user-controlled); JSON keeps every value as it is and adds ``names`` (id → kind,
displayName, detail).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from remediator.evidence.report import OUTCOMES, Report
from remediator.planning.names import current, named

PORTAL = "https://portal.azure.com/#@/resource"
DOCS = {
    "MCSB": "https://learn.microsoft.com/security/benchmark/azure/overview",
    "NIST-AI-RMF": "https://www.nist.gov/itl/ai-risk-management-framework",
    "ISO27001": "https://www.iso.org/standard/27001",
    "NIST-800-53": "https://csrc.nist.gov/pubs/sp/800/53/r5/upd1/final",
    "GDPR": "https://eur-lex.europa.eu/eli/reg/2016/679/oj",
}
ALLOWED_URL_PREFIXES = (PORTAL, *DOCS.values())
TITLES = {
    "summary": "Summary", "findings": "Findings received by source and severity",
    "by_control": "By control", "outcomes_by_playbook": "Outcomes by playbook",
    "time_to_remediate": "Time to remediate by severity (seconds)", "changes": "Every remediation",
    "approvals": "Approvals (who, when, within expiry)", "pim_requests": "PIM requests",
    "verifications": "Verification results", "exemptions": "Exemptions",
    "exemptions_expiring": "Exemptions expiring in the next 30 days", "open_overdue": "Still open and overdue",
    "timeline": "Findings and fixes per day", "policy_compliance": "Azure Policy compliance per assignment (now)",
    "integrity": "Audit trail integrity (audit verify)",
    "incomplete_trails": "Incomplete audit trails (remediations missing records)",
}
ORDER = ("summary", "integrity", "incomplete_trails", "by_control", "outcomes_by_playbook", "findings",
         "time_to_remediate", "changes", "approvals", "pim_requests", "verifications", "exemptions",
         "exemptions_expiring", "open_overdue", "policy_compliance", "timeline")
COLORS = {"auto_applied": "#2e7d32", "approved_applied": "#66bb6a", "rolled_back": "#8d6e63", "rejected": "#c62828",
          "exempt": "#7e57c2", "stale_reasked": "#ffa726", "stale": "#ffcc80", "failed": "#b71c1c",
          "withdrawn": "#90a4ae", "expired": "#bdbdbd", "no_change": "#4fc3f7", "open": "#1565c0"}
EMPTY = "No findings and no remediations in this period."


def summary_rows(report: Report) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"key": "period", "value": f"{report.period.label} ({report.period.first_day}..{report.period.last_day})"},
        {"key": "generated_at", "value": report.generated_at.isoformat(timespec="seconds")},
        {"key": "store", "value": report.store}, {"key": "filters", "value": report.filters.describe()},
    ]
    rows += [{"key": k, "value": v} for k, v in report.totals().items()]
    rows.append({"key": "audit_verify", "value": report.integrity.summary()})
    rows.append({"key": "policy_compliance", "value": report.policy_note})
    if report.empty:
        rows.append({"key": "note", "value": EMPTY})
    return rows


def all_sections(report: Report) -> dict[str, list[dict[str, Any]]]:
    return {"summary": summary_rows(report), **{k: report.sections[k] for k in ORDER[1:]}}


# -- JSON / CSV / Markdown ---------------------------------------------------------------------------


def to_json(report: Report) -> str:
    doc = {"period": {"label": report.period.label, "from": report.period.first_day.isoformat(),
                      "to": report.period.last_day.isoformat()},
           "generated_at": report.generated_at.isoformat(), "empty": report.empty, "totals": report.totals(),
           "integrity": report.integrity.to_json(), "policy_compliance_note": report.policy_note,
           "sections": all_sections(report)}
    names = current()
    if names:
        doc["names"] = names.to_json([json.dumps(doc, ensure_ascii=False, default=str)])
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else named(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(report: Report) -> str:
    sections = all_sections(report)
    columns: list[str] = []
    for rows in sections.values():
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", *columns])
    for name, rows in sections.items():
        for row in rows:
            writer.writerow([name, *(_cell(row.get(c)) for c in columns)])
    return out.getvalue()


def _md(value: Any) -> str:
    return " ".join(named(str("" if value is None else value)).split()).replace("|", "\\|").replace("<", "&lt;")


def to_markdown(report: Report) -> str:
    lines = [f"# Evidence report {report.period.label} ({report.period.first_day} to {report.period.last_day})", ""]
    if report.empty:
        lines += [f"**{EMPTY}**", ""]
    for name, rows in all_sections(report).items():
        lines += [f"## {TITLES[name]}", ""]
        if not rows:
            lines += ["_none_", ""]
            continue
        cols = list(rows[0])
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        lines += ["| " + " | ".join(_md(r.get(c)) for c in cols) + " |" for r in rows]
        lines.append("")
    return "\n".join(lines)


# -- HTML ----------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1b1b;max-width:1400px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:12px}th,td{border:1px solid #ddd;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}.charts{display:flex;flex-wrap:wrap;gap:24px}
figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}.empty{font-size:16px;font-weight:600;color:#555}
.wrap{max-width:100%;overflow-x:auto}small{color:#666}
"""


_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})


def _e(value: Any) -> str:
    """``html.escape(value, quote=True)``, as one ``str.translate`` (a report has ~500,000 cells)."""
    return ("" if value is None else str(value)).translate(_ESCAPE)


def portal_link(resource_id: str) -> str:
    """An Azure portal link built only from an ARM id (anything else stays text)."""
    if not resource_id.lower().startswith("/subscriptions/"):
        return _e(resource_id)
    href = PORTAL + quote(resource_id, safe="/-_.~")
    return f'<a href="{_e(href)}">{_e(resource_id)}</a>'


def _control_link(control: str) -> str:
    url = DOCS.get(control.split(" ", 1)[0])
    return f'<a href="{_e(url)}">{_e(control)}</a>' if url else _e(control)


def _td(col: str, value: Any) -> str:
    if col in ("resource_id", "scope") and isinstance(value, str):
        return f"<td>{portal_link(value)}</td>"
    if col in ("control", "controls") and isinstance(value, str) and value:
        return "<td>" + "; ".join(_control_link(c) for c in value.split("; ")) + "</td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else ''}</td>"
    if isinstance(value, int | float):
        return f'<td class="n">{_e(value)}</td>'
    return f"<td>{_e(named(value) if isinstance(value, str) else value)}</td>"


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p><small>none</small></p>"
    cols = list(rows[0])
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(_td(c, r.get(c)) for c in cols) + "</tr>" for r in rows)
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (f'<svg class="chart" role="img" aria-label="{_e(label)}" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{body}</svg>')


def _axis_text(x: float, y: float, text: str, anchor: str = "middle", size: int = 10) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="#333">{_e(text)}</text>'


def chart_timeline(rows: Sequence[dict[str, Any]]) -> str:
    """Findings and fixes per day (per week past 92 days), as paired bars."""
    buckets: list[tuple[str, int, int]] = []
    step = 7 if len(rows) > 92 else 1
    for i in range(0, len(rows), step):
        chunk = rows[i:i + step]
        buckets.append((str(chunk[0]["day"]), sum(int(r["findings"]) for r in chunk),
                        sum(int(r["fixes"]) for r in chunk)))
    width, height, left, bottom = 720, 240, 40, 40
    top = max([1] + [max(f, x) for _, f, x in buckets])
    slot = (width - left - 10) / max(1, len(buckets))
    bar = max(1.0, slot / 2 - 1)
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" stroke="#999"/>',
            _axis_text(left - 4, 14, str(top), "end"), _axis_text(left - 4, height - bottom, "0", "end")]
    for i, (day, found, fixed) in enumerate(buckets):
        x = left + i * slot
        for j, (value, color, what) in enumerate(((found, "#1565c0", "findings"), (fixed, "#2e7d32", "fixes"))):
            h = (height - bottom - 10) * value / top
            body.append(f'<rect x="{x + j * bar:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" '
                        f'height="{h:.1f}" fill="{color}"><title>{_e(day)}: {value} {what}</title></rect>')
        if i % max(1, len(buckets) // 8) == 0:
            body.append(_axis_text(x + bar, height - bottom + 14, day[5:]))
    body.append(f'<rect x="{left}" y="{height - 16}" width="10" height="10" fill="#1565c0"/>'
                + _axis_text(left + 14, height - 7, "findings", "start")
                + f'<rect x="{left + 80}" y="{height - 16}" width="10" height="10" fill="#2e7d32"/>'
                + _axis_text(left + 94, height - 7, "fixes", "start"))
    return _svg(width, height, "Findings and fixes over time", "".join(body))


def duration(seconds: float) -> str:
    """A time to remediate as a person reads it: seconds under a minute, minutes under an hour, then
    hours, then days (an auto fix takes seconds; rounding everything to hours showed "0.0 h")."""
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    if seconds < 3570:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def chart_ttr(rows: Sequence[dict[str, Any]]) -> str:
    """Median, p90 and max time to remediate per severity, bars to the slowest, labelled by ``duration``."""
    width, height, left = 520, 60 + 46 * max(1, len(rows)), 100
    top = max([1.0] + [float(r["max_s"]) for r in rows])
    body = []
    for i, r in enumerate(rows):
        y = 20 + i * 46
        body.append(_axis_text(left - 6, y + 18, str(r["severity"]), "end", 11))
        for j, (key, color) in enumerate((("median_s", "#66bb6a"), ("p90_s", "#ffa726"), ("max_s", "#c62828"))):
            seconds = float(r[key])
            w = max(1.0, (width - left - 90) * seconds / top)
            body.append(f'<rect x="{left}" y="{y + j * 12}" width="{w:.1f}" height="10" fill="{color}">'
                        f'<title>{_e(r["severity"])} {key[:-2]}: {_e(duration(seconds))} ({seconds:.0f} s)</title>'
                        '</rect>' + _axis_text(left + w + 4, y + j * 12 + 9, duration(seconds), "start", 9))
    legend_y = height - 18
    for j, (name, color) in enumerate((("median", "#66bb6a"), ("p90", "#ffa726"), ("max", "#c62828"))):
        body.append(f'<rect x="{left + j * 80}" y="{legend_y}" width="10" height="10" fill="{color}"/>'
                    + _axis_text(left + j * 80 + 14, legend_y + 9, name, "start"))
    if not rows:
        body.append(_axis_text(width / 2, 40, "nothing was applied in this period"))
    return _svg(width, height, "Time to remediate by severity", "".join(body))


def chart_outcomes(rows: Sequence[dict[str, Any]]) -> str:
    """Outcomes per playbook as stacked horizontal bars."""
    width, left = 720, 260
    height = 70 + 26 * max(1, len(rows))
    top = max([1] + [int(r["total"]) for r in rows])
    body = []
    for i, r in enumerate(rows):
        y = 10 + i * 26
        body.append(_axis_text(left - 6, y + 13, str(r["playbook"])[:40], "end", 11))
        x = float(left)
        for outcome in OUTCOMES:
            n = int(r.get(outcome) or 0)
            if not n:
                continue
            w = (width - left - 20) * n / top
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="18" fill="{COLORS[outcome]}">'
                        f'<title>{_e(r["playbook"])}: {n} {outcome}</title></rect>')
            x += w
    legend_y = height - 50
    for j, outcome in enumerate(OUTCOMES):
        lx, ly = 10 + (j % 6) * 118, legend_y + (j // 6) * 16
        body.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{COLORS[outcome]}"/>'
                    + _axis_text(lx + 14, ly + 9, outcome, "start", 9))
    if not rows:
        body.append(_axis_text(width / 2, 24, "no remediations in this period"))
    return _svg(width, height, "Outcomes by playbook", "".join(body))


def to_html(report: Report) -> str:
    period = report.period
    verdict = ('<span class="ok">complete and unaltered</span>' if report.integrity.ok
               else '<span class="bad">FAILED: see the integrity section</span>')
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>remediator evidence report {_e(period.label)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Evidence report {_e(period.label)} <small>{_e(period.first_day)} to {_e(period.last_day)}</small></h1>",
        f"<p>Generated {_e(report.generated_at.isoformat(timespec='seconds'))} from {_e(report.store)}; "
        f"filters: {_e(report.filters.describe())}. Audit trail: {verdict}.</p>",
    ]
    if report.empty:
        parts.append(f'<p class="empty" id="empty">{_e(EMPTY)}</p>')
    parts.append('<div class="charts">')
    for caption, svg in (("Findings and fixes over time", chart_timeline(report.sections["timeline"])),
                         ("Time to remediate by severity", chart_ttr(report.sections["time_to_remediate"])),
                         ("Outcomes by playbook", chart_outcomes(report.sections["outcomes_by_playbook"]))):
        parts.append(f"<figure><figcaption>{_e(caption)}</figcaption>{svg}</figure>")
    parts.append("</div>")
    for name, rows in all_sections(report).items():
        if name == "timeline":
            continue
        parts.append(f'<h2 id="{_e(name)}">{_e(TITLES[name])}</h2>')
        if name == "policy_compliance":
            parts.append(f"<p><small>{_e(report.policy_note)}</small></p>")
        parts.append(_table(rows))
    parts.append("<p><small>Definitions: time to remediate runs from the finding's arrival to the applied record; "
                 "overdue = open past its approval expiry or past its severity's target (Critical 1 day, High 7, "
                 "Medium 30, others 90); quorum held = distinct approvers reached the quorum and none was the "
                 "requester.</small></p></body></html>")
    return "\n".join(parts) + "\n"


RENDERERS = {"html": to_html, "md": to_markdown, "csv": to_csv, "json": to_json}

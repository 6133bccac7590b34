"""Short forms for a terminal (``remediator demo``): a line fits a screen's width and names its request.

* ``label(rem)``: which request a line is about: the short id (the first 8 characters of the id),
  the playbook and the resource's name (``8Aygqtp0 nsg-close-management-ports vm-jump-01``);
* ``change_line(change)``: one change on one line (the property diff of an update, the note of a
  delete or an invoke, which says in words what goes);
* ``result_line(result)``: one record of a dry run;
* ``trail_lines(events, remediations)``: the audit trail per remediation, its life cycle on one line
  and each write on one line (grant, write, release, verify), for reading; ``remediator audit``
  prints the long form, every field of every event.

Everything printed here passes through ``printable``: text from findings and ARM cannot move the
cursor or recolour the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from remediator import ids
from remediator.lifecycle.model import AuditEvent, Remediation
from remediator.planning.names import named
from remediator.planning.render import change_lines
from remediator.planning.result import Result
from remediator.words import plural

WIDTH = 120  # the widest line a change or a dry-run record takes (longer text is cut with …)
WIDE = 160  # the widest line of the trail (a long role name and its grant's scope)
SHORT_ID = 8

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SYMBOL = {"update": "~", "delete": "-", "create": "+", "invoke": "!"}
_OUTCOME_SYMBOL = {"changes": "~", "no_changes": "=", "exempt": "=", "ignored": "·", "no_match": "·", "error": "!"}


def printable(text: object) -> str:
    """``text`` on one line with control characters (ANSI escapes included) replaced by ``?``; inside
    ``remediator.planning.names.naming``, each id the batch knows reads ``name (id)``."""
    return _CONTROL.sub("?", " ".join(named(str(text)).splitlines()))


def clip(text: str, width: int = WIDTH) -> str:
    """``text`` cut to ``width`` characters, ending in ``…`` when cut."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def short_name(resource_id: str) -> str:
    """A resource as a person names it: its name, else its resource group's, else the subscription."""
    parsed = ids.parse(resource_id)
    if parsed.name:
        return parsed.name
    if parsed.resource_group:
        return f"resource group {parsed.resource_group}"
    return f"subscription {parsed.subscription_id[:8]}…" if parsed.subscription_id else resource_id or "?"


def label(rem: Remediation) -> str:
    """``<short id> <playbook> <resource name>``: which request a line is about."""
    return printable(f"{rem.id[:SHORT_ID]} {rem.playbook} {short_name(rem.resource_id)}")


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def _short(name: str) -> str:
    return name[:8] + "…" if _GUID.match(name) else name


def _target(resource_id: str, operation: str = "") -> str:
    """A change's target, short: ``nsg-jump/AllowRDP`` (a rule of its NSG), ``llm-weights-disk/endGetAccess``
    (an action of a disk), ``b7e1c3a5…`` (a role assignment's GUID)."""
    if operation == "invoke" and "/" in resource_id.strip("/"):
        owner, _, verb = resource_id.rstrip("/").rpartition("/")
        return f"{_short(short_name(owner))}/{verb}"
    parsed = ids.parse(resource_id)
    parent = parsed.parent()
    if parent is not None and parent.name and parsed.name:
        return f"{_short(parent.name)}/{_short(parsed.name)}"
    return _short(parsed.name) if parsed.name else short_name(resource_id)


def _diff_words(line: str) -> str:
    """``~ properties.a: x -> y`` as ``a: x -> y``; an added or removed leaf says so."""
    sign, rest = line[:2], line[2:].removeprefix("properties.")
    if sign == "+ ":
        path, _, value = rest.partition(": ")
        return f"{path}: (not set) -> {value}"
    if sign == "- ":
        path, _, value = rest.partition(": ")
        return f"{path}: {value} -> (removed)"
    return rest if sign == "~ " else line


def change_line(change: Mapping[str, Any], *, indent: str = "  ", width: int = WIDTH) -> str:
    """One change on one line: ``~ contosoweb: allowBlobPublicAccess: true -> false``.

    An update shows what it writes (property by property, the leading ``properties.`` left out); a
    delete, an invoke and a create show their note, which says what goes or comes (a rule's access, an
    export ending, a private endpoint in which subnet) instead of a dump of every property of the
    document (a create without a note shows what it writes). The symbol is the plan's (``~`` update,
    ``-`` delete, ``+`` create, ``!`` invoke).
    """
    op = str(change.get("operation") or "update")
    before, after = change.get("before"), change.get("after")
    rid = str(change.get("resource_id") or "")
    target = _target(rid, op)
    note = printable(change.get("note") or "")
    if op in ("delete", "invoke", "create") and note:
        what = note
        for prefix in (f"{target}: ", f"{ids.parse(rid).name}: "):
            what = what.removeprefix(prefix)
    else:
        lines = change_lines(op, before if isinstance(before, Mapping) else None,
                             after if isinstance(after, Mapping) else None)
        what = "; ".join(_diff_words(line) for line in lines) or "no property changes"
    return clip(f"{indent}{_SYMBOL.get(op, '?')} {printable(target)}: {printable(what)}", width)


def result_line(result: Result) -> str:
    """One record of a dry run: what, on which resource, by which playbook, and the outcome."""
    f = result.finding
    name = short_name(str(f.get("resource_id") or "")) if f.get("resource_id") else str(f.get("type") or "?")
    symbol = _OUTCOME_SYMBOL.get(result.outcome, "?")
    if result.outcome == "changes":
        ops = sorted({c.operation for c in result.changes})
        detail = f"risk {result.risk}: {plural(len(result.changes), 'change')} ({', '.join(ops)})"
    else:
        detail = f"{result.outcome.replace('_', ' ')}: {result.reason}"
    warned = f" ({plural(len(result.warnings), 'thing')} not checked)" if result.warnings else ""
    return clip(printable(f"  {symbol} {name:<22} {result.playbook or '-':<38} {detail}{warned}"))


# -- the trail, briefly --------------------------------------------------------------------------------

# one write's events, in the order the worker records them (``grant_requested`` is the PIM request
# id recorded before the request is sent; the ``elevated`` that follows says it was granted)
_WRITE_EVENTS = ("grant_requested", "elevated", "change_applied", "released", "change_verified")


def _actor(event: AuditEvent) -> str:
    return event.actor.removeprefix("slack:")


def _lifecycle_word(event: AuditEvent) -> str:
    """An event of a remediation's life, in a few words: ``asked``, ``U05K8NQ2R7T approved``, ``applied``."""
    e, actor = event.event, _actor(event)
    if e == "approval_requested":
        return "asked"
    if e in ("approval_recorded", "approved"):
        return "auto-approved" if actor == "auto" else f"{actor} approved"
    if e == "rejected":
        return f"{actor} rejected"
    return e.replace("_", " ")


def _write_step(event: AuditEvent, scope_shown: bool = True) -> str:
    d = event.detail
    if event.event == "elevated":
        role = d.get("role") or d.get("strategy") or "a role"
        return f"granted {role}" + (f" on {short_name(str(d.get('scope') or ''))}" if scope_shown else "")
    if event.event == "grant_requested":
        return "grant requested" + (f" ({d['request_id']})" if d.get("request_id") else "")
    if event.event == "change_applied":
        op = str(d.get("operation") or "")
        return f"{op or 'wrote'} {_target(str(d.get('resource_id') or ''), op)}"
    return "released" if event.event == "released" else "verified"


def _grants_words(grants: Sequence[AuditEvent]) -> str:
    """``Network Contributor on snet-pe and resource group rg-ai, Cognitive Services Contributor on oai``:
    the grants of one write, a role named once for all the scopes it was granted at, in the trail's order."""
    scopes: dict[str, list[str]] = {}
    for g in grants:
        role = str(g.detail.get("role") or g.detail.get("strategy") or "a role")
        scopes.setdefault(role, []).append(short_name(str(g.detail.get("scope") or "")))
    return ", ".join(f"{role} on {' and '.join(where)}" for role, where in scopes.items())


def trail_lines(events: Iterable[AuditEvent], remediations: Mapping[str, Remediation]) -> list[str]:
    """Per remediation (in the order they first appear): its label, its life in a few words, then one
    line per write in the order the trail records it (``granted <role> → update <target> → released →
    verified``; the grant's scope is named when it is not the written resource itself)."""
    order: list[str] = []
    life: dict[str, list[str]] = {}
    writes: dict[str, list[list[AuditEvent]]] = {}
    for e in events:
        rid = e.remediation_id
        if rid is None:
            continue
        if rid not in life:
            order.append(rid)
            life[rid], writes[rid] = [], []
        if e.event in _WRITE_EVENTS:
            current = writes[rid][-1] if writes[rid] else None
            # a write's grants (one or several scopes) come first; a grant after a written step starts the next
            starts = e.event in ("grant_requested", "elevated") and (
                current is None or any(x.event in ("change_applied", "released", "change_verified") for x in current))
            if starts or current is None:
                writes[rid].append([])
            writes[rid][-1].append(e)
        else:
            life[rid].append(_lifecycle_word(e))
    lines: list[str] = []
    for rid in order:
        rem = remediations.get(rid)
        lines.append(f"  {label(rem) if rem is not None else rid[:SHORT_ID]}: {' → '.join(life[rid])}")
        for steps in writes[rid]:
            written = {short_name(str(s.detail.get("resource_id") or "")) for s in steps if s.event == "change_applied"}
            scopes = {short_name(str(s.detail.get("scope") or "")) for s in steps if s.event == "elevated"}
            granted = any(s.event == "elevated" for s in steps)  # a request that was granted reads "granted …"
            shown = [s for s in steps if not (granted and s.event == "grant_requested")]
            grants = [s for s in shown if s.event == "elevated"]
            if len(grants) > 1:  # grants at several scopes: them on one line, the write and its releases below
                lines.append(f"      granted {_grants_words(grants)}")
                rest = [s for s in shown if s.event != "elevated"]
                released = sum(s.event == "released" for s in rest)
                words = [_write_step(s) for s in rest if s.event != "released"]
                if released:
                    words.insert(min(1, len(words)), f"{released} released" if released > 1 else "released")
                lines.append(f"        → {' → '.join(words)}")
                continue
            words = [_write_step(s, scope_shown=scopes != written) for s in shown]
            lines.append(f"      {' → '.join(words)}")
    return [clip(printable(line), WIDE) for line in lines]


def brief_counts(states: Sequence[str]) -> str:
    """``11 applied, 1 exempt`` (states in alphabetical order, underscores as spaces)."""
    return ", ".join(f"{states.count(s)} {s.replace('_', ' ')}" for s in sorted(set(states)))

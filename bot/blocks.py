"""Block Kit rendering: approval messages, digests, thread replies and modals, as plain dicts.

Every string that comes from a finding or from ARM (titles, descriptions, resource names, tags,
property values in the plan, error texts, reasons) is either sent as ``plain_text`` or escaped
(``&`` ``<`` ``>`` → entities) inside ``mrkdwn`` objects that carry ``"verbatim": true``, so a
description holding ``<!channel>`` or ``<http://x|y>`` shows as text and mentions or links
nobody. Links are built only from trusted templates: the Azure portal URL made from the ARM id
(percent-encoded). Mentions come only from ids whose shape is checked (``U…``/``W…`` users,
``S…`` user groups).

Limits are kept by construction (and checked in the tests with ``slack_sdk.models``): at most 50
blocks per message and 100 per modal, 3,000 characters per section, 2,000 per field, 150 for a
header, 2,000 for a button value (always the opaque remediation id), 255 for ids. A plan longer
than ``PLAN_FOLD_LINES`` lines is folded, with a "Show full plan" button that opens a modal.

Slack asks for a new ``block_id`` on every iteration of a message, so block ids carry a short tag
derived from the remediation's id, version, state and votes.

Layout of an approval message::

    header   <finding title>                                    (plain_text)
    section  Severity | Risk | Playbook | Resource (portal link) | Resource group | Subscription
    section  <finding description>                              (plain_text, clipped)
    section  *Plan* · 1 change · `sha256:…`  + ```diff lines```  (folded past 20 lines)
    section  :warning: *Not checked* · what the plan could not read  (only when it warned)
    context  Needs 1 of 2 approvals from <!subteam^S1> · approved so far by <@U1> · expires …
    actions  [Approve] (primary, confirm) [Reject] (danger) [Show full plan]
             — or, once decided, a context line with the state (approved/applying/applied/…)
    context  remediation `<id>`
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote

from remediator import ids
from remediator.errors import one_line
from remediator.findings import ai
from remediator.lifecycle.chat import ResultDigest, ResultKind
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.text import Text
from remediator.planning.names import named
from remediator.planning.render import change_lines
from remediator.words import noun, plural

# Block Kit limits (api.slack.com/reference/block-kit; slack_sdk.models validators)
BLOCKS_MAX = 50
MODAL_BLOCKS_MAX = 100
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_MAX = 10
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ID_MAX = 255
CONTEXT_ELEMENTS_MAX = 10
MODAL_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3000
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
FALLBACK_TEXT_MAX = 3000  # the notification text; Slack truncates at 40,000

# folding
PLAN_FOLD_LINES = 20
PLAN_FOLD_CHARS = 2400
DESCRIPTION_MAX = 600
DIGEST_LIST_MAX = 15
DIGEST_PLAN_LINES = 8
WARNINGS_SHOWN = 5  # in the message; the full-plan modal lists up to MODAL_WARNINGS_SHOWN
MODAL_WARNINGS_SHOWN = 30
WARNING_MAX = 800  # characters of one warning (before escaping): two ARM ids and how to supply them fit
NOTICE_LINE_MAX = 600  # characters of one advice or evidence line (before escaping): a line with a portal link fits
NOTICE_LINES_SHOWN = 30  # advice lines in a notice; the audit trail keeps them all

# action ids, callback ids (stable API: the app's listeners match on them)
ACTION_APPROVE = "remediator.approve"
ACTION_REJECT = "remediator.reject"
ACTION_UNDO = "remediator.undo"
ACTION_SHOW_PLAN = "remediator.show_plan"
ACTION_DIGEST_APPROVE = "remediator.digest_approve"
ACTION_DIGEST_LIST = "remediator.digest_list"
CALLBACK_REJECT = "remediator.reject_reason"
REJECT_BLOCK = "reject_reason"
REJECT_INPUT = "reason"
REJECT_REASON_MAX = 500

PORTAL = "https://portal.azure.com/#@/resource"

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
_SAFE_TOKEN = re.compile(r"<@[UW][A-Z0-9]{2,30}>|<!subteam\^S[A-Z0-9]{2,30}(?:\|@?[\w.-]{1,80})?>")
_PARTIAL_TAIL = re.compile(r"(?:&[a-z]{0,4}|<[^<>]*)$")
_SYMBOL = {"update": "~", "delete": "-", "create": "+", "invoke": "!"}


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message ready for ``chat.postMessage``/``chat.update``: fallback ``text`` and ``blocks``."""

    text: str
    blocks: list[dict[str, Any]]


# --- text helpers ----------------------------------------------------------------------------


def esc(value: object) -> str:
    """Escape Slack's control characters (``&`` first) so untrusted text renders as text. Inside
    ``remediator.planning.names.naming`` each id the message's batch knows reads ``name (id)`` first,
    so a display name (user-controlled) is escaped like the rest."""
    return named(str(value)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# One line, never cut here: each field's Slack limit is applied where it is built (``clip``).
flat = partial(one_line, limit=None)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut never leaves half an entity or half a ``<…>`` token."""
    if len(text) <= limit:
        return text
    cut = _PARTIAL_TAIL.sub("", text[: max(limit - 1, 0)])
    return cut + "…"


def mention(user_id: str) -> str:
    """``<@U…>`` for a well-formed user id; anything else is escaped text."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else esc(user_id)


def markup(text: str | Text) -> str:
    """The core's words (``remediator.lifecycle.text``) as mrkdwn source: each mention as Slack's
    token (``<@U…>``, ``<!subteam^S…>``), the rest as written. Like any trusted text, it goes
    through ``safe_mentions`` (or ``notice``) on its way out, which keeps only well-formed tokens."""
    if isinstance(text, str):
        return text
    return text.render(mention=lambda m: f"<!subteam^{m.id}>" if m.group else f"<@{m.id}>")


def safe_mentions(text: str) -> str:
    """Keep only user and user-group mention tokens from trusted text; escape everything else."""
    out: list[str] = []
    pos = 0
    for m in _SAFE_TOKEN.finditer(text):
        out.append(esc(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def code(value: object) -> str:
    """Inline code of escaped text (backticks cannot end the span early)."""
    return "`" + esc(flat(value)).replace("`", "'") + "`"


def portal_url(resource_id: str) -> str | None:
    """The Azure portal page of an ARM id, percent-encoded; None unless it looks like an ARM id."""
    rid = resource_id.strip()
    if not rid.lower().startswith("/subscriptions/"):
        return None
    return PORTAL + quote(rid, safe="/")


def resource_link(resource_id: str, label: str | None = None) -> str:
    """``<portal url|name>`` in mrkdwn; the escaped name alone when no safe link can be built."""
    name = esc(flat(label if label is not None else (ids.parse(resource_id).name or resource_id)))
    name = name.replace("|", "¦") or "resource"
    url = portal_url(resource_id)
    return f"<{url}|{name}>" if url else name


def plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object (names before ids inside ``naming``), clipped to ``limit``."""
    return {"type": "plain_text", "text": clip(named(text), limit) or " ", "emoji": False}


def mrkdwn(text: str, limit: int = SECTION_TEXT_MAX) -> dict[str, Any]:
    """A mrkdwn object from text that is already safe (escaped), clipped to ``limit``."""
    return {"type": "mrkdwn", "text": clip(text, limit) or " ", "verbatim": True}


def date_token(when: datetime) -> str:
    """Slack's localised date token with an ISO fallback."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{when.isoformat(timespec='minutes')}>"


def _tag(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:10]


def _block_id(name: str, tag: str) -> str:
    return clip(f"{name}.v1.{tag}", ID_MAX)


def _rem_tag(rem: Remediation) -> str:
    return _tag(rem.id, rem.version, rem.state, len(rem.votes), rem.error or "")


# --- plans -----------------------------------------------------------------------------------


def plan_lines(changes: Sequence[Mapping[str, Any]], *, compact: bool = False) -> list[str]:
    """Plain (unescaped) lines: per change a head line, its note, then the property-level diff.

    ``compact`` (the message, not the full-plan modal): a whole document deleted or created that
    has a note is summarised as its note and a count, so the update lines that say what changes
    are not pushed past the fold by a dump of every property of a deleted rule.
    """
    lines: list[str] = []
    for change in changes:
        op = str(change.get("operation") or "update")
        target = str(change.get("resource_id") or "")
        parsed = ids.parse(target)
        short = f"{parsed.type.rsplit('/', 1)[-1] or 'resource'} {parsed.name}".strip() if parsed.name else target
        action = change.get("action")
        lines.append(f"{_SYMBOL.get(op, '?')} {op} {short}" + (f"  [{action}]" if action else ""))
        note = change.get("note")
        if note:
            lines.append(f"    # {flat(note)}")
        before, after = change.get("before"), change.get("after")
        diff = change_lines(op, before if isinstance(before, Mapping) else None,
                            after if isinstance(after, Mapping) else None)
        if compact and note and op in {"delete", "create"} and len(diff) > 1:
            word = "removed" if op == "delete" else "set"
            lines.append(f"    ({plural(len(diff), 'property')} {word}: Show full plan lists them)")
            continue
        lines.extend(f"    {line}" for line in diff)
    return lines


def _code_block(lines: Sequence[str]) -> str:
    body = "\n".join(esc(line).replace("```", "`\u200b``") for line in lines)
    return f"```\n{body}\n```"


def _fit_lines(lines: Sequence[str], max_lines: int, max_chars: int) -> tuple[list[str], int]:
    """The leading lines that fit both budgets (each line clipped to the char budget); how many were left out."""
    kept: list[str] = []
    used = 0
    for line in lines[:max_lines]:
        text = clip(line, 300)
        cost = len(esc(text)) + 1  # escaped length plus the newline
        if used + cost > max_chars:
            break
        kept.append(text)
        used += cost
    return kept, len(lines) - len(kept)


def plan_section(rem: Remediation, *, max_lines: int = PLAN_FOLD_LINES) -> tuple[dict[str, Any], bool]:
    """The plan as a section block; True when it was folded (the message shows less than the modal)."""
    lines = plan_lines(rem.changes, compact=True)
    n = len(rem.changes)
    head = f"*Plan* · {n} change{'s' if n != 1 else ''}"
    if rem.fingerprint:
        head += f" · {code(rem.fingerprint[:19] + '…')}"
    if not lines:
        return {"type": "section", "block_id": _block_id("plan", _rem_tag(rem)),
                "text": mrkdwn(head + "\nNo changes.")}, False
    kept, left = _fit_lines(lines, max_lines, PLAN_FOLD_CHARS)
    text = head + "\n" + _code_block(kept)
    if left:
        text += f"\n_…{left} more line{'s' if left != 1 else ''}: use *Show full plan*_"
    folded = left > 0 or len(lines) != len(plan_lines(rem.changes))
    return {"type": "section", "block_id": _block_id("plan", _rem_tag(rem)), "text": mrkdwn(text)}, folded


def plan_chunks(lines: Sequence[str], chunk_chars: int = SECTION_TEXT_MAX - 100) -> list[str]:
    """Code blocks of at most ``chunk_chars`` characters each, splitting between lines."""
    chunks: list[str] = []
    current: list[str] = []
    for raw in lines:
        line = clip(raw, 1000)
        if current and len(_code_block([*current, line])) > chunk_chars:
            chunks.append(_code_block(current))
            current = []
        current.append(line)
    if current:
        chunks.append(_code_block(current))
    return chunks


# --- incomplete state ------------------------------------------------------------------------


def _things(n: int) -> str:
    return f"{n} thing{'s' if n != 1 else ''}"


def warnings_text(rem: Remediation, *, shown: int = WARNINGS_SHOWN) -> str:
    """"Not checked" mrkdwn (escaped, clipped) listing the plan's warnings; "" when it has none.

    A plan that warns covers only what it could read: the approver sees what was left out (a
    subnet, a peer network, a VM's power state missing from the state) before approving it.
    """
    warnings = [flat(w) for w in rem.warnings if flat(w)]
    if not warnings:
        return ""
    head = f":warning: *Not checked* · the plan covers only what it could read ({_things(len(warnings))} not checked)"
    items: list[str] = []
    used = len(head)
    budget = SECTION_TEXT_MAX - 150  # room for the "…and N more" line
    for w in warnings[:shown]:
        item = "• " + esc(clip(w, WARNING_MAX))
        if used + len(item) + 1 > budget:
            if items:
                break
            item = clip(item, budget - used - 1)  # the first one is always shown, cut to the room left
        items.append(item)
        used += len(item) + 1
    if len(warnings) > len(items):
        items.append(f"_…and {len(warnings) - len(items)} more: `remediator audit {esc(rem.id)}` lists them_")
    return head + "\n" + "\n".join(items)


def warnings_section(rem: Remediation, *, shown: int = WARNINGS_SHOWN) -> dict[str, Any] | None:
    text = warnings_text(rem, shown=shown)
    if not text:
        return None
    return {"type": "section", "block_id": _block_id("unchecked", _rem_tag(rem)), "text": mrkdwn(text)}


# --- approval messages -----------------------------------------------------------------------


def _finding(rem: Remediation) -> Mapping[str, Any]:
    return rem.finding if isinstance(rem.finding, Mapping) else {}


def title_of(rem: Remediation) -> str:
    f = _finding(rem)
    return flat(f.get("title") or f.get("type") or rem.playbook) or "Finding"


def _severity(rem: Remediation) -> str:
    value = _finding(rem).get("severity")
    if isinstance(value, str) and value:
        return flat(value).capitalize()
    label = getattr(value, "label", None)
    return str(label) if label else "Unknown"


def _approvers_line(rem: Remediation) -> str:
    votes = [v for v in rem.votes if v.decision == "approve"]
    return ", ".join(mention(v.user_id) for v in votes)


def status_line(rem: Remediation) -> str | None:
    """The context line that replaces the buttons once a remediation is decided; None while pending."""
    by = _approvers_line(rem)
    by_text = f" by {by}" if by else ""
    rejected = [v for v in rem.votes if v.decision == "reject"]
    lines: dict[str, str] = {
        "planned": ":memo: Planned; not yet asked",
        "approved": f":white_check_mark: Approved{by_text}; queued to apply",
        "applying": f":hourglass_flowing_sand: Approved{by_text}; applying now",
        "applied": f":white_check_mark: Applied and verified (approved{by_text})" if by else
                   ":white_check_mark: Applied and verified",
        "failed": ":x: Failed" + (f": {esc(clip(flat(rem.error), 1500))}" if rem.error else ""),
        "expired": ":alarm_clock: Expired without the approvals it needed; nothing was changed",
        "stale": ":warning: Stale: the resource changed after this plan was made; nothing was changed. "
                 "A new plan is asked for in the thread",
        "no_change": ":white_check_mark: Already compliant; nothing to change",
        "exempt": ":see_no_evil: Exempt; nothing will be changed",
        "rolled_back": ":leftwards_arrow_with_hook: Rolled back",
        "withdrawn": ":white_check_mark: Resolved outside remediator; withdrawn, nothing was changed",
    }
    if rem.state == "pending_approval":
        return None
    if rem.state == "rejected":
        who = ", ".join(mention(v.user_id) for v in rejected)
        reason = next((v.reason for v in reversed(rejected) if v.reason), "")
        text = ":no_entry_sign: Rejected" + (f" by {who}" if who else "") + "; nothing was changed"
        if reason:
            text += f". Reason: {esc(clip(flat(reason), 1000))}"
        return text
    return lines.get(rem.state, f"State: {esc(rem.state)}")


def requirement_text(rem: Remediation, requirement: str) -> str:
    """The context line under the plan while a request is pending: what approval still needs
    (the engine's text, mentions kept, everything else escaped) and when it expires."""
    if rem.state != "pending_approval":
        return ""
    parts = []
    if requirement:
        parts.append(":busts_in_silhouette: Needs " + safe_mentions(flat(requirement)))
    if rem.expires_at is not None:
        parts.append(f"expires {date_token(rem.expires_at)}")
    return " · ".join(parts)


def _fields(rem: Remediation) -> list[dict[str, Any]]:
    parsed = ids.parse(rem.resource_id)
    rtype = parsed.type or str(_finding(rem).get("resource_type") or "")
    resource = resource_link(rem.resource_id) + (f"\n{esc(rtype)}" if rtype else "")
    fields = [
        f"*Severity*\n{esc(_severity(rem))}",
        f"*Risk*\n{esc(flat(rem.risk or 'unknown'))}",
        f"*Playbook*\n{code(rem.playbook)}",
        f"*Resource*\n{resource}",
    ]
    if parsed.resource_group:
        fields.append(f"*Resource group*\n{code(parsed.resource_group)}")
    sub = rem.subscription_id or parsed.subscription_id
    if sub:
        fields.append(f"*Subscription*\n{code(sub)}")
    return [mrkdwn(f, FIELD_TEXT_MAX) for f in fields[:FIELDS_MAX]]


def approval_text(rem: Remediation) -> str:
    """The notification/fallback text (mrkdwn, escaped)."""
    name = ids.parse(rem.resource_id).name or rem.resource_id
    verb = "Approval needed" if rem.state == "pending_approval" else f"Remediation {rem.state.replace('_', ' ')}"
    return clip(f"{verb}: {esc(title_of(rem))} on {esc(flat(name))} ({esc(rem.playbook)})", FALLBACK_TEXT_MAX)


def approve_confirm(rem: Remediation) -> dict[str, Any]:
    name = flat(ids.parse(rem.resource_id).name or rem.resource_id)
    n = len(rem.changes)
    unchecked = f" {_things(len(rem.warnings))} could not be checked (see the message)." if rem.warnings else ""
    return {
        "title": plain("Apply this plan?", CONFIRM_TITLE_MAX),
        "text": plain(f"Approve {n} change{'s' if n != 1 else ''} to {name}.{unchecked} The plan is re-checked "
                      "before it is applied; if the resource changed, you will be asked again.", CONFIRM_TEXT_MAX),
        "confirm": plain("Approve", BUTTON_TEXT_MAX),
        "deny": plain("Cancel", BUTTON_TEXT_MAX),
    }


def button(text: str, action_id: str, value: str, *, style: str | None = None,
           confirm: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if len(value) > BUTTON_VALUE_MAX:
        raise ValueError(f"button value is {len(value)} characters, over Slack's {BUTTON_VALUE_MAX}")
    out: dict[str, Any] = {"type": "button", "action_id": action_id, "text": plain(text, BUTTON_TEXT_MAX),
                           "value": value}
    if style:
        out["style"] = style
    if confirm:
        out["confirm"] = dict(confirm)
    return out


def approval_message(rem: Remediation, requirement: str) -> Rendered:
    """The approval message of one remediation in its current state (buttons only while pending)."""
    tag = _rem_tag(rem)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "block_id": _block_id("title", tag), "text": plain(title_of(rem), HEADER_TEXT_MAX)},
        {"type": "section", "block_id": _block_id("facts", tag), "fields": _fields(rem)},
    ]
    description = flat(_finding(rem).get("description") or "")
    if description:
        blocks.append({"type": "section", "block_id": _block_id("about", tag),
                       "text": plain(description, DESCRIPTION_MAX)})
    evidence = ai.evidence_of(_finding(rem))
    if evidence is not None and evidence.lines():  # an AI alert's evidence, escaped, before the plan
        blocks.append({"type": "section", "block_id": _block_id("evidence", tag),
                       "text": mrkdwn("*Evidence*\n" + "\n".join(f"• {esc(clip(flat(line), NOTICE_LINE_MAX))}"
                                                                 for line in evidence.lines()))})
    plan, folded = plan_section(rem)
    blocks.append(plan)
    unchecked = warnings_section(rem)
    if unchecked is not None:
        blocks.append(unchecked)
    req = requirement_text(rem, requirement)
    if req:
        blocks.append({"type": "context", "block_id": _block_id("needs", tag), "elements": [mrkdwn(req)]})
    status = status_line(rem)
    if status is None:
        elements = [
            button("Approve", ACTION_APPROVE, rem.id, style="primary", confirm=approve_confirm(rem)),
            button("Reject", ACTION_REJECT, rem.id, style="danger"),
        ]
        if folded:
            elements.append(button("Show full plan", ACTION_SHOW_PLAN, rem.id))
        blocks.append({"type": "actions", "block_id": _block_id("decide", tag), "elements": elements})
    else:
        blocks.append({"type": "context", "block_id": _block_id("state", tag), "elements": [mrkdwn(status)]})
        if folded:
            blocks.append({"type": "actions", "block_id": _block_id("more", tag),
                           "elements": [button("Show full plan", ACTION_SHOW_PLAN, rem.id)]})
    blocks.append({"type": "context", "block_id": _block_id("ref", tag),
                   "elements": [mrkdwn(f"remediation {code(rem.id)}" + (
                       f" · undo of {code(rem.undo_of)}" if rem.undo_of else "") + (
                       f" · requested by {mention(rem.requester)}" if rem.requester else ""))]})
    return Rendered(approval_text(rem), blocks[:BLOCKS_MAX])


# --- digests (storms) ------------------------------------------------------------------------


def digest_key(remediation_ids: Sequence[str]) -> str:
    """A short opaque tag of a digest's members (order-independent)."""
    return _tag(*sorted(remediation_ids))


def _digest_scope(rems: Sequence[Remediation], group: str) -> tuple[str, str, str]:
    """Where a digest's members are: (field title, field text in mrkdwn, plain words). Members in several
    resource groups (a backlog's leftovers pooled per subscription) are counted and their subscription
    named; otherwise ``group`` (the resource group, or ``(subscription)``)."""
    groups = {(ids.parse(r.resource_id).resource_group or "").lower() for r in rems}
    if len(groups) < 2:
        return "Resource group", code(group), group
    subs = sorted({(ids.parse(r.resource_id).subscription_id or "").lower() for r in rems})
    where = f"subscription {subs[0]}" if len(subs) == 1 else f"{len(subs)} subscriptions"
    return "Resource groups", f"{len(groups)} in {code(subs[0]) if len(subs) == 1 else where}", \
        f"{len(groups)} resource groups of {where}"


def digest_message(rems: Sequence[Remediation], *, playbook: str, group: str, requirement: str,
                   status: str | None = None) -> Rendered:
    """One message for N remediations of one playbook in one resource group (or in several of one
    subscription: ``_digest_scope``).

    Lists the first ``DIGEST_LIST_MAX`` resources with portal links, shows the first plan as an
    example, and offers "Approve all" (value: the digest's key; the app resolves the members from
    the message) and "Open the list" (a modal). ``status`` replaces the buttons once decided.
    """
    n = len(rems)
    tag = digest_key([r.id for r in rems]) + _tag(status or "")[:4]
    risk = esc(flat(rems[0].risk)) if rems else "unknown"
    scope_title, scope, where = _digest_scope(rems, group)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "block_id": _block_id("dtitle", tag),
         "text": plain(f"{plural(n, 'remediation')}: {playbook}", HEADER_TEXT_MAX)},
        {"type": "section", "block_id": _block_id("dfacts", tag), "fields": [
            mrkdwn(f"*Playbook*\n{code(playbook)}", FIELD_TEXT_MAX),
            mrkdwn(f"*{scope_title}*\n{scope}", FIELD_TEXT_MAX),
            mrkdwn(f"*Risk*\n{risk}", FIELD_TEXT_MAX),
            mrkdwn(f"*Findings*\n{n}", FIELD_TEXT_MAX),
        ]},
    ]
    items: list[str] = []
    used = 0
    for rem in rems[:DIGEST_LIST_MAX]:
        item = f"• {resource_link(rem.resource_id)}: {esc(clip(title_of(rem), 120))} ({esc(_severity(rem))})"
        if used + len(item) + 1 > SECTION_TEXT_MAX - 200:
            break
        items.append(item)
        used += len(item) + 1
    if n > len(items):
        items.append(f"_…and {n - len(items)} more: use *Open the list*_")
    blocks.append({"type": "section", "block_id": _block_id("dlist", tag), "text": mrkdwn("\n".join(items))})
    if rems:
        lines = plan_lines(rems[0].changes, compact=True)
        kept, left = _fit_lines(lines, DIGEST_PLAN_LINES, 1500)
        sample = f"*Example plan* (for {resource_link(rems[0].resource_id)}; each one is re-planned before it is " \
                 f"applied)\n{_code_block(kept)}" if kept else "*Example plan*: no changes"
        if left:
            sample += f"\n_…{left} more line{'s' if left != 1 else ''}_"
        blocks.append({"type": "section", "block_id": _block_id("dplan", tag), "text": mrkdwn(sample)})
    warned = sum(1 for r in rems if r.warnings)
    if warned:
        blocks.append({"type": "context", "block_id": _block_id("dunchecked", tag), "elements": [mrkdwn(
            f":warning: *Not checked*: {warned} of {n} plan{'s' if n != 1 else ''} could not check everything "
            "(*Open the list* shows which; each request's full plan lists what)")]})
    if requirement:
        blocks.append({"type": "context", "block_id": _block_id("dneeds", tag),
                       "elements": [mrkdwn(":busts_in_silhouette: " + safe_mentions(flat(requirement)))]})
    key = digest_key([r.id for r in rems])
    if status is None:
        confirm = {
            "title": plain(f"Approve all {n}?", CONFIRM_TITLE_MAX),
            "text": plain(f"Approve {plural(n, 'remediation')} of {playbook} in {where}. Each is re-planned before "
                          "it is applied; any that changed are asked again.", CONFIRM_TEXT_MAX),
            "confirm": plain("Approve all", BUTTON_TEXT_MAX),
            "deny": plain("Cancel", BUTTON_TEXT_MAX),
        }
        blocks.append({"type": "actions", "block_id": _block_id("ddecide", tag), "elements": [
            button(f"Approve all {n}", ACTION_DIGEST_APPROVE, key, style="primary", confirm=confirm),
            button("Open the list", ACTION_DIGEST_LIST, key),
        ]})
    else:
        blocks.append({"type": "context", "block_id": _block_id("dstate", tag), "elements": [mrkdwn(status)]})
        blocks.append({"type": "actions", "block_id": _block_id("dmore", tag),
                       "elements": [button("Open the list", ACTION_DIGEST_LIST, key)]})
    text = clip(f"{plural(n, 'remediation')} of {esc(playbook)} in {esc(where)} {noun(n, 'needs', 'need')} approval",
                FALLBACK_TEXT_MAX)
    return Rendered(text, blocks[:BLOCKS_MAX])


# --- thread replies --------------------------------------------------------------------------

_RESULT_ICON: dict[str, str] = {
    "applied": ":white_check_mark:",
    "failed": ":x:",
    "stale": ":warning:",
    "expired": ":alarm_clock:",
    "rejected": ":no_entry_sign:",
    "reminder": ":bell:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "info": ":information_source:",
    "withdrawn": ":white_check_mark:",
}


def result_message(rem: Remediation, *, kind: ResultKind, text: str, undo_available: bool = False) -> Rendered:
    """A thread reply: the result in words (escaped) and, after an apply, an Undo button."""
    tag = _rem_tag(rem) + kind[:3]
    body = f"{_RESULT_ICON.get(kind, '')} {esc(clip(text.strip(), 2500))}".strip()
    blocks: list[dict[str, Any]] = [{"type": "section", "block_id": _block_id("result", tag), "text": mrkdwn(body)}]
    if undo_available:
        confirm = _undo_confirm()
        blocks.append({"type": "actions", "block_id": _block_id("undo", tag),
                       "elements": [button("Undo", ACTION_UNDO, rem.id, confirm=confirm)]})
    return Rendered(clip(esc(flat(text)), FALLBACK_TEXT_MAX) or kind, blocks)


RESULT_LINE_MAX = 360  # mrkdwn characters of one result in a results digest (a link, the words, the id)
RESULT_LINK_MAX = 240  # a portal link longer than this is shown as the resource's name alone
RESULTS_TEXT_MAX = 10_000  # a results digest's block text in all (Slack refuses ~11,000+: msg_blocks_too_long)
UNDO_OPTIONS_MAX = 100  # options of a static_select (Block Kit)
OPTION_TEXT_MAX = 75
_RESULT_WORDS = {"applied": "applied", "failed": "failed", "rolled_back": "rolled back", "stale": "stale",
                 "expired": "expired", "rejected": "rejected", "withdrawn": "withdrawn"}


def _undo_confirm() -> dict[str, Any]:
    """The confirmation an Undo asks for (a thread reply's button, a results digest's menu)."""
    return {
        "title": plain("Undo this change?", CONFIRM_TITLE_MAX),
        "text": plain("Undo restores the previous state. It is a new change, so it needs approval too.",
                      CONFIRM_TEXT_MAX),
        "confirm": plain("Request undo", BUTTON_TEXT_MAX),
        "deny": plain("Cancel", BUTTON_TEXT_MAX),
    }


def results_message(digest: ResultDigest) -> Rendered:
    """A results digest: what happened to each auto-applied remediation of one playbook, one line each
    (icon, the resource with its portal link, the result's words, the remediation id), sections of
    whole lines within 3,000 characters each, and one "Undo…" menu (``ACTION_UNDO``, the option's value
    the remediation id) for those that can be undone. ``remediator.lifecycle.results.ENTRIES_MAX``
    (25) lines fit within 50 blocks and ``RESULTS_TEXT_MAX`` (Slack's undocumented limit on a
    message's block text, ``msg_blocks_too_long``: ../shared/reference/slack.md §3.5)."""
    entries = digest.entries
    tag = _tag(digest.id, len(entries))
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    summary = ", ".join(f"{n} {_RESULT_WORDS.get(kind, kind.replace('_', ' '))}" for kind, n in counts.items())
    lines: list[str] = []
    for e in entries:
        link = resource_link(e.resource_id)
        if len(link) > RESULT_LINK_MAX:
            link = resource_link("", label=ids.parse(e.resource_id).name or e.resource_id)
        words = esc(flat(e.text))
        line = f"{_RESULT_ICON.get(e.kind, '')} {link}: {clip(words, RESULT_LINE_MAX - len(link) - 60)} · " \
               f"{code(e.remediation_id)}"
        lines.append(clip(line, RESULT_LINE_MAX))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "block_id": _block_id("rtitle", tag),
         "text": plain(f"{plural(len(entries), 'result')}: {digest.playbook}", HEADER_TEXT_MAX)},
        {"type": "context", "block_id": _block_id("rwhat", tag), "elements": [mrkdwn(
            f"Changes of playbook {code(digest.playbook)} applied without approval or approved together in a "
            f"digest · {esc(summary)} · since "
            f"{date_token(digest.opened_at)}; this message is updated as more arrive")]},
    ]
    used = sum(len(json.dumps(b)) for b in blocks)
    chunk: list[str] = []
    sections: list[list[str]] = [chunk]
    for line in lines:
        if used + len(line) > RESULTS_TEXT_MAX:
            break
        if chunk and len("\n".join([*chunk, line])) > SECTION_TEXT_MAX - 100:
            chunk = []
            sections.append(chunk)
        chunk.append(line)
        used += len(line) + 1
    shown = sum(len(c) for c in sections)
    for i, part in enumerate(sections):
        if part:
            blocks.append({"type": "section", "block_id": _block_id(f"rlist{i}", tag), "text": mrkdwn("\n".join(part))})
    if shown < len(entries):
        blocks.append({"type": "context", "block_id": _block_id("rmore", tag), "elements": [mrkdwn(
            f"…and {len(entries) - shown} more: `/remediate list` or the audit trail has each one")]})
    undoable = [e for e in entries if e.undo_available][:UNDO_OPTIONS_MAX]
    if undoable:
        options = [{"text": plain(f"{ids.parse(e.resource_id).name or e.resource_id} ({e.remediation_id[:8]})",
                                  OPTION_TEXT_MAX), "value": e.remediation_id} for e in undoable]
        confirm = _undo_confirm()
        blocks.append({"type": "actions", "block_id": _block_id("rundo", tag), "elements": [
            {"type": "static_select", "action_id": ACTION_UNDO, "placeholder": plain("Undo one…", OPTION_TEXT_MAX),
             "options": options, "confirm": confirm}]})
    text = clip(f"{esc(digest.playbook)}: {esc(summary) or 'no results'}", FALLBACK_TEXT_MAX)
    return Rendered(text, blocks[:BLOCKS_MAX])


def notice_message(rem: Remediation, lines: Sequence[str]) -> Rendered:
    """An alert that no change answers (``alert.send-advice``): the finding, its resource and the advice lines
    (what it is, the evidence, the recommended steps), every line escaped and clipped, no buttons."""
    tag = _rem_tag(rem) + "adv"
    shown = [f"• {esc(clip(flat(line), NOTICE_LINE_MAX))}" for line in lines[:NOTICE_LINES_SHOWN]]
    if len(lines) > NOTICE_LINES_SHOWN:
        shown.append(f"… {len(lines) - NOTICE_LINES_SHOWN} more in the audit trail")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "block_id": _block_id("ntitle", tag), "text": plain(title_of(rem), HEADER_TEXT_MAX)},
        {"type": "section", "block_id": _block_id("nfacts", tag), "fields": _fields(rem)},
    ]
    chunks: list[list[str]] = [[]]
    for line in shown:  # sections of whole lines, each within Slack's 3,000 characters
        if chunks[-1] and len("\n".join([*chunks[-1], line])) > SECTION_TEXT_MAX - 100:
            chunks.append([])
        chunks[-1].append(line)
    blocks.extend({"type": "section", "block_id": _block_id(f"advice{i}", tag), "text": mrkdwn("\n".join(chunk))}
                  for i, chunk in enumerate(chunks[:BLOCKS_MAX - 4]) if chunk)
    blocks.append({"type": "context", "block_id": _block_id("nref", tag),
                   "elements": [mrkdwn(f"No change: remediator recorded this alert and changes nothing · remediation "
                                       f"{code(rem.id)}")]})
    name = ids.parse(rem.resource_id).name or rem.resource_id
    text = clip(f"Alert, no change: {esc(title_of(rem))} on {esc(flat(name))} ({esc(rem.playbook)})",
                FALLBACK_TEXT_MAX)
    return Rendered(text, blocks[:BLOCKS_MAX])


def alarm_message(key: str, title: str, lines: Sequence[str]) -> Rendered:
    """A message about remediator itself (``ChatPort.post_alarm``: a subscription Defender's export went silent on):
    a header, the lines escaped and clipped, no buttons; every block id derived from ``key``."""
    tag = hashlib.sha256(key.encode()).hexdigest()[:12]
    shown = [esc(clip(flat(line), NOTICE_LINE_MAX)) for line in lines[:NOTICE_LINES_SHOWN]]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "block_id": _block_id("atitle", tag), "text": plain(f":rotating_light: {title}",
                                                                               HEADER_TEXT_MAX)},
        *({"type": "section", "block_id": _block_id(f"aline{i}", tag), "text": mrkdwn(line)}
          for i, line in enumerate(shown[:BLOCKS_MAX - 2])),
        {"type": "context", "block_id": _block_id("aref", tag),
         "elements": [mrkdwn("remediator itself · recorded in the audit trail")]},
    ]
    return Rendered(clip(esc(flat(title)), FALLBACK_TEXT_MAX), blocks[:BLOCKS_MAX])


def notice(text: str | Text) -> str:
    """An ephemeral notice (a refusal or a confirmation): user and group mentions built from
    validated ids stay mentions, everything else (a rejection reason quoted back) is escaped."""
    return clip(safe_mentions(markup(text)), FALLBACK_TEXT_MAX)


# --- modals ----------------------------------------------------------------------------------


def _modal(title: str, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"type": "modal", "title": plain(title, MODAL_TITLE_MAX),
                            "close": plain("Close", MODAL_TITLE_MAX), "blocks": blocks[:MODAL_BLOCKS_MAX]}
    view.update(extra)
    return view


def plan_modal(rem: Remediation) -> dict[str, Any]:
    """The whole plan in a modal: the diff split into sections of at most 3,000 characters."""
    head = f"{resource_link(rem.resource_id)} · {code(rem.playbook)}"
    if rem.fingerprint:
        head += f" · {code(rem.fingerprint)}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": mrkdwn(head)}]
    unchecked = warnings_section(rem, shown=MODAL_WARNINGS_SHOWN)
    if unchecked is not None:
        blocks.append(unchecked)
    chunks = plan_chunks(plan_lines(rem.changes)) or ["No changes."]
    room = MODAL_BLOCKS_MAX - len(blocks) - 1
    for chunk in chunks[:room]:
        blocks.append({"type": "section", "text": mrkdwn(chunk)})
    if len(chunks) > room:
        blocks.append({"type": "context", "elements": [mrkdwn(
            f"_{len(chunks) - room} more parts not shown: `remediator audit {esc(rem.id)}` prints the plan_")]})
    return _modal("Full plan", blocks)


def reject_modal(rem: Remediation, *, channel: str | None, ts: str | None) -> dict[str, Any]:
    """The reason prompt opened from Reject; ``private_metadata`` carries the id and the message ref."""
    meta = json.dumps({"id": rem.id, "channel": channel or "", "ts": ts or ""}, separators=(",", ":"))
    if len(meta) > PRIVATE_METADATA_MAX:
        meta = json.dumps({"id": rem.id}, separators=(",", ":"))
    name = flat(ids.parse(rem.resource_id).name or rem.resource_id)
    blocks = [
        {"type": "section", "text": plain(f"Reject the plan for {name} ({rem.playbook}). Nothing will be changed.",
                                          SECTION_TEXT_MAX)},
        {"type": "input", "block_id": REJECT_BLOCK, "label": plain("Reason", 2000),
         "element": {"type": "plain_text_input", "action_id": REJECT_INPUT, "multiline": True,
                     "max_length": REJECT_REASON_MAX,
                     "placeholder": plain("Why should this not be applied?", 150)}},
    ]
    return _modal("Reject remediation", blocks, callback_id=CALLBACK_REJECT, private_metadata=meta,
                  submit=plain("Reject", MODAL_TITLE_MAX))


def digest_list_modal(rems: Sequence[Remediation], *, playbook: str) -> dict[str, Any]:
    """The members of a digest, ten per section, with state and portal links."""
    lines = [f"• {resource_link(r.resource_id)} · {esc(r.state.replace('_', ' '))} · {code(r.id)}"
             + (f" · :warning: {_things(len(r.warnings))} not checked" if r.warnings else "") for r in rems]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": mrkdwn(
        f"{plural(len(rems), 'remediation')} of {code(playbook)}")}]
    room = MODAL_BLOCKS_MAX - 2
    for i in range(0, len(lines), 10):
        if len(blocks) > room:
            break
        blocks.append({"type": "section", "text": mrkdwn("\n".join(lines[i : i + 10]))})
    shown = (len(blocks) - 1) * 10
    if shown < len(lines):
        blocks.append({"type": "context", "elements": [mrkdwn(
            f"_{len(lines) - shown} more: `/remediate list` or `remediator audit`_")]})
    return _modal("Remediations", blocks)

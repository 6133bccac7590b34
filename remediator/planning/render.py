"""Human-readable plans: a Terraform-like, property-level diff per change.

``~ path: old -> new`` for a changed property, ``+ path: value`` for an added one,
``- path: value`` for a removed one. Lists of named objects (NSG rules, IP rules) are keyed by
their ``name``/``value``/``id`` so a removed entry reads as one removal, not as a shifted list.
Read-only bookkeeping (``etag``, ``provisioningState``) is left out of update diffs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from remediator.actions.change import Change
from remediator.planning.names import Names
from remediator.planning.result import Result
from remediator.words import plural

_NOISE = frozenset({"etag", "provisioningstate"})
_SYMBOL = {"update": "~", "delete": "-", "create": "+", "invoke": "!"}
_LIST_KEYS = ("name", "value", "id")


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _list_key(items: Sequence[Any]) -> str | None:
    """The field that names each element of a list of objects, if every element has a distinct one."""
    if not items or not all(isinstance(i, Mapping) for i in items):
        return None
    for k in _LIST_KEYS:
        vals = [i.get(k) for i in items]
        if all(isinstance(v, str) and v for v in vals) and len(set(vals)) == len(vals):
            return k
    return None


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of a JSON document as (dotted path, value).

    Scalars, empty containers and lists of scalars (port lists, address prefixes) are leaves, so a
    changed list reads as one ``old -> new`` line.
    """
    if isinstance(value, Mapping) and value:
        for k in value:
            yield from flatten(value[k], f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and value and any(isinstance(i, (Mapping, list)) for i in value):
        key = _list_key(value)
        for i, item in enumerate(value):
            label = f"[{key}={item[key]}]" if key else f"[{i}]"
            yield from flatten(item, f"{path}{label}")
    else:
        yield path, value


def diff_lines(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """The property-level diff of two documents, one line per leaf that differs."""
    old = dict(flatten(before)) if before is not None else {}
    new = dict(flatten(after)) if after is not None else {}
    if before is None or after is None:  # a whole document created or deleted: skip empty leaves
        old = {k: v for k, v in old.items() if v not in (None, "", [], {})}
        new = {k: v for k, v in new.items() if v not in (None, "", [], {})}
    lines: list[str] = []
    for path in list(old) + [p for p in new if p not in old]:
        if before is not None and after is not None and path.rsplit(".", 1)[-1].lower() in _NOISE:
            continue
        if path in old and path in new:
            if old[path] != new[path]:
                lines.append(f"~ {path}: {_scalar(old[path])} -> {_scalar(new[path])}")
        elif path in old:
            lines.append(f"- {path}: {_scalar(old[path])}")
        else:
            lines.append(f"+ {path}: {_scalar(new[path])}")
    return lines


def change_lines(operation: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """What one change writes, line by line: the property-level diff of an update, create or delete;
    for an ``invoke`` (a POST action such as ``endGetAccess``) the request body it sends, or that it
    sends none. An action's effect is not a property value, so no made-up ``after`` value is shown:
    the change's note says in words what the action does."""
    if operation == "invoke":
        return [f"POST body: {_scalar(after)}" if after else "POST with no request body"]
    return diff_lines(before, after)


def render_change(change: Change, indent: str = "  ") -> list[str]:
    head = f"{indent}{_SYMBOL[change.operation]} {change.operation} {change.resource_id}  [{change.action}]"
    out = [head]
    if change.note:
        out.append(f"{indent}    # {change.note}")
    out.extend(f"{indent}    {line}" for line in change_lines(change.operation, change.before, change.after))
    return out


def render_result(result: Result) -> list[str]:
    f = result.finding
    title = f" {json.dumps(result.title, ensure_ascii=False)}" if result.title else ""
    lines = [f"# {f.get('kind') or 'record'} {f.get('type') or '?'}{title}"]
    if f.get("resource_id"):
        lines.append(f"#   resource: {f['resource_id']}")
    if result.playbook:
        risk = f" (risk {result.risk})" if result.risk else ""
        lines.append(f"#   playbook: {result.playbook}{risk}")
    lines.append(f"#   {result.outcome}: {result.reason}")
    lines.extend(f"#   warning: {w}" for w in result.warnings)
    lines.extend(f"#   advice: {a}" for a in result.advice)
    for change in result.changes:
        lines.extend(render_change(change))
    return lines


def render_plan(results: Sequence[Result], *, folded: int = 0, names: Names | None = None) -> str:
    """The whole text plan, ending with the Terraform-style summary line; ``folded`` repeats of a
    finding (the same id delivered again) were planned once and are counted in the tally. ``names``
    (``remediator.planning.names``): each id it knows reads ``name (id)``."""
    blocks = ["\n".join(render_result(r)) for r in results]
    blocks.append(plan_tally(results, folded=folded))
    text = "\n\n".join(blocks) + "\n"
    return names.annotate(text) if names else text


# how a count of records with one outcome reads: adjectives stay, nouns agree ("1 error", "2 errors")
_OUTCOME_WORDS = {"changes": "with changes", "no_changes": "already compliant", "no_match": "unmatched",
                  "exempt": "exempt", "ignored": "ignored", "queued": "queued", "withdrawn": "withdrawn"}


def outcome_count(n: int, outcome: str) -> str:
    """``11 with changes``, ``1 already compliant``, ``1 error``, ``2 duplicates``: a count of records
    by outcome that reads right whatever the count (never "1 changes")."""
    word = _OUTCOME_WORDS.get(outcome)
    return f"{n} {word}" if word is not None else plural(n, outcome.replace("_", " "))


def plan_tally(results: Sequence[Result], *, folded: int = 0) -> str:
    """The closing lines of a plan: ``Plan: N to change, …`` and, with any results, the outcomes."""
    ops = Counter(c.operation for r in results for c in r.changes)
    outcomes = Counter(r.outcome for r in results)
    summary = (
        f"Plan: {ops['update']} to change, {ops['delete']} to delete, {ops['create']} to create, "
        f"{ops['invoke']} to invoke."
    )
    tally = ", ".join(outcome_count(n, o) for o, n in sorted(outcomes.items()))
    warned = sum(len(r.warnings) for r in results)
    if warned:
        tally += f"; {warned} warning{'s' if warned != 1 else ''}: not everything could be checked"
    n = len(results)
    if folded:
        tally += f"; {folded:,} duplicate{'s' if folded != 1 else ''} folded (same finding id)"
    return f"{summary}\n({n} record{'s' if n != 1 else ''}: {tally})" if results else summary

"""Load a folder of playbooks, strictly, in passes; report every problem as ``file:line: path: message``.

Per file:
  1. YAML: size (1 MB), UTF-8, syntax, plain tags only, duplicate keys, alias expansion and
     nesting limits (``yamlload``);
  2. structure: the ``PlaybookDoc`` model (unknown keys with did-you-mean, types, formats);
  3. steps: each action is registered (did-you-mean), its ``params`` validate against the
     action's ``Params`` model;
  4. meaning: what spans fields (risk versus approval, quorum versus approvers, resource types
     the actions handle, policies versus severity).
Across files:
  5. unique names; no two enabled playbooks claim the same finding unless their priorities differ
     (none ranks below any).
Overlays (``base``): the source's playbooks replace the base ones of the same name, a disable
entry (``name`` + ``enabled: false``, nothing else) turns a base playbook off, and pass 5 runs on
the combined set.

Importing this module imports no pydantic and no action (the structure and step passes import them
when they run): ``validate``'s fast path (``fastcheck``) runs passes 1, 4 and 5 and the overlay from
here with its own passes 2 and 3 (``_compose(..., load_doc=...)``). Nothing imports jsonschema; the
JSON Schema (``schema.py``) is for editors, not for loading.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediator import ids
from remediator.errors import Issue, PlaybookError
from remediator.findings.model import Severity
from remediator.playbooks import match as m
from remediator.playbooks._validation import did_you_mean, format_path, issues_from
from remediator.playbooks.formats import (
    EXPIRES_DEFAULT,
    EXPIRES_MIN,
    NAME_PATTERN,
    RESOURCE_GROUP_TAGS,
    SUBSCRIPTION,
    is_role,
    parse_duration,
)
from remediator.playbooks.playbook import Approval, MatchSpec, Playbook, Step, TagCondition, TagScope
from remediator.playbooks.yamlload import Document, YamlProblem, decode, load
from remediator.words import plural

if TYPE_CHECKING:
    from pydantic import BaseModel

    from remediator.actions.base import Action
    from remediator.playbooks.model import MatchDoc, PlaybookDoc

Actions = Mapping[str, "Action[Any]"]
_NAME = re.compile(NAME_PATTERN)
_Report = Callable[[tuple[str | int, ...], str], None]  # (path, message): one issue at the path's line


def default_actions() -> Actions:
    """The shipped actions: importing ``remediator.actions`` registers them (pydantic only)."""
    import remediator.actions  # noqa: F401, PLC0415  (registers; deferred so exemptions need no actions)
    from remediator.actions.base import REGISTRY  # noqa: PLC0415

    return REGISTRY


def action_type_key(type_name: str) -> str:
    """An action's declared resource type in ``MatchSpec.resource_types`` form."""
    t = ids.type_key(type_name)
    return SUBSCRIPTION if t in ("", "subscriptions", "microsoft.resources/subscriptions") else t


def playbook_files(directory: Path) -> list[Path]:
    """``*.yaml`` and ``*.yml`` directly in ``directory``, sorted; dot-files (editor temp files) skipped."""
    return sorted(
        p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )


@dataclass(slots=True)
class _Loaded:
    playbook: Playbook
    doc: Document


@dataclass(frozen=True, slots=True)
class _Disable:
    """An overlay's ``name: x`` + ``enabled: false`` with nothing else: turn base playbook x off."""

    name: str
    file: str
    line: int


Source = str | Path | Sequence[str | Path]


def validate_playbooks(source: Source, *, actions: Actions | None = None,
                       base: str | Path | None = None) -> list[Issue]:
    """Every problem in the playbooks of ``source`` (over ``base``); empty when they all load."""
    return _compose(source, default_actions() if actions is None else actions, base)[1]


def load_playbooks(source: Source, *, actions: Actions | None = None, base: str | Path | None = None) -> m.PlaybookSet:
    """Load every playbook in ``source``; ``PlaybookError`` listing all problems if any.

    ``source``: a folder, a playbook file, or several of them. ``base``: a folder the source is an
    overlay of (the shipped playbooks): a source playbook with a base playbook's name replaces it,
    ``name: x`` with ``enabled: false`` alone disables base playbook ``x``, any other is added, and
    every playbook is checked against every other (names, overlapping claims: priorities decide).
    A source that is the base folder itself is loaded once.
    """
    playbooks, issues, overlay = _compose(source, default_actions() if actions is None else actions, base)
    if issues:
        raise PlaybookError(issues)
    return m.PlaybookSet(playbooks, overlay=overlay)


def _paths(source: Source) -> list[Path]:
    return [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]


LoadDoc = Callable[[Document, str, Actions], tuple["_Loaded | None", list[Issue]]]
"""Passes 2 and 3 of one file (structure, steps) and then pass 4: the playbook, or every problem."""


def _compose(source: Source, actions: Actions, base: str | Path | None, *, load_doc: LoadDoc | None = None,
             ) -> tuple[list[Playbook], list[Issue], m.Overlay | None]:
    one = _load_doc if load_doc is None else load_doc
    paths = _paths(source)
    if base is None or (len(paths) == 1 and paths[0].is_dir() and _same_dir(paths[0], Path(base))):
        loaded, stubs, issues = _load_sources(paths, actions, one)
        issues += [Issue(d.file, d.line, "enabled", f"disables {d.name!r}, but this folder is not an overlay of the "
                                                  "shipped playbooks: delete the file instead") for d in stubs]
        issues += _cross_file(loaded)
        return [x.playbook for x in loaded], issues, None
    under, stubs, issues = _load_sources(paths, actions, one)
    shipped, _stubs, base_issues = _load_sources([Path(base)], actions, one)
    issues = base_issues + issues
    by_name = {x.playbook.name: x for x in shipped}
    overlay = m.Overlay(base=Path(base).as_posix(),
                        added=tuple(x.playbook.name for x in under if x.playbook.name not in by_name),
                        overridden=tuple(x.playbook.name for x in under if x.playbook.name in by_name),
                        disabled=tuple(d.name for d in stubs if d.name in by_name),
                        disabled_by=tuple((d.name, f"{d.file}:{d.line}") for d in stubs if d.name in by_name))
    for d in stubs:
        if d.name not in by_name:
            issues.append(Issue(d.file, d.line, "name", f"disables nothing: no shipped playbook is named {d.name!r}; "
                                                        + did_you_mean(d.name, sorted(by_name), "shipped playbooks")))
        else:
            x = by_name[d.name]
            by_name[d.name] = _Loaded(replace(x.playbook, enabled=False), x.doc)
    issues += _names(under)
    mine = {x.playbook.name for x in under}
    merged = [x for name, x in by_name.items() if name not in mine] + under
    issues += _overlaps(merged)
    return [x.playbook for x in merged], issues, overlay


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _load_sources(paths: list[Path], actions: Actions, load_doc: LoadDoc
                  ) -> tuple[list[_Loaded], list[_Disable], list[Issue]]:
    loaded: list[_Loaded] = []
    stubs: list[_Disable] = []
    issues: list[Issue] = []
    for path in paths:
        shown = path.as_posix()
        if path.is_dir():
            files = playbook_files(path)
            if not files:
                issues.append(Issue(shown, None, "", "no playbooks (*.yaml, *.yml) in this directory"))
            named = [(f, (path / f.name).as_posix()) for f in files]
        elif path.is_file():
            named = [(path, shown)]
        else:
            issues.append(Issue(shown, None, "", "no such file or directory"))
            continue
        for file, name in named:
            one, problems, stub = _load_file_or_stub(file, name, actions, load_doc)
            issues += problems
            if one is not None:
                loaded.append(one)
            if stub is not None:
                stubs.append(stub)
    return loaded, stubs, issues


def load_playbook_file(path: str | Path, *, actions: Actions | None = None) -> Playbook:
    """One playbook file on its own (no cross-file checks); ``PlaybookError`` if invalid."""
    p = Path(path)
    loaded, issues = _load_file(p, p.as_posix(), default_actions() if actions is None else actions)
    if issues or loaded is None:
        raise PlaybookError(issues)
    return loaded.playbook


# --------------------------------------------------------------------------------------------
# One file.

_STUB_KEYS = frozenset({"name", "enabled"})


def _load_file_or_stub(path: Path, shown: str, actions: Actions, load_doc: LoadDoc
                       ) -> tuple[_Loaded | None, list[Issue], _Disable | None]:
    """A playbook, or an overlay's disable entry (``name`` and ``enabled: false``, nothing else)."""
    doc, problems = _read(path, shown)
    if doc is None:
        return None, problems, None
    if not doc.problems and isinstance(doc.value, dict) and doc.value.get("enabled") is False \
            and set(doc.value) <= _STUB_KEYS and isinstance(doc.value.get("name"), str):
        name = doc.value["name"]
        if not _NAME.match(name):
            return None, [Issue(shown, doc.line(("name",)), "name", f"expected a playbook name, got {name!r}")], None
        return None, [], _Disable(name, shown, doc.line(("name",)) or 1)
    one, issues = load_doc(doc, shown, actions)
    return one, issues, None


def _read(path: Path, shown: str) -> tuple[Document | None, list[Issue]]:
    try:
        data = path.read_bytes()
    except OSError as err:
        return None, [Issue(shown, None, "", f"cannot read: {err.strerror or err}")]
    try:
        return load(decode(data)), []
    except YamlProblem as err:
        return None, [Issue(shown, err.line, "yaml", err.message)]


def _load_file(path: Path, shown: str, actions: Actions) -> tuple[_Loaded | None, list[Issue]]:
    doc, problems = _read(path, shown)
    return (None, problems) if doc is None else _load_doc(doc, shown, actions)


def _load_doc(doc: Document, shown: str, actions: Actions) -> tuple[_Loaded | None, list[Issue]]:
    from pydantic import ValidationError  # noqa: PLC0415  (see the module docstring)

    from remediator.playbooks.model import PlaybookDoc  # noqa: PLC0415

    issues = [Issue(shown, p.line, format_path(p.path), p.message) for p in doc.problems]
    if doc.value is None:
        issues.append(
            Issue(
                shown,
                1,
                "",
                "the file is empty; expected a playbook (name, description, match, risk, approval, steps)",
            )
        )
        return None, issues
    if not isinstance(doc.value, dict):
        issues.append(
            Issue(
                shown,
                doc.line(()),
                "",
                "expected a mapping of playbook keys (name, description, match, risk, approval, steps)",
            )
        )
        return None, issues

    structure: PlaybookDoc | None = None
    try:
        structure = PlaybookDoc.model_validate(doc.value)
    except ValidationError as err:
        issues += issues_from(err, file=shown, doc=doc, model=PlaybookDoc)
    steps = _steps(doc, shown, actions, issues)
    if structure is not None and steps is not None:
        playbook = _build(structure, doc, shown=shown, steps=steps, actions=actions, issues=issues)
        if not issues:
            return _Loaded(playbook, doc), []
    issues.sort(key=lambda i: i.line or 0)
    return None, issues


def _steps(doc: Document, shown: str, actions: Actions, issues: list[Issue]) -> list[Step] | None:
    """Pass 3: action names and their params. None when any step is unusable."""
    from pydantic import ValidationError  # noqa: PLC0415

    raw = doc.value.get("steps")
    if not isinstance(raw, list):
        return None
    steps: list[Step] = []
    ok = True
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            ok = False  # reported by the structure pass
            continue
        name: str = item["action"]
        action = actions.get(name)
        if action is None:
            issues.append(
                Issue(
                    shown,
                    doc.line(("steps", i, "action")),
                    f"steps[{i}].action",
                    f"unknown action {name!r}; {did_you_mean(name, sorted(actions), 'valid actions')}",
                )
            )
            ok = False
            continue
        raw_params = item.get("params")
        if raw_params is None:
            raw_params = {}
        if not isinstance(raw_params, dict):
            ok = False  # reported by the structure pass
            continue
        try:
            params: BaseModel = action.Params.model_validate(raw_params)
        except ValidationError as err:
            if "params" in item:
                issues += issues_from(err, file=shown, doc=doc, base=("steps", i, "params"), model=action.Params)
            else:  # no params written: validate as {}, report under .params at the step's line
                for x in issues_from(err, file=shown, doc=Document({}), model=action.Params):
                    path = f"steps[{i}].params" + (f".{x.path}" if x.path else "")
                    issues.append(Issue(shown, doc.line(("steps", i)), path, x.message))
            ok = False
            continue
        steps.append(Step(action=name, params=params, raw_params=dict(raw_params), line=doc.line(("steps", i)) or 0))
    return steps if ok else None


def _build(
    pb: PlaybookDoc, doc: Document, *, shown: str, steps: list[Step], actions: Actions, issues: list[Issue]
) -> Playbook:
    """Pass 4: checks across fields, then the normalised ``Playbook``."""

    def issue(path: tuple[str | int, ...], message: str) -> None:
        issues.append(Issue(shown, doc.line(path), format_path(path), message))

    spec = _match_spec(pb.match)
    md = pb.match
    if not (md.recommendations or md.alerts or md.policies or md.policy_categories or md.operations):
        issue(("match",), "needs at least one of recommendations, alerts, policies, policy_categories, operations "
                          "(what this playbook fixes)")
    if (md.policies or md.policy_categories) and md.severity_at_least is not None:
        issue(
            ("match", "severity_at_least"),
            "policy findings carry no severity, so the listed policies could "
            "never match; drop severity_at_least or move the policies to "
            "their own playbook",
        )
    for key in (
        "recommendations",
        "alerts",
        "policies",
        "policy_categories",
        "operations",
        "resource_types",
        "subscriptions",
        "resource_groups",
    ):
        _duplicates(getattr(md, key) or [], ("match", key), issue)
    _duplicates(pb.controls or [], ("controls",), issue)
    if any(step.action == MODIFY_ACTION for step in steps):
        _modify_only(md.policies or [], issue)
    for i, rtype in enumerate(spec.resource_types):
        for j, step in enumerate(steps):
            handled = tuple(action_type_key(t) for t in actions[step.action].resource_types)
            if rtype not in handled and "*" not in handled:
                issue(
                    ("match", "resource_types", i),
                    f"{step.action} (steps[{j}]) cannot handle {md.resource_types[i]}; "
                    f"it handles {', '.join(actions[step.action].resource_types) or 'no resource types'}",
                )
    approval = _approval(pb, doc, issue)
    return Playbook(
        name=pb.name,
        description=" ".join(pb.description.split()),
        file=shown,
        priority=pb.priority,
        match=spec,
        risk=pb.risk,
        approval=approval,
        steps=tuple(steps),
        line=doc.line(("name",)) or 1,
        controls=tuple(pb.controls or ()),
        enabled=pb.enabled,
    )


def _duplicates(values: list[str], path: tuple[str | int, ...], issue: _Report) -> None:
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        k = v.lower()
        if k in seen:
            issue((*path, i), f"{v!r} is listed twice (first as item {seen[k]})")
        else:
            seen[k] = i


def _match_spec(md: MatchDoc) -> MatchSpec:
    where: list[TagCondition] = []
    for key, cond in (md.where or {}).items():
        scope: TagScope = "resource_group" if key.startswith(RESOURCE_GROUP_TAGS) else "resource"
        tag = key.split("tags.", 1)[1].lower()
        if cond.in_ is not None:
            where.append(TagCondition(tag, "in", frozenset(v.casefold() for v in cond.in_), scope))
        elif cond.not_in is not None:
            where.append(TagCondition(tag, "not_in", frozenset(v.casefold() for v in cond.not_in), scope))
        elif cond.equals is not None:
            where.append(TagCondition(tag, "in", frozenset([cond.equals.casefold()]), scope))
        else:
            where.append(TagCondition(tag, "exists" if cond.exists else "absent", scope=scope))
    return MatchSpec(
        recommendations=tuple(k.lower() for k in md.recommendations or ()),
        alerts=tuple(a.lower() for a in md.alerts or ()),
        policies=tuple(dict.fromkeys([*(m.policy_key(p) for p in md.policies or ()),
                                      *_category_policies(md.policy_categories or ())])),
        operations=tuple(o.lower() for o in md.operations or ()),
        resource_types=tuple(SUBSCRIPTION if t == SUBSCRIPTION else ids.type_key(t) for t in md.resource_types),
        severity_at_least=Severity.parse(md.severity_at_least) if md.severity_at_least else None,
        subscriptions=tuple(s.lower() for s in md.subscriptions or ()),
        resource_groups=tuple(g.lower() for g in md.resource_groups or ()),
        where=tuple(where),
    )


MODIFY_ACTION = "policy.apply-modify"


def _modify_only(policies: Sequence[str], issue: _Report) -> None:
    """A playbook running policy.apply-modify lists Modify definitions: a built-in of the catalog whose
    effect cannot be Modify is an error here, not a refusal at every finding (custom ones are read at plan)."""
    from remediator.playbooks.catalog import by_id  # noqa: PLC0415  (only for such playbooks)

    for i, ref in enumerate(policies):
        entry = by_id().get(ref.rstrip("/").rsplit("/", 1)[-1].lower())
        if entry is not None and not entry.can_modify:
            issue(("match", "policies", i), f"{ref} ({entry.display_name}) is not a Modify definition (its effect "
                                            f"can be {', '.join(entry.effects)}); {MODIFY_ACTION} plans a Modify "
                                            "definition's operations only")


def _category_policies(categories: Sequence[str]) -> list[str]:
    """The built-in Modify definitions (GUIDs) of ``categories``, from the shipped catalog."""
    if not categories:
        return []
    from remediator.playbooks.catalog import modify_categories  # noqa: PLC0415  (only when a playbook names one)

    by_category = modify_categories()
    return [guid for c in categories for guid in by_category.get(c.strip().lower(), ())]


def _approval(pb: PlaybookDoc, doc: Document, issue: _Report) -> Approval:
    ad = pb.approval
    given = doc.value.get("approval") if isinstance(doc.value.get("approval"), dict) else {}
    if ad.mode == "auto":
        if pb.risk != "low":
            issue(
                ("approval",),
                f"auto approval needs risk: low (this playbook is risk: {pb.risk}); use mode: slack with approvers",
            )
        for key in ("approvers", "quorum", "expires_after", "remind_after"):
            if key in given:
                issue(("approval", key), "only used with mode: slack")
        return Approval(mode="auto")
    if not ad.approvers:
        issue(
            ("approval",),
            "mode slack needs approvers (roles such as security-oncall, or Slack user or user-group ids); "
            "with none, nobody could approve",
        )
    _duplicates(ad.approvers or [], ("approval", "approvers"), issue)
    quorum = ad.quorum if ad.quorum is not None else 1
    quorum_path: tuple[str | int, ...] = ("approval", "quorum") if "quorum" in given else ("approval",)
    if pb.risk == "high" and quorum < 2:
        issue(quorum_path, f"risk: high needs quorum: 2 or more (two people approve), got {quorum}")
    users = [a for a in ad.approvers or () if not is_role(a) and a[0] in "UW"]
    others = [a for a in ad.approvers or () if is_role(a) or a[0] == "S"]  # groups and roles: many people
    if ad.approvers and not others and quorum > len(users):
        issue(quorum_path, f"quorum {quorum} is more than the {plural(len(users), 'listed approver')}")
    expires = parse_duration(ad.expires_after) if ad.expires_after else EXPIRES_DEFAULT
    remind = parse_duration(ad.remind_after) if ad.remind_after else None
    if remind is not None and not EXPIRES_MIN <= remind < expires:
        issue(
            ("approval", "remind_after"),
            f"must be at least 5m and shorter than expires_after ({ad.expires_after or '4h'})",
        )
    return Approval(
        mode="slack",
        approvers=tuple(ad.approvers or ()),
        quorum=quorum,
        expires_after=expires,
        remind_after=remind,
        line=doc.line(("approval", "approvers")) or 0,
    )


# --------------------------------------------------------------------------------------------
# Across files.


def _cross_file(loaded: list[_Loaded]) -> list[Issue]:
    return _names(loaded) + _overlaps(loaded)


def _overlaps(loaded: list[_Loaded]) -> list[Issue]:
    issues: list[Issue] = []
    for j, b in enumerate(loaded):
        for a in loaded[:j]:
            issue = _overlap(a, b)
            if issue is not None:
                issues.append(issue)
    return issues


def _names(loaded: list[_Loaded]) -> list[Issue]:
    issues: list[Issue] = []
    by_name: dict[str, Playbook] = {}
    for x in loaded:
        pb = x.playbook
        first = by_name.get(pb.name)
        if first is not None:
            issues.append(
                Issue(
                    pb.file,
                    pb.line,
                    "name",
                    f"{pb.name!r} is already the name of the playbook in {first.file}:{first.line}",
                )
            )
        else:
            by_name[pb.name] = pb
    return issues


def _written(loaded: _Loaded, kind: str, index: int) -> tuple[tuple[str | int, ...], str]:
    """Where the ``index``-th identifier of ``kind`` is written, and as what: a policy expanded from
    ``match.policy_categories`` points at the category (the definition's GUID named with it)."""
    match = loaded.doc.value.get("match") or {}
    written = match.get(kind) or []
    if index < len(written):
        return ("match", kind, index), str(written[index])
    guid = loaded.playbook.match.policies[index]
    from remediator.playbooks.catalog import by_id  # noqa: PLC0415  (only for a category's definitions)

    entry = by_id().get(guid)
    categories = [str(c) for c in match.get("policy_categories") or []]
    at = next((k for k, c in enumerate(categories) if entry and c.lower() == entry.category.lower()), 0)
    return ("match", "policy_categories", at), f"{guid} (category {categories[at] if categories else '?'})"


def _overlap(a: _Loaded, b: _Loaded) -> Issue | None:
    pa, pb = a.playbook, b.playbook
    if pa.priority != pb.priority or not (pa.enabled and pb.enabled):  # the higher priority wins (none is lowest)
        return None
    if m.scopes_disjoint(pa.match, pb.match):
        return None
    shared = m.shared_identifiers(pa.match, pb.match)
    if not shared:
        return None
    kind, i, j = shared[0]
    path, mine = _written(b, kind, j)
    theirs_path, theirs = _written(a, kind, i)
    what = f"{mine!r}" if mine.lower() == theirs.lower() else f"{mine!r} overlaps {theirs!r}, which"
    more = f" (and {len(shared) - 1} more shared)" if len(shared) > 1 else ""
    fix = (
        f"both have priority {pa.priority}: make them different"
        if pa.priority is not None
        else "give one of them a priority (the higher one wins; none ranks below any)"
    )
    where = f"{pa.file}:{a.doc.line(theirs_path)}"
    return Issue(
        pb.file,
        b.doc.line(path),
        format_path(path),
        f"{what} is also claimed by {pa.name} ({where}) for overlapping resources{more}; {fix}, or narrow the match",
    )

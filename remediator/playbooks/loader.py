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

Passes 1, 4 and 5 and the overlay need no pydantic and live in ``compose``, which ``validate``'s
fast path (``fastcheck``) shares. Nothing imports jsonschema; the JSON Schema (``schema.py``) is
for editors, not for loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from remediator.actions.base import REGISTRY, Action
from remediator.errors import Issue, PlaybookError
from remediator.playbooks import match as m
from remediator.playbooks._validation import did_you_mean, format_path, issues_from
from remediator.playbooks.compose import (  # noqa: F401  (re-exported: they used to live here)
    Loaded,
    Source,
    action_type_key,
    build,
    compose,
    playbook_files,
    read,
)
from remediator.playbooks.model import Playbook, PlaybookDoc, Step
from remediator.playbooks.yamlload import Document

Actions = Mapping[str, Action[Any]]


def default_actions() -> Actions:
    """The shipped actions: importing ``remediator.actions`` registers them (pydantic only)."""
    import remediator.actions  # noqa: F401, PLC0415  (registers; deferred so exemptions need no actions)

    return REGISTRY


def validate_playbooks(source: Source, *, actions: Actions | None = None,
                       base: str | Path | None = None) -> list[Issue]:
    """Every problem in the playbooks of ``source`` (over ``base``); empty when they all load."""
    return compose(source, _doc_loader(default_actions() if actions is None else actions), base)[1]


def load_playbooks(source: Source, *, actions: Actions | None = None, base: str | Path | None = None) -> m.PlaybookSet:
    """Load every playbook in ``source``; ``PlaybookError`` listing all problems if any.

    ``source``: a folder, a playbook file, or several of them. ``base``: a folder the source is an
    overlay of (the shipped playbooks): a source playbook with a base playbook's name replaces it,
    ``name: x`` with ``enabled: false`` alone disables base playbook ``x``, any other is added, and
    every playbook is checked against every other (names, overlapping claims: priorities decide).
    A source that is the base folder itself is loaded once.
    """
    playbooks, issues, overlay = compose(source, _doc_loader(default_actions() if actions is None else actions),
                                         base)
    if issues:
        raise PlaybookError(issues)
    return m.PlaybookSet(playbooks, overlay=overlay)


def load_playbook_file(path: str | Path, *, actions: Actions | None = None) -> Playbook:
    """One playbook file on its own (no cross-file checks); ``PlaybookError`` if invalid."""
    p = Path(path)
    loaded, issues = _load_file(p, p.as_posix(), default_actions() if actions is None else actions)
    if issues or loaded is None:
        raise PlaybookError(issues)
    return loaded.playbook


# --------------------------------------------------------------------------------------------
# One file.


def _doc_loader(actions: Actions) -> partial[tuple[Loaded | None, list[Issue]]]:
    return partial(_load_doc, actions=actions)


def _load_file(path: Path, shown: str, actions: Actions) -> tuple[Loaded | None, list[Issue]]:
    doc, problems = read(path, shown)
    return (None, problems) if doc is None else _load_doc(doc, shown, actions=actions)


def _load_doc(doc: Document, shown: str, actions: Actions) -> tuple[Loaded | None, list[Issue]]:
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
        playbook = build(structure, doc, shown=shown, steps=steps, types_of=lambda n: actions[n].resource_types,
                         issues=issues)
        if not issues:
            return Loaded(playbook, doc), []
    issues.sort(key=lambda i: i.line or 0)
    return None, issues


def _steps(doc: Document, shown: str, actions: Actions, issues: list[Issue]) -> list[Step] | None:
    """Pass 3: action names and their params. None when any step is unusable."""
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

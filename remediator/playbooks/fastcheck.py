"""``remediator validate``'s fast path: tell that every playbook is valid without importing pydantic
or the actions, or give up and leave the answer to the full loader.

Importing pydantic and building its first model costs more than everything else ``validate`` does
(issue 18: ~500 M of ~990 M instructions), so the fast path checks the playbooks against
``fastcheck.json``, a schema generated from the very models the loader uses (``fastcheck_schema``),
with the loader's own passes that need no pydantic (``loader``: reading, cross-field checks, names,
overlapping claims, the overlay) and the same check functions (``formats``, ``remediator.checks``).

It only ever *accepts*: :func:`quick_load` returns the ``PlaybookSet`` when everything is certainly
valid, and ``None`` at the first doubt: any problem, a value of a type the models would have to
convert, a node the generator could not translate (``unsure``), an action it does not know, a
schema made from other sources than those on disk (its digest), a missing or unreadable schema.
The caller then runs the full loader, which words every problem (file:line, did-you-mean) exactly as
before, so a fast path that gives up changes nothing but the time taken. It accepts only exact
types (a ``bool`` for a boolean, an ``int`` for an integer, a ``str`` for a string), on which
pydantic's strict and lax modes agree, and decides a pattern only on printable ASCII (where Python's
``re`` and pydantic's Rust regex engine agree); ``tests/playbooks/test_fastcheck.py`` holds it to the full
loader on the shipped playbooks, the test suite's playbooks and mutations of them.

Cost: one JSON file (one schema per action, read whole; the actions a playbook does not use cost
their share of the parse only) and the checks of what the playbooks contain. Many more actions add
a few kilobytes each; the work per playbook does not grow with them.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from remediator.errors import Issue
from remediator.playbooks import match as m
from remediator.playbooks.fastcheck_schema import VERSION, sources_digest
from remediator.playbooks.loader import Source, _build, _compose, _Loaded
from remediator.playbooks.playbook import Step
from remediator.playbooks.yamlload import Document

if TYPE_CHECKING:
    from remediator.playbooks.loader import Actions

SCHEMA = Path(__file__).with_name("fastcheck.json")
_GIVE_UP = "fastcheck: not certain"  # the message of the one issue that sends validate to the full loader


class _Doubt(Exception):
    """Not certainly valid (a problem, or something the fast path does not decide)."""


def quick_load(source: Source, *, base: str | Path | None = None, schema: Path = SCHEMA) -> m.PlaybookSet | None:
    """The playbooks of ``source`` (over ``base``) as ``loader.load_playbooks`` would load them, when
    they are certainly valid; ``None`` otherwise (then call the loader)."""
    content = _schema(schema)
    if content is None:
        return None
    checker = _Checker(content)
    actions = {name: SimpleNamespace(resource_types=tuple(a["resource_types"])) for name, a in checker.actions.items()}
    playbooks, issues, overlay = _compose(source, cast("Actions", actions), base, load_doc=checker.load_doc)
    return None if issues else m.PlaybookSet(playbooks, overlay=overlay)


def _schema(path: Path) -> dict[str, Any] | None:
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict) or content.get("version") != VERSION:
        return None
    try:
        digest = sources_digest()
    except OSError:
        return None
    return content if content.get("digest") == digest else None


@lru_cache(maxsize=64)
def _function(ref: str) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    return cast("Callable[..., Any]", getattr(importlib.import_module(module), name))


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


class _Checker:
    def __init__(self, content: dict[str, Any]) -> None:
        self.playbook: dict[str, Any] = content["playbook"]
        self.actions: dict[str, Any] = content["actions"]

    def load_doc(self, doc: Document, shown: str, actions: Actions) -> tuple[_Loaded | None, list[Issue]]:
        """The loader's passes 2, 3 and 4 for one file: the playbook, or one issue that means "give up"."""
        try:
            if doc.problems or not isinstance(doc.value, dict):
                raise _Doubt
            structure = check(self.playbook, doc.value)
            steps = self._steps(doc)
            issues: list[Issue] = []
            playbook = _build(structure, doc, shown=shown, steps=steps, actions=actions, issues=issues)
        except Exception:  # a doubt, or anything unforeseen: the full loader answers, as it always did
            return None, [Issue(shown, None, "", _GIVE_UP)]
        return (None, issues) if issues else (_Loaded(playbook, doc), [])

    def _steps(self, doc: Document) -> list[Step]:
        steps: list[Step] = []
        for i, item in enumerate(doc.value["steps"]):
            action = self.actions.get(item["action"])
            if action is None:
                raise _Doubt
            raw = item.get("params")
            raw = {} if raw is None else raw
            params = check(action["params"], raw)
            steps.append(Step(action=item["action"], params=params, raw_params=dict(raw),
                              line=doc.line(("steps", i)) or 0))
        return steps


def check(node: dict[str, Any], value: Any) -> Any:
    """``value`` validated by ``node`` (a model as a ``SimpleNamespace`` of its fields); ``_Doubt`` when
    it is invalid or not certainly valid."""
    t = node["t"]
    if t == "str":
        if type(value) is not str:
            raise _Doubt
        if ("min_length" in node and len(value) < node["min_length"]) or \
                ("max_length" in node and len(value) > node["max_length"]):
            raise _Doubt
        # pydantic matches with Rust's regex engine; on printable ASCII it agrees with Python's re, elsewhere
        # not always (\s takes "\x1c" in Python only; "$" matches before a final "\n" in Python only)
        if "pattern" in node and not (value.isascii() and value.isprintable()
                                      and _pattern(node["pattern"]).search(value) is not None):
            raise _Doubt
        return value
    if t in ("int", "float"):
        if type(value) is not int and (t == "int" or type(value) is not float):
            raise _Doubt
        if ("ge" in node and not value >= node["ge"]) or ("le" in node and not value <= node["le"]) or \
                ("gt" in node and not value > node["gt"]) or ("lt" in node and not value < node["lt"]):
            raise _Doubt
        return value
    if t == "bool":
        if type(value) is not bool:
            raise _Doubt
        return value
    if t == "literal":
        if not any(type(value) is type(v) and value == v for v in node["values"]):
            raise _Doubt
        return value
    if t == "nullable":
        return None if value is None else check(node["inner"], value)
    if t == "list":
        if type(value) is not list or not _sized(node, value):
            raise _Doubt
        return [check(node["items"], v) for v in value]
    if t == "dict":
        if type(value) is not dict or not _sized(node, value):
            raise _Doubt
        return {check(node["keys"], k): check(node["values"], v) for k, v in value.items()}
    if t == "model":
        return _model(node, value)
    if t == "after":
        return _call(node, check(node["inner"], value))
    if t == "before":
        return check(node["inner"], _call(node, value))
    if t == "union":
        return _union(node["choices"], value)
    if t == "any":
        return value
    if t == "none":
        if value is not None:
            raise _Doubt
        return None
    raise _Doubt  # "unsure", or a node of a newer generator


def _sized(node: dict[str, Any], value: Sequence[Any] | dict[Any, Any]) -> bool:
    return not (("min_length" in node and len(value) < node["min_length"])
                or ("max_length" in node and len(value) > node["max_length"]))


def _model(node: dict[str, Any], value: Any) -> SimpleNamespace:
    if type(value) is not dict:
        raise _Doubt
    fields: dict[str, Any] = node["fields"]
    if node["forbid"] and not value.keys() <= fields.keys():
        raise _Doubt
    out: dict[str, Any] = {}
    for key, f in fields.items():
        if key in value:
            out[f["name"]] = check(f["schema"], value[key])
        elif f["required"]:
            raise _Doubt
        else:
            out[f["name"]] = copy.deepcopy(f["default"])
    return SimpleNamespace(**out)


def _call(node: dict[str, Any], value: Any) -> Any:
    try:
        return _function(node["check"])(value, **node["args"])
    except Exception:  # pydantic reports ValueError and AssertionError; the loader decides the rest
        raise _Doubt from None


def _union(choices: list[dict[str, Any]], value: Any) -> Any:
    """Certain only when exactly one choice accepts the value (then pydantic's smart union takes it too)."""
    results = []
    for choice in choices:
        try:
            results.append(check(choice, value))
        except _Doubt:
            continue
    if len(results) != 1:
        raise _Doubt
    return results[0]

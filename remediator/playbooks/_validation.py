"""pydantic ``ValidationError`` → one-line ``Issue``s at the right file line.

Each error's ``loc`` is walked through the loaded data (skipping pydantic's union/function tags),
so ``('steps', 0, 'params', 'ports', 1)`` becomes ``steps[0].params.ports[1]`` on the line where
that value is written. Messages are rewritten for a YAML author: "expected a list, got a string",
"unknown key; did you mean 'resource_types'?", "missing required key 'steps'". No schema is ever
printed.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from remediator.errors import Issue, one_line
from remediator.playbooks.formats import NAME_PATTERN
from remediator.playbooks.yamlload import Document, Path
from remediator.words import plural

if TYPE_CHECKING:  # pydantic is imported where an error is turned into issues: the fast path needs none
    from pydantic import BaseModel, ValidationError

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "none_required": "null",
}


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else seg
    return out


def did_you_mean(word: str, choices: Sequence[str], what: str = "valid keys") -> str:
    """'did you mean 'x'?' or the list of choices."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{what}: {', '.join(choices)}" if choices else ""


def describe(value: Any) -> str:
    """The YAML kind of ``value``, for 'expected …, got …'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({short(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__  # pragma: no cover - YAML builds only the above


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _get(data: Any, path: Path) -> Any:
    for seg in path:
        data = data[seg]
    return data


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[Path, bool]:
    """Follow ``loc`` through ``data``: the path that exists (plus a missing last key), and whether
    a segment had no place in the data (a pydantic union/function tag: the error is one branch)."""
    out: list[str | int] = []
    cur = data
    skipped = False
    for idx, seg in enumerate(loc):
        in_map = isinstance(cur, dict) and isinstance(seg, str) and seg in cur
        in_list = isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur)
        if in_map or in_list:
            out.append(seg)
            cur = cur[seg]
        elif isinstance(cur, dict) and isinstance(seg, str) and idx == len(loc) - 1 and seg != "[key]":
            out.append(seg)  # a missing key
            cur = None
        elif seg != "[key]":
            skipped = True
    return tuple(out), skipped


def _unwrap(ann: Any) -> Any:
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if len(args) != 1:
                return None
            ann = args[0]
        else:
            return ann


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model at ``loc`` inside ``model`` (to list its keys), if one is found."""
    from pydantic import BaseModel  # noqa: PLC0415  (the error path only)

    ann: Any = model
    for seg in loc:
        ann = _unwrap(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            ann = next((f.annotation for n, f in ann.model_fields.items() if (f.alias or n) == seg), None)
            if ann is None:
                return None
        elif typing.get_origin(ann) in (list, tuple, set, frozenset, Sequence) and isinstance(seg, int):
            ann = typing.get_args(ann)[0]
        elif typing.get_origin(ann) is dict and isinstance(seg, str):
            ann = typing.get_args(ann)[1]
        else:
            return None
    ann = _unwrap(ann)
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _message(err: Any, model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> str:
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    inp = err.get("input")
    if kind == "extra_forbidden":
        sub = _model_at(model, loc[:-1]) if model is not None else None
        hint = did_you_mean(str(loc[-1]), keys_of(sub)) if sub is not None else ""
        return f"unknown key; {hint}" if hint else "unknown key"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(inp)}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        msg = f"expected {expected}, got {describe(inp)}"
        choices = re.findall(r"'([^']*)'", expected)
        if isinstance(inp, str) and choices:
            close = difflib.get_close_matches(inp.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
            if close:
                msg += f"; did you mean {choices[[c.lower() for c in choices].index(close[0])]!r}?"
        return msg
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"needs at least {plural(int(least), 'item')}"
    if kind == "too_long":
        return f"at most {plural(int(ctx.get('max_length', 0)), 'item')}, got {ctx.get('actual_length')}"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == NAME_PATTERN:
            return f"expected a kebab-case name (a-z, 0-9 and '-', like storage-fix-this), got {short(inp)}"
        return f"does not have the expected format ({ctx.get('pattern')}), got {short(inp)}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("more than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}, got {short(inp)}"
    msg = str(err.get("msg", "invalid value"))
    msg = msg[:1].lower() + msg[1:]
    return f"{msg}, got {describe(inp)}" if kind != "missing" else msg


def issues_from(
    err: ValidationError,
    *,
    file: str,
    doc: Document,
    base: Path = (),
    model: type[BaseModel] | None = None,
) -> list[Issue]:
    """Map every error of ``err`` (raised validating the data at ``base`` of ``doc``) to an Issue."""
    data = _get(doc.value, base)
    out: list[Issue] = []
    branches: dict[Path, list[tuple[str, str]]] = {}  # union errors, grouped by where they are
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        path, skipped = _data_path(data, loc)
        if e["type"] == "missing":
            parent = path[:-1] if path else path
            name = loc[-1] if loc else "?"
            full = base + parent
            out.append(Issue(file, doc.line(full), format_path(full), f"missing required key {name!r}"))
        elif skipped:
            branches.setdefault(base + path, []).append((e["type"], _message(e, model, loc)))
        else:
            full = base + path
            out.append(Issue(file, doc.line(full), format_path(full), one_line(_message(e, model, loc), None)))
    for full, errors in branches.items():
        message = one_line(_union_message(errors, _get(doc.value, full)), None)
        out.append(Issue(file, doc.line(full), format_path(full), message))
    return out


def _union_message(errors: list[tuple[str, str]], value: Any) -> str:
    """One message for the failed branches of a union: the branches whose type fit the value
    explain why; when none fit, list the types that would."""
    fitting = [msg for kind, msg in errors if kind not in _EXPECTED]
    if fitting:
        return "; or ".join(dict.fromkeys(fitting))
    wanted = list(dict.fromkeys(_EXPECTED[kind] for kind, _ in errors))
    return f"expected {' or '.join(wanted)}, got {describe(value)}"

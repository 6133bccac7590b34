"""Azure Policy template expressions, evaluated: the ``[...]`` strings of a Modify definition.

A Modify operation's ``value`` and ``condition`` (and a definition's ``field`` names) may be
template expressions: ``[parameters('effect')]``, ``[greaterOrEquals(requestContext().apiVersion,
'2021-04-01')]``, ``[concat('tags[', parameters('tagName'), ']')]``. The language is ARM's template
function syntax (Microsoft Learn, "Azure Policy definition structure: policy rule", *Policy
functions*, and "ARM template functions"): calls, string literals in single quotes (``''`` is a
quote), integers, ``true``/``false``/``null``, ``.property`` and ``[index]`` access. A string that
starts with ``[[`` is the literal text after the first ``[``.

What is evaluated is the subset Policy allows that a plan can answer: ``parameters``, ``field``,
``requestContext().apiVersion``, comparisons, logic, string and array helpers. Anything else
(``resourceGroup()``, ``utcNow()``, ``policy()``, ``deployment()``, an unknown function) raises
:class:`ExpressionError` naming it: the plan refuses rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class ExpressionError(ValueError):
    """An expression the planner cannot evaluate; the message names it and why, in one line."""


@dataclass(frozen=True, slots=True)
class Context:
    """What an expression may read: the assignment's parameter values (definition defaults filled in),
    ``field`` (an alias or field name → the resource's value), and the API version of the write."""

    parameters: Mapping[str, Any]
    field: Callable[[str], Any]
    api_version: str


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def evaluate(value: Any, ctx: Context) -> Any:
    """``value`` with its expressions evaluated: a ``[...]`` string is evaluated, ``[[x`` is the literal
    ``[x``, objects and arrays recursively, anything else as it is."""
    if isinstance(value, str):
        if value.startswith("[["):
            return value[1:]
        if is_expression(value):
            return _Parser(value[1:-1], value, ctx).run()
        return value
    if isinstance(value, list):
        return [evaluate(v, ctx) for v in value]
    if isinstance(value, Mapping):
        return {k: evaluate(v, ctx) for k, v in value.items()}
    return value


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op>[(),.\[\]]))")


class _Parser:
    def __init__(self, text: str, whole: str, ctx: Context) -> None:
        self.whole = whole
        self.ctx = ctx
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise ExpressionError(f"cannot read expression {whole!r} at {text[pos:pos + 20]!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def run(self) -> Any:
        value = self.expr()
        if self.i != len(self.tokens):
            raise ExpressionError(f"cannot read expression {self.whole!r}: unexpected {self.tokens[self.i][1]!r}")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ExpressionError(f"cannot read expression {self.whole!r}: it ends early")
        tok = self.tokens[self.i]
        if want is not None and tok[1] != want:
            raise ExpressionError(f"cannot read expression {self.whole!r}: expected {want!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def expr(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            value: Any = text[1:-1].replace("''", "'")
        elif kind == "num":
            value = int(text)
        elif kind == "name" and self.peek() == "(":
            self.take("(")
            args: list[Any] = []
            while self.peek() != ")":
                args.append(self.expr())
                if self.peek() == ",":
                    self.take(",")
                elif self.peek() != ")":
                    raise ExpressionError(f"cannot read expression {self.whole!r}: expected ',' or ')'")
            self.take(")")
            value = _call(text, args, self.ctx, self.whole)
        elif kind == "name" and text.lower() in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[text.lower()]
        else:
            raise ExpressionError(f"cannot read expression {self.whole!r}: unexpected {text!r}")
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                name = self.take()[1]
                value = _member(value, name, self.whole)
            else:
                index = self.expr()
                self.take("]")
                value = _member(value, index, self.whole)
        return value


def _member(value: Any, key: Any, whole: str) -> Any:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(key, str) and k.lower() == key.lower():
                return v
        raise ExpressionError(f"{whole}: no property {key!r}")
    if isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
        return value[key]
    raise ExpressionError(f"{whole}: cannot take {key!r} of {type(value).__name__}")


def _version_key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _compare(name: str, args: list[Any], whole: str) -> bool:
    a, b = (_version_key(x) for x in _arity(name, args, 2, whole))
    if type(a) is not type(b) or not isinstance(a, str | int):
        raise ExpressionError(f"{whole}: {name} compares two strings or two integers")
    result: bool = {"less": a < b, "lessorequals": a <= b, "greater": a > b, "greaterorequals": a >= b}[name.lower()]
    return result


def _arity(name: str, args: list[Any], n: int, whole: str) -> list[Any]:
    if len(args) != n:
        raise ExpressionError(f"{whole}: {name} takes {n} argument{'s' if n != 1 else ''}, got {len(args)}")
    return args


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def _call(name: str, args: list[Any], ctx: Context, whole: str) -> Any:
    fn = name.lower()
    if fn == "parameters":
        (key,) = _arity(name, args, 1, whole)
        for k, v in ctx.parameters.items():
            if isinstance(key, str) and k.lower() == key.lower():
                return v
        raise ExpressionError(f"{whole}: parameter {key!r} has no value (not in the assignment, no defaultValue)")
    if fn == "field":
        (alias,) = _arity(name, args, 1, whole)
        return ctx.field(str(alias))
    if fn == "requestcontext":
        _arity(name, args, 0, whole)
        return {"apiVersion": ctx.api_version}
    if fn in ("less", "lessorequals", "greater", "greaterorequals"):
        return _compare(name, args, whole)
    if fn == "equals":
        a, b = _arity(name, args, 2, whole)
        return _equal(a, b)
    if fn == "not":
        (a,) = _arity(name, args, 1, whole)
        return not _truth(a, whole)
    if fn in ("and", "or"):
        if len(args) < 2:
            raise ExpressionError(f"{whole}: {name} takes two or more arguments")
        values = [_truth(a, whole) for a in args]
        return all(values) if fn == "and" else any(values)
    if fn == "if":
        cond, yes, no = _arity(name, args, 3, whole)
        return yes if _truth(cond, whole) else no
    if fn == "concat":
        if args and all(isinstance(a, list) for a in args):
            return [x for a in args for x in a]
        return "".join("" if a is None else str(a).lower() if isinstance(a, bool) else str(a) for a in args)
    if fn in ("tolower", "toupper"):
        (a,) = _arity(name, args, 1, whole)
        return str(a).lower() if fn == "tolower" else str(a).upper()
    if fn == "empty":
        (a,) = _arity(name, args, 1, whole)
        return a is None or (isinstance(a, str | list | Mapping) and len(a) == 0)
    if fn == "length":
        (a,) = _arity(name, args, 1, whole)
        return len(a) if isinstance(a, str | list | Mapping) else 0
    if fn == "contains":
        container, item = _arity(name, args, 2, whole)
        if isinstance(container, str):
            return str(item).lower() in container.lower()
        if isinstance(container, Mapping):
            return any(str(k).lower() == str(item).lower() for k in container)
        return any(_equal(x, item) for x in container or [])
    if fn in ("string", "bool", "int"):
        (a,) = _arity(name, args, 1, whole)
        if fn == "string":
            return str(a).lower() if isinstance(a, bool) else str(a)
        if fn == "int":
            return int(a)
        return a if isinstance(a, bool) else str(a).lower() == "true"
    if fn == "coalesce":
        return next((a for a in args if a is not None), None)
    if fn == "createarray":
        return list(args)
    raise ExpressionError(f"{whole}: function {name}() is not one remediator evaluates in a plan "
                          "(parameters, field, requestContext, comparisons, logic, concat, string helpers)")


def _truth(value: Any, whole: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ExpressionError(f"{whole}: expected true or false, got {value!r}")

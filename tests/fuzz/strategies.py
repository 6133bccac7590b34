"""Hypothesis strategies shared by the fuzz targets: random JSON, mutated real documents, hostile
bytes (BOMs, UTF-16, lone surrogates, huge numbers, deep nesting, NaN/Infinity, truncation)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

# Raw JSON tokens json.dumps cannot write (or writes only non-strictly), spliced in after dumping.
HOSTILE_TOKENS: tuple[str, ...] = (
    "NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1" + "0" * 400 + ".5",
    "9" * 5000, "-" + "9" * 4301, "9" * 4300, "123456789012345678901234567890",
    '"\\ud800"', '"x\\udfffy"', '"\\ud800\\u0041"', '"\\u0000\\u2028\\u0085"', '"\\""',
    "[" * 300 + "]" * 300, "[" * 100_000 + "]" * 100_000, '{"a":' * 250 + "1" + "}" * 250,
    "1.0", "-0", "0.0000000000000000000000001", "true", "null", '""',
)
_MARK = "\u0001fuzz-token-"

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["", " ", "/", "//", "Unhealthy", "Healthy", "NonCompliant", "Resolved", "Active",
                     "Microsoft.Security/assessments", "Microsoft.Storage/storageAccounts",
                     "/subscriptions/00000000-0000-0000-0000-000000000000", "\u2028", "é", "\U0001f600",
                     "{}", "[]", "null", "NaN", "$ref", "$id", "1"]),
)

JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(max_size=12), children, max_size=6)),
    max_leaves=25,
)
"""Any JSON value (finite numbers; hostile tokens come from :func:`serialise`)."""


def _paths(value: Any, path: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    out = [path]
    if depth > 12:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i), depth + 1)
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


def _case(text: str) -> str:
    return text.swapcase() if text.lower() != text.upper() else text + "/"


class Seeds(tuple[Any, ...]):
    """Seed documents with a short ``repr`` (hypothesis prints strategies' arguments)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} seed documents>"


@st.composite
def mutated(draw: st.DrawFn, seeds: Seeds, *, extra: Callable[[Any], Any] | None = None,
            max_mutations: int = 4) -> Any:
    """A deep copy of one of ``seeds`` with a few random edits: a subtree replaced (by random
    JSON, a hostile token, or another part of the document), a key dropped, renamed or re-cased,
    a list element duplicated or dropped, a value wrapped in a list or an object."""
    value = copy.deepcopy(seeds[draw(st.integers(0, len(seeds) - 1))])
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = _paths(value)
        path = paths[draw(st.integers(0, len(paths) - 1))]
        op = draw(st.sampled_from(["replace", "token", "graft", "drop", "rename", "dup", "wrap", "extra"]))
        target = _get(value, path)
        if op == "extra" and extra is not None:
            value = copy.deepcopy(extra(value))  # never hand out a seed itself: mutations would edit it
            continue
        if not path:
            if op in ("replace", "token"):
                value = draw(JSON) if op == "replace" else _MARK + str(draw(st.integers(0, len(HOSTILE_TOKENS) - 1)))
            elif op == "wrap":
                value = draw(st.sampled_from([[value], {"value": [value]}, {"records": [value]}, [value, value]]))
            continue
        parent, key = _get(value, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = draw(JSON)
        elif op == "token":
            parent[key] = _MARK + str(draw(st.integers(0, len(HOSTILE_TOKENS) - 1)))
        elif op == "graft":
            other = paths[draw(st.integers(0, len(paths) - 1))]
            if other[: len(path)] != path:  # never graft a node into itself
                parent[key] = copy.deepcopy(_get(value, other))
        elif op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[_case(key) if draw(st.booleans()) else draw(st.text(max_size=8))] = parent.pop(key)
        elif op == "dup" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(target))
        elif op == "wrap":
            parent[key] = [target] if draw(st.booleans()) else {"value": target}
    return value


@st.composite
def serialise(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as JSON bytes in one of the ways tools write it, hostile tokens spliced in,
    then sometimes re-encoded (BOM, UTF-16 LE/BE, NDJSON) or damaged at the byte level."""
    text = json.dumps(value, indent=draw(st.sampled_from([None, 2])), ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 4)) == 0 and isinstance(value, list) and value:
        text = "\n".join(json.dumps(v) for v in value) + draw(st.sampled_from(["", "\n", "\n\n"]))
    for i, token in enumerate(HOSTILE_TOKENS):
        text = text.replace(json.dumps(_MARK + str(i), ensure_ascii=False), token)
        text = text.replace(json.dumps(_MARK + str(i)), token)
    return draw(encoded(text))


@st.composite
def encoded(draw: st.DrawFn, text: str) -> bytes:
    """Text as bytes: UTF-8 (with or without BOM), UTF-16 with a BOM, and sometimes damaged."""
    form = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-bom", "utf-16", "utf-16-le-bom",
                                 "utf-16-be-bom", "latin-1"]))
    raw = text.encode("utf-8", "surrogatepass")
    if form == "utf-8-bom":
        raw = b"\xef\xbb\xbf" + raw
    elif form == "utf-16":
        raw = text.encode("utf-16", "surrogatepass")
    elif form == "utf-16-le-bom":
        raw = b"\xff\xfe" + text.encode("utf-16-le", "surrogatepass")
    elif form == "utf-16-be-bom":
        raw = b"\xfe\xff" + text.encode("utf-16-be", "surrogatepass")
    elif form == "latin-1":
        raw = text.encode("latin-1", "replace")
    return draw(damaged(raw))


@st.composite
def damaged(draw: st.DrawFn, raw: bytes) -> bytes:
    """Mostly ``raw`` as it is; sometimes truncated, a byte flipped, bytes inserted or a slice doubled."""
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        op = draw(st.sampled_from(["truncate", "flip", "insert", "double", "delete"]))
        if op == "truncate":
            raw = raw[: max(at, 1)]
        elif op == "flip":
            raw = raw[:at] + bytes([raw[at] ^ (1 << draw(st.integers(0, 7)))]) + raw[at + 1:]
        elif op == "insert":
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
        elif op == "double":
            end = min(len(raw), at + draw(st.integers(1, 64)))
            raw = raw[:end] + raw[at:end] + raw[end:]
        else:
            raw = raw[:at] + raw[at + draw(st.integers(1, 16)):]
    return raw


def hostile_bytes() -> st.SearchStrategy[bytes]:
    """Payloads that are hostile as a whole: random bytes, tokens, deep nesting, odd encodings."""
    return st.one_of(
        st.binary(min_size=1, max_size=200),
        st.sampled_from(HOSTILE_TOKENS).map(lambda t: t.encode()),
        st.sampled_from(HOSTILE_TOKENS).map(lambda t: f'[{{"id": {t}, "properties": {t}}}]'.encode()),
        st.integers(1, 120_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 60_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.text(min_size=1, max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.text(min_size=1, max_size=80).map(lambda t: t.encode("utf-16", "surrogatepass")),
        st.just(b""), st.just(b"\xef\xbb\xbf"), st.just(b"\xff\xfe"), st.just(b"\xfe\xff\x00"),
        st.just(b"   \n\n  "),
    )

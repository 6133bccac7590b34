"""JSON plumbing for the findings parser: decoding payloads, lower-casing keys, Json.NET references.

Decoding uses ``pydantic_core.from_json`` (jiter, already installed with pydantic): it is about twice
as fast as ``json.loads`` on Defender records, refuses ``NaN``/``Infinity`` and lone surrogates, and
stops at 200 levels of nesting with a clean ``ValueError`` instead of a ``RecursionError``.
Only keys go through its string cache (``cache_strings="keys"``): they repeat in every record,
values rarely do, and this mode measured fastest.

jiter still turns a number too large for a float (``1e999``) into ``inf``: ``decode(finite=True)``
refuses those too (a walk over the values; the saved-state loader asks for it, since its documents
reach ``--output json``, which is strict: ``allow_nan=False``).

Everything here raises only :class:`DecodeError` or :class:`NestingError`; the caller turns them
into one-line ``PayloadError`` / ``StateError`` messages that name the source.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from pydantic_core import from_json

from remediator.errors import one_line

_T = TypeVar("_T")

MAX_DEPTH = 128
"""Deepest nesting the normalisers walk; Defender payloads stay below 15 levels."""

_POSITION = re.compile(r" at line (\d+) column (\d+)$")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

Document = tuple[int | None, Any]
"""A decoded JSON value and the NDJSON line it came from (``None`` for a single document)."""


class DecodeError(Exception):
    """The payload is not JSON (or not text); ``line`` is 1-based when known."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class NestingError(Exception):
    """A value nests deeper than :data:`MAX_DEPTH`."""


def decode(data: bytes | bytearray | memoryview | str, *, finite: bool = False) -> list[Document]:
    """Decode one JSON document, or NDJSON (one value per line), into Python values.

    A UTF-8 BOM is dropped; a UTF-16 BOM (PowerShell 5 ``Out-File``) switches to UTF-16. A single
    document is tried first: when it fails only because more data follows the first value, the
    payload is read as NDJSON, unless its first line is not a value on its own, in which case the
    original error is the honest one (a pretty-printed document with trailing junk).
    With ``finite``, a number too large for a double (which jiter reads as ``inf``) is refused
    too, at the cost of a walk over every value (saved state: its documents reach the output).
    """
    raw = _utf8(data)
    if not raw or raw.isspace():
        raise DecodeError(None, "empty payload (no JSON value)")
    try:
        docs: list[Document] = [(None, from_json(raw, allow_inf_nan=False, cache_strings="keys"))]
    except ValueError as exc:
        first = _position(exc, raw)
        if not first[1].startswith("trailing characters"):
            raise DecodeError(*first) from None
        docs = _ndjson(raw, first)
    if finite:
        for line, value in docs:
            where = non_finite(value)
            if where is not None:
                raise DecodeError(line, f"number out of range at {where or 'the top level'}: too large for a "
                                        "double, and Infinity is not JSON")
    return docs


def non_finite(value: Any, path: str = "") -> str | None:
    """The path (``[2].properties.x``) of the first NaN or infinite float in ``value``, else None."""
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else path
    if kind is dict:
        for k, v in value.items():
            if type(v) in _WALK:
                found = non_finite(v, f"{path}.{k}" if path else str(k))
                if found is not None:
                    return found
    elif kind is list:
        for i, v in enumerate(value):
            if type(v) in _WALK:
                found = non_finite(v, f"{path}[{i}]")
                if found is not None:
                    return found
    return None


_WALK = (dict, list, float)


def loads(text: str) -> Any:
    """Decode a JSON string embedded in a payload (Log Analytics columns); ``ValueError`` if not JSON."""
    return from_json(text, allow_inf_nan=False, cache_strings="keys")


def _utf8(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, str):
        try:
            return data.removeprefix("\ufeff").encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DecodeError(None, f"not valid Unicode text: {exc.reason} at offset {exc.start}") from None
    raw = bytes(data)
    if raw.startswith(_UTF8_BOM):
        return raw[len(_UTF8_BOM):]
    if raw[:2] in _UTF16_BOMS:
        try:
            return raw.decode("utf-16").removeprefix("\ufeff").encode("utf-8")
        except UnicodeError as exc:
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise DecodeError(None, f"not valid UTF-16 text: {reason}") from None
    return raw


def _ndjson(raw: bytes, first: tuple[int, str]) -> list[Document]:
    docs: list[Document] = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line or line.isspace():
            continue
        try:
            docs.append((number, from_json(line, allow_inf_nan=False, cache_strings="keys")))
        except ValueError as exc:
            if not docs:
                raise DecodeError(*first) from None
            raise DecodeError(number, _position(exc, line)[1]) from None
    return docs


def _position(exc: ValueError, raw: bytes) -> tuple[int, str]:
    """``("expected value at line 3 column 7")`` -> ``(3, "expected value (column 7)")``."""
    text = str(exc)
    match = _POSITION.search(text)
    if match is None:
        return 1, text
    message = text[: match.start()]
    line, column = int(match[1]), int(match[2])
    if message.startswith("recursion limit exceeded"):
        message = "nested too deeply (more than 200 levels)"
    elif "surrogate" in message or message == "unexpected end of hex escape":
        start = raw.split(b"\n", line)[line - 1] if line > 0 else b""
        escape = start.rfind(b"\\u", 0, column)
        if _SURROGATE.match(start, escape) is not None:
            message = "lone surrogate in a \\u escape (half of a UTF-16 pair: not valid Unicode)"
    elif message in ("expected value", "invalid number"):
        start = raw.split(b"\n", line)[line - 1] if line > 0 else b""
        token = _NON_FINITE.match(start, max(column - 1, 0)) or _NON_FINITE.match(start, max(column - 2, 0))
        if token is not None:
            message = f"{token[0].decode()} is not JSON (strict JSON has no NaN or Infinity)"
    return line, f"{message} (column {column})"


_NON_FINITE = re.compile(rb"-?(?:NaN|Infinity)")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _LowerCache(dict[str, str]):
    """``cache[key]`` is ``key.lower()``, computed once per distinct key.

    Records repeat the same few hundred keys, so a hit (no call, no new string) beats
    ``str.lower`` and makes every normalised record share its key objects. The cache stops
    growing at 50,000 keys so a hostile payload cannot grow it without bound.
    """

    def __missing__(self, key: str) -> str:
        low = key.lower()  # AttributeError for a non-string key: callers fall back to _key()
        if len(self) < 50_000:
            self[key] = low
        return low


_LOWER = _LowerCache()


def lower_keys(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    """One level: the same values under lower-cased keys (later duplicates win, as in JSON)."""
    lower = _LOWER
    try:
        return {lower[k]: v for k, v in mapping.items()}
    except AttributeError:  # a non-string key, possible only through parse_value
        return {_key(k): v for k, v in mapping.items()}


def lower_deep(value: Any) -> Any:
    """Recursively lower-case mapping keys (a :class:`RefResolver` pass: ``$ref`` rarely occurs here)."""
    return RefResolver().resolve(value)


def _key(key: object) -> str:
    return key.lower() if isinstance(key, str) else str(key).lower()


_CONTAINERS = (dict, list)


class RefResolver:
    """Resolve Json.NET ``$id``/``$ref`` graphs while lower-casing keys.

    Json.NET writes an object in full the first time (``{"$id": "5", ...}``) and as ``{"$ref": "5"}``
    afterwards, so a reference means the *latest preceding* object with that ``$id`` in document
    order. Real exports repeat ``$id`` values (samples concatenated by the exporter) and point at
    objects nested inside other entities, so the whole tree is walked and the latest definition
    wins. A reference to an enclosing object (a cycle) or to an id not seen before it stays as
    ``{"$ref": id}``: every resolved reference points backwards to a finished, non-enclosing
    subtree, which keeps the result acyclic (safe for ``json.dumps`` and ``repr``). Resolved
    objects are shared, not copied. Several values resolved with one instance share one id space
    (``Entities`` may refer to ``ResourceIdentifiers``: resolve those first).
    """

    __slots__ = ("_defs", "missed")

    def __init__(self) -> None:
        self._defs: dict[str, dict[str, Any]] = {}
        self.missed = False
        """True once a reference stayed unresolved (unknown id or a cycle)."""

    def resolve(self, value: Any, depth: int = 0) -> Any:
        """``value`` with keys lower-cased and references replaced by the objects they name."""
        if depth >= MAX_DEPTH:
            raise NestingError
        if type(value) is dict:
            return self._object(value, depth + 1)
        if type(value) is list:
            return [self.resolve(v, depth + 1) if type(v) in _CONTAINERS else v for v in value]
        return value

    def _object(self, value: dict[Any, Any], depth: int) -> dict[str, Any]:
        if len(value) == 1:
            ((key, ref),) = value.items()
            if isinstance(ref, str) and _key(key) == "$ref":
                target = self._defs.get(ref)
                if target is None or target is _PENDING:
                    self.missed = True
                    return {"$ref": ref}
                return target
        ident = value.get("$id")
        if ident is None:
            ident = value.get("$ID")
        if type(ident) is not str:
            return self._fill(value, depth)
        # Json.NET writes $id first: the object is "pending" while its children are walked, so a
        # reference to it from inside (a cycle) stays unresolved.
        self._defs[ident] = _PENDING
        out = self._fill(value, depth)
        if self._defs.get(ident) is _PENDING:  # unless a descendant redefined the id since
            self._defs[ident] = out
        return out

    def _fill(self, value: dict[Any, Any], depth: int) -> dict[str, Any]:
        resolve, lower = self.resolve, _LOWER
        try:
            return {lower[k]: (resolve(v, depth) if type(v) in _CONTAINERS else v) for k, v in value.items()}
        except AttributeError:  # a non-string key, possible only through parse_value
            return {_key(k): (resolve(v, depth) if type(v) in _CONTAINERS else v) for k, v in value.items()}


_PENDING: dict[str, Any] = {}


# --------------------------------------------------------------------------- field access
# Lenient for optional fields (a wrong type counts as absent), strict for the ones a shape needs.


class FieldError(Exception):
    """A required field is missing or of the wrong type; the caller says which record."""




def string(m: Mapping[str, Any], key: str) -> str:
    """``m[key]`` when it is a string, else ``""``."""
    value = m.get(key)
    return value if isinstance(value, str) else ""


def first_string(m: Mapping[str, Any], *keys: str) -> str:
    """The first non-empty string among ``keys``."""
    for key in keys:
        value = string(m, key)
        if value:
            return value
    return ""


def text(value: object) -> str:
    """A string, or the ``value`` of an Activity Log ``{"value", "localizedValue"}`` pair."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return string(lower_keys(value), "value")
    return ""


def mapping(m: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``m[key]`` when it is an object, else ``{}``."""
    value = m.get(key)
    return value if isinstance(value, dict) else {}


def array(m: Mapping[str, Any], key: str) -> list[Any]:
    """``m[key]`` when it is an array, else ``[]``."""
    value = m.get(key)
    return value if isinstance(value, list) else []


def required_string(m: Mapping[str, Any], key: str, name: str) -> str:
    """``m[key]``, a non-empty string, or :class:`FieldError` naming the field as ``name``."""
    value = m.get(key)
    if isinstance(value, str) and value.strip():
        return value
    raise FieldError(f"{name} is {'missing' if value is None else kind(value)}, expected a non-empty string")


def required_mapping(m: Mapping[str, Any], key: str, name: str | None = None) -> dict[str, Any]:
    """``m[key]``, an object, or :class:`FieldError`."""
    value = m.get(key)
    if isinstance(value, dict):
        return value
    raise FieldError(f"{name or key} is {'missing' if value is None else kind(value)}, expected an object")


def kind(value: object) -> str:
    """The JSON kind of a value for messages: ``a number``, ``an array``, ``null``, …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def key_names(record: Mapping[Any, Any], limit: int = 12) -> str:
    """The first ``limit`` keys of an object, for "found keys: …" messages."""
    names = [one_line(str(k))[:40] for k in itertools.islice(record, limit)]
    more = f" (and {len(record) - limit} more)" if len(record) > limit else ""
    return (", ".join(names) + more) if names else "none (empty object)"


def json_copy(value: _T) -> _T:
    """A deep copy of a JSON value (dicts, lists, scalars), several times faster than ``copy.deepcopy``.

    Other mappings and sequences (MappingProxyType, tuples) become dicts and lists, as JSON would.
    """
    return cast("_T", _copy(value))


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value

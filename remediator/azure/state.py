"""Reading resource state: the read-only port every ``plan()`` goes through.

Two readers: ``SavedState`` (ARM documents saved in files, offline) and, in
``remediator.azure.reader``, ``LiveState`` (GETs through the real SDK clients). Neither has a
method that writes: a plan cannot write by construction.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from remediator import _json, ids
from remediator._json import key_names, kind
from remediator.errors import StateError, one_line

ROLE_ASSIGNMENT_TYPE = "microsoft.authorization/roleassignments"


class StateReader(Protocol):
    """Read-only access to ARM resources."""

    def get(self, resource_id: str) -> dict[str, Any] | None:
        """The ARM document of a resource, or None when it does not exist."""

    def list(self, resource_type: str, scope: str) -> list[dict[str, Any]]:
        """Resources of ``resource_type`` at or under ``scope`` (a subscription or resource group)."""

    def role_assignments(self, scope: str, principal_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """Role assignments at, above or below ``scope`` (as ARM's list-for-scope returns them),
        restricted to ``principal_id`` when given."""


MAX_STATE_BYTES = 128 * 1024 * 1024
"""Larger state files are refused before decoding (the findings parser's limit)."""

_MAX_ENVELOPES = 3  # an array of {"value": [...]} lists is as deep as saved state goes
_SCOPES = ("/subscriptions/", "/providers/")


def _fail(message: str) -> StateError:
    return StateError(one_line(message, 1000))  # room for two places and an id


def state_files(path: Path) -> builtins.list[Path]:
    """The files ``--resources`` reads: the file itself, or every ``*.json`` under a folder, sorted."""
    if path.is_dir():
        try:
            files = sorted(f for f in path.rglob("*.json") if f.is_file())
        except OSError as exc:
            raise _fail(f"{path}: cannot read the folder: {exc.strerror or exc}") from None
        if not files:
            raise _fail(f"{path}: no *.json files in this folder (expected saved ARM documents)")
        return files
    if path.is_file():
        return [path]
    raise _fail(f"{path}: no such file or folder (expected a JSON file or a folder of them)")


class _Loader:
    """Reads state files into checked documents, keyed by normalised id, remembering where each was.

    Every problem is a one-line :class:`StateError` naming the file and the document
    (``storage.json[2]``, ``list.json.value[0]``, ``export.ndjson:3``).
    """

    def __init__(self) -> None:
        self.docs: dict[str, tuple[dict[str, Any], str]] = {}
        self.folded = 0

    def read(self, file: Path) -> None:
        try:
            size = file.stat().st_size
            if size > MAX_STATE_BYTES:
                raise _fail(f"{file}: file is {size} bytes, over the limit of {MAX_STATE_BYTES}")
            data = file.read_bytes()
        except OSError as exc:
            raise _fail(f"{file}: cannot read: {exc.strerror or exc}") from None
        try:
            values = _json.decode(data, finite=True)
        except _json.DecodeError as exc:
            if exc.line is None:
                message = "empty file (no JSON document)" if exc.message.startswith("empty payload") else exc.message
                raise _fail(f"{file}: {message}") from None
            raise _fail(f"{file}:{exc.line}: not JSON: {exc.message}") from None
        for line, value in values:
            for doc, where in self._documents(value, f"{file}:{line}" if line is not None else str(file), 0):
                self._add(doc, where)

    def _documents(self, value: Any, where: str, depth: int) -> Iterator[tuple[dict[str, Any], str]]:
        if depth > _MAX_ENVELOPES:
            raise _fail(f"{where}: arrays and value lists nested more than {_MAX_ENVELOPES} deep "
                        "(expected a GET response, an array of them, or {\"value\": [...]})")
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from self._documents(item, f"{where}[{i}]", depth + 1)
        elif isinstance(value, dict):
            if "id" not in value and isinstance(value.get("value"), list):
                yield from self._documents(value["value"], f"{where}.value", depth + 1)
            elif "id" in value:
                yield value, where
            else:
                raise _fail(f"{where}: not an ARM document: it has no 'id' (found keys: {key_names(value)}; "
                            "expected a GET response, an array of them, or {\"value\": [...]})")
        else:
            raise _fail(f"{where}: expected an ARM document (a JSON object with 'id'), found {kind(value)}")

    def _add(self, doc: dict[str, Any], where: str) -> None:
        checked = check_document(doc, where)
        k = ids.key(checked["id"])
        seen = self.docs.get(k)
        if seen is None:
            self.docs[k] = (checked, where)
        elif _same_document(seen[0], checked):
            self.folded += 1
        else:
            raise _fail(f"{where}: conflicts with {seen[1]}: two different documents for {checked['id']} "
                        "(ids compare case-insensitively, without a trailing /; keep one of them)")


def check_document(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """``doc`` with its id normalised (:func:`remediator.ids.canonical`), or a :class:`StateError`.

    Refused: an id that is not an ARM resource id, a ``type`` that disagrees with the id, and
    ``properties`` or ``tags`` that are not objects (``az resource list`` saves ``properties:
    null``: planning against it would replace every property of the resource).
    """
    raw = doc.get("id")
    if not isinstance(raw, str) or not raw.strip():
        raise _fail(f"{where}: id is {kind(raw)}, expected an ARM resource id (/subscriptions/…)")
    rid = ids.canonical(raw)
    label = one_line(raw, 300)
    if not rid.lower().startswith(_SCOPES):
        raise _fail(f"{where}: id {label!r} is not an ARM resource id (expected /subscriptions/… or /providers/…)")
    parsed = ids.parse(rid)
    if parsed.namespace and len(parsed.types) != len(parsed.names):
        raise _fail(f"{where}: id {label!r} ends in the type {parsed.types[-1]!r} without a name "
                    "(a collection URL, not a resource)")
    expected = ids.document_type(rid)
    declared = doc.get("type")
    if declared is not None and not isinstance(declared, str):
        raise _fail(f"{where}: type is {kind(declared)}, expected a string such as {expected or 'Microsoft.X/y'!r}")
    if declared and expected and ids.type_key(declared) != ids.type_key(expected):
        raise _fail(f"{where}: type {one_line(declared, 200)!r} disagrees with its id {label!r}, "
                    f"whose type is {expected!r}")
    props = doc.get("properties", _MISSING)
    if not isinstance(props, dict):
        found = "missing" if props is _MISSING else kind(props)
        hint = (" (az resource list saves no properties; save az resource show or an ARM GET)" if props is None else
                " (as an ARM GET or az resource show returns it; some az list commands flatten it away)"
                if props is _MISSING else "")
        raise _fail(f"{where}: {rid}: properties is {found}, expected an object{hint}")
    tags = doc.get("tags")
    if tags is not None and not isinstance(tags, dict):
        raise _fail(f"{where}: {rid}: tags is {kind(tags)}, expected an object or null")
    return doc if rid == raw else {**doc, "id": rid}


_MISSING = object()


def _same_document(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal apart from the id's casing: compared as canonical JSON, so ``1``, ``1.0`` and ``true`` differ."""
    if {k: v for k, v in a.items() if k != "id"} != {k: v for k, v in b.items() if k != "id"}:
        return False
    ja = json.dumps({k: v for k, v in a.items() if k != "id"}, sort_keys=True)
    return ja == json.dumps({k: v for k, v in b.items() if k != "id"}, sort_keys=True)


class SavedState:
    """Resource state saved as ARM documents, for offline plans.

    ``from_path`` accepts what an ARM GET or ``az resource show`` returns: one document, an array,
    ``{"value": [...]}`` (or NDJSON of those), in UTF-8 with or without a BOM or UTF-16 with a BOM
    (PowerShell's ``az … > file``); a folder is read recursively (``*.json``). It meets the findings
    parser's standard: every problem is a one-line ``StateError`` naming the file and the document.
    Ids are normalised (no trailing slash, no ``//``) and compared case-insensitively; the same
    document saved twice (in one file or two) is kept once, two different documents for one id
    are refused with both places named. The constructor takes documents as they are (tests,
    callers that checked them already); a later document replaces an earlier one there.
    """

    def __init__(self, documents: Iterable[Mapping[str, Any]] = ()) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        self.folded = 0
        """Identical documents saved more than once that ``from_path`` kept once."""
        for doc in documents:
            self.add(doc)

    def add(self, document: Mapping[str, Any]) -> None:
        doc = dict(document)
        self._docs[ids.key(str(doc["id"]))] = doc

    @classmethod
    def from_path(cls, path: str | Path) -> SavedState:
        loader = _Loader()
        for file in state_files(Path(path)):
            loader.read(file)
        state = cls(doc for doc, _ in loader.docs.values())
        state.folded = loader.folded
        return state

    def __len__(self) -> int:
        return len(self._docs)

    def documents(self) -> list[dict[str, Any]]:
        return list(self._docs.values())

    # StateReader
    def get(self, resource_id: str) -> dict[str, Any] | None:
        doc = self._docs.get(ids.key(resource_id))
        if doc is not None:
            return doc
        # a child resource saved inside its parent (NSG securityRules, blob containers are separate)
        rid = ids.parse(resource_id)
        parent = rid.parent()
        if parent is not None:
            pdoc = self._docs.get(ids.key(parent.id))
            if pdoc is not None:
                children = (pdoc.get("properties") or {}).get(rid.types[-1])
                if isinstance(children, list):
                    for child in children:
                        if isinstance(child, dict) and ids.same(str(child.get("id", "")), resource_id):
                            return child
        return None

    def list(self, resource_type: str, scope: str) -> list[dict[str, Any]]:
        want = ids.type_key(resource_type)
        return [
            d for k, d in self._docs.items()
            if ids.type_key(str(d.get("type") or ids.resource_type(k))) == want and ids.is_under(k, scope)
        ]

    def role_assignments(self, scope: str, principal_id: str | None = None) -> builtins.list[dict[str, Any]]:
        out = []
        for k, d in self._docs.items():
            if ids.type_key(str(d.get("type") or ids.resource_type(k))) != ROLE_ASSIGNMENT_TYPE:
                continue
            props = d.get("properties") or {}
            at = str(props.get("scope") or k.split("/providers/microsoft.authorization/")[0] or "/")
            if not (ids.is_under(at, scope) or ids.is_under(scope, at)):
                continue
            if principal_id and str(props.get("principalId", "")).lower() != principal_id.lower():
                continue
            out.append(d)
        return out

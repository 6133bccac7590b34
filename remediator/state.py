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

from remediator import ids
from remediator.errors import StateError

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


def _iter_documents(value: Any, where: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _iter_documents(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        if "value" in value and isinstance(value["value"], list) and "id" not in value:
            yield from _iter_documents(value["value"], f"{where}.value")
        elif isinstance(value.get("id"), str) and value["id"].strip():
            yield value
        else:
            raise StateError(f"{where}: not an ARM document: it has no 'id' (expected a GET response, "
                             "an array of them, or {{\"value\": [...]}})")
    else:
        raise StateError(f"{where}: expected an ARM document (a JSON object with 'id'), got {type(value).__name__}")


class SavedState:
    """Resource state saved as ARM documents, for offline plans.

    Accepts what an ARM GET or ``az resource show`` returns: one document, an array, or
    ``{"value": [...]}``; a folder is read recursively (``*.json``). Later files override earlier
    ones for the same id (files are read in sorted order).
    """

    def __init__(self, documents: Iterable[Mapping[str, Any]] = ()) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        for doc in documents:
            self.add(doc)

    def add(self, document: Mapping[str, Any]) -> None:
        doc = dict(document)
        self._docs[ids.key(str(doc["id"]))] = doc

    @classmethod
    def from_path(cls, path: str | Path) -> SavedState:
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*.json") if f.is_file())
        elif p.is_file():
            files = [p]
        else:
            raise StateError(f"{p}: no such file or folder (expected a JSON file or a folder of them)")
        state = cls()
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise StateError(f"{f}: cannot read: {e}") from None
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise StateError(f"{f}:{e.lineno}: not JSON: {e.msg} (column {e.colno})") from None
            for doc in _iter_documents(value, str(f)):
                state.add(doc)
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

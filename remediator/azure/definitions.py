"""Saved Azure Policy definitions (``remediator plan --definitions DIR``), read before the other state.

A Modify fix (``policy.apply-modify``) reads the finding's policy definition by id from the state:
live, ``GET …/policyDefinitions/{name}`` (cached by ``LiveState``); offline, or to try a definition
before it is deployed, from saved files: ``az policy definition show --name <name> > def.json`` (the
flattened shape the CLI prints), ``az policy definition list`` (an array), an ARM GET body, or a
definition file of Azure/azure-policy (``properties.policyRule``). The files are read with the
``--resources`` reader's checks (strict JSON, ids normalised, duplicates folded, conflicts refused),
and each document must be a policy definition with a ``policyRule``: anything else is a one-line
error naming the file and the id.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remediator import _json, ids
from remediator.azure.state import SavedState, StateReader, state_files
from remediator.errors import StateError

DEFINITION_TYPE = "microsoft.authorization/policydefinitions"


def load_definitions(path: str | Path) -> dict[str, dict[str, Any]]:
    """The definitions saved at ``path`` (a JSON file or a folder of them), by ``ids.key`` of their id,
    each in ARM's shape (``properties`` holding ``policyRule``; the CLI's flattened form is wrapped)."""
    documents: list[dict[str, Any]] = []
    for file in state_files(Path(path)):
        try:
            values = _json.decode(file.read_bytes(), finite=True)
        except OSError as e:
            raise StateError(f"{file}: cannot read: {e.strerror or e}") from None
        except _json.DecodeError as e:
            raise StateError(f"{file}{f':{e.line}' if e.line else ''}: not JSON: {e.message}") from None
        for _line, value in values:
            items = value if isinstance(value, list) else value["value"] if isinstance(value, dict) and \
                "id" not in value and isinstance(value.get("value"), list) else [value]
            for i, item in enumerate(items):
                documents.append(_arm_shape(item, f"{file}[{i}]" if len(items) > 1 else str(file)))
    saved = SavedState(documents)  # the --resources checks: ids normalised, conflicts refused
    return {ids.key(str(d["id"])): d for d in saved.documents()}


def _arm_shape(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise StateError(f"{where}: expected a policy definition (a JSON object), found {_json.kind(item)}")
    rid = str(item.get("id") or "")
    inner = item.get("properties")
    props = inner if isinstance(inner, Mapping) and "policyRule" in inner else item
    if ids.type_key(ids.resource_type(rid)) != DEFINITION_TYPE or not isinstance(props.get("policyRule"), Mapping):
        raise StateError(f"{where}: {rid or 'a document without an id'} is not a policy definition (expected an id "
                         "…/providers/Microsoft.Authorization/policyDefinitions/<name> and a policyRule, as "
                         "`az policy definition show --name <name>` saves it)")
    if props is inner:
        return item
    envelope = {k: item[k] for k in ("id", "name", "type") if k in item}
    return {**envelope, "type": item.get("type") or "Microsoft.Authorization/policyDefinitions",
            "properties": {k: v for k, v in item.items() if k not in ("id", "name", "type", "systemData")}}


class WithDefinitions:
    """A ``StateReader``: the saved definitions first, then ``base`` (saved resources or live ARM)."""

    def __init__(self, base: StateReader, definitions: Mapping[str, dict[str, Any]]) -> None:
        self.base = base
        self.definitions = dict(definitions)

    def get(self, resource_id: str) -> dict[str, Any] | None:
        doc = self.definitions.get(ids.key(resource_id))
        return doc if doc is not None else self.base.get(resource_id)

    def list(self, resource_type: str, scope: str) -> builtins.list[dict[str, Any]]:
        return self.base.list(resource_type, scope)

    def role_assignments(self, scope: str, principal_id: str | None = None) -> builtins.list[dict[str, Any]]:
        return self.base.role_assignments(scope, principal_id)
